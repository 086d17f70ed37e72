"""The manifest: per-sample hashes, a root hash, the recipe, the fingerprint, provenance.

Written canonically (``docs/manifest.md``): JSON with sorted keys, two-space
indentation, ASCII only, one trailing newline, and no floats anywhere, so the
same run gives the same bytes. Parsing is strict: every field is type-checked,
sample ids must be safe relative paths, output paths must derive from the ids
(:func:`toolchain.layout.output_path_for`), entries sorted and unique.

Format v2 (this version writes it) records the PNG encoder's identity, the
columns carried from the original (labels, ...) per sample, and a salted
commitment to each original's decoded pixels; its root hash covers ids, output
paths, pixel digests and columns. Format v1 manifests are read (and verified on
their pixels); see ``docs/manifest.md`` for both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolchain._internal import safefs
from toolchain._internal.atomic import atomic_write
from toolchain.errors import ManifestError, SourceError
from toolchain.hashing import (
    Digest,
    pixel_digest,
    root_digest,
    root_digest_v1,
    source_digest,
    source_salt,
)
from toolchain.layout import MANIFEST_NAME, check_layout
from toolchain.source._common import COLUMN_TYPES, ColumnSpec, ColumnValue, check_sample_id

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "FORMAT",
    "FORMAT_V1",
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

FORMAT = "benchmark-regen.manifest/v2"
FORMAT_V1 = "benchmark-regen.manifest/v1"
MAX_MANIFEST_BYTES = 1024 * 1024 * 1024
"""Manifests over 1 GiB are refused before they are read (about 4 M samples)."""

Scalar = str | int | bool
Encoder = Mapping[str, str | int]
"""The PNG encoder's identity (name, version, deflate, level, filter), str and int values."""


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
    """Sample id: the original file's relative POSIX path (or ``<split>/<row>``)."""
    path: str
    """The output PNG's path, relative to the benchmark folder: ``output_path_for(id)``."""
    pixels: Digest
    """The canonical pixel hash of the output: the reproducibility contract."""
    file: Digest
    """SHA-256 of the output PNG bytes (depends on the encoder)."""
    source: Digest
    """Salted commitment to the canonically decoded original (finds decoder drift).

    Format v2: :func:`toolchain.hashing.source_digest` with the benchmark's salt;
    format v1: the original's plain pixel digest (``source_pixels``)."""
    columns: Mapping[str, ColumnValue] = field(default_factory=dict)
    """The columns carried from the original (a class label as its index)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": dict(sorted(self.columns.items())),
            "file": str(self.file),
            "id": self.id,
            "path": self.path,
            "pixels": str(self.pixels),
            "source": str(self.source),
        }

    def to_json_v1(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "id": self.id,
            "path": self.path,
            "pixels": str(self.pixels),
            "source_pixels": str(self.source),
        }


def _columns_json(columns: Iterable[ColumnSpec]) -> dict[str, Any]:
    return {c.name: c.to_json() for c in sorted(columns, key=lambda c: c.name)}


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A whole manifest. ``entries`` are sorted by the UTF-8 bytes of their ids."""

    recipe: RecipeIdentity
    entries: tuple[ManifestEntry, ...]
    fingerprint: Mapping[str, str]
    encoder: Encoder = field(default_factory=dict)
    columns: tuple[ColumnSpec, ...] = ()
    """The schema of the carried columns, sorted by name."""
    provenance: Provenance = field(default_factory=Provenance)
    root: Digest
    shard: str | None = None
    """``"I/N"`` for a shard manifest, ``None`` for a whole benchmark."""
    version: int = 2
    """The format version this manifest was read as (1 or 2); new manifests are 2."""

    @property
    def encoder_identity(self) -> dict[str, str | int]:
        """The encoder that wrote the files: recorded (v2), or as v1 implied it (Pillow's PNG
        writer at level 6 over the zlib Pillow linked)."""
        if self.version == 1:
            fp = self.fingerprint
            return {
                "level": 6,
                "name": "pillow-png",
                "pillow": fp.get("pillow", "?"),
                "zlib": fp.get("pillow.zlib", "?"),
            }
        return dict(self.encoder)

    @property
    def salt(self) -> bytes:
        """The salt of this benchmark's source commitments (v2): from the recipe identity."""
        return source_salt(self.recipe.to_json())

    def source_of(self, original: npt.NDArray[np.uint8]) -> Digest:
        """The commitment an original's decoded pixels would have in this manifest."""
        if self.version == 1:
            return pixel_digest(original)
        return source_digest(original, self.salt)

    @staticmethod
    def compute_root(
        entries: Iterable[ManifestEntry], columns: Iterable[ColumnSpec] = (), version: int = 2
    ) -> Digest:
        if version == 1:
            return root_digest_v1((e.id, e.pixels) for e in entries)
        return root_digest(
            ((e.id, e.path, e.pixels, e.columns) for e in entries), _columns_json(columns)
        )

    @classmethod
    def build(
        cls,
        *,
        recipe: RecipeIdentity,
        entries: Iterable[ManifestEntry],
        fingerprint: Mapping[str, str],
        provenance: Provenance,
        encoder: Encoder | None = None,
        columns: Iterable[ColumnSpec] = (),
        shard: str | None = None,
        version: int = 2,
    ) -> Manifest:
        ordered = tuple(sorted(entries, key=lambda e: e.id.encode("utf-8")))
        schema = tuple(sorted(columns, key=lambda c: c.name))
        return cls(
            recipe=recipe,
            entries=ordered,
            fingerprint=dict(sorted(fingerprint.items())),
            encoder=dict(sorted((encoder or {}).items())),
            columns=schema,
            provenance=provenance,
            root=cls.compute_root(ordered, schema, version),
            shard=shard,
            version=version,
        )

    def root_is_consistent(self) -> bool:
        """True when the stored root hash matches the entries (tamper check)."""
        return self.compute_root(self.entries, self.columns, self.version) == self.root

    def by_id(self) -> dict[str, ManifestEntry]:
        return {e.id: e for e in self.entries}

    def to_json(self) -> dict[str, Any]:
        if self.version == 1:
            doc: dict[str, Any] = {
                "entries": [e.to_json_v1() for e in self.entries],
                "format": FORMAT_V1,
            }
        else:
            doc = {
                "columns": _columns_json(self.columns),
                "encoder": dict(sorted(self.encoder.items())),
                "entries": [e.to_json() for e in self.entries],
                "format": FORMAT,
            }
        doc.update(
            {
                "fingerprint": dict(sorted(self.fingerprint.items())),
                "provenance": self.provenance.to_json(),
                "recipe": self.recipe.to_json(),
                "root": str(self.root),
                "sample_count": len(self.entries),
            }
        )
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


def _column_value(value: Any, where: str) -> ColumnValue:
    if isinstance(value, bool | int | str):
        return value
    raise ManifestError(f"{where}: a column value must be a string, integer or boolean")


def parse_entry(raw: Any, where: str = "entry", *, version: int = 2) -> ManifestEntry:
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
    if version == 1:
        source, columns = _digest(raw, "source_pixels", where), {}
        known = {"file", "id", "path", "pixels", "source_pixels"}
    else:
        source = _digest(raw, "source", where)
        raw_columns = _get(raw, "columns", dict, where)
        columns = {k: _column_value(v, f"{where}.columns[{k!r}]") for k, v in raw_columns.items()}
        known = {"columns", "file", "id", "path", "pixels", "source"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ManifestError(f"{where}: unknown field {unknown[0]!r}")
    return ManifestEntry(
        id=sid,
        path=path,
        pixels=_digest(raw, "pixels", where),
        file=_digest(raw, "file", where),
        source=source,
        columns=columns,
    )


def _parse_columns(raw: Any) -> tuple[ColumnSpec, ...]:
    if not isinstance(raw, dict):
        raise ManifestError("manifest: field 'columns' must be an object")
    specs = []
    for name, spec in sorted(raw.items()):
        where = f"columns[{name!r}]"
        if not isinstance(spec, dict):
            raise ManifestError(f"{where}: must be an object")
        kind = _get(spec, "type", str, where)
        if kind not in COLUMN_TYPES:
            raise ManifestError(f"{where}: unknown type {kind!r}")
        names: tuple[str, ...] = ()
        if kind == "class_label":
            raw_names = _get(spec, "names", list, where)
            if not all(isinstance(n, str) for n in raw_names):
                raise ManifestError(f"{where}: names must be strings")
            names = tuple(raw_names)
        specs.append(ColumnSpec(name=name, type=kind, names=names))
    return tuple(specs)


def _parse_encoder(raw: Any) -> dict[str, str | int]:
    if not isinstance(raw, dict) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in raw.values()
    ):
        raise ManifestError("manifest: field 'encoder' must map names to strings or integers")
    return dict(raw)


def _check_columns(entries: Iterable[ManifestEntry], columns: tuple[ColumnSpec, ...]) -> None:
    schema = {c.name: c for c in columns}
    for e in entries:
        if set(e.columns) != set(schema):
            raise ManifestError(
                f"entry {e.id!r}: its columns {sorted(e.columns)} are not the schema's "
                f"{sorted(schema)}"
            )
        for name, value in e.columns.items():
            spec = schema[name]
            ok = {
                "class_label": isinstance(value, int)
                and not isinstance(value, bool)
                and 0 <= value < len(spec.names),
                "int": isinstance(value, int) and not isinstance(value, bool),
                "bool": isinstance(value, bool),
                "string": isinstance(value, str),
                "float": isinstance(value, str),
            }[spec.type]
            if not ok:
                raise ManifestError(
                    f"entry {e.id!r}: column {name!r} value {value!r} does not fit its "
                    f"type {spec.type}"
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
    if fmt not in (FORMAT, FORMAT_V1):
        raise ManifestError(
            f"unknown manifest format {fmt!r} (this version reads {FORMAT!r} and {FORMAT_V1!r})",
            hint="upgrade benchmark-regen, or check that this file is a manifest",
        )
    version = 2 if fmt == FORMAT else 1
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
    entries = tuple(
        parse_entry(e, f"entries[{i}]", version=version) for i, e in enumerate(raw_entries)
    )
    for i, entry in enumerate(entries):
        if i and entries[i - 1].id.encode("utf-8") >= entry.id.encode("utf-8"):
            raise ManifestError(
                f"entries[{i}]: id {entry.id!r} is duplicated or out of order",
                hint="a manifest lists each sample once, sorted by id",
            )
    check_layout(((e.id, e.path) for e in entries), error=ManifestError)
    columns: tuple[ColumnSpec, ...] = ()
    encoder: dict[str, str | int] = {}
    if version == 2:
        columns = _parse_columns(_get(doc, "columns", dict, "manifest"))
        encoder = _parse_encoder(_get(doc, "encoder", dict, "manifest"))
        _check_columns(entries, columns)
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
        encoder=encoder,
        columns=columns,
        provenance=provenance,
        root=_digest(doc, "root", "manifest"),
        shard=shard,
        version=version,
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
