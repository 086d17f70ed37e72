"""The manifest: per-sample hashes, a root hash, the recipe, the fingerprint, provenance.

Written canonically (``docs/manifest.md``): JSON with sorted keys, two-space
indentation, ASCII only, one trailing newline, and no floats anywhere, so the
same run gives the same bytes. Parsing is strict: every field is type-checked,
sample ids must be safe relative paths, entries sorted and unique.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from toolchain._internal import safefs
from toolchain._internal.atomic import atomic_write
from toolchain.errors import ManifestError, SourceError
from toolchain.hashing import Digest, root_digest
from toolchain.layout import MANIFEST_NAME, check_layout
from toolchain.source import check_sample_id

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "MAX_MANIFEST_BYTES",
    "Manifest",
    "ManifestEntry",
    "Provenance",
    "RecipeIdentity",
    "dump_manifest",
    "load_manifest",
    "parse_entry",
    "parse_manifest",
    "write_manifest",
]

FORMAT = "benchmark-regen.manifest/v1"
MAX_MANIFEST_BYTES = 1024 * 1024 * 1024
"""Manifests over 1 GiB are refused before they are read (about 4 M samples)."""

Scalar = str | int | bool


@dataclass(frozen=True, kw_only=True)
class RecipeIdentity:
    """What made the benchmark: recipe name, version, seed, params, source hash."""

    name: str
    version: str
    seed: int
    params: Mapping[str, Scalar] = field(default_factory=dict)
    select: str = "all"
    source: Digest

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": dict(sorted(self.params.items())),
            "seed": self.seed,
            "select": self.select,
            "source": str(self.source),
            "version": self.version,
        }

    def __str__(self) -> str:
        return f"{self.name}@{self.version} (seed {self.seed})"


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """Fields the publisher fills in, plus how much of the original is used."""

    original_name: str = ""
    original_terms: str = ""
    recipe_license: str = ""
    samples_used: int = 0
    samples_in_original: int = 0

    @property
    def fraction(self) -> str:
        """The fraction of the original used, as an exact-rounded decimal string."""
        if not self.samples_in_original:
            return "0"
        q = Fraction(self.samples_used, self.samples_in_original)
        scaled = round(q * 10**6)
        return f"{scaled // 10**6}.{scaled % 10**6:06d}"

    def to_json(self) -> dict[str, Any]:
        return {
            "fraction": self.fraction,
            "original_name": self.original_name,
            "original_terms": self.original_terms,
            "recipe_license": self.recipe_license,
            "samples_in_original": self.samples_in_original,
            "samples_used": self.samples_used,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ManifestEntry:
    """One output sample."""

    id: str
    """Sample id: the original file's relative POSIX path."""
    path: str
    """The output PNG's path, relative to the benchmark folder."""
    pixels: Digest
    """The canonical pixel hash of the output: the reproducibility contract."""
    file: Digest
    """SHA-256 of the output PNG bytes (depends on the encoder)."""
    source_pixels: Digest
    """Commitment to the canonically decoded original pixels (finds decoder drift)."""

    def to_json(self) -> dict[str, str]:
        return {
            "file": str(self.file),
            "id": self.id,
            "path": self.path,
            "pixels": str(self.pixels),
            "source_pixels": str(self.source_pixels),
        }


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A whole manifest. ``entries`` are sorted by the UTF-8 bytes of their ids."""

    recipe: RecipeIdentity
    entries: tuple[ManifestEntry, ...]
    fingerprint: Mapping[str, str]
    provenance: Provenance = field(default_factory=Provenance)
    root: Digest
    shard: str | None = None
    """``"I/N"`` for a shard manifest, ``None`` for a whole benchmark."""

    @staticmethod
    def compute_root(entries: Iterable[ManifestEntry]) -> Digest:
        return root_digest((e.id, e.pixels) for e in entries)

    @classmethod
    def build(
        cls,
        *,
        recipe: RecipeIdentity,
        entries: Iterable[ManifestEntry],
        fingerprint: Mapping[str, str],
        provenance: Provenance,
        shard: str | None = None,
    ) -> Manifest:
        ordered = tuple(sorted(entries, key=lambda e: e.id.encode("utf-8")))
        return cls(
            recipe=recipe,
            entries=ordered,
            fingerprint=dict(sorted(fingerprint.items())),
            provenance=provenance,
            root=cls.compute_root(ordered),
            shard=shard,
        )

    def root_is_consistent(self) -> bool:
        """True when the stored root hash matches the entries (tamper check)."""
        return self.compute_root(self.entries) == self.root

    def by_id(self) -> dict[str, ManifestEntry]:
        return {e.id: e for e in self.entries}

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "entries": [e.to_json() for e in self.entries],
            "fingerprint": dict(sorted(self.fingerprint.items())),
            "format": FORMAT,
            "provenance": self.provenance.to_json(),
            "recipe": self.recipe.to_json(),
            "root": str(self.root),
            "sample_count": len(self.entries),
        }
        if self.shard is not None:
            doc["shard"] = self.shard
        return doc


def _canonical_json(doc: Any) -> bytes:
    _reject_floats(doc)
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def _reject_floats(doc: Any) -> None:
    if isinstance(doc, float):
        raise TypeError("floats are not allowed in a manifest")
    if isinstance(doc, dict):
        for v in doc.values():
            _reject_floats(v)
    elif isinstance(doc, list):
        for v in doc:
            _reject_floats(v)


def dump_manifest(manifest: Manifest) -> bytes:
    """The canonical bytes of a manifest."""
    return _canonical_json(manifest.to_json())


def write_manifest(manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write the manifest atomically and durably (it is the run's commit point)."""
    atomic_write(Path(path), dump_manifest(manifest), durable=True)


# -- parsing ---------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], key: str, typ: type, where: str) -> Any:
    if key not in obj:
        raise ManifestError(f"{where}: missing field {key!r}")
    value = obj[key]
    if typ is int and isinstance(value, bool):
        raise ManifestError(f"{where}: field {key!r} must be an integer")
    if not isinstance(value, typ):
        raise ManifestError(f"{where}: field {key!r} must be {typ.__name__}")
    return value


def _digest(obj: Mapping[str, Any], key: str, where: str) -> Digest:
    text = _get(obj, key, str, where)
    try:
        return Digest.parse(text)
    except ValueError as e:
        raise ManifestError(f"{where}: field {key!r}: {e}") from None


def parse_entry(raw: Any, where: str = "entry") -> ManifestEntry:
    """One manifest entry from its JSON object; raises :class:`ManifestError`."""
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: must be an object")
    sid = _get(raw, "id", str, where)
    path = _get(raw, "path", str, where)
    try:
        check_sample_id(sid)
        check_sample_id(path)
    except SourceError as e:
        raise ManifestError(f"{where}: {e.message}") from None
    return ManifestEntry(
        id=sid,
        path=path,
        pixels=_digest(raw, "pixels", where),
        file=_digest(raw, "file", where),
        source_pixels=_digest(raw, "source_pixels", where),
    )


def parse_manifest(data: bytes) -> Manifest:
    """Parse and validate manifest bytes. Raises :class:`ManifestError` on any defect."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is {len(data)} bytes, over the {MAX_MANIFEST_BYTES} limit")
    try:
        doc = json.loads(data.decode("utf-8"), parse_float=_no_float, parse_constant=_no_float)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ManifestError(f"not valid JSON: {e}") from None
    except ValueError as e:
        raise ManifestError(str(e)) from None
    if not isinstance(doc, dict):
        raise ManifestError("top level must be a JSON object")
    fmt = _get(doc, "format", str, "manifest")
    if fmt != FORMAT:
        raise ManifestError(
            f"unknown manifest format {fmt!r} (this version reads {FORMAT!r})",
            hint="upgrade benchmark-regen, or check that this file is a manifest",
        )
    r = _get(doc, "recipe", dict, "manifest")
    params = _get(r, "params", dict, "recipe")
    for k, v in params.items():
        if not isinstance(v, str | int | bool):
            raise ManifestError(f"recipe.params[{k!r}] must be a string, integer or boolean")
    recipe = RecipeIdentity(
        name=_get(r, "name", str, "recipe"),
        version=_get(r, "version", str, "recipe"),
        seed=_get(r, "seed", int, "recipe"),
        params=params,
        select=_get(r, "select", str, "recipe"),
        source=_digest(r, "source", "recipe"),
    )
    p = _get(doc, "provenance", dict, "manifest")
    provenance = Provenance(
        original_name=_get(p, "original_name", str, "provenance"),
        original_terms=_get(p, "original_terms", str, "provenance"),
        recipe_license=_get(p, "recipe_license", str, "provenance"),
        samples_used=_get(p, "samples_used", int, "provenance"),
        samples_in_original=_get(p, "samples_in_original", int, "provenance"),
    )
    fp = _get(doc, "fingerprint", dict, "manifest")
    if not all(isinstance(v, str) for v in fp.values()):
        raise ManifestError("fingerprint values must be strings")
    raw_entries = _get(doc, "entries", list, "manifest")
    entries = tuple(parse_entry(e, f"entries[{i}]") for i, e in enumerate(raw_entries))
    for i, entry in enumerate(entries):
        if i and entries[i - 1].id.encode("utf-8") >= entry.id.encode("utf-8"):
            raise ManifestError(
                f"entries[{i}]: id {entry.id!r} is duplicated or out of order",
                hint="a manifest lists each sample once, sorted by id",
            )
    check_layout(((e.id, e.path) for e in entries), error=ManifestError)
    count = _get(doc, "sample_count", int, "manifest")
    if count != len(entries):
        raise ManifestError(f"sample_count is {count} but there are {len(entries)} entries")
    shard = doc.get("shard")
    if shard is not None and not isinstance(shard, str):
        raise ManifestError("field 'shard' must be a string")
    return Manifest(
        recipe=recipe,
        entries=entries,
        fingerprint=fp,
        provenance=provenance,
        root=_digest(doc, "root", "manifest"),
        shard=shard,
    )


def _no_float(text: str) -> Any:
    raise ValueError(f"floats are not allowed in a manifest (found {text})")


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and parse a manifest file (a regular file, at most :data:`MAX_MANIFEST_BYTES`)."""
    p = Path(path)
    try:
        data = safefs.read_path(p, limit=MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ManifestError(
            f"no manifest at {p}",
            hint="a benchmark folder has a manifest.json only once a run has completed",
        ) from None
    except OSError as e:
        raise ManifestError(f"cannot read {p}: {e.strerror or e}") from None
    return parse_manifest(data)
