"""The run journal: what a run has finished, each record under a MAC only this user can make,
so that ``--resume`` can skip it (the format and the resume rules: ``docs/output-folder.md``)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchain._internal import safefs
from toolchain._internal.jsonload import load_json
from toolchain.errors import InputError, ManifestError, OutputError, os_error_text
from toolchain.model.hashing import Digest
from toolchain.model.ids import check_sample_id
from toolchain.model.layout import check_layout
from toolchain.model.manifest import ManifestEntry, parse_entry
from toolchain.run import runkey

__all__ = ["FORMAT", "Journal", "JournaledSample", "Trusted", "plan_digest", "record_mac"]

FORMAT = "benchmark-regen.journal/v2"
_SYNC_EVERY = 64
_MAX_JOURNAL_BYTES = 4 * 1024 * 1024 * 1024
_MAC_DOMAIN = b"benchmark-regen/journal-mac/v1\n"


def plan_digest(plan: Iterable[tuple[str, str]]) -> str:
    """SHA-256 over the sorted ``(sample id, output path)`` pairs of a run (read in one
    pass when they come sorted, as every run's plan does; else sorted first)."""
    if iter(plan) is plan:  # an iterator cannot be read twice
        plan = list(plan)
    h = hashlib.sha256(b"benchmark-regen/plan/v1\n")
    previous: bytes | None = None
    for sid, path in plan:
        b = sid.encode("utf-8")
        if previous is not None and b < previous:
            return plan_digest(sorted(plan, key=lambda p: p[0].encode("utf-8")))
        previous = b
        h.update(b + b"\x00" + path.encode("utf-8") + b"\n")
    return "sha256:" + h.hexdigest()


def _canonical(doc: Mapping[str, Any]) -> bytes:
    """A line's JSON, as :class:`Journal` writes it (sorted keys)."""
    return json.dumps(doc, sort_keys=True).encode()


def record_mac(key: bytes, header: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """HMAC-SHA256, under the run's key, of a record (without its ``mac``) and the journal's
    header (which names the run: a record of another run or journal never verifies)."""
    body = {k: v for k, v in record.items() if k != "mac"}
    message = _MAC_DOMAIN + _canonical(header) + b"\n" + _canonical(body)
    return hmac.new(key, message, "sha256").hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class JournaledSample:
    """A finished sample as journaled: its manifest entry and its original's file digest."""

    entry: ManifestEntry
    source_file: Digest


@dataclass(frozen=True, kw_only=True)
class Trusted:
    """What a resumed run may take from the journal: the samples whose records verify under
    the run's key (the latest for each id), and notes on what it may not."""

    samples: Mapping[str, JournaledSample]
    notes: tuple[str, ...] = ()


class Journal:
    """Append-only record of finished samples for one run, in ``state/journal-<name>.jsonl``."""

    def __init__(self, root: Path, rel: str, header: Mapping[str, Any]):
        self.root = root
        self.rel = rel
        self.header = {"format": FORMAT, **header}
        """What names the run (a resumed run must match it); the written header adds ``run``."""
        self.notes: list[str] = []
        """What a run should be told: its key could not be stored, ..."""
        self._fd: int | None = None
        self._unsynced = 0
        self._run: str | None = None
        self._key: bytes | None = None
        self._written_header: Mapping[str, Any] = self.header

    @property
    def path(self) -> Path:
        return self.root / self.rel

    def exists(self) -> bool:
        return os.path.lexists(self.path)

    def _lines(self, damaged: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every line that is a JSON object; ``damaged`` collects what is wrong with the others
        (a torn last line, from a kill, is not damage)."""
        try:
            data = safefs.read_file(self.root, self.rel, limit=_MAX_JOURNAL_BYTES)
        except FileNotFoundError:
            return
        except OSError as e:
            raise OutputError(
                f"cannot read the run journal {self.path}: {os_error_text(e)}"
            ) from None
        lines = data.splitlines()
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue  # a resumed run starts on a new line (after a torn one)
            try:
                doc = load_json(raw, what=f"line {number}", error=OutputError)
            except OutputError as e:
                if damaged is not None and number < len(lines):
                    damaged.append(e.message)
                continue  # its sample is redone
            if isinstance(doc, dict):
                yield doc

    def recorded_header(self) -> dict[str, Any] | None:
        first = next(self._lines(), None)
        return first if first is not None and first.get("format") == FORMAT else None

    def _key_of(self, header: Mapping[str, Any] | None) -> tuple[bytes | None, str | None]:
        """The key of the run ``header`` names, or why there is none."""
        run = (header or {}).get("run")
        if not runkey.is_run_id(run):
            return None, "the journal names no run key (it was written without one)"
        try:
            key = runkey.load_key(run)
        except OSError as e:
            return None, f"the run key cannot be read: {os_error_text(e)}"
        if key is None:
            return None, f"the run key (run-{run}.key, in {_folder_text()}) is missing or damaged"
        return key, None

    def recorded_fingerprint(self) -> str | None:
        """The worker fingerprint digest the interrupted run recorded, if any: the first
        line that verifies under the run's key, else the first line (a forged one can only
        make a resume refuse, never trust what another environment made)."""
        first: str | None = None
        for doc in self._lines():
            if "fingerprint" in doc:
                if self._verifies(doc, self._key, self._written_header):
                    return str(doc["fingerprint"])
                first = str(doc["fingerprint"]) if first is None else first
        return first

    @staticmethod
    def _verifies(doc: Mapping[str, Any], key: bytes | None, header: Mapping[str, Any]) -> bool:
        mac = doc.get("mac")
        return (
            key is not None
            and isinstance(mac, str)
            and mac.isascii()  # compare_digest refuses a str that is not ASCII
            and hmac.compare_digest(mac, record_mac(key, header, doc))
        )

    @staticmethod
    def _sample(doc: Mapping[str, Any]) -> JournaledSample | None:
        raw, source = doc.get("entry"), doc.get("source_file")
        if not isinstance(raw, dict) or not isinstance(source, str):
            return None
        try:
            return JournaledSample(entry=parse_entry(raw), source_file=Digest.parse(source))
        except (ValueError, ManifestError):
            return None  # a damaged line: that sample is redone

    def samples(self) -> Iterator[JournaledSample]:
        """Every well-formed sample line, verified or not (later lines for one id replace
        earlier ones): what the run may have written, never what it may skip (:meth:`trusted`)."""
        for doc in self._lines():
            sample = self._sample(doc)
            if sample is not None:
                yield sample

    def trusted(self) -> Trusted:
        """The samples a resumed run may skip (before their files are checked): records that
        verify under the run's key, written after a fingerprint line that verifies (so made
        in the environment the resume is checked against). Nothing else is trusted: a record
        that does not verify, or a journal whose key is missing, costs redoing samples."""
        damaged: list[str] = []
        lines = self._lines(damaged)
        first = next(lines, None)
        header = first if first is not None and first.get("format") == FORMAT else None
        key, why = self._key_of(header)
        samples: dict[str, JournaledSample] = {}
        refused: set[str] = set()
        fingerprinted = False
        for doc in lines:
            ok = header is not None and self._verifies(doc, key, header)
            if "fingerprint" in doc:
                fingerprinted = fingerprinted or ok
                continue
            sample = self._sample(doc)
            if sample is None:
                continue
            if ok and fingerprinted:
                samples[sample.entry.id] = sample
            else:
                refused.add(sample.entry.id)
        refused -= samples.keys()
        notes = [f"the run journal {self.path}, {d}: skipped" for d in damaged]
        if refused:
            reason = why or "their records do not verify under the run's key (changed since?)"
            notes.append(
                f"{len(refused)} finished sample(s) in the run journal {self.path} are not "
                f"trusted, and are made again: {reason}"
            )
        return Trusted(samples=samples, notes=tuple(notes))

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

    def open(self, *, keyed: bool = False) -> None:
        """Start appending; writes the header when the journal is new. ``keyed``: every
        record gets a MAC under the run's key (made for a new journal, and again for a
        resumed one whose key is gone); a run that cannot resume needs none."""
        new = not self.exists()
        try:
            self._fd = safefs.open_append(self.root, self.rel)
            if new or os.fstat(self._fd).st_size == 0:
                header = dict(self.header)
                if keyed:
                    self._run = header["run"] = runkey.new_run_id()
                    self._key = self._make_key(self._run)
                self._written_header = header
                os.write(self._fd, _canonical(header) + b"\n")
                os.fsync(self._fd)
                return
            os.write(self._fd, b"\n")  # resumed: a line torn by the kill spoils none of ours
        except OSError as e:
            raise OutputError(f"cannot write the run journal: {os_error_text(e)}") from None
        if keyed:
            recorded = self.recorded_header()
            self._written_header = recorded or self.header
            self._key, _ = self._key_of(recorded)
            run = self._written_header.get("run")
            if runkey.is_run_id(run):
                self._run = run
                if self._key is None:  # a new key: the records of the old one are redone
                    self._key = self._make_key(run)

    def _make_key(self, run: str) -> bytes | None:
        """A new key for ``run``; ``None`` (and a note) when it cannot be stored safely."""
        try:
            return runkey.create_key(run)
        except OSError as e:
            self.notes.append(
                f"the run key could not be stored ({os_error_text(e)}): if this run is "
                "interrupted, --resume makes every sample again"
            )
            return None

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
        if self._key is not None:
            doc = {**doc, "mac": record_mac(self._key, self._written_header, doc)}
        try:
            os.write(self._fd, _canonical(doc) + b"\n")
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
        """Drop the journal once the manifest is durable, and the key this process used."""
        self.close()
        with contextlib.suppress(OSError):
            safefs.remove_file(self.root, self.rel)
        if self._run is not None:
            runkey.remove_key(self._run)


def _folder_text() -> str:
    try:
        return str(runkey.key_folder())
    except OSError:
        return "the state folder"
