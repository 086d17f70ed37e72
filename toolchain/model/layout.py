"""The benchmark folder's layout: its file names, and the one rule from sample ids to paths.
Pure functions, no I/O; the folder's files are listed in docs/manifest.md."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from toolchain._internal.packed import MadeOnAccess, StringIndex, packed_ids
from toolchain.errors import InputError, ManifestError, SourceError
from toolchain.model.ids import fold_key

__all__ = [
    "CARD_NAME",
    "COVERAGE_NAME",
    "CROISSANT_NAME",
    "FORMATS",
    "MANIFEST_NAME",
    "MAX_OUTPUT_BYTES",
    "MAX_SIDE_FILE_BYTES",
    "METADATA_NAME",
    "RESERVED_NAMES",
    "SIGNATURE_NAME",
    "STATE_DIR",
    "PlannedOutputs",
    "check_layout",
    "is_parquet_shard",
    "is_shard_manifest",
    "output_path_for",
    "parquet_shard_name",
    "plan_outputs",
    "shard_manifest_name",
]

MANIFEST_NAME = "manifest.json"
METADATA_NAME = "metadata.jsonl"
COVERAGE_NAME = "coverage.json"
SIGNATURE_NAME = "manifest.sig"
CARD_NAME = "README.md"
CROISSANT_NAME = "croissant.json"
STATE_DIR = ".benchmark-regen"
RESERVED_NAMES = frozenset(
    {MANIFEST_NAME, METADATA_NAME, COVERAGE_NAME, SIGNATURE_NAME, CARD_NAME, CROISSANT_NAME}
)
"""Top-level files a benchmark folder may hold besides its samples."""
MAX_OUTPUT_BYTES = 1 << 30
"""The largest output file read back (1 GiB: a 128 Mi-pixel RGBA PNG is at most ~512 MiB)."""
MAX_SIDE_FILE_BYTES = 1 << 30
"""The largest manifest or companion file of an ``--out`` folder read to see whose it is."""
FORMATS = ("folder", "parquet")
"""Output formats: one PNG per sample (with ``metadata.jsonl``), or Hugging Face parquet
shards ``data/<split>-*.parquet`` (the same PNG bytes)."""

_SHARD_MANIFEST = re.compile(r"manifest\.shard-\d{1,6}-of-\d{1,6}\.json")


_PARQUET_SHARD = re.compile(r"(?P<split>[^/]+)-[0-9]{5}-of-[0-9]{5}\.parquet")


def parquet_shard_name(split: str, i: int, n: int) -> str:
    """``<split>-0000I-of-0000N.parquet``: shard ``i`` of ``n`` of a split, as the Hub names
    them (the parquet format's files, under ``data/``)."""
    return f"{split}-{i:05d}-of-{n:05d}.parquet"


def is_parquet_shard(name: str, split: str | None = None) -> bool:
    """Whether ``name`` (a file name, no folder) is a :func:`parquet_shard_name` (of
    ``split``, when given)."""
    m = _PARQUET_SHARD.fullmatch(name)
    return m is not None and (split is None or m["split"] == split)


def shard_manifest_name(slug: str) -> str:
    """``manifest.shard-I-of-N.json`` for a shard's slug ``I-of-N``."""
    return f"manifest.shard-{slug}.json"


def is_shard_manifest(rel: str) -> bool:
    return bool(_SHARD_MANIFEST.fullmatch(rel))


# -- output paths ------------------------------------------------------------------------


def output_path_for(sample_id: str) -> str:
    """The output file's relative path: the sample id with its suffix replaced by ``.png``.

    The one function that maps ids to output paths: writers use it, and readers
    refuse a manifest or diff whose paths disagree with it.
    """
    stem, dot, suffix = sample_id.rpartition(".")
    return f"{stem}.png" if dot and "/" not in suffix else f"{sample_id}.png"


def _reserved(path: str) -> str | None:
    parts = path.split("/")
    if path in RESERVED_NAMES or is_shard_manifest(path):
        return "it is the name of a file of the benchmark folder itself"
    if any(p.startswith(".") for p in parts):
        return "a path component starts with '.' (hidden files and our state folder)"
    return None


def check_layout(
    pairs: Sequence[tuple[str, str]], *, error: type[InputError] = ManifestError
) -> None:
    """Refuse ``(sample id, output path)`` pairs we would not write ourselves.

    A path must be :func:`output_path_for` of its id, must not name a file of the
    benchmark folder itself (``manifest.json``, ``metadata.jsonl``, ...), a hidden
    file or the state folder, and no two paths may collide: equal once case is
    folded, or one used as a file and as a folder.

    Memory holds each folded path's hash and position (:class:`StringIndex`), not the
    paths: a pair is read again by position to confirm a match, and ``pairs`` once more
    for the folders' check when there are folders.
    """
    seen = StringIndex(lambda i: fold_key(pairs[i][1]), len(pairs))
    folders: dict[str, str] = {}  # folded folder -> the first sample id under it
    for n, (sid, path) in enumerate(pairs):
        expected = output_path_for(sid)
        if path != expected:
            raise error(
                f"sample {sid!r} has output path {path!r}; it must be {expected!r}",
                hint="output paths derive from sample ids; this file was not written by "
                "benchmark-regen, or was edited",
            )
        why = _reserved(path)
        if why:
            raise error(f"sample {sid!r}: output path {path!r} is refused: {why}")
        key = fold_key(path)
        first = seen.find(key)
        if first is not None:
            raise error(
                f"samples {pairs[first][0]!r} and {sid!r} would both be written to {path!r}",
                hint="rename one of them in the original",
            )
        seen.add(key, n)
        parts = key.split("/")
        for i in range(1, len(parts)):
            folders.setdefault("/".join(parts[:i]), sid)
    if not folders:
        return
    for sid, path in pairs:  # each path once: its first id (the collisions are refused above)
        key = fold_key(path)
        if key in folders:
            raise error(
                f"sample {sid!r} is written to {key!r}, which sample {folders[key]!r} needs "
                "as a folder",
                hint="rename one of them in the original",
            )


class PlannedOutputs(MadeOnAccess[tuple[str, str]]):
    """``(sample id, output path)`` pairs over packed ids, each path made on access by
    :func:`output_path_for` (not a second copy of every id and path)."""

    __slots__ = ("ids",)

    def __init__(self, ids: Iterable[str]):
        self.ids = packed_ids(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def _item(self, i: int) -> tuple[str, str]:
        sid = self.ids[i]
        return sid, output_path_for(sid)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for sid in self.ids:
            yield sid, output_path_for(sid)


def plan_outputs(ids: Sequence[str]) -> PlannedOutputs:
    """``(sample id, output path)`` for each id, refusing collisions (a bad original)."""
    pairs = PlannedOutputs(ids)
    check_layout(pairs, error=SourceError)
    return pairs
