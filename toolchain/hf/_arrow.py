"""Parquet plumbing shared by the benchmark and diff writers (no stability guarantee): the
one set of writer options that makes a file's bytes a function of its rows and the pyarrow
version (``docs/huggingface.md``), and shards written as safely as every other file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from toolchain._internal import safefs
from toolchain._internal.deps import require
from toolchain.model.columns import ColumnSpec
from toolchain.model.layout import is_parquet_shard, parquet_shard_name

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")

__all__ = [
    "HF_METADATA_KEY",
    "WrittenShard",
    "arrow_type",
    "column",
    "feature_json",
    "features_metadata",
    "open_writer",
    "specs_from_features",
    "write_shards",
]

HF_METADATA_KEY = b"huggingface"
"""The schema-metadata key ``datasets`` reads its features from."""

_WRITER_OPTIONS: Mapping[str, Any] = {
    "version": "2.6",
    "compression": "none",  # PNG bytes and sealed payloads do not compress
    "use_dictionary": False,
    "write_statistics": True,
    "data_page_size": 1 << 20,
    "data_page_version": "1.0",
    # a page ends at the first value with which it reaches data_page_size; at the default
    # batch of 1,024 rows, a row group of 100 PNGs of 400 kB was one 41 MB page, held
    # three times over while written (docs/performance.md)
    "write_batch_size": 1,
    "write_page_index": False,
    "store_schema": True,
    "use_compliant_nested_type": True,
}


@contextmanager
def open_writer(
    where: Path | IO[bytes] | io.RawIOBase,
    schema: pa.Schema,
    *,
    statistics: Sequence[str] | None = None,
) -> Iterator[Any]:
    """A ``pyarrow.parquet.ParquetWriter`` with the fixed options, closed on exit.

    ``where``: a path, or a file open for writing (left open). ``statistics``: the column
    paths to write statistics for (default: all).
    """
    pq = require("pyarrow.parquet")
    options = dict(_WRITER_OPTIONS)
    if statistics is not None:
        options["write_statistics"] = list(statistics)
    writer = pq.ParquetWriter(str(where) if isinstance(where, Path) else where, schema, **options)
    try:
        yield writer
    finally:
        writer.close()


def feature_json(spec: ColumnSpec) -> dict[str, object]:
    """The ``datasets`` feature (as ``Features.to_dict`` writes it) of a carried column."""
    if spec.type == "class_label":
        return {"names": list(spec.names), "_type": "ClassLabel"}
    dtype = {"int": "int64", "string": "string", "bool": "bool", "float": "float64"}[spec.type]
    return {"dtype": dtype, "_type": "Value"}


def arrow_type(spec: ColumnSpec) -> pa.DataType:
    pa_ = require("pyarrow")
    return {
        "class_label": pa_.int64(),
        "int": pa_.int64(),
        "string": pa_.string(),
        "bool": pa_.bool_(),
        "float": pa_.float64(),
    }[spec.type]


def column(values: Sequence[object], type: pa.DataType) -> pa.Array:
    """``pa.array(values, type)`` for the types written here (binary, string, int64, float64,
    bool; ``None`` is null), built from buffers: ``pa.array`` imports pandas on its first
    call, even for a numpy array, which made a parquet run's peak RSS 378 MiB against a
    folder run's 72 MiB (``docs/performance.md``)."""
    pa_ = require("pyarrow")
    np = require("numpy")
    n = len(values)
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
    nulls = n - int(np.count_nonzero(valid))
    bitmap = pa_.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    if type in (pa_.binary(), pa_.string()):
        text = type == pa_.string()
        items: list[bytes | memoryview] = []
        for v in values:
            if v is None:
                items.append(b"")
            elif text and isinstance(v, str):
                items.append(v.encode("utf-8"))
            elif not text and isinstance(v, bytes):
                items.append(v)
            elif not text and isinstance(v, bytearray | memoryview):
                items.append(memoryview(v).cast("B"))  # joined below: no copy before that
            else:
                raise TypeError(f"a {type} column cannot hold {v!r}")
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=n), out=offsets[1:])
        if offsets[-1] >= 1 << 31:
            raise OverflowError(f"{offsets[-1]} bytes do not fit one {type} array (2 GiB)")
        data = pa_.py_buffer(b"".join(items))
        buffers = [bitmap, pa_.py_buffer(offsets.astype(np.int32)), data]
    elif type == pa_.bool_():
        for v in values:  # as pa.array: a bool, not anything truthy
            if v is not None and not isinstance(v, bool | np.bool_):
                raise TypeError(f"a {type} column cannot hold {v!r}")
        bits = np.fromiter((bool(v) for v in values), dtype=bool, count=n)
        buffers = [bitmap, pa_.py_buffer(np.packbits(bits, bitorder="little"))]
    elif type in (pa_.int64(), pa_.float64()):
        dtype = np.int64 if type == pa_.int64() else np.float64
        if type == pa_.int64():  # as pa.array: a bool is not an integer here
            for v in values:
                if isinstance(v, bool | np.bool_):
                    raise TypeError(f"a {type} column cannot hold {v!r}")
        filled = np.fromiter((0 if v is None else v for v in values), dtype=dtype, count=n)
        buffers = [bitmap, pa_.py_buffer(filled)]
    else:
        raise TypeError(f"no column of type {type} is written here")
    out = pa_.Array.from_buffers(type, n, buffers, null_count=nulls)
    out.validate(full=type == pa_.string())  # UTF-8, offsets
    return out


def features_metadata(features: Mapping[str, object]) -> bytes:
    """The ``huggingface`` schema metadata: ``{"info": {"features": ...}}``, column order kept."""
    return json.dumps(
        {"info": {"features": dict(features)}}, ensure_ascii=True, separators=(", ", ": ")
    ).encode("ascii")


def specs_from_features(features: Mapping[str, Any], *, skip: Sequence[str]) -> list[ColumnSpec]:
    """ColumnSpecs from a features dict as we write it (the columns not in ``skip``)."""
    specs = []
    dtypes = {"int64": "int", "string": "string", "bool": "bool", "float64": "float"}
    for name, feat in features.items():
        if name in skip:
            continue
        if not isinstance(feat, dict):
            raise ValueError(f"column {name!r}: feature {feat!r} is not an object")
        if feat.get("_type") == "ClassLabel":
            names = feat.get("names")
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"column {name!r}: ClassLabel without a list of names")
            specs.append(ColumnSpec(name=name, type="class_label", names=tuple(names)))
        elif feat.get("_type") == "Value" and feat.get("dtype") in dtypes:
            specs.append(ColumnSpec(name=name, type=dtypes[str(feat["dtype"])]))
        else:
            raise ValueError(f"column {name!r}: feature {feat!r} is not one we write")
    return specs


@dataclass(frozen=True, kw_only=True, slots=True)
class WrittenShard:
    """A shard as written: its path, rows, and the SHA-256 (hex) and size of the bytes written."""

    path: Path
    rows: int
    sha256: str
    size: int


class _Digesting(io.RawIOBase):
    """Writes through to ``file``, hashing and counting: the digest of what was written, not
    of what a path holds when read back."""

    def __init__(self, file: IO[bytes]):
        self._file, self._hash, self.size = file, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._file.write(view)
        self._hash.update(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def write_shards(
    folder: Path,
    split: str,
    schema: pa.Schema,
    rows: Iterable[T],
    *,
    size_of: Callable[[T], int],
    to_table: Callable[[list[T]], pa.Table],
    row_group_rows: int,
    row_group_bytes: int,
    shard_bytes: int,
    statistics: Sequence[str] | None = None,
) -> list[WrittenShard]:
    """Write ``rows`` as ``folder/<split>-0000N-of-0000M.parquet``; return each shard.

    A row group ends after ``row_group_rows`` rows or once its rows' sizes reach
    ``row_group_bytes``; a shard ends after the row group with which its size
    reaches ``shard_bytes``. ``folder`` (made if missing) is entered without following a
    link, and held open; shards are written under exclusive random temp names in it and
    renamed once M is known (:mod:`safefs`); on any error, none is left behind. Raises
    :class:`FileExistsError` if the folder holds shards of ``split`` already.
    """
    with safefs.open_folder(folder.parent, folder.name, create=True) as where:
        existing = [n for n in where.names() if is_parquet_shard(n, split)]
        if existing:
            raise FileExistsError(
                errno.EEXIST, "a shard of the split exists", str(folder / existing[0])
            )
        temps: list[str] = []
        done: list[tuple[int, _Digesting]] = []
        finals: list[str] = []
        try:
            with contextlib.ExitStack() as stack:
                writer: Any = None
                sink: _Digesting | None = None
                shard_size = shard_rows = buf_bytes = 0
                buf: list[T] = []
                pool = require("pyarrow").default_memory_pool()
                for row in itertools.chain(rows, [None]):
                    if row is not None:
                        buf.append(row)
                        buf_bytes += size_of(row)
                    full = len(buf) >= row_group_rows or buf_bytes >= row_group_bytes
                    if not buf or not (full or row is None):
                        continue
                    if writer is None:
                        tmp, file = where.create_temp(f"{split}-{len(temps)}.parquet")
                        temps.append(tmp)
                        sink = _Digesting(stack.enter_context(file))
                        writer = stack.enter_context(
                            open_writer(sink, schema, statistics=statistics)
                        )
                    table, count = to_table(buf), len(buf)
                    buf.clear()  # the rows' bytes are in the table now: hold them once
                    writer.write_table(table, row_group_size=count)
                    del table
                    # pyarrow's pool (mimalloc) keeps what it freed: without this a run's
                    # peak grew by 58 MB from 150 to 500 rows of 500x375 PNGs
                    pool.release_unused()
                    shard_size += buf_bytes
                    shard_rows += count
                    buf_bytes = 0
                    if shard_size >= shard_bytes:
                        stack.close()  # the footer written, the file closed; the stack is empty
                        assert sink is not None
                        done.append((shard_rows, sink))
                        writer, sink, shard_size, shard_rows = None, None, 0, 0
                if sink is not None:  # the last shard, not full
                    stack.close()
                    done.append((shard_rows, sink))
            out = []
            for i, (tmp, (count, written)) in enumerate(zip(temps, done, strict=True)):
                final = parquet_shard_name(split, i, len(temps))
                where.replace(tmp, final)
                finals.append(final)
                out.append(
                    WrittenShard(
                        path=folder / final, rows=count, sha256=written.sha256, size=written.size
                    )
                )
            return out
        except BaseException:
            for name in temps + finals:
                with contextlib.suppress(OSError):
                    where.remove(name)
            raise
