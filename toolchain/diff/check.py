"""``diff check``: per entry, whether the original is found by id, found by content,
present but different, or missing (``docs/diff-format.md``). Writes nothing."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from toolchain._internal.progress import Progress
from toolchain.diff.format import DiffReader
from toolchain.diff.locate import Found, scan_by_content, unseal
from toolchain.diff.reader import check_original, open_diff
from toolchain.errors import SourceError
from toolchain.model.manifest import Manifest
from toolchain.source import Source, SourceOptions

__all__ = ["CheckEntry", "CheckReport", "check_diff"]


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckEntry:
    id: str
    found: Found
    source: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"found": str(self.found), "id": self.id, "source": self.source}


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    diff: Path
    manifest: Manifest
    entries: tuple[CheckEntry, ...]

    @property
    def ok(self) -> bool:
        return all(e.found in (Found.BY_ID, Found.BY_CONTENT) for e in self.entries)

    def by_kind(self, found: Found) -> list[CheckEntry]:
        return [e for e in self.entries if e.found is found]

    @property
    def coverage(self) -> str:
        """The fraction of samples that can be rebuilt, as a 6-decimal string."""
        if not self.entries:
            return "1.000000"
        q = Fraction(
            len(self.by_kind(Found.BY_ID)) + len(self.by_kind(Found.BY_CONTENT)), len(self.entries)
        )
        scaled = round(q * 10**6)
        return f"{scaled // 10**6}.{scaled % 10**6:06d}"

    def to_json(self) -> dict[str, object]:
        return {
            "counts": {str(k): len(self.by_kind(k)) for k in Found if k is not Found.RESUMED},
            "coverage": self.coverage,
            "entries": [e.to_json() for e in self.entries],
            "ok": self.ok,
            "root": str(self.manifest.root),
            "samples": len(self.entries),
        }


def _opens(reader: DiffReader, source: Source, i: int, sid: str) -> bool:
    try:
        data = source.read(sid)
    except SourceError:
        return False
    h, entry = reader.header, reader.manifest.entries[i]
    got = unseal(
        data,
        key_on=h.key_on,
        salt=h.benchmark_id,
        sample_id=entry.id,
        kind=reader.records[i].kind,
        sealed=reader.read_sealed(i),
    )
    return got.plaintext is not None


def check_diff(
    original: str | os.PathLike[str],
    diff: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    source_options: SourceOptions | None = None,
) -> CheckReport:
    """Report, per sample, whether ``original`` holds what ``diff`` needs. Writes nothing."""
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(open_diff(diff))
        recorded = reader.manifest.provenance.original
        opts = (source_options or SourceOptions()).preferring(recorded)
        source = stack.enter_context(opts.open(original))
        entries = reader.manifest.entries
        check_original(recorded, source.original_ref)
        ids = source.listing().ids
        present = set(ids)
        result: dict[int, CheckEntry] = {}
        for i, e in enumerate(entries):
            if e.id in present and _opens(reader, source, i, e.id):
                result[i] = CheckEntry(id=e.id, found=Found.BY_ID, source=e.id)
                if progress:
                    progress(len(result), len(entries))
        unresolved = [i for i in range(len(entries)) if i not in result]
        # Every file is a candidate, those found by id too: one image can be the original
        # of two entries (a duplicate in the benchmark), as apply finds it.
        matches = scan_by_content(
            source,
            ids,
            reader.header.key_on,
            reader.header.benchmark_id,
            {reader.records[i].fingerprint for i in unresolved},
        )
        for i in unresolved:
            e = entries[i]
            where = matches.get(reader.records[i].fingerprint)
            if where is not None and _opens(reader, source, i, where):
                result[i] = CheckEntry(id=e.id, found=Found.BY_CONTENT, source=where)
            elif e.id in present:
                result[i] = CheckEntry(id=e.id, found=Found.DIFFERENT, source=e.id)
            else:
                result[i] = CheckEntry(id=e.id, found=Found.MISSING)
        if progress:
            progress(len(entries), len(entries))
        return CheckReport(
            diff=reader.path,
            manifest=reader.manifest,
            entries=tuple(result[i] for i in range(len(entries))),
        )
