"""The benchmark as Hugging Face parquet shards, ``data/<split>-0000N-of-0000M.parquet``,
written and read a row group at a time (rules: ``docs/huggingface.md``, "Parquet shards")."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolchain._internal.deps import require
from toolchain._internal.jsonload import load_json
from toolchain._internal.parquet import open_parquet
from toolchain.errors import InputError, OutputError, os_error_text
from toolchain.hf._arrow import (
    HF_METADATA_KEY,
    arrow_type,
    column,
    feature_json,
    features_metadata,
    specs_from_features,
    write_shards,
)
from toolchain.model.columns import ColumnSpec, ColumnValue

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DATA_DIR",
    "ROW_GROUP_BYTES",
    "ROW_GROUP_ROWS",
    "SHARD_BYTES",
    "BenchmarkRow",
    "ParquetFile",
    "ParquetWriteResult",
    "benchmark_features",
    "parquet_columns",
    "parquet_files",
    "read_parquet",
    "write_parquet",
]

DATA_DIR = "data"
ROW_GROUP_ROWS = 100
"""Rows per row group (what ``datasets`` uses for image datasets)."""
ROW_GROUP_BYTES = 64 << 20
"""A row group also ends once its PNG bytes reach 64 MiB (large images)."""
_READ_BATCH_ROWS = 8
"""Rows read at a time: a row group of 100 PNGs of 400 kB is never held whole."""
SHARD_BYTES = 500 << 20
"""A shard ends after the row group with which its PNG bytes reach 500 MiB."""
_IMAGE, _ID = "image", "sample_id"
_INT64 = range(-(1 << 63), 1 << 63)
"""What an ``int`` column holds (``int64``, in every format)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BenchmarkRow:
    """One benchmark sample: its id, output path, canonical PNG bytes, carried column values."""

    id: str
    path: str
    png: bytes
    columns: Mapping[str, ColumnValue] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class ParquetFile:
    """A written shard: path relative to the benchmark folder, SHA-256 (hex), size, rows."""

    path: str
    sha256: str
    size: int
    rows: int


@dataclass(frozen=True, kw_only=True)
class ParquetWriteResult:
    split: str
    files: tuple[ParquetFile, ...]
    columns: tuple[ColumnSpec, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def benchmark_features(columns: Sequence[ColumnSpec]) -> dict[str, object]:
    """The benchmark's ``datasets`` features (``Features.to_dict`` form), in column order."""
    features: dict[str, object] = {
        _IMAGE: {"_type": "Image"},
        _ID: {"dtype": "string", "_type": "Value"},
    }
    for spec in columns:
        if spec.name in features:
            raise ValueError(f"carried column {spec.name!r} clashes with the benchmark's own")
        features[spec.name] = feature_json(spec)
    return features


def _schema(columns: Sequence[ColumnSpec]) -> pa.Schema:
    pa_ = require("pyarrow")
    fields = [
        pa_.field(_IMAGE, pa_.struct([("bytes", pa_.binary()), ("path", pa_.string())])),
        pa_.field(_ID, pa_.string()),
        *(pa_.field(s.name, arrow_type(s)) for s in columns),
    ]
    meta = {HF_METADATA_KEY: features_metadata(benchmark_features(columns))}
    return pa_.schema(fields, metadata=meta)


def _check_row(row: BenchmarkRow, columns: Sequence[ColumnSpec], previous: str | None) -> None:
    if previous is not None and row.id.encode("utf-8") <= previous.encode("utf-8"):
        raise ValueError(f"rows must come in sorted-id order: {row.id!r} after {previous!r}")
    if set(row.columns) != {s.name for s in columns}:
        raise ValueError(
            f"sample {row.id!r} carries columns {sorted(row.columns)}, "
            f"expected {[s.name for s in columns]}"
        )
    for spec in columns:
        v = row.columns[spec.name]
        ok = {
            "class_label": isinstance(v, int)
            and not isinstance(v, bool)
            and (v == -1 or 0 <= v < len(spec.names)),
            "int": isinstance(v, int) and not isinstance(v, bool) and v in _INT64,
            "string": isinstance(v, str),
            "bool": isinstance(v, bool),
            "float": isinstance(v, str) and _is_float(v),
        }[spec.type]
        if not ok:
            kind = "an int64" if spec.type == "int" else f"a {spec.type}"
            raise ValueError(f"sample {row.id!r}: {v!r} is not {kind} for {spec.name!r}")


def _is_float(v: str) -> bool:
    try:
        return repr(float(v)) == v
    except ValueError:
        return False


def _table(rows: Sequence[BenchmarkRow], columns: Sequence[ColumnSpec], schema: Any) -> pa.Table:
    pa_ = require("pyarrow")
    image = pa_.StructArray.from_arrays(
        [
            column([r.png for r in rows], pa_.binary()),
            column([r.path for r in rows], pa_.string()),
        ],
        fields=list(schema.field(_IMAGE).type),
    )
    arrays = [image, column([r.id for r in rows], pa_.string())]
    for spec in columns:
        values: list[object] = [r.columns[spec.name] for r in rows]
        if spec.type == "float":
            values = [float(str(v)) for v in values]
        arrays.append(column(values, arrow_type(spec)))
    return pa_.Table.from_arrays(arrays, schema=schema)


def write_parquet(
    out: str | os.PathLike[str],
    rows: Iterable[BenchmarkRow],
    columns: Sequence[ColumnSpec],
    *,
    split: str = "train",
    shard_bytes: int = SHARD_BYTES,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> ParquetWriteResult:
    """Write ``rows`` (sorted by id) as ``OUT/data/<split>-0000N-of-0000M.parquet``.

    ``data/`` is entered without following a link and the shards are written under
    exclusive random temp names in it, then renamed once the count M is known (see
    :func:`~toolchain.hf._arrow.write_shards`); on any error none is left behind. Refuses to
    write over existing shards of ``split`` (the output folder is prepared by the caller).
    """
    schema = _schema(columns)
    root = Path(out)
    data = root / DATA_DIR
    previous: list[str] = []

    def checked() -> Iterator[BenchmarkRow]:
        for row in rows:
            _check_row(row, columns, previous[0] if previous else None)
            previous[:] = [row.id]
            yield row

    try:
        root.mkdir(parents=True, exist_ok=True)
        written = write_shards(
            data,
            split,
            schema,
            checked(),
            size_of=lambda r: len(r.png),
            to_table=lambda buf: _table(buf, columns, schema),
            row_group_rows=row_group_rows,
            row_group_bytes=ROW_GROUP_BYTES,
            shard_bytes=shard_bytes,
        )
    except FileExistsError as e:
        raise OutputError(
            f"{e.filename} already exists",
            hint="write the parquet benchmark into an empty output folder",
        ) from None
    except OSError as e:
        raise OutputError(f"cannot write parquet shards into {data}: {os_error_text(e)}") from None
    if not written:
        raise ValueError("no rows: a benchmark has at least one sample")
    files = tuple(
        ParquetFile(
            path=f"{DATA_DIR}/{shard.path.name}",
            sha256=shard.sha256,
            size=shard.size,
            rows=shard.rows,
        )
        for shard in written
    )
    return ParquetWriteResult(split=split, files=files, columns=tuple(columns))


# -- reading ---------------------------------------------------------------------------


def parquet_files(out: str | os.PathLike[str], *, split: str | None = None) -> tuple[Path, ...]:
    """The shards of a parquet benchmark (one split), in order; checked to be complete."""
    from toolchain.errors import SourceError
    from toolchain.source.hf.layout import parquet_layout

    root = Path(out)
    try:
        layout, _ = parquet_layout(root)
    except SourceError as e:
        raise InputError(f"parquet benchmark {root}: {e.message}", hint=e.hint) from None
    splits = sorted(s for c, s in layout if c == "default")
    if not splits:
        raise InputError(
            f"{root} holds no {DATA_DIR}/<split>-NNNNN-of-NNNNN.parquet shards",
            hint="pass the folder of a parquet benchmark",
        )
    if split is None:
        if len(splits) > 1:
            raise InputError(f"{root} has several splits: {', '.join(splits)}", hint="pass split=")
        split = splits[0]
    if split not in splits:
        raise InputError(f"{root} has no split {split!r}; its splits: {', '.join(splits)}")
    return tuple(root / rel for rel in layout[("default", split)])


def _specs(schema: pa.Schema, where: str) -> tuple[ColumnSpec, ...]:
    raw = (schema.metadata or {}).get(HF_METADATA_KEY)
    hint = "pass a folder that benchmark-regen wrote in the parquet format"
    doc = load_json(raw, what=f"{where}: its huggingface schema metadata", error=InputError,
                    hint=hint) if raw else None  # fmt: skip
    try:
        features = doc["info"]["features"] if doc is not None else None
        if not isinstance(features, dict) or list(features)[:2] != [_IMAGE, _ID]:
            raise ValueError("features do not start with image, sample_id")
        if list(features) != schema.names:
            raise ValueError("features do not match the columns")
        return tuple(specs_from_features(features, skip=(_IMAGE, _ID)))
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{where} is not a benchmark shard ({e})", hint=hint) from None


def parquet_columns(
    out: str | os.PathLike[str], *, split: str | None = None
) -> tuple[ColumnSpec, ...]:
    """The carried columns of a parquet benchmark, from the first shard's features."""
    first = parquet_files(out, split=split)[0]
    pf = open_parquet(first, error=InputError, what=str(first))
    try:
        return _specs(pf.schema_arrow, str(first))
    finally:
        pf.close()


def read_parquet(
    out: str | os.PathLike[str], *, split: str | None = None
) -> Iterator[BenchmarkRow]:
    """Every row of a parquet benchmark, shard by shard, row group by row group.

    Raises :class:`~toolchain.errors.InputError` naming the file (and row)
    when a shard is unreadable, has other columns than the first, or a cell
    is empty.
    """
    pa_ = require("pyarrow")
    expected: tuple[ColumnSpec, ...] | None = None
    for path in parquet_files(out, split=split):
        where = path.relative_to(Path(out)).as_posix()
        pf = open_parquet(path, error=InputError, what=where, buffer_size=1 << 20)
        try:
            specs = _specs(pf.schema_arrow, where)
            if expected is None:
                expected = specs
            elif specs != expected:
                raise InputError(f"{where}: its columns differ from the first shard's")
            start = 0
            for g in range(pf.metadata.num_row_groups):
                batches = pf.iter_batches(
                    batch_size=_READ_BATCH_ROWS, row_groups=[g], use_threads=False
                )
                while True:
                    try:
                        batch = next(batches, None)
                    except (pa_.ArrowException, OSError) as e:
                        raise InputError(f"{where}, row group {g}: cannot be read ({e})") from None
                    if batch is None:
                        break
                    yield from _rows(batch, specs, where, start)
                    start += batch.num_rows
                    del batch
        finally:
            pf.close()


def _rows(
    batch: pa.RecordBatch, specs: Sequence[ColumnSpec], where: str, start: int
) -> Iterator[BenchmarkRow]:
    image = batch.column(_IMAGE)
    pngs, paths = image.field("bytes"), image.field("path")
    ids = batch.column(_ID)
    cols = [(s, batch.column(s.name)) for s in specs]
    for j in range(batch.num_rows):
        try:
            png, path, sid = pngs[j].as_py(), paths[j].as_py(), ids[j].as_py()
            row = [(spec, arr[j].as_py()) for spec, arr in cols]
        except UnicodeDecodeError:  # a parquet writer need not check its strings
            raise InputError(f"{where}, row {start + j}: a text cell is not UTF-8") from None
        if not image[j].is_valid or png is None or path is None or sid is None:
            raise InputError(f"{where}, row {start + j}: empty image, path or sample_id cell")
        values: dict[str, ColumnValue] = {}
        for spec, v in row:
            if v is None:
                raise InputError(f"{where}, row {start + j}: column {spec.name!r} is empty")
            values[spec.name] = repr(float(v)) if spec.type == "float" else v
        yield BenchmarkRow(id=sid, path=path, png=png, columns=values)
