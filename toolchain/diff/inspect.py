"""``diff inspect``: what a diff holds, without the original; every payload's digest is
checked once, so a clean report means every byte is as the publisher wrote it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from toolchain.diff.format import HEADER_SIZE, INDEX_RECORD_SIZE, Header, PayloadKind
from toolchain.diff.reader import open_diff
from toolchain.errors import Error
from toolchain.model.manifest import Manifest

__all__ = ["DiffInfo", "inspect_diff"]


@dataclass(frozen=True, kw_only=True)
class DiffInfo:
    path: Path
    header: Header
    manifest: Manifest
    kinds: dict[str, int]
    payload_bytes: dict[str, int]
    largest_payload: int
    recipe_entries: str = ""
    """With recipe entries: the recipe they name, and whether this release ships it."""

    def to_json(self) -> dict[str, object]:
        h, m = self.header, self.manifest
        original = m.provenance.original
        return {
            "benchmark_id": h.benchmark_id.hex(),
            "bytes": {
                "file": h.file_length,
                "header": HEADER_SIZE,
                "index": INDEX_RECORD_SIZE * h.entry_count,
                "largest_payload": self.largest_payload,
                "manifest": h.manifest_length,
                "payloads": dict(sorted(self.payload_bytes.items())),
            },
            "integrity": "ok",
            "key_on": str(h.key_on),
            "kinds": dict(sorted(self.kinds.items())),
            "recipe_entries": self.recipe_entries or None,
            "manifest": {
                "fingerprint": {
                    k: m.fingerprint[k] for k in sorted(m.fingerprint) if k.startswith("pillow")
                },
                "original": None if original is None else original.to_json(),
                "original_name": m.provenance.original_name,
                "recipe": m.recipe.to_json(),
                "root": str(m.root),
                "samples": len(m.entries),
                "samples_in_original": m.provenance.samples_in_original,
            },
            "samples": h.entry_count,
            "version": h.version,
        }

    def lines(self) -> list[str]:
        """The report for people, one line each."""
        h, m = self.header, self.manifest
        original = m.provenance.original
        return [
            f"container  v{h.version}, keyed on {h.key_on}, every payload digest checked",
            f"benchmark  {m.recipe}, {len(m.entries)} samples, root {m.root}",
            "original   "
            + (m.provenance.original_name or "(unnamed)")
            + (f", from {original.describe()}" if original is not None else ""),
            f"payloads   {self.kinds}, sealed bytes {self.payload_bytes}",
            *([f"recipes    {self.recipe_entries}"] if self.recipe_entries else []),
            f"size       {h.file_length} bytes (manifest {h.manifest_length}, "
            f"index {h.payload_offset - h.index_offset})",
        ]


def _recipe_entries(m: Manifest) -> str:
    from toolchain.recipes.shipped import shipped_recipe_of

    try:
        shipped = shipped_recipe_of(m)
    except Error as e:
        return f"they name {m.recipe}, which cannot be run here: {e.message}"
    file = "" if shipped.same_source else " (another file of that version than the publisher's)"
    return f"they name {m.recipe}, shipped in this release{file}"


def inspect_diff(diff: str | os.PathLike[str]) -> DiffInfo:
    """Describe ``diff``; raises :class:`~toolchain.errors.DiffFormatError` if any byte is off."""
    with open_diff(diff) as reader:
        kinds = {k.name.lower(): 0 for k in PayloadKind}
        sizes = dict.fromkeys(kinds, 0)
        largest = 0
        for i, sealed in reader.iter_sealed():
            name = reader.records[i].kind.name.lower()
            kinds[name] += 1
            sizes[name] += len(sealed)
            largest = max(largest, len(sealed))
        return DiffInfo(
            recipe_entries=_recipe_entries(reader.manifest) if kinds["recipe"] else "",
            path=reader.path,
            header=reader.header,
            manifest=reader.manifest,
            kinds=kinds,
            payload_bytes=sizes,
            largest_payload=largest,
        )
