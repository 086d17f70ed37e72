"""The run journal: what a run has finished, so that ``--resume`` can skip it (the format and
the resume rules: ``docs/output-folder.md``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchain._internal import safefs
from toolchain.errors import InputError, ManifestError, OutputError, os_error_text
from toolchain.model.hashing import Digest
from toolchain.model.ids import check_sample_id
from toolchain.model.layout import check_layout
from toolchain.model.manifest import ManifestEntry, parse_entry

__all__ = ["FORMAT", "Journal", "JournaledSample", "plan_digest"]

FORMAT = "benchmark-regen.journal/v2"
_SYNC_EVERY = 64
_MAX_JOURNAL_BYTES = 4 * 1024 * 1024 * 1024


def plan_digest(plan: Iterable[tuple[str, str]]) -> str:
    """SHA-256 over the sorted ``(sample id, output path)`` pairs of a run."""
    h = hashlib.sha256(b"benchmark-regen/plan/v1\n")
    for sid, path in sorted(plan, key=lambda p: p[0].encode("utf-8")):
        h.update(sid.encode("utf-8") + b"\x00" + path.encode("utf-8") + b"\n")
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class JournaledSample:
    """A finished sample as journaled: its manifest entry and its original's file digest."""

    entry: ManifestEntry
    source_file: Digest


class Journal:
    """Append-only record of finished samples for one run, in ``state/journal-<name>.jsonl``."""

    def __init__(self, root: Path, rel: str, header: Mapping[str, Any]):
        self.root = root
        self.rel = rel
        self.header = {"format": FORMAT, **header}
        self._fd: int | None = None
        self._unsynced = 0

    @property
    def path(self) -> Path:
        return self.root / self.rel

    def exists(self) -> bool:
        return os.path.lexists(self.path)

    def _lines(self) -> Iterator[dict[str, Any]]:
        try:
            data = safefs.read_file(self.root, self.rel, limit=_MAX_JOURNAL_BYTES)
        except FileNotFoundError:
            return
        except OSError as e:
            raise OutputError(
                f"cannot read the run journal {self.path}: {os_error_text(e)}"
            ) from None
        for raw in data.splitlines():
            try:
                doc = json.loads(raw)
            except ValueError:
                continue  # a torn last line from a kill: that sample is redone
            if isinstance(doc, dict):
                yield doc

    def recorded_header(self) -> dict[str, Any] | None:
        first = next(self._lines(), None)
        return first if first is not None and first.get("format") == FORMAT else None

    def recorded_fingerprint(self) -> str | None:
        """The worker fingerprint digest the interrupted run recorded, if any."""
        for doc in self._lines():
            if "fingerprint" in doc:
                return str(doc["fingerprint"])
        return None

    def samples(self) -> Iterator[JournaledSample]:
        """Every well-formed sample line (later lines for one id replace earlier ones)."""
        for doc in self._lines():
            raw, source = doc.get("entry"), doc.get("source_file")
            if not isinstance(raw, dict) or not isinstance(source, str):
                continue
            try:
                yield JournaledSample(entry=parse_entry(raw), source_file=Digest.parse(source))
            except (ValueError, ManifestError):
                continue  # a damaged line: that sample is redone

    def paths(self) -> set[str]:
        """Output paths this run wrote or may have written (for ``--overwrite`` of an
        interrupted run): finished samples, and samples handed to a worker.

        Refuses (:class:`OutputError`) a journal naming a path benchmark-regen never
        writes (not the output path of its sample id, a reserved or hidden name): such
        a journal was not written by us, and nothing it names may be deleted.
        """
        pairs = [(s.entry.id, s.entry.path) for s in self.samples()]
        for doc in self._lines():
            if "writing" in doc:
                pairs.append((doc.get("id"), doc.get("writing")))  # type: ignore[arg-type]
        for sid, path in pairs:
            try:
                if not (isinstance(sid, str) and isinstance(path, str)):
                    raise ManifestError("a 'writing' line without its sample id and path")
                check_sample_id(sid)
                check_layout([(sid, path)])
            except InputError as e:
                raise OutputError(
                    f"the run journal {self.path} names {path!r}, which benchmark-regen never "
                    f"writes ({e.message}); refusing to delete anything",
                    hint="this journal was not written by benchmark-regen: remove the "
                    f"{self.path.parent.name} folder yourself, or choose another --out",
                ) from None
        return {path for _, path in pairs}

    def open(self) -> None:
        """Start appending; writes the header when the journal is new."""
        new = not self.exists()
        try:
            self._fd = safefs.open_append(self.root, self.rel)
            if new or os.fstat(self._fd).st_size == 0:
                os.write(self._fd, (json.dumps(self.header, sort_keys=True) + "\n").encode())
                os.fsync(self._fd)
        except OSError as e:
            raise OutputError(f"cannot write the run journal: {os_error_text(e)}") from None

    def note_fingerprint(self, digest: str) -> None:
        """Record the workers' fingerprint digest (once per session)."""
        self._write({"fingerprint": digest})

    def note_writing(self, path: str, sample: str) -> None:
        """Record that a worker may write ``path`` (before the task is handed out)."""
        self._write({"id": sample, "writing": path}, sample=sample)

    def append(self, entry: ManifestEntry, source_file: Digest) -> None:
        self._write({"entry": entry.to_json(), "source_file": str(source_file)}, sample=entry.id)

    def _write(self, doc: Mapping[str, Any], sample: str | None = None) -> None:
        assert self._fd is not None
        try:
            os.write(self._fd, (json.dumps(doc, sort_keys=True) + "\n").encode())
            self._unsynced += 1
            if self._unsynced >= _SYNC_EVERY:
                os.fsync(self._fd)
                self._unsynced = 0
        except OSError as e:
            raise OutputError(
                f"cannot write the run journal: {os_error_text(e)}",
                sample=sample,
                hint="free some space, then run again with --resume",
            ) from None

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        """Drop the journal once the manifest is durable."""
        self.close()
        with contextlib.suppress(OSError):
            safefs.remove_file(self.root, self.rel)
