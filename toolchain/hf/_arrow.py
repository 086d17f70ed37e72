"""Parquet plumbing shared by the benchmark and diff writers (no stability guarantee): the
one set of writer options that makes a file's bytes a function of its rows and the pyarrow
version (``docs/huggingface.md``)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from toolchain._internal.deps import require
from toolchain.model.columns import ColumnSpec

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")

__all__ = [
    "HF_METADATA_KEY",
    "arrow_type",
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
    "write_batch_size": 1024,
    "write_page_index": False,
    "store_schema": True,
    "use_compliant_nested_type": True,
}


@contextmanager
def open_writer(
    path: Path, schema: pa.Schema, *, statistics: Sequence[str] | None = None
) -> Iterator[Any]:
    """A ``pyarrow.parquet.ParquetWriter`` with the fixed options, closed on exit.

    ``statistics``: the column paths to write statistics for (default: all).
    """
    pq = require("pyarrow.parquet")
    options = dict(_WRITER_OPTIONS)
    if statistics is not None:
        options["write_statistics"] = list(statistics)
    writer = pq.ParquetWriter(str(path), schema, **options)
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


def tmp_name(folder: Path, what: str) -> Path:
    from toolchain._internal.atomic import TMP_PREFIX

    return folder / f"{TMP_PREFIX}{os.getpid()}-{what}"


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
) -> list[tuple[Path, int]]:
    """Write ``rows`` as ``folder/<split>-0000N-of-0000M.parquet``; return (path, rows) per shard.

    A row group ends after ``row_group_rows`` rows or once its rows' sizes reach
    ``row_group_bytes``; a shard ends after the row group with which its size
    reaches ``shard_bytes``. Shards are written under temporary names and
    renamed once M is known; on any error, none is left behind.
    """
    temps: list[tuple[Path, int]] = []
    finals: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            writer: Any = None
            shard_size = shard_rows = buf_bytes = 0
            buf: list[T] = []
            for row in itertools.chain(rows, [None]):
                if row is not None:
                    buf.append(row)
                    buf_bytes += size_of(row)
                full = len(buf) >= row_group_rows or buf_bytes >= row_group_bytes
                if not buf or not (full or row is None):
                    continue
                if writer is None:
                    temps.append((tmp_name(folder, f"{split}-{len(temps)}.parquet"), 0))
                    writer = stack.enter_context(
                        open_writer(temps[-1][0], schema, statistics=statistics)
                    )
                writer.write_table(to_table(buf), row_group_size=len(buf))
                shard_size += buf_bytes
                shard_rows += len(buf)
                buf, buf_bytes = [], 0
                temps[-1] = (temps[-1][0], shard_rows)
                if shard_size >= shard_bytes:
                    stack.close()  # the ExitStack is empty again, ready for the next shard
                    writer, shard_size, shard_rows = None, 0, 0
        out = []
        for i, (tmp, count) in enumerate(temps):
            final = folder / f"{split}-{i:05d}-of-{len(temps):05d}.parquet"
            os.replace(tmp, final)
            finals.append(final)
            out.append((final, count))
        return out
    except BaseException:
        for path in [t for t, _ in temps] + finals:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
