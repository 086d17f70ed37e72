"""The run journal: what a run has finished, so that ``--resume`` can skip it.

One file per run (per shard) under ``OUT/.benchmark-regen/``: a header line
naming the run, then one JSON line per finished sample, appended by the single
process that collects results. A line is appended only after the sample's PNG
was renamed into place, and on resume every journaled sample is re-checked
against its file hash before it is trusted, so a torn last line, a lost rename
or a corrupted file only costs redoing that sample.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from toolchain._internal.atomic import TMP_PREFIX, fsync_dir
from toolchain.errors import OutputError
from toolchain.hashing import Digest, file_digest
from toolchain.manifest import ManifestEntry

__all__ = ["STATE_DIR", "Journal", "clean_temp_files"]

STATE_DIR = ".benchmark-regen"
FORMAT = "benchmark-regen.journal/v1"
_SYNC_EVERY = 64


def clean_temp_files(out: Path) -> int:
    """Delete leftovers of interrupted atomic writes; returns how many."""
    removed = 0
    for dirpath, _dirs, files in os.walk(out):
        for name in files:
            if name.startswith(TMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    (Path(dirpath) / name).unlink()
                    removed += 1
    return removed


class Journal:
    """Append-only record of finished samples for one run."""

    def __init__(self, out: Path, name: str, header: Mapping[str, Any]):
        self.path = out / STATE_DIR / f"journal-{name}.jsonl"
        self.header = {"format": FORMAT, **header}
        self._fd: int | None = None
        self._unsynced = 0

    def exists(self) -> bool:
        return self.path.exists()

    def recorded_header(self) -> dict[str, Any] | None:
        try:
            with self.path.open("rb") as f:
                first = f.readline()
            doc = json.loads(first)
            return doc if isinstance(doc, dict) else None
        except (OSError, ValueError):
            return None

    def _lines(self) -> Iterator[dict[str, Any]]:
        with self.path.open("rb") as f:
            f.readline()
            for raw in f:
                try:
                    doc = json.loads(raw)
                except ValueError:
                    continue  # a torn last line from a kill: that sample is redone
                if isinstance(doc, dict):
                    yield doc

    def recorded_fingerprint(self) -> str | None:
        """The worker fingerprint digest the interrupted run recorded, if any."""
        if not self.exists():
            return None
        for doc in self._lines():
            if "fingerprint" in doc:
                return str(doc["fingerprint"])
        return None

    def note_fingerprint(self, digest: str) -> None:
        """Record the workers' fingerprint digest (once per session)."""
        assert self._fd is not None
        os.write(self._fd, (json.dumps({"fingerprint": digest}) + "\n").encode())

    def finished(self, out: Path) -> dict[str, ManifestEntry]:
        """Journaled samples whose output file still has the journaled bytes."""
        done: dict[str, ManifestEntry] = {}
        for doc in self._lines():
            if "id" not in doc:
                continue
            try:
                entry = ManifestEntry(
                    id=str(doc["id"]),
                    path=str(doc["path"]),
                    pixels=Digest.parse(str(doc["pixels"])),
                    file=Digest.parse(str(doc["file"])),
                    source_pixels=Digest.parse(str(doc["source_pixels"])),
                )
                data = (out / entry.path).read_bytes()
            except (KeyError, ValueError, OSError):
                continue
            if file_digest(data) == entry.file:
                done[entry.id] = entry
        return done

    def open(self) -> None:
        """Start appending; writes the header when the journal is new."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if new:
                os.write(self._fd, (json.dumps(self.header, sort_keys=True) + "\n").encode())
                os.fsync(self._fd)
                fsync_dir(self.path.parent)
        except OSError as e:
            raise OutputError(f"cannot write the run journal: {e.strerror or e}") from None

    def append(self, entry: ManifestEntry) -> None:
        assert self._fd is not None
        line = json.dumps(entry.to_json(), sort_keys=True) + "\n"
        try:
            os.write(self._fd, line.encode())
            self._unsynced += 1
            if self._unsynced >= _SYNC_EVERY:
                os.fsync(self._fd)
                self._unsynced = 0
        except OSError as e:
            raise OutputError(
                f"cannot write the run journal: {e.strerror or e}",
                sample=entry.id,
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
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()
