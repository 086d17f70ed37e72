"""The diff as a Hugging Face parquet dataset folder (``diff create --format parquet``):
the same sealed entries as a ``.bdiff``, checked as strictly, behind the same reader
interface. Layout and checks: ``docs/huggingface.md``, "The diff as a dataset"."""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from toolchain._internal import safefs
from toolchain._internal.atomic import TMP_PREFIX
from toolchain._internal.deps import require
from toolchain._internal.jsonload import load_json
from toolchain._internal.parquet import open_parquet
from toolchain.diff.format import (
    AEAD_AES_256_GCM_SIV,
    CODEC_ZSTD,
    HEADER_SIZE,
    INDEX_RECORD_SIZE,
    MAX_SEALED_BYTES,
    READABLE_VERSIONS,
    DiffReader,
    Header,
    IndexRecord,
    IndexTable,
    KeyOn,
    PayloadKind,
    SealedEntry,
    benchmark_id,
    check_payload,
    check_sizes,
    container_version,
    manifest_length,
    manifest_pieces,
    spool_entries,
)
from toolchain.errors import DiffFormatError, ManifestError, OutputError, os_error_text
from toolchain.hf._arrow import HF_METADATA_KEY, column, features_metadata, write_shards
from toolchain.hf.card import one_line, yaml_header
from toolchain.model.columns import ColumnSpec
from toolchain.model.hashing import pretty_json
from toolchain.model.limits import cut, shown
from toolchain.model.manifest import MAX_MANIFEST_BYTES, Manifest, parse_manifest, read_manifest

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DATASET_FORMAT",
    "HEADER_NAME",
    "DiffDataset",
    "is_diff_dataset",
    "open_diff_dataset",
    "write_diff_dataset",
]

DATASET_FORMAT = "benchmark-regen.diff-dataset/v1"
HEADER_NAME = "diff.json"
MANIFEST_NAME = "manifest.json"
CARD_NAME = "README.md"
SPLIT = "train"
DIFF_METADATA_KEY = b"benchmark-regen.diff"
ROW_GROUP_ROWS = 100
ROW_GROUP_BYTES = 64 << 20
SHARD_BYTES = 500 << 20
MAX_HEADER_JSON = 64 << 10
_MAX_ID_BYTES = 4096
_KINDS = {PayloadKind.DELTA: "delta", PayloadKind.FULL: "full", PayloadKind.RECIPE: "recipe"}
_COLUMNS = ("sample_id", "kind", "fingerprint", "sealed", "sealed_length", "sealed_sha256")
_INDEX_COLUMNS = ("sample_id", "kind", "fingerprint", "sealed_length", "sealed_sha256")
_INDEX_BATCH = 1024
"""Rows whose index columns are Python objects at once, while the index is read."""


def _features() -> dict[str, object]:
    def value(dtype: str) -> dict[str, object]:
        return {"dtype": dtype, "_type": "Value"}

    return {
        "sample_id": value("string"),
        "kind": value("string"),
        "fingerprint": value("binary"),
        "sealed": value("binary"),
        "sealed_length": value("int64"),
        "sealed_sha256": value("binary"),
    }


def _schema(bid: bytes) -> pa.Schema:
    pa_ = require("pyarrow")
    return pa_.schema(
        [
            ("sample_id", pa_.string()),
            ("kind", pa_.string()),
            ("fingerprint", pa_.binary()),
            ("sealed", pa_.binary()),
            ("sealed_length", pa_.int64()),
            ("sealed_sha256", pa_.binary()),
        ],
        metadata={
            HF_METADATA_KEY: features_metadata(_features()),
            DIFF_METADATA_KEY: json.dumps(
                {"benchmark_id": bid.hex(), "format": DATASET_FORMAT}, sort_keys=True
            ).encode("ascii"),
        },
    )


def _header_json(header: Header, digest: bytes) -> bytes:
    doc = {
        "aead": AEAD_AES_256_GCM_SIV,
        "benchmark_id": header.benchmark_id.hex(),
        "codec": CODEC_ZSTD,
        "entry_count": header.entry_count,
        "file_length": header.file_length,
        "format": DATASET_FORMAT,
        "header_digest": digest.hex(),
        "key_on": str(header.key_on),
        "manifest_length": header.manifest_length,
        "version": header.version,
    }
    return pretty_json(doc)


# -- writing ---------------------------------------------------------------------------


def _id_of(manifest_bytes: bytes | BinaryIO, known: bytes | None) -> bytes:
    return known if known is not None else benchmark_id(manifest_pieces(manifest_bytes))


def write_diff_dataset(
    path: str | os.PathLike[str],
    *,
    key_on: KeyOn,
    manifest_bytes: bytes | BinaryIO,
    entries: Iterable[SealedEntry],
    entry_count: int,
    benchmark_id: bytes | None = None,
    manifest: Manifest | None = None,
) -> Header:
    """Write the diff dataset ``path`` (a folder, absent or empty) from sealed entries.

    Takes :func:`~toolchain.diff.format.write_diff`'s inputs (entries in any order, each
    index once, else ``ValueError``), and ``manifest``, ``manifest_bytes`` parsed, when
    the caller holds it already (else parsed here); returns the header the ``.bdiff`` of
    the same entries has. :class:`OutputError` if ``path`` is not an empty folder or
    cannot be written; it is assembled beside ``path`` and renamed into place, so a
    failure leaves nothing. Memory: one record per entry and one row group. The bytes
    depend only on the entries.
    """
    pa_ = require("pyarrow")

    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise OutputError(
            f"{path} exists and is not an empty folder",
            hint="write the diff dataset to a new folder",
        )
    if manifest is not None:
        pass
    elif isinstance(manifest_bytes, bytes):
        manifest = parse_manifest(manifest_bytes)
    else:  # a file of them: parsed as it is read, never held whole
        manifest_bytes.seek(0)
        manifest = read_manifest(manifest_bytes)
    length = manifest_length(manifest_bytes)
    if len(manifest.entries) != entry_count:
        raise ValueError(
            f"expected {entry_count} entries, the manifest has {len(manifest.entries)}"
        )
    bid = _id_of(manifest_bytes, benchmark_id)
    schema = _schema(bid)
    work = path.with_name(f"{TMP_PREFIX}{secrets.token_hex(8)}-{path.name}")
    try:
        work.mkdir(parents=True)
        with tempfile.TemporaryFile(dir=work) as sp:
            spooled = spool_entries(sp, entries, entry_count, length)
            records = spooled.records

            def rows() -> Iterator[tuple[int, bytes]]:
                for i in range(entry_count):
                    yield i, spooled.payload(i)

            def table(buf: list[tuple[int, bytes]]) -> pa.Table:
                recs = [records[i] for i, _ in buf]
                return pa_.Table.from_arrays(
                    [
                        column([manifest.entries[i].id for i, _ in buf], pa_.string()),
                        column([_KINDS[r.kind] for r in recs], pa_.string()),
                        column([r.fingerprint for r in recs], pa_.binary()),
                        column([data for _, data in buf], pa_.binary()),
                        column([r.length for r in recs], pa_.int64()),
                        column([r.sealed_digest for r in recs], pa_.binary()),
                    ],
                    schema=schema,
                )

            write_shards(
                work / "data",
                SPLIT,
                schema,
                rows(),
                size_of=lambda r: len(r[1]),
                to_table=table,
                row_group_rows=ROW_GROUP_ROWS,
                row_group_bytes=ROW_GROUP_BYTES,
                shard_bytes=SHARD_BYTES,
                # no min/max copies of payloads in the footer: each payload is stored once
                statistics=[c for c in _COLUMNS if c != "sealed"],
            )
        header = Header(
            version=container_version(r.kind for r in records),
            key_on=key_on,
            entry_count=entry_count,
            manifest_length=length,
            file_length=spooled.file_length,
            benchmark_id=bid,
        )
        digest = hashlib.sha256(header.pack_head())
        for piece in manifest_pieces(manifest_bytes):
            digest.update(piece)
        digest.update(records.pack())
        safefs.write_file(work, MANIFEST_NAME, manifest_pieces(manifest_bytes))
        safefs.write_file(work, CARD_NAME, render_diff_card(manifest, header, records))
        safefs.write_file(work, HEADER_NAME, _header_json(header, digest.digest()))
        if path.exists():
            path.rmdir()
        os.replace(work, path)
    except OSError as e:
        shutil.rmtree(work, ignore_errors=True)
        raise OutputError(f"cannot write {path}: {os_error_text(e)}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return header


# -- reading ---------------------------------------------------------------------------


def _fail(message: str, *, entry: str | None = None, hint: str | None = None) -> DiffFormatError:
    return DiffFormatError(message, entry=entry, hint=hint)


_HINT = "download the diff dataset again and compare its files' checksums"


def _index_batches(pf: Any, rel: str) -> Iterator[list[list[Any]]]:
    """The index columns of shard ``rel`` as Python values, a batch at a time; a shard that
    pyarrow cannot read (a page shorter than it declares) or whose strings are not UTF-8
    is a :class:`DiffFormatError` naming it."""
    pa_ = require("pyarrow")
    batches = pf.iter_batches(
        batch_size=_INDEX_BATCH, columns=list(_INDEX_COLUMNS), use_threads=False
    )
    while True:
        try:
            batch = next(batches)
            yield [batch.column(n).to_pylist() for n in _INDEX_COLUMNS]
        except StopIteration:
            return
        except (pa_.ArrowException, OSError, UnicodeDecodeError) as e:
            raise _fail(f"{rel}: cannot be read ({cut(str(e), 200)})", hint=_HINT) from None


class DiffDataset(DiffReader):
    """An opened, integrity-checked diff dataset (a folder); payloads are read on demand."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cache: tuple[tuple[int, int], Any] | None = None
        declared = self._read_header_json()
        self.header = Header(
            version=declared["version"],
            key_on=KeyOn(declared["key_on"]),
            entry_count=declared["entry_count"],
            manifest_length=declared["manifest_length"],
            file_length=declared["file_length"],
            benchmark_id=bytes.fromhex(declared["benchmark_id"]),
        )
        # As the .bdiff's reader does: the manifest is parsed as it is read and hashed
        # (never held whole), and checked once the digest over it has been.
        digest = hashlib.sha256(self.header.pack_head())
        parsed, text_id = self._read_manifest(declared["manifest_length"], digest)
        self._shards, self._starts = self._open_shards(declared["entry_count"])
        index, mismatch = self._read_index(parsed)
        self.records = IndexTable(index)
        digest.update(index)
        if digest.hexdigest() != declared["header_digest"]:
            raise _fail(
                f"{HEADER_NAME}: header digest mismatch: the header, manifest or index is corrupt",
                hint=_HINT,
            )
        self.manifest = self._carried_manifest(parsed, text_id)
        if mismatch is not None:
            raise _fail(mismatch)

    def close(self) -> None:
        """Drop the cached row group (the shards are opened per read, never kept open)."""
        self._cache = None

    def __enter__(self) -> DiffDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_cache")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._cache = None

    # -- opening ----------------------------------------------------------------------

    def _read_header_json(self) -> dict[str, Any]:
        where = self.path / HEADER_NAME
        try:
            if not self.path.is_dir():
                raise _fail(f"{self.path} is not a diff dataset folder")
            data = safefs.read_path(where, limit=MAX_HEADER_JSON)
        except FileNotFoundError:
            raise _fail(
                f"{self.path} has no {HEADER_NAME}: not a diff dataset",
                hint="pass the folder `diff create --format parquet` wrote",
            ) from None
        except OSError as e:
            raise _fail(f"cannot read {where}: {os_error_text(e)}", hint=_HINT) from None
        doc = load_json(data, what=HEADER_NAME, error=DiffFormatError, hint=_HINT)
        types = {
            "aead": int,
            "benchmark_id": str,
            "codec": int,
            "entry_count": int,
            "file_length": int,
            "format": str,
            "header_digest": str,
            "key_on": str,
            "manifest_length": int,
            "version": int,
        }
        if not isinstance(doc, dict) or set(doc) != set(types):
            raise _fail(f"{HEADER_NAME}: expected exactly the keys {sorted(types)}", hint=_HINT)
        for key, typ in types.items():
            if not isinstance(doc[key], typ) or isinstance(doc[key], bool):
                raise _fail(f"{HEADER_NAME}: {key!r} must be a {typ.__name__}", hint=_HINT)
        if doc["format"] != DATASET_FORMAT:
            raise _fail(f"{HEADER_NAME}: unknown format {shown(doc['format'])}", hint="upgrade")
        if doc["version"] not in READABLE_VERSIONS:
            raise _fail(f"unknown container version {shown(doc['version'], 40)}", hint="upgrade")
        if doc["key_on"] not in {str(k) for k in KeyOn}:
            raise _fail(f"{HEADER_NAME}: unknown key_on {shown(doc['key_on'])}")
        if doc["aead"] != AEAD_AES_256_GCM_SIV or doc["codec"] != CODEC_ZSTD:
            raise _fail(f"{HEADER_NAME}: unknown AEAD or codec code")
        try:
            check_sizes(
                entry_count=doc["entry_count"],
                manifest_length=doc["manifest_length"],
                file_length=doc["file_length"],
                where=self._where,
            )
        except DiffFormatError as e:
            raise _fail(f"{HEADER_NAME}: {e.message.removeprefix('diff container: ')}") from None
        for key in ("benchmark_id", "header_digest"):
            if len(doc[key]) != 64 or any(c not in "0123456789abcdef" for c in doc[key]):
                raise _fail(f"{HEADER_NAME}: {key!r} is not 64 hex digits", hint=_HINT)
        return doc

    def _read_manifest(self, length: int, digest: Any) -> tuple[Manifest | ManifestError, bytes]:
        where = self.path / MANIFEST_NAME
        try:
            with safefs.open_path(where, limit=MAX_MANIFEST_BYTES) as f:
                size = os.fstat(f.fileno()).st_size
                if size != length:
                    raise _fail(
                        f"{MANIFEST_NAME} has {size} bytes, {HEADER_NAME} declares {length}",
                        hint=_HINT,
                    )
                return self._read_carried(lambda _at, n: f.read(n), 0, length, digest)
        except FileNotFoundError:
            raise _fail(f"{self.path} has no {MANIFEST_NAME}", hint=_HINT) from None
        except OSError as e:
            raise _fail(f"cannot read {where}: {os_error_text(e)}", hint=_HINT) from None

    def _where(self, offset: int) -> None:
        """The pieces are files of a folder: an error names no offset."""
        return None

    def _open_shards(
        self, count: int
    ) -> tuple[tuple[tuple[Path, tuple[int, ...]], ...], list[int]]:
        """Each shard with its row-group starts; the shards' first rows. Metadata only."""
        from toolchain.errors import SourceError
        from toolchain.source.hf.layout import parquet_layout

        try:
            layout, _ = parquet_layout(self.path)
        except SourceError as e:
            raise _fail(e.message, hint=e.hint) from None
        files = layout.get(("default", SPLIT))
        if not files or len(layout) != 1:
            raise _fail(
                f"{self.path} must hold exactly data/{SPLIT}-NNNNN-of-NNNNN.parquet shards",
                hint=_HINT,
            )
        shards = []
        starts = []
        total = 0
        expected = [(n, str(t)) for n, t in zip(_COLUMNS, _schema(b"").types, strict=True)]
        for rel in files:
            path = self.path / rel
            pf = open_parquet(path, error=DiffFormatError, what=rel, hint=_HINT)
            try:
                schema = pf.schema_arrow
                got = [
                    (schema.field(i).name, str(schema.field(i).type)) for i in range(len(schema))
                ]
                if got != expected:
                    raise _fail(f"{rel}: columns {got} are not a diff dataset's", hint=_HINT)
                md = pf.metadata
                size = path.stat().st_size
                groups = [0]
                for g in range(md.num_row_groups):
                    rg = md.row_group(g)
                    for c in range(rg.num_columns):
                        chunk = rg.column(c)
                        if (
                            chunk.compression != "UNCOMPRESSED"
                            or chunk.total_uncompressed_size > size
                        ):
                            raise _fail(
                                f"{rel}, row group {g}: column {chunk.path_in_schema!r} declares "
                                f"{chunk.total_uncompressed_size} bytes ({chunk.compression}); "
                                f"the file has {size}",
                                hint=_HINT,
                            )
                    groups.append(groups[-1] + rg.num_rows)
            finally:
                pf.close()
            starts.append(total)
            total += groups[-1]
            if total > count:
                raise _fail(f"{rel}: more rows than the {count} entries declared", hint=_HINT)
            shards.append((path, tuple(groups)))
        if total != count:
            raise _fail(f"the shards hold {total} rows, {HEADER_NAME} declares {count} entries")
        return tuple(shards), starts

    def _read_index(self, parsed: Manifest | ManifestError) -> tuple[bytes, str | None]:
        """The index the .bdiff of the same entries holds; and the first row whose sample
        is not the manifest's entry there, said once the digest has been checked."""
        h = self.header
        entries = parsed.entries if isinstance(parsed, Manifest) else ()
        mismatch: str | None = None
        n = 0
        index = bytearray()
        offset = HEADER_SIZE + h.manifest_length + INDEX_RECORD_SIZE * h.entry_count
        kinds = {v: k for k, v in _KINDS.items()}
        for path, _ in self._shards:
            rel = path.relative_to(self.path).as_posix()
            pf = open_parquet(path, error=DiffFormatError, what=rel, hint=_HINT)
            try:
                row = 0
                for cols in _index_batches(pf, rel):
                    for sid, kind, fp, length, digest in zip(*cols, strict=True):
                        where = f"{rel}, row {row}"
                        row += 1
                        if not isinstance(sid, str) or len(sid.encode()) > _MAX_ID_BYTES:
                            raise _fail(f"{where}: bad sample_id", hint=_HINT)
                        if kind not in kinds or (
                            kinds[kind] is PayloadKind.RECIPE and h.version < 3
                        ):
                            raise _fail(
                                f"{where}: unknown payload kind {kind!r} in a version "
                                f"{h.version} diff",
                                entry=sid,
                            )
                        if not isinstance(fp, bytes) or len(fp) != 32:
                            raise _fail(f"{where}: fingerprint is not 32 bytes", entry=sid)
                        if not isinstance(digest, bytes) or len(digest) != 32:
                            raise _fail(f"{where}: sealed_sha256 is not 32 bytes", entry=sid)
                        if not isinstance(length, int) or not 16 < length <= MAX_SEALED_BYTES:
                            raise _fail(
                                f"{where}: payload length {length} is out of bounds", entry=sid
                            )
                        if mismatch is None and n < len(entries) and entries[n].id != sid:
                            mismatch = (
                                f"row {n} is for sample {sid!r}, the manifest's entry {n} "
                                f"is {entries[n].id!r}"
                            )
                        n += 1
                        index += IndexRecord(
                            offset=offset,
                            length=length,
                            kind=kinds[kind],
                            fingerprint=fp,
                            sealed_digest=digest,
                        ).pack()
                        offset += length
            finally:
                pf.close()
        if offset != self.header.file_length:
            raise _fail(
                f"{HEADER_NAME}: file_length {self.header.file_length} does not match the "
                f"payload lengths ({offset})",
                hint=_HINT,
            )
        return bytes(index), mismatch

    # -- payloads ---------------------------------------------------------------------

    def _locate(self, i: int) -> tuple[int, int, int]:
        s = bisect.bisect_right(self._starts, i) - 1
        groups = self._shards[s][1]
        in_shard = i - self._starts[s]
        g = bisect.bisect_right(groups, in_shard) - 1
        return s, g, in_shard - groups[g]

    def _sealed_column(self, pf: Any, s: int, g: int) -> Any:
        pa_ = require("pyarrow")
        try:
            return pf.read_row_group(g, columns=["sealed"], use_threads=False).column(0)
        except (pa_.ArrowException, OSError) as e:
            rel = self._shards[s][0].relative_to(self.path).as_posix()
            raise _fail(f"{rel}, row group {g}: cannot be read ({e})", hint=_HINT) from None

    def _checked(self, i: int, data: bytes | None) -> bytes:
        return check_payload(
            b"" if data is None else data,
            self.records[i].sealed_digest,
            self.manifest.entries[i].id,
            hint=_HINT,
        )

    def sealed_span(self, i: int) -> None:
        """Always ``None``: a payload is a value in a compressed parquet row group, read
        (one row group cached) by :meth:`read_sealed` in this process."""
        return None

    def read_sealed(self, i: int, f: BinaryIO | None = None) -> bytes:
        """The sealed payload of entry ``i``, checked against its digest (one row group cached)."""
        s, g, j = self._locate(i)
        with self._lock:
            if self._cache is None or self._cache[0] != (s, g):
                path = self._shards[s][0]
                rel = path.relative_to(self.path).as_posix()
                pf = open_parquet(path, error=DiffFormatError, what=rel, hint=_HINT)
                try:
                    self._cache = ((s, g), self._sealed_column(pf, s, g))
                finally:
                    pf.close()
            column = self._cache[1]
        return self._checked(i, column[j].as_py())

    def iter_sealed(self) -> Iterator[tuple[int, bytes]]:
        """Every sealed payload in order, each checked (streams: one row group in memory)."""
        i = 0
        for s, (path, groups) in enumerate(self._shards):
            rel = path.relative_to(self.path).as_posix()
            pf = open_parquet(path, error=DiffFormatError, what=rel, hint=_HINT)
            try:
                for g in range(len(groups) - 1):
                    column = self._sealed_column(pf, s, g).combine_chunks()
                    for j in range(len(column)):
                        yield i, self._checked(i, column[j].as_py())
                        i += 1
                    del column
            finally:
                pf.close()


def is_diff_dataset(path: str | os.PathLike[str]) -> bool:
    """True for a folder holding a diff dataset's ``diff.json``."""
    return (Path(path) / HEADER_NAME).is_file()


def open_diff_dataset(path: str | os.PathLike[str]) -> DiffDataset:
    """Open and check a diff dataset's header, manifest and index (not yet the payloads)."""
    return DiffDataset(path)


def render_diff_card(manifest: Manifest, header: Header, records: Sequence[IndexRecord]) -> bytes:
    """The diff dataset's ``README.md``: what it holds and what it does not."""
    p, r = manifest.provenance, manifest.recipe
    counts = {kind: sum(rec.kind is kind for rec in records) for kind in PayloadKind}
    n = counts[PayloadKind.RECIPE]
    recipes = f"{n} recipe entries, which hold no pixels, " if n else ""
    features: list[tuple[str, str | ColumnSpec]] = [
        ("sample_id", "string"),
        ("kind", "string"),
        ("fingerprint", "binary"),
        ("sealed", "binary"),
        ("sealed_length", "int64"),
        ("sealed_sha256", "binary"),
    ]
    lines = yaml_header(
        license="other",
        license_name=f"terms of {p.original_name or 'the original dataset'}",
        license_link=p.original_terms
        if p.original_terms.startswith(("https://", "http://"))
        else None,
        pretty_name=f"benchmark-regen diff: {r.name} {r.version}",
        tags=("benchmark-regen", "benchmark-regen-diff"),
        files=("data/train-*.parquet",),
        split="train",
        features=features,
        num_examples=header.entry_count,
    )
    lines += [
        "",
        f"# benchmark-regen diff: {one_line(r.name)} {one_line(r.version)}",
        "",
        "A diff that rebuilds a benchmark, bit for bit, for whoever holds the original "
        f"dataset it was made from ({one_line(p.original_name)}).",
        "",
        "## What it holds",
        "",
        f"- One row per benchmark sample ({header.entry_count}; {recipes}"
        f"{counts[PayloadKind.DELTA]} deltas, {counts[PayloadKind.FULL]} full targets): "
        "the sample id, the payload kind, a "
        "locator fingerprint of the original sample, the sealed payload (AES-256-GCM-SIV), "
        "its length and SHA-256.",
        "- `manifest.json`: the benchmark's manifest (sample ids, pixel hashes, recipe, "
        f"root hash `{manifest.root}`).",
        f"- `diff.json`: the header (key derivation on the original's `{header.key_on}`, "
        "counts, benchmark id, and the digest over header, manifest and index).",
        "",
        "## What it does not hold",
        "",
        "- No image of the original or of the benchmark, and no key: each payload opens "
        "only with a key derived from the matching original sample.",
        "- Without the original, one learns the manifest, the payload kinds and sizes, "
        "and can test whether a candidate file is one of the originals (the fingerprints).",
        "",
        "## Use",
        "",
        "```sh",
        "benchmark-regen diff apply --original ./your-copy --diff THIS_FOLDER --out ./bench",
        "```",
        "",
    ]
    return "\n".join(lines).encode("utf-8")
