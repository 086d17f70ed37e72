"""The manifest: per-sample hashes, a root hash, the recipe, the fingerprint, provenance.
Written canonically and parsed strictly; format v2 is written, v1 read (docs/manifest.md)."""

from __future__ import annotations

import bisect
import contextlib
import functools
import io
import itertools
import json
import os
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from toolchain._internal import safefs
from toolchain._internal.jsonstream import JsonStream, TooLong
from toolchain._internal.packed import MadeOnAccess, Records
from toolchain.errors import ManifestError, SourceError, os_error_text
from toolchain.model.columns import COLUMN_TYPES, ColumnSpec, ColumnValue, column_name_problem
from toolchain.model.hashing import (
    Digest,
    RootHasher,
    canonical_json,
    pixel_digest,
    pretty_json,
    root_digest,
    root_digest_v1,
    sha256_file,
    source_digest,
    source_salt,
)
from toolchain.model.ids import check_sample_id
from toolchain.model.layout import MANIFEST_NAME, check_layout, output_path_for
from toolchain.model.limits import (
    MAX_CLASS_NAMES,
    MAX_ENTRY_CHARS,
    MAX_KEYS,
    MAX_NAME_CHARS,
    MAX_SCHEMA_CHARS,
    MAX_TEXT_CHARS,
    cut,
    path_problem,
    shown,
    size_problem,
)
from toolchain.model.original import OriginalRef

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "FORMAT",
    "FORMAT_V1",
    "MANIFEST_NAME",
    "MAX_MANIFEST_BYTES",
    "EntryCollector",
    "EntryTable",
    "Manifest",
    "ManifestEntry",
    "Provenance",
    "RecipeIdentity",
    "dump_manifest",
    "entry_index",
    "holds_manifest",
    "is_canonical",
    "iter_manifest",
    "load_manifest",
    "manifest_sha256",
    "parse_entry",
    "parse_manifest",
    "read_manifest",
    "read_manifest_bytes",
    "write_manifest",
]

FORMAT = "benchmark-regen.manifest/v2"
FORMAT_V1 = "benchmark-regen.manifest/v1"
MAX_MANIFEST_BYTES = 1024 * 1024 * 1024
"""Manifests over 1 GiB are refused before they are read (about 4 M samples)."""
_DIGEST_CHARS = len("sha256:") + 64
_MAX_ORIGINAL_FIELD = 256
"""``provenance.original``'s fields are at most 193 characters when well formed."""
_LIMITS_HINT = 'the limits are in docs/manifest.md ("Limits")'

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
    original: OriginalRef | None = None
    """Where the original came from (Hub repo, commit, config, split), when known."""

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
        } | ({"original": self.original.to_json()} if self.original is not None else {})


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

    Format v2: :func:`toolchain.model.hashing.source_digest` with the benchmark's salt;
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


_RECORD_HEAD = struct.Struct(">32s32s32sII")


def _pack(e: ManifestEntry) -> bytes:
    """An entry as one record; its path only when it is not the one its id gives (no entry
    a manifest holds, where the parser refuses such paths: an empty path is never one)."""
    sid = e.id.encode("utf-8")
    path = b"" if e.path == output_path_for(e.id) else e.path.encode("utf-8")
    head = _RECORD_HEAD.pack(
        bytes.fromhex(e.pixels.hex),
        bytes.fromhex(e.file.hex),
        bytes.fromhex(e.source.hex),
        len(sid),
        len(path),
    )
    return head + sid + path + canonical_json(dict(e.columns))


def _record_id(record: bytes | memoryview) -> bytes:
    (n,) = struct.unpack_from(">I", record, 96)
    return bytes(record[_RECORD_HEAD.size : _RECORD_HEAD.size + n])


def _unpack(record: bytes | memoryview) -> ManifestEntry:
    pixels, file, source, n_id, n_path = _RECORD_HEAD.unpack_from(record)
    at = _RECORD_HEAD.size
    sid = bytes(record[at : at + n_id]).decode("utf-8")
    path = bytes(record[at + n_id : at + n_id + n_path]).decode("utf-8") or output_path_for(sid)
    raw_columns = bytes(record[at + n_id + n_path :])
    return ManifestEntry(
        id=sid,
        path=path,
        pixels=Digest.from_bytes(pixels),
        file=Digest.from_bytes(file),
        source=Digest.from_bytes(source),
        columns={} if raw_columns == b"{}" else dict(_columns_of(raw_columns)),
    )


@functools.lru_cache(maxsize=4096)
def _columns_of(raw: bytes) -> Mapping[str, ColumnValue]:
    """Decoded column values (most samples share a few: a class label), cached; callers
    get a copy."""
    return json.loads(raw)  # type: ignore[no-any-return]


class EntryTable(MadeOnAccess[ManifestEntry]):
    """Manifest entries sorted by id (UTF-8 bytes), packed into one buffer.

    About 110 bytes plus the id, the path and the columns per entry, where a tuple of
    :class:`ManifestEntry` objects takes over a kilobyte: a process that collects or
    reads a manifest of a million samples stays small. Indexing and iterating give
    :class:`ManifestEntry` values, made on access.
    """

    __slots__ = ("_last", "_records")
    _records: Records

    def __init__(self, entries: Iterable[ManifestEntry] = ()):
        collector = EntryCollector()
        for e in entries:
            collector.add(e)
        self._records = collector.table()._records  # never changed once made
        self._last: tuple[int, ManifestEntry] | None = None

    @classmethod
    def _of(cls, records: Records) -> EntryTable:
        """The table of ``records``, packed entries already in id order (not checked here)."""
        table = cls.__new__(cls)
        table._records, table._last = records, None
        return table

    def _append(self, record: bytes) -> None:
        """Add the next packed record (while the table is being read; id order)."""
        self._records.append(record)
        self._last = None

    def __len__(self) -> int:
        return len(self._records)

    def _item(self, i: int) -> ManifestEntry:
        last = self._last  # the same entry is often asked for twice in a row
        if last is not None and last[0] == i:
            return last[1]
        entry = _unpack(self._records.view(i))
        self._last = (i, entry)
        return entry

    def __iter__(self) -> Iterator[ManifestEntry]:
        for record in self._records:
            yield _unpack(record)

    @property
    def nbytes(self) -> int:
        """The packed entries' bytes."""
        return self._records.nbytes

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EntryTable):
            return self._records == other._records
        return super().__eq__(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"<EntryTable of {len(self)} entries, {self.nbytes} bytes>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (EntryTable._of, (self._records,))


def entry_index(entries: Sequence[ManifestEntry], sample_id: str, guess: int = 0) -> int:
    """The index of ``sample_id`` in ``entries``, sorted by id (UTF-8 bytes) as a manifest
    holds them: ``guess`` if it is there (a source often gives the samples in that order),
    else by binary search (no dict of every id). ``KeyError`` if absent."""
    if 0 <= guess < len(entries) and entries[guess].id == sample_id:
        return guess
    key = sample_id.encode("utf-8")
    i = bisect.bisect_left(entries, key, key=lambda e: e.id.encode("utf-8"))
    if i < len(entries) and entries[i].id == sample_id:
        return i
    raise KeyError(sample_id)


class EntryCollector:
    """Entries as a run finishes them, in any order, packed into one buffer; :meth:`table`
    sorts them (and, when they came in id order, as a run over a sorted listing gives
    them, adopts the buffer without a copy)."""

    def __init__(self) -> None:
        self._empty()

    def _empty(self) -> None:
        self._records = Records()
        self._last_id: bytes | None = None
        self._in_order = True

    def add(self, entry: ManifestEntry) -> None:
        """Collect ``entry``; :class:`ManifestError` if a manifest cannot hold it (a value
        over the limits the parser keeps)."""
        _check_entry(entry)
        record = _pack(entry)
        sid = _record_id(record)
        if self._last_id is not None and sid <= self._last_id:
            self._in_order = False
        self._last_id = sid
        self._records.append(record)

    def __len__(self) -> int:
        return len(self._records)

    def table(self) -> EntryTable:
        """The entries sorted by id, moved into a table (the collector is left empty);
        ``ValueError`` if an id was added twice."""
        records, in_order = self._records, self._in_order
        self._empty()
        if in_order:  # strictly ascending: sorted, and no id twice
            return EntryTable._of(records)
        record = records.view
        order = sorted(range(len(records)), key=lambda i: _record_id(record(i)))
        for a, b in itertools.pairwise(order):
            if _record_id(record(a)) == _record_id(record(b)):
                sid = _record_id(record(a)).decode("utf-8")
                raise ValueError(f"sample {sid!r} was added twice")
        return EntryTable._of(Records.of(record(i) for i in order))


def _columns_json(columns: Iterable[ColumnSpec]) -> dict[str, Any]:
    return {c.name: c.to_json() for c in sorted(columns, key=lambda c: c.name)}


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A whole manifest. ``entries`` are sorted by the UTF-8 bytes of their ids (an
    :class:`EntryTable` when built or parsed here)."""

    recipe: RecipeIdentity
    entries: Sequence[ManifestEntry]
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
        if not isinstance(entries, EntryTable):
            return root_digest(
                ((e.id, e.path, e.pixels, e.columns) for e in entries), _columns_json(columns)
            )
        hasher = RootHasher(_columns_json(columns))  # already sorted: one entry at a time
        for e in entries:
            hasher.add(e.id, e.path, e.pixels, e.columns)
        return hasher.digest()

    @classmethod
    def build(
        cls,
        *,
        recipe: RecipeIdentity,
        entries: Iterable[ManifestEntry] | EntryCollector,
        fingerprint: Mapping[str, str],
        provenance: Provenance,
        encoder: Encoder | None = None,
        columns: Iterable[ColumnSpec] = (),
        shard: str | None = None,
        version: int = 2,
    ) -> Manifest:
        if isinstance(entries, EntryCollector):
            ordered = entries.table()
        elif isinstance(entries, EntryTable):
            ordered = entries
        else:
            ordered = EntryTable(entries)
        schema = tuple(sorted(columns, key=lambda c: c.name))
        manifest = cls(
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
        _check_header(manifest)
        return manifest

    def root_is_consistent(self) -> bool:
        """True when the stored root hash matches the entries (tamper check)."""
        return self.compute_root(self.entries, self.columns, self.version) == self.root

    def by_id(self) -> dict[str, ManifestEntry]:
        return {e.id: e for e in self.entries}

    def entry_json(self, entry: ManifestEntry) -> dict[str, Any]:
        """One entry as this manifest's format writes it."""
        return entry.to_json_v1() if self.version == 1 else entry.to_json()

    def header_json(self) -> dict[str, Any]:
        """Every field but the entries, which are an empty list here."""
        doc: dict[str, Any] = {"entries": [], "format": FORMAT_V1 if self.version == 1 else FORMAT}
        if self.version != 1:
            doc["columns"] = _columns_json(self.columns)
            doc["encoder"] = dict(sorted(self.encoder.items()))
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

    def to_json(self) -> dict[str, Any]:
        doc = self.header_json()
        doc["entries"] = [self.entry_json(e) for e in self.entries]
        return doc


def _reject_floats(doc: Any) -> None:
    if isinstance(doc, float):
        raise TypeError("floats are not allowed in a manifest")
    if isinstance(doc, dict):
        for v in doc.values():
            _reject_floats(v)
    elif isinstance(doc, list):
        for v in doc:
            _reject_floats(v)


_ENTRIES_PER_CHUNK = 512


def iter_manifest(manifest: Manifest) -> Iterator[bytes]:
    """The canonical bytes of a manifest, in pieces of a few hundred entries.

    The same bytes as one :func:`~toolchain.model.hashing.pretty_json` of the whole
    document, without ever holding it:
    the header is written with an empty entry list, which is then filled in place,
    one entry (indented two levels) at a time.
    """
    header = manifest.header_json()
    _reject_floats(header)
    head = pretty_json(header).decode("ascii")
    marker = '\n  "entries": []'
    cut = head.index(marker) + len(marker) - 1  # at the list's "]"
    if not manifest.entries:
        yield head.encode("ascii")
        return
    yield head[:cut].encode("ascii")
    parts: list[str] = []
    sep = "\n"
    for entry in manifest.entries:
        parts.append(sep + _entry_text(manifest.entry_json(entry)))
        sep = ",\n"
        if len(parts) == _ENTRIES_PER_CHUNK:
            yield "".join(parts).encode("ascii")
            parts.clear()
    parts.append("\n  " + head[cut:])
    yield "".join(parts).encode("ascii")


_quote = json.encoder.encode_basestring_ascii


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    raise TypeError(f"a manifest entry holds a {type(value).__name__}: {value!r}")


def _entry_text(doc: Mapping[str, Any]) -> str:
    """One entry as ``json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=True)`` writes
    it two levels deep in the document (4 spaces), for entries' shape (strings, and one
    level of objects of strings, integers and booleans), at the C encoder's speed."""
    items = []
    for key in sorted(doc):
        value = doc[key]
        if isinstance(value, Mapping):
            inner = ",\n".join(f"        {_quote(k)}: {_scalar(value[k])}" for k in sorted(value))
            text = "{\n" + inner + "\n      }" if value else "{}"
        else:
            text = _scalar(value)
        items.append(f"      {_quote(key)}: {text}")
    return "    {\n" + ",\n".join(items) + "\n    }"


def dump_manifest(manifest: Manifest) -> bytes:
    """The canonical bytes of a manifest (see :func:`iter_manifest` to stream them)."""
    return b"".join(iter_manifest(manifest))


def is_canonical(manifest: Manifest, data: bytes) -> bool:
    """True when ``data`` is exactly :func:`dump_manifest` of ``manifest`` (compared piece
    by piece: no second copy is made)."""
    view, at = memoryview(data), 0
    for chunk in iter_manifest(manifest):
        if view[at : at + len(chunk)] != chunk:
            return False
        at += len(chunk)
    return at == len(view)


def manifest_sha256(manifest: Manifest) -> str:
    """SHA-256 (hex) of the canonical bytes, computed without holding them."""
    return sha256_file(iter_manifest(manifest)).hex


def write_manifest(manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write the manifest atomically and durably (it is the run's commit point), streamed."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    safefs.write_file(p.parent, p.name, iter_manifest(manifest), durable=True)


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


def _text(obj: Mapping[str, Any], key: str, where: str, limit: int = MAX_NAME_CHARS) -> str:
    """A string field of at most ``limit`` characters."""
    value: str = _get(obj, key, str, where)
    _bounded(value, f"{where}.{key}", limit)
    return value


def _bounded(value: str, where: str, limit: int) -> None:
    problem = size_problem(value, limit)
    if problem:
        raise ManifestError(
            f"{where}: {shown(value)}: {problem}",
            hint="the manifest was not written by benchmark-regen, or was edited",
        )


def _mapping(raw: Mapping[str, Any], where: str) -> None:
    """A string-keyed object of at most :data:`MAX_KEYS` members, keys of at most
    :data:`MAX_NAME_CHARS` characters (its values are the caller's to check)."""
    if len(raw) > MAX_KEYS:
        raise ManifestError(f"{where}: {len(raw)} members, over the {MAX_KEYS} limit")
    for key in raw:
        _bounded(key, f"{where} key", MAX_NAME_CHARS)


def _digest(obj: Mapping[str, Any], key: str, where: str) -> Digest:
    text = _get(obj, key, str, where)
    try:
        if len(text) > _DIGEST_CHARS:
            raise ValueError(f"expected 'sha256:<hex>', got {shown(text)}")
        return Digest.parse(text)
    except ValueError as e:
        raise ManifestError(f"{where}: field {key!r}: {e}") from None


def _column_value(value: Any, where: str) -> ColumnValue:
    if isinstance(value, str):
        _bounded(value, where, MAX_TEXT_CHARS)
        return value
    if isinstance(value, bool | int):
        return value
    raise ManifestError(f"{where}: a column value must be a string, integer or boolean")


def _path(raw: Mapping[str, Any], key: str, where: str) -> str:
    value: str = _get(raw, key, str, where)
    problem = path_problem(value)
    try:
        if problem:
            raise SourceError(f"unsafe sample id {shown(value)}: {problem}")
        check_sample_id(value)
    except SourceError as e:
        raise ManifestError(f"{where}: {e.message}") from None
    return value


def parse_entry(raw: Any, where: str = "entry", *, version: int = 2) -> ManifestEntry:
    """One manifest entry from its JSON object; raises :class:`ManifestError`."""
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: must be an object")
    sid = _path(raw, "id", where)
    path = _path(raw, "path", where)
    if version == 1:
        source, columns = _digest(raw, "source_pixels", where), {}
        known = {"file", "id", "path", "pixels", "source_pixels"}
    else:
        source = _digest(raw, "source", where)
        raw_columns = _get(raw, "columns", dict, where)
        _mapping(raw_columns, f"{where}.columns")
        columns = {
            k: _column_value(v, f"{where}.columns[{shown(k)}]") for k, v in raw_columns.items()
        }
        known = {"columns", "file", "id", "path", "pixels", "source"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ManifestError(f"{where}: unknown field {shown(unknown[0])}")
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
    _mapping(raw, "columns")
    specs = []
    for name, spec in sorted(raw.items()):
        where = f"columns[{shown(name)}]"
        problem = column_name_problem(name)
        if problem:
            raise ManifestError(
                f"{where}: a carried column cannot have this name: {problem}",
                hint="the manifest was not written by benchmark-regen (its sources refuse "
                "such a column), or was edited",
            )
        if not isinstance(spec, dict):
            raise ManifestError(f"{where}: must be an object")
        kind = _get(spec, "type", str, where)
        if kind not in COLUMN_TYPES:
            raise ManifestError(f"{where}: unknown type {shown(kind)}")
        names: tuple[str, ...] = ()
        if kind == "class_label":
            raw_names = _get(spec, "names", list, where)
            if len(raw_names) > MAX_CLASS_NAMES:
                raise ManifestError(
                    f"{where}: {len(raw_names)} names, over the {MAX_CLASS_NAMES} limit"
                )
            for i, n in enumerate(raw_names):
                if not isinstance(n, str):
                    raise ManifestError(f"{where}: names must be strings")
                _bounded(n, f"{where}.names[{i}]", MAX_NAME_CHARS)
            names = tuple(raw_names)
        specs.append(ColumnSpec(name=name, type=kind, names=names))
    return tuple(specs)


def _parse_encoder(raw: Any) -> dict[str, str | int]:
    if not isinstance(raw, dict) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in raw.values()
    ):
        raise ManifestError("manifest: field 'encoder' must map names to strings or integers")
    _mapping(raw, "encoder")
    for key, value in raw.items():
        if isinstance(value, str):
            _bounded(value, f"encoder[{shown(key)}]", MAX_NAME_CHARS)
    return dict(raw)


def _parse_fingerprint(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ManifestError("manifest: field 'fingerprint' must be dict")
    if not all(isinstance(v, str) for v in raw.values()):
        raise ManifestError("fingerprint values must be strings")
    _mapping(raw, "fingerprint")
    for key, value in raw.items():
        _bounded(value, f"fingerprint[{shown(key)}]", MAX_NAME_CHARS)
    return raw


def _parse_recipe(r: Mapping[str, Any]) -> RecipeIdentity:
    params = _get(r, "params", dict, "recipe")
    _mapping(params, "recipe.params")
    for k, v in params.items():
        if not isinstance(v, str | int | bool):
            raise ManifestError(f"recipe.params[{shown(k)}] must be a string, integer or boolean")
        if isinstance(v, str):
            _bounded(v, f"recipe.params[{shown(k)}]", MAX_TEXT_CHARS)
    return RecipeIdentity(
        name=_text(r, "name", "recipe"),
        version=_text(r, "version", "recipe"),
        seed=_get(r, "seed", int, "recipe"),
        params=params,
        select=_text(r, "select", "recipe"),
        source=_digest(r, "source", "recipe"),
    )


def _parse_provenance(p: Mapping[str, Any]) -> Provenance:
    original = p.get("original")
    if isinstance(original, dict):  # its fields are short names: quote none whole
        for key, value in original.items():
            if isinstance(value, str):
                _bounded(value, f"provenance.original.{shown(key)}", _MAX_ORIGINAL_FIELD)
    return Provenance(
        original_name=_text(p, "original_name", "provenance", MAX_TEXT_CHARS),
        original_terms=_text(p, "original_terms", "provenance", MAX_TEXT_CHARS),
        recipe_license=_text(p, "recipe_license", "provenance", MAX_TEXT_CHARS),
        samples_used=_get(p, "samples_used", int, "provenance"),
        samples_in_original=_get(p, "samples_in_original", int, "provenance"),
        original=OriginalRef.from_json(original) if "original" in p else None,
    )


def _check_header(m: Manifest) -> None:
    """The header of a manifest being built holds only what the parser accepts (the same
    checks): a run never writes a manifest that ``verify`` refuses."""
    header = m.header_json()
    try:
        _parse_recipe(header["recipe"])
        _parse_provenance(header["provenance"])
        _parse_fingerprint(header["fingerprint"])
        if m.version != 1:
            _parse_columns(header["columns"])
            _parse_encoder(header["encoder"])
        if m.shard is not None:
            _bounded(m.shard, "shard", MAX_NAME_CHARS)
    except ManifestError as e:
        raise ManifestError(
            f"a manifest cannot hold this: {e.message}", hint=_LIMITS_HINT
        ) from None


def _check_entry(entry: ManifestEntry) -> None:
    """An entry being collected fits the parser's limits (the rest is the run's own making,
    checked where it is made)."""
    problems = [(f"its {what}", path_problem(getattr(entry, what))) for what in ("id", "path")]
    if not entry.path:  # a record's empty path stands for the one the id gives
        problems.append(("its path", "it is empty"))
    if len(entry.columns) > MAX_KEYS:
        problems.append(("it", f"has {len(entry.columns)} columns, over the {MAX_KEYS} limit"))
    for name, value in entry.columns.items():
        problems.append((f"column {shown(name)}", size_problem(name, MAX_NAME_CHARS)))
        if isinstance(value, str):
            problems.append((f"column {shown(name)}", size_problem(value, MAX_TEXT_CHARS)))
    for what, problem in problems:
        if problem:
            raise ManifestError(
                f"a manifest cannot hold this sample: {what}: {problem}",
                hint=f"{_LIMITS_HINT}; drop such a column with --columns -NAME",
                sample=cut(entry.id),
            )


class _LayoutPairs(MadeOnAccess[tuple[str, str]]):
    """``(id, path)`` of each entry, made on access, for ``check_layout``."""

    def __init__(self, entries: Sequence[ManifestEntry]):
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def _item(self, i: int) -> tuple[str, str]:
        e = self._entries[i]
        return e.id, e.path

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for e in self._entries:
            yield e.id, e.path


def _check_entry_columns(e: ManifestEntry, schema: Mapping[str, ColumnSpec]) -> None:
    if set(e.columns) != set(schema):
        differ = sorted(set(e.columns) ^ set(schema))
        raise ManifestError(
            f"entry {shown(e.id)}: its columns are not the schema's (column "
            f"{shown(differ[0])} is in {'the entry' if differ[0] in e.columns else 'the schema'}"
            " only)"
        )
    for name, value in e.columns.items():
        spec = schema[name]
        if not spec.fits(value):
            raise ManifestError(
                f"entry {shown(e.id)}: column {shown(name)} value {shown(value)} does not fit "
                f"its type {spec.type}"
                + (
                    f" (0..{len(spec.names) - 1}, or -1: no label)"
                    if spec.type == "class_label"
                    else ""
                )
            )


def parse_manifest(data: bytes) -> Manifest:
    """Parse and validate manifest bytes. Raises :class:`ManifestError` on any defect."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is {len(data)} bytes, over the {MAX_MANIFEST_BYTES} limit")
    return read_manifest(io.BytesIO(data))


def read_manifest(stream: BinaryIO) -> Manifest:
    """Parse and validate a manifest from a binary file, in memory bounded by one value
    (:data:`~toolchain.model.limits.MAX_ENTRY_CHARS` of JSON text, the column schema
    :data:`~toolchain.model.limits.MAX_SCHEMA_CHARS`) plus the packed :class:`EntryTable`.
    Raises :class:`ManifestError` on any defect."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="strict", newline="")
    try:
        return _read(JsonStream(text, _DECODER, limit=MAX_ENTRY_CHARS))
    except UnicodeDecodeError:
        raise ManifestError("not valid JSON (not UTF-8)") from None
    except TooLong as e:
        raise ManifestError(
            f"the value at character {e.pos} is too large ({e.msg})", hint=_LIMITS_HINT
        ) from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"not valid JSON ({e})") from None
    except ValueError as e:
        raise ManifestError(cut(str(e), MAX_NAME_CHARS)) from None
    finally:
        text.detach()


class _Entries:
    """The ``entries`` array, checked and packed as it is read."""

    def __init__(self) -> None:
        self.records = EntryTable._of(Records())  # grown in place as entries are read
        self.version = 0  # the entries' own format (1: "source_pixels"), from the first
        self.error: ManifestError | None = None  # raised once the format is known good

    def read(self, stream: JsonStream) -> None:
        previous: bytes | None = None
        for i, raw in enumerate(stream.elements()):
            if self.error is not None:
                continue
            if not self.version:
                self.version = 1 if isinstance(raw, dict) and "source_pixels" in raw else 2
            try:
                entry = parse_entry(raw, f"entries[{i}]", version=self.version)
                key = entry.id.encode("utf-8")
                if previous is not None and previous >= key:
                    raise ManifestError(
                        f"entries[{i}]: id {shown(entry.id)} is duplicated or out of order",
                        hint="a manifest lists each sample once, sorted by id",
                    )
            except ManifestError as e:
                self.error = e
                continue
            previous = key
            self.records._append(_pack(entry))

    def table(self, version: int) -> EntryTable:
        if self.records and self.version != version:
            field = "source" if version == 2 else "source_pixels"
            raise ManifestError(f"entries[0]: missing field {field!r}")
        if self.error is not None:
            raise self.error
        return self.records


def _read(stream: JsonStream) -> Manifest:
    if stream.peek() != "{":
        stream.value()
        stream.end()
        raise ManifestError("top level must be a JSON object")
    doc: dict[str, Any] = {}
    entries: _Entries | None = None
    for key in stream.members():
        if key in doc or (key == "entries" and entries is not None):
            raise ManifestError(f"manifest: field {shown(key)} appears twice")
        if key == "entries" and stream.peek() == "[":
            entries = _Entries()
            entries.read(stream)
        else:
            doc[key] = stream.value(limit=MAX_SCHEMA_CHARS if key == "columns" else None)
    stream.end()
    fmt = _get(doc, "format", str, "manifest")
    if fmt not in (FORMAT, FORMAT_V1):
        raise ManifestError(
            f"unknown manifest format {shown(fmt)} (this version reads {FORMAT!r} and "
            f"{FORMAT_V1!r})",
            hint="upgrade benchmark-regen, or check that this file is a manifest",
        )
    version = 2 if fmt == FORMAT else 1
    recipe = _parse_recipe(_get(doc, "recipe", dict, "manifest"))
    provenance = _parse_provenance(_get(doc, "provenance", dict, "manifest"))
    fp = _parse_fingerprint(_get(doc, "fingerprint", dict, "manifest"))
    if entries is None:
        _get(doc, "entries", list, "manifest")  # missing, or not a list: says which
        raise AssertionError("unreachable")
    table = entries.table(version)
    columns: tuple[ColumnSpec, ...] = ()
    encoder: dict[str, str | int] = {}
    if version == 2:
        columns = _parse_columns(_get(doc, "columns", dict, "manifest"))
        encoder = _parse_encoder(_get(doc, "encoder", dict, "manifest"))
    if version == 2:
        schema = {c.name: c for c in columns}
        for e in table:
            _check_entry_columns(e, schema)
    check_layout(_LayoutPairs(table), error=ManifestError)
    count = _get(doc, "sample_count", int, "manifest")
    if count != len(table):
        raise ManifestError(f"sample_count is {shown(count)} but there are {len(table)} entries")
    shard = doc.get("shard")
    if shard is not None:
        if not isinstance(shard, str):
            raise ManifestError("field 'shard' must be a string")
        _bounded(shard, "shard", MAX_NAME_CHARS)
    return Manifest(
        recipe=recipe,
        entries=table,
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


_DECODER = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and parse a manifest file (a regular file, at most :data:`MAX_MANIFEST_BYTES`),
    streamed: never held whole in memory."""
    p = Path(path)
    with _reading(p), safefs.open_path(p, limit=MAX_MANIFEST_BYTES) as stream:
        try:
            return read_manifest(stream)
        except ManifestError as e:  # which file: the message names what in it
            raise ManifestError(f"{p}: {e.message}", hint=e.hint, sample=e.sample) from None


def read_manifest_bytes(path: str | os.PathLike[str]) -> bytes:
    """A manifest file's bytes, unparsed (at most :data:`MAX_MANIFEST_BYTES`): read once, so
    that the bytes a signature is checked over are the bytes parsed."""
    p = Path(path)
    with _reading(p):
        return safefs.read_path(p, limit=MAX_MANIFEST_BYTES)


@contextlib.contextmanager
def _reading(p: Path) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise ManifestError(
            f"no manifest at {p}",
            hint="a benchmark folder has a manifest.json only once a run has completed",
        ) from None
    except OSError as e:
        raise ManifestError(f"cannot read {p}: {os_error_text(e)}") from None


def holds_manifest(path: str | os.PathLike[str], *, follow_links: bool = True) -> bool:
    """Does ``path`` hold one of our manifests, whatever its name? (Refusing an ``--out``
    that would overwrite one.) ``follow_links=False``: a link is not followed (for a
    writer that replaces a link instead of writing through it)."""
    p = Path(path)
    try:
        if follow_links:
            data = safefs.read_path(p, limit=MAX_MANIFEST_BYTES)
        else:
            data = safefs.read_file(p.parent, p.name, limit=MAX_MANIFEST_BYTES)
        parse_manifest(data)
    except (OSError, ManifestError):
        return False
    return True
