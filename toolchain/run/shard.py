"""Shards: a deterministic 1/N of the samples by sample id, and merging shard manifests into
the unsharded run's manifest (``docs/scale-out.md``, "Shards")."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain.errors import ManifestError, ShardSpecError
from toolchain.model.drift import fingerprint_differences
from toolchain.model.layout import MANIFEST_NAME
from toolchain.model.manifest import EntryCollector, Manifest, iter_manifest

__all__ = ["Shard", "merge_manifests", "parse_shard", "write_merged"]

_DOMAIN = b"benchmark-regen/shard/v1\x00"
_SPEC = re.compile(r"(\d{1,6})/(\d{1,6})")
MAX_SHARDS = 100_000


@dataclass(frozen=True, kw_only=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``, written ``I/N``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (1 <= self.count <= MAX_SHARDS and 0 <= self.index < self.count):
            raise ShardSpecError(
                f"shard {self.index}/{self.count} is out of range",
                hint=f"use I/N with 0 <= I < N <= {MAX_SHARDS}, e.g. --shard 0/4",
            )

    def contains(self, sample_id: str) -> bool:
        digest = hashlib.sha256(_DOMAIN + sample_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def slug(self) -> str:
        """A file-name-safe form: ``I-of-N``."""
        return f"{self.index}-of-{self.count}"


def parse_shard(text: str) -> Shard:
    """Parse ``I/N`` (0-based index). Raises :class:`ShardSpecError` with a hint."""
    m = _SPEC.fullmatch(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ShardSpecError(
            f"--shard {text!r} is not of the form I/N",
            hint="I is the 0-based shard index and N the shard count, e.g. --shard 2/8",
        )
    return Shard(index=int(m.group(1)), count=int(m.group(2)))


def merge_manifests(shards: Sequence[Manifest]) -> Manifest:
    """Combine the N shard manifests of one run into the whole benchmark's manifest."""
    if not shards:
        raise ManifestError("no shard manifests to merge")
    specs = []
    for i, m in enumerate(shards):
        if m.shard is None:
            raise ManifestError(
                f"manifest #{i + 1} is a whole benchmark, not a shard",
                hint="merge only the manifest.shard-I-of-N.json files of one run",
            )
        specs.append(parse_shard(m.shard))
    first = shards[0]
    count = specs[0].count
    for m, spec in zip(shards, specs, strict=True):
        if spec.count != count:
            raise ManifestError(f"shard {spec} comes from a {spec.count}-way split, not {count}")
        if m.recipe != first.recipe:
            raise ManifestError(
                f"shard {spec} was made by recipe {m.recipe}, shard {specs[0]} by {first.recipe}",
                hint="merge only shards of one run: same recipe, version, seed and parameters",
            )
        diff = fingerprint_differences(first.fingerprint, m.fingerprint)
        if diff:
            raise ManifestError(
                f"shard {spec} was made in a different environment ({', '.join(diff)} differ)",
                hint="regenerate that shard in the same pinned environment (the container)",
            )
        if m.provenance != first.provenance:
            raise ManifestError(f"shard {spec} has different provenance fields")
        if (m.version, dict(m.encoder), m.columns) != (
            first.version,
            dict(first.encoder),
            first.columns,
        ):
            raise ManifestError(
                f"shard {spec} has another format version, PNG encoder or column schema",
                hint="regenerate that shard with the same benchmark-regen version",
            )
        if not m.root_is_consistent():
            raise ManifestError(f"shard {spec}: its root hash does not match its entries")
    seen: dict[int, int] = {}
    for i, spec in enumerate(specs):
        if spec.index in seen:
            raise ManifestError(f"shard {spec} is given twice (overlap)")
        seen[spec.index] = i
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        names = ", ".join(f"{i}/{count}" for i in missing[:10])
        raise ManifestError(f"missing shard(s) {names}", hint="run them, then merge again")
    # Each id belongs to exactly one shard (``contains`` partitions the ids) and each shard
    # is given once, so no sample can come twice.
    entries = EntryCollector()
    for m, spec in zip(shards, specs, strict=True):
        for e in m.entries:
            if not spec.contains(e.id):
                raise ManifestError(f"sample {e.id!r} does not belong in shard {spec}")
            entries.add(e)
    expected = first.provenance.samples_used
    if len(entries) != expected:
        raise ManifestError(
            f"the shards hold {len(entries)} samples, but the run selected {expected}",
            hint="a shard is incomplete: regenerate it with --resume",
        )
    return Manifest.build(
        recipe=first.recipe,
        entries=entries,
        fingerprint=first.fingerprint,
        encoder=first.encoder,
        columns=first.columns,
        provenance=first.provenance,
        version=first.version,
    )


def write_merged(manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write a merged manifest; beside a ``manifest.json``, the whole benchmark's companions."""
    from toolchain.run.outdir import companions, write_benchmark_files

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_benchmark_files(
        target.parent,
        iter_manifest(manifest),
        name=target.name,
        companions=(lambda sha: companions(manifest, sha))
        if target.name == MANIFEST_NAME
        else None,
    )
