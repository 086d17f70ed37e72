"""Hugging Face originals: Hub-layout parquet folders, ``save_to_disk`` folders, ``Dataset``\\ s.

Three sources share one core (:class:`HFSource`): the split's rows are read
batch by batch (a parquet row group, an Arrow record batch), in storage order,
and each row is one sample whose bytes are the image cell's ``bytes``.

* :class:`ParquetSource`: a folder of parquet shards in a Hub layout, or one
  ``.parquet`` file (see :func:`parquet_layout` and ``docs/huggingface.md``).
* :class:`ArrowSource`: a ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` folder.
* :class:`DatasetSource`: an in-memory :class:`datasets.Dataset` (Python API only).

Sample ids (``ids="auto"``): the image's ``path`` when every row of the split
has one; they must then be unique and safe ids, else :class:`SourceError`
naming both rows (pass ``ids="row"``). When some row has no path, every id is
``<split>/<row index>``, the row's index in the split as ``load_dataset``
numbers it. ``ids="row"`` and ``ids="path"`` force one rule.

Carried columns (``columns=``): by default every scalar column (integers,
strings, booleans, floats) and every ``ClassLabel``; ``"label,caption"``
picks, ``"-caption"`` drops (see :func:`select_columns`).

``datasets`` and ``pyarrow`` are imported on first use; without them an
:class:`~toolchain.errors.InputError` says ``pip install 'benchmark-regen[hf]'``.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from toolchain._internal.deps import require
from toolchain.errors import SourceError
from toolchain.model.columns import RESERVED_COLUMNS, ColumnSpec, ColumnValue
from toolchain.model.ids import check_sample_id
from toolchain.source._common import (
    MAX_SAMPLE_BYTES,
    Listing,
    Sample,
    Source,
    class_labels_from_ids,
    select_columns,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ArrowSource",
    "DatasetSource",
    "HFSource",
    "ParquetSource",
    "class_labels_from_ids",
    "detect",
    "parquet_layout",
    "select_columns",
]

"""Names the benchmark's own columns use (parquet ``image``/``sample_id``, ``metadata.jsonl``
``file_name``): a carried column may not have them."""

IDS_MODES = ("auto", "path", "row")
DATASET_BATCH_ROWS = 1000
"""Rows per batch when reading an in-memory :class:`datasets.Dataset`."""
READ_BATCH_ROWS = 16
"""Rows decoded at a time when streaming a parquet row group."""

_SPLIT = r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*"  # datasets' split names: ^\w+(\.\w+)*$ (ASCII here)
_SHARDED = re.compile(rf"(?P<split>{_SPLIT})-(?P<i>[0-9]{{5}})-of-(?P<n>[0-9]{{5}})\.parquet")
_PLAIN = re.compile(rf"(?P<split>{_SPLIT})\.parquet")
_SPLIT_DIR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # refs/convert/parquet: also partial-train
_PARQUET_MAGIC = b"PAR1"


# -- layouts ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _ShardFile:
    rel: str
    config: str
    split: str
    index: int | None = None
    count: int | None = None


def _classify(rel: str) -> _ShardFile | None:
    """Which (config, split) a parquet file at ``rel`` belongs to, or ``None`` if no layout fits."""
    parts = rel.split("/")
    name = parts[-1]
    if len(parts) <= 2:
        config = "default" if len(parts) == 1 or parts[0] == "data" else parts[0]
        m = _SHARDED.fullmatch(name)
        if m:
            return _ShardFile(
                rel=rel,
                config=config,
                split=m["split"],
                index=int(m["i"]),
                count=int(m["n"]),
            )
        m = _PLAIN.fullmatch(name)
        if m and not m["split"].isdigit():
            return _ShardFile(rel=rel, config=config, split=m["split"])
        return None
    if len(parts) == 3 and _SPLIT_DIR.fullmatch(parts[1]) and not parts[0].startswith("."):
        return _ShardFile(rel=rel, config=parts[0], split=parts[1])
    return None


def _is_hidden(rel: str) -> bool:
    return any(p.startswith(".") for p in rel.split("/"))


def parquet_layout(
    root: Path,
) -> tuple[dict[tuple[str, str], tuple[str, ...]], dict[str, int]]:
    """The parquet shards of a folder, by (config, split), and the other files by kind.

    Accepted (``docs/huggingface.md``):

    * ``[data/]<split>-NNNNN-of-NNNNN.parquet`` (``push_to_hub``; config ``default``)
      and ``<config>/<split>-NNNNN-of-NNNNN.parquet``: every shard 0..N-1 present;
    * ``<config>/<split>/<name>.parquet`` (the Hub's ``refs/convert/parquet`` layout);
    * ``[data/]<split>.parquet`` and ``<config>/<split>.parquet``: one file per split.

    Hidden entries are skipped; a symlinked shard file (the Hub cache's
    ``snapshots/`` folders link into ``blobs/``) is read where it points.
    Shards are in the order of their paths' UTF-8 bytes (``load_dataset``'s order).
    """
    found: dict[tuple[str, str], list[_ShardFile]] = {}
    ignored: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_walk):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for fn in sorted(filenames):
            rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
            if _is_hidden(rel):
                ignored["hidden"] = ignored.get("hidden", 0) + 1
                continue
            if not fn.endswith(".parquet"):
                kind = Path(fn).suffix.lower() or "(none)"
                ignored[kind] = ignored.get(kind, 0) + 1
                continue
            shard = _classify(rel)
            if shard is None:
                raise SourceError(
                    f"{rel!r} in {root} is a parquet file outside the Hugging Face layouts "
                    "(data/<split>-NNNNN-of-NNNNN.parquet, <config>/<split>/NNNN.parquet, "
                    "<split>.parquet)",
                    hint="move or rename it, or pass the .parquet file itself as the original",
                )
            found.setdefault((shard.config, shard.split), []).append(shard)
    layout: dict[tuple[str, str], tuple[str, ...]] = {}
    for key, shards in sorted(found.items()):
        _check_shard_set(root, key, shards)
        layout[key] = tuple(sorted((s.rel for s in shards), key=lambda r: r.encode("utf-8")))
    return layout, ignored


def _check_shard_set(root: Path, key: tuple[str, str], shards: list[_ShardFile]) -> None:
    config, split = key
    what = f"split {split!r}" + (f" of config {config!r}" if config != "default" else "")
    names = ", ".join(sorted(s.rel for s in shards))

    def kind(s: _ShardFile) -> str:
        if s.index is not None:
            return "sharded"
        return "plain" if len(s.rel.split("/")) <= 2 else "folder"

    kinds = {kind(s) for s in shards}
    if len(kinds) > 1 or (kinds == {"plain"} and len(shards) > 1):
        raise SourceError(
            f"{what} in {root} is stored twice, in two layouts: {names}",
            hint="keep one copy of the split (remove the other files)",
        )
    counts = sorted({s.count for s in shards if s.count is not None})
    if len(counts) > 1:
        raise SourceError(
            f"the shards of {what} in {root} disagree on how many there are: {names}",
            hint="download the split again: its shards come from different uploads",
        )
    if counts:
        n = counts[0]
        have = {s.index for s in shards}
        missing = [i for i in range(n) if i not in have]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise SourceError(
                f"{what} in {root} has {len(have)} of its {n} shards; missing: "
                f"{split}-{missing[0]:05d}-of-{n:05d}.parquet{more}",
                hint="download the missing shards: a partial split would make a partial benchmark",
            )
        if len(shards) != n:
            raise SourceError(
                f"{what} in {root} has shard files from two folders: {names}",
                hint="keep one copy of the split (remove the other files)",
            )


def _raise_walk(e: OSError) -> None:
    raise SourceError(f"cannot list {e.filename}: {e.strerror}") from None


def detect(path: str | os.PathLike[str]) -> Literal["parquet", "arrow"] | None:
    """Is ``path`` a Hugging Face dataset? ``"parquet"``, ``"arrow"`` (``save_to_disk``), or None.

    ``"parquet"``: a ``.parquet`` file, or a folder with parquet shards in a Hub
    layout at depth at most 2 (looked for without walking a large image tree).
    ``"arrow"``: a folder with ``dataset_dict.json``, or ``state.json`` and
    ``dataset_info.json``.
    """
    p = Path(path)
    if p.is_file():
        return "parquet" if p.suffix.lower() == ".parquet" else None
    if not p.is_dir():
        return None
    if (p / "dataset_dict.json").is_file() or (
        (p / "state.json").is_file() and (p / "dataset_info.json").is_file()
    ):
        return "arrow"
    try:
        with os.scandir(p) as top:
            entries = sorted((e.name, e.is_dir()) for e in top)
        for name, is_dir in entries:
            if name.startswith("."):
                continue
            if not is_dir:
                if _classify(name) is not None:
                    return "parquet"
                continue
            with os.scandir(p / name) as sub:
                for e in sub:
                    rel = f"{name}/{e.name}"
                    if e.name.startswith("."):
                        continue
                    if e.is_dir():
                        if _SPLIT_DIR.fullmatch(e.name) and _has_numbered_shard(p / rel):
                            return "parquet"
                    elif _classify(rel) is not None:
                        return "parquet"
    except OSError:
        return None
    return None


def _has_numbered_shard(folder: Path) -> bool:
    # refs/convert/parquet shards are 0000.parquet, 0001.parquet, ...: one stat, no listing
    return (folder / "0000.parquet").is_file()


# -- columns ---------------------------------------------------------------------------


def _column_spec(name: str, feature: Any) -> ColumnSpec | None:
    """The ColumnSpec of a ``datasets`` feature, or None if it cannot be carried."""
    ds = require("datasets")
    if isinstance(feature, ds.ClassLabel):
        return ColumnSpec(name=name, type="class_label", names=tuple(feature.names))
    if not isinstance(feature, ds.Value):
        return None
    dtype = str(feature.dtype)
    if dtype == "bool":
        return ColumnSpec(name=name, type="bool")
    if re.fullmatch(r"u?int(8|16|32|64)", dtype):
        return ColumnSpec(name=name, type="int")
    if dtype in ("string", "large_string"):
        return ColumnSpec(name=name, type="string")
    if dtype in ("float16", "float32", "float64", "float", "double", "halffloat"):
        return ColumnSpec(name=name, type="float")
    return None


def _is_image_feature(feature: Any) -> bool:
    ds = require("datasets")
    if isinstance(feature, ds.Image):
        return True
    # no `huggingface` schema metadata: the Image storage type, a struct of bytes and path
    if isinstance(feature, dict) and set(feature) == {"bytes", "path"}:
        b, p = feature["bytes"], feature["path"]
        return (
            isinstance(b, ds.Value)
            and str(b.dtype) in ("binary", "large_binary")
            and isinstance(p, ds.Value)
            and str(p.dtype) in ("string", "large_string")
        )
    return False


def _value(spec: ColumnSpec, raw: object) -> ColumnValue:
    if spec.type in ("class_label", "int"):
        assert isinstance(raw, int)
        return int(raw)
    if spec.type == "bool":
        return bool(raw)
    if spec.type == "float":
        assert isinstance(raw, int | float)
        return repr(float(raw))
    return str(raw)


# -- the shared core -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _Shard:
    name: str
    """For messages: the file's path inside the source (or ``dataset``)."""
    start: int
    """Index in the split of the shard's first row."""
    batch_starts: tuple[int, ...]
    """Index in the shard of each batch's first row, and the row count at the end."""

    @property
    def rows(self) -> int:
        return self.batch_starts[-1]


@dataclass(frozen=True, kw_only=True, slots=True)
class _Index:
    listing: Listing
    specs: tuple[ColumnSpec, ...]
    row_ids: tuple[str, ...]
    rows: Mapping[str, int]


class HFSource(Source):
    """What the three Hugging Face sources share: columns, ids, checks, batch-wise reads.

    A subclass provides the split name, its shards (in ``load_dataset`` order)
    with their batch boundaries, the ``datasets`` features, and reads one
    batch of some columns (:meth:`_read_batch`) or streams a shard's batches
    (:meth:`_stream`).
    """

    path: Path
    split: str | None
    image_column: str | None
    columns: str | Sequence[str] | None
    ids: str

    def _setup(self) -> None:
        if self.ids not in IDS_MODES:
            raise SourceError(
                f"ids must be one of {', '.join(IDS_MODES)}, not {self.ids!r}",
                hint="auto: paths when every row has one; row: <split>/<row>; path: paths only",
            )
        self._lock = threading.RLock()
        self._index: _Index | None = None
        self._cache: tuple[tuple[int, int], pa.Table] | None = None

    def __getstate__(self) -> dict[str, object]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_cache")}
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._cache = None

    @property
    def split_name(self) -> str:
        """The split read (the benchmark's parquet shards are named after it)."""
        return self._split_name() or "train"

    # -- to provide -------------------------------------------------------------------

    def _split_name(self) -> str:
        raise NotImplementedError

    def _features(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def _shards(self) -> tuple[_Shard, ...]:
        raise NotImplementedError

    def _read_batch(self, shard: int, batch: int, columns: Sequence[str]) -> pa.Table:
        raise NotImplementedError

    def _stream(self, shard: int, columns: Sequence[str]) -> Iterator[tuple[int, pa.Table]]:
        """The shard's batches in order (index, table); default: :meth:`_read_batch`."""
        for b in range(len(self._shards()[shard].batch_starts) - 1):
            yield b, self._read_batch(shard, b, columns)

    def _null_image_rows_hint(self, shard: int, batch: int) -> bool:
        """True if the batch may hold a null image (parquet statistics); default: unknown."""
        return False

    # -- columns, ids -----------------------------------------------------------------

    def _where(self) -> str:
        return f"split {self._split_name()!r} of {self.path}"

    def _image_column(self) -> str:
        features = self._features()
        if self.image_column is not None:
            if self.image_column not in features:
                raise SourceError(
                    f"{self._where()} has no column {self.image_column!r}",
                    hint="columns: " + ", ".join(features),
                )
            if not _is_image_feature(features[self.image_column]):
                raise SourceError(
                    f"column {self.image_column!r} of {self._where()} is not an image "
                    f"(its feature is {features[self.image_column]})",
                    hint="pass the column that holds the images (an Image feature)",
                )
            return self.image_column
        found = [n for n, f in features.items() if _is_image_feature(f)]
        if not found:
            raise SourceError(
                f"{self._where()} has no image column (no Image feature, no struct of "
                f"bytes and path); its columns: {', '.join(features) or '(none)'}",
                hint="this dataset holds no images to make a benchmark from",
            )
        if len(found) > 1:
            raise SourceError(
                f"{self._where()} has several image columns: {', '.join(found)}",
                hint=f"choose one with --image-column (e.g. --image-column {found[0]})",
            )
        return found[0]

    def _column_specs(self, image: str) -> tuple[ColumnSpec, ...]:
        features = self._features()
        carryable: dict[str, ColumnSpec] = {}
        for name, feat in features.items():
            spec = None if name == image else _column_spec(name, feat)
            if spec is not None:
                carryable[name] = spec
        if self.columns is not None:
            items = self.columns.split(",") if isinstance(self.columns, str) else self.columns
            for item in items:
                n = item.strip().removeprefix("-")
                if n and n in features and n not in carryable:
                    why = "it is the image column" if n == image else f"its type is {features[n]}"
                    raise SourceError(
                        f"column {n!r} of {self._where()} cannot be carried: {why}",
                        hint="carried columns are class labels, integers, strings, booleans "
                        "and floats",
                    )
        chosen = select_columns(list(carryable), self.columns, where=self._where())
        for n in chosen:
            if n in RESERVED_COLUMNS:
                raise SourceError(
                    f"column {n!r} of {self._where()} clashes with the benchmark's own "
                    f"{n!r} column",
                    hint=f"drop it with --columns -{n}",
                )
        return tuple(carryable[n] for n in chosen)

    def _row_where(self, shard: int, row_in_shard: int) -> str:
        s = self._shards()[shard]
        return (
            f"{s.name}, row {row_in_shard} (row {s.start + row_in_shard} of split "
            f"{self._split_name()!r})"
        )

    def _locate(self, row: int) -> tuple[int, int, int]:
        """(shard, batch, row in batch) of a row of the split."""
        shards = self._shards()
        si = bisect.bisect_right([s.start for s in shards], row) - 1
        s = shards[si]
        in_shard = row - s.start
        bi = bisect.bisect_right(s.batch_starts, in_shard) - 1
        return si, bi, in_shard - s.batch_starts[bi]

    def _build_index(self) -> _Index:
        image = self._image_column()
        specs = self._column_specs(image)
        has_path = _has_path(self._features()[image])
        split = self._split_name()
        shards = self._shards()
        total = shards[-1].start + shards[-1].rows if shards else 0
        if total == 0:
            raise SourceError(
                f"{self._where()} has no rows: there are no images to make a benchmark from",
                hint="check --split and that the download is complete",
            )
        read_cols = ([f"{image}.path"] if has_path else []) + [s.name for s in specs]
        paths: list[str | None] = []
        for si, s in enumerate(shards):
            for bi, table in self._stream(si, read_cols):
                base = s.batch_starts[bi]
                if self._null_image_rows_hint(si, bi):
                    self._check_images(si, bi, image)
                for spec in specs:
                    col = table.column(spec.name)
                    if col.null_count:
                        j = _first_null(col)
                        raise SourceError(
                            f"{self._row_where(si, base + j)}: column {spec.name!r} is empty "
                            "(null)",
                            hint=f"drop the column with --columns -{spec.name}",
                        )
                    if spec.type == "class_label":
                        _check_labels(
                            col, spec, lambda j, si=si, base=base: self._row_where(si, base + j)
                        )
                if has_path:
                    paths.extend(table.column(image).combine_chunks().field("path").to_pylist())
        if not has_path:
            paths = [None] * total
        row_ids = self._choose_ids(paths, split)
        ordered = sorted(row_ids, key=lambda s: s.encode("utf-8"))
        listing = Listing(
            ids=tuple(ordered),
            ignored=sum(self._ignored().values()),
            ignored_kinds=dict(sorted(self._ignored().items())),
            columns=specs,
        )
        return _Index(
            listing=listing,
            specs=specs,
            row_ids=tuple(row_ids),
            rows={sid: r for r, sid in enumerate(row_ids)},
        )

    def _ignored(self) -> dict[str, int]:
        return {}

    def _choose_ids(self, paths: list[str | None], split: str) -> list[str]:
        mode = self.ids
        missing = next((r for r, p in enumerate(paths) if not p), None)
        if mode == "row" or (mode == "auto" and missing is not None):
            return [f"{split}/{r}" for r in range(len(paths))]
        if missing is not None:
            raise SourceError(
                f"{self._where_row(missing)}: the image has no path, and ids='path' needs one",
                hint="use ids 'row' (<split>/<row index>) or 'auto'",
            )
        seen: dict[str, int] = {}
        folded: dict[str, int] = {}
        for r, p in enumerate(paths):
            assert p
            try:
                check_sample_id(p)
            except SourceError as e:
                raise SourceError(
                    f"{self._where_row(r)}: the image's path cannot be a sample id: {e.message}",
                    hint="pass --ids row to number the samples <split>/<row index> instead",
                ) from None
            if p in seen:
                raise SourceError(
                    f"{self._where_row(seen[p])} and {self._where_row(r)} have the same image "
                    f"path {p!r}: paths must name one image each to serve as sample ids",
                    hint="pass --ids row to number the samples <split>/<row index> instead, "
                    "or remove the duplicated row",
                )
            key = p.casefold()
            if key in folded:
                raise SourceError(
                    f"{self._where_row(folded[key])} and {self._where_row(r)} have image paths "
                    f"{paths[folded[key]]!r} and {p!r}, which collide once case is folded",
                    hint="pass --ids row to number the samples <split>/<row index> instead",
                )
            seen[p] = r
            folded[key] = r
        return [p for p in paths if p]

    def _where_row(self, row: int) -> str:
        si, bi, j = self._locate(row)
        return self._row_where(si, self._shards()[si].batch_starts[bi] + j)

    def _check_images(self, shard: int, batch: int, image: str) -> None:
        """Raise naming the first row of the batch whose image cell has no bytes."""
        table = self._read_batch(shard, batch, [image])
        images = _Images(table.column(image))
        bad = images.bad()
        if bad:
            base = self._shards()[shard].batch_starts[batch]
            images.get(bad[0], lambda: self._row_where(shard, base + bad[0]))

    # -- the Source interface ---------------------------------------------------------

    def _idx(self) -> _Index:
        with self._lock:
            if self._index is None:
                self._index = self._build_index()
            return self._index

    def listing(self) -> Listing:
        return self._idx().listing

    def _row_of(self, sample_id: str) -> int:
        row = self._idx().rows.get(sample_id)
        if row is None:
            raise SourceError(f"not in {self._where()}", sample=sample_id)
        return row

    def _batch(self, si: int, bi: int, cols: Sequence[str]) -> pa.Table:
        with self._lock:
            if self._cache is not None and self._cache[0] == (si, bi):
                return self._cache[1]
            table = self._read_batch(si, bi, cols)
            self._cache = ((si, bi), table)
            return table

    def _batch_samples(
        self,
        table: pa.Table,
        si: int,
        bi: int,
        rows: Iterable[int],
        ids: Sequence[str],
        *,
        start: int = 0,
    ) -> Iterator[Sample]:
        """Samples of some rows of batch ``bi`` (indices in the batch), with ids given per row.

        ``table`` holds the batch's rows from ``start`` on (a part of a parquet row group).
        """
        images = _Images(table.column(self._image_column()))
        specs = self._idx().specs
        cols = [(spec, table.column(spec.name).to_pylist()) for spec in specs]
        base = self._shards()[si].batch_starts[bi]
        for j, sid in zip(rows, ids, strict=True):
            data = images.get(j - start, lambda j=j: self._row_where(si, base + j))
            values = {spec.name: _value(spec, vals[j - start]) for spec, vals in cols}
            yield Sample(id=sid, data=data, columns=values)

    def _all_cols(self) -> list[str]:
        return [self._image_column(), *(s.name for s in self._idx().specs)]

    def read(self, sample_id: str) -> bytes:
        return self._read_one(sample_id).data

    def columns_of(self, sample_id: str) -> Mapping[str, ColumnValue]:
        return self._read_one(sample_id).columns

    def _read_one(self, sample_id: str) -> Sample:
        row = self._row_of(sample_id)
        si, bi, j = self._locate(row)
        table = self._batch(si, bi, self._all_cols())
        return next(self._batch_samples(table, si, bi, [j], [sample_id]))

    def iter_samples(self, ids: Iterable[str]) -> Iterator[Sample]:
        """The samples ``ids`` in storage order, one batch in memory at a time."""
        idx = self._idx()
        wanted = sorted({self._row_of(sid) for sid in ids})
        if not wanted:
            return
        cols = self._all_cols()
        by_shard: dict[int, list[int]] = {}
        for row in wanted:
            by_shard.setdefault(self._locate(row)[0], []).append(row)
        for si, rows in sorted(by_shard.items()):
            s = self._shards()[si]
            need: dict[int, list[int]] = {}
            for row in rows:
                _, bi, j = self._locate(row)
                need.setdefault(bi, []).append(j)
            for bi, start, table in self._stream_some(si, sorted(need), cols):
                base = s.start + s.batch_starts[bi]
                rows_in = [j for j in need[bi] if start <= j < start + table.num_rows]
                yield from self._batch_samples(
                    table, si, bi, rows_in, [idx.row_ids[base + j] for j in rows_in], start=start
                )
                del table

    def _stream_some(
        self, shard: int, batches: Sequence[int], cols: Sequence[str]
    ) -> Iterator[tuple[int, int, pa.Table]]:
        """The given batches of a shard, in order, as (batch, first row in batch, table).

        Default: each batch whole, read by index.
        """
        for bi in batches:
            yield bi, 0, self._read_batch(shard, bi, cols)


def _has_path(feature: Any) -> bool:
    ds = require("datasets")
    return isinstance(feature, ds.Image) or (isinstance(feature, dict) and "path" in feature)


def _first_null(col: pa.ChunkedArray) -> int:
    arr = col.combine_chunks()
    for j in range(len(arr)):
        if not arr[j].is_valid:
            return j
    return 0


def _check_labels(col: pa.ChunkedArray, spec: ColumnSpec, where: Any) -> None:
    n = len(spec.names)
    for j, v in enumerate(col.to_pylist()):
        if v != -1 and not 0 <= v < n:
            raise SourceError(
                f"{where(j)}: class label {v} of column {spec.name!r} is not in 0..{n - 1} "
                f"(nor -1, 'no label')",
                hint="the label column does not match its ClassLabel names; fix the dataset "
                f"or drop the column with --columns -{spec.name}",
            )


class _Images:
    """One batch's image cells: their bytes sliced straight from the Arrow buffers."""

    def __init__(self, data: pa.StructArray | pa.ChunkedArray):
        np = require("numpy")
        if not hasattr(data, "flatten") or hasattr(data, "chunks"):
            data = data.combine_chunks()
        children = dict(zip(_field_names(data), data.flatten(), strict=True))
        byts, self._paths = children["bytes"], children.get("path")
        self._missing = np.asarray(byts.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        bufs = byts.buffers()
        wide = byts.type.equals(require("pyarrow").large_binary())
        offsets = np.frombuffer(bufs[1], dtype=np.int64 if wide else np.int32)
        self._offsets = offsets[byts.offset : byts.offset + len(byts) + 1]
        self._data = memoryview(bufs[2]) if bufs[2] is not None else memoryview(b"")

    def __len__(self) -> int:
        return len(self._missing)

    def bad(self) -> list[int]:
        """Rows without image bytes (a null cell, null or empty bytes)."""
        sizes = self._offsets[1:] - self._offsets[:-1]
        return [int(j) for j in (self._missing | (sizes == 0)).nonzero()[0]]

    def get(self, j: int, where: Any) -> bytes:
        start, end = int(self._offsets[j]), int(self._offsets[j + 1])
        if self._missing[j] or end == start:
            path = self._paths[j].as_py() if self._paths is not None else None
            detail = f"only a path ({path!r}) and no bytes" if path else "no image (null)"
            raise SourceError(
                f"{where()}: the image cell holds {detail}",
                hint="the original must embed its images (datasets embeds them in push_to_hub "
                "and save_to_disk); remove the row, or re-create the dataset with embedded "
                "images",
            )
        if end - start > MAX_SAMPLE_BYTES:
            raise SourceError(
                f"{where()}: image is {end - start} bytes, over the {MAX_SAMPLE_BYTES}-byte limit",
            )
        return bytes(self._data[start:end])


def _field_names(data: pa.StructArray) -> list[str]:
    return [data.type.field(i).name for i in range(data.type.num_fields)]


def _features_of_schema(schema: pa.Schema) -> dict[str, Any]:
    ds = require("datasets")
    try:
        return dict(ds.Features.from_arrow_schema(schema))
    except (ValueError, TypeError, KeyError, json.JSONDecodeError):
        # unreadable `huggingface` metadata: fall back to the arrow types
        return dict(ds.Features.from_arrow_schema(schema.remove_metadata()))


# -- parquet ---------------------------------------------------------------------------


@dataclass(eq=False)
class ParquetSource(HFSource):
    """A folder of parquet shards in a Hub layout, or one ``.parquet`` file."""

    path: Path
    split: str | None = None
    config: str | None = None
    image_column: str | None = None
    columns: str | Sequence[str] | None = None
    ids: str = "auto"
    _files: tuple[str, ...] = field(default=(), init=False, repr=False)
    _split_resolved: str = field(default="", init=False, repr=False)
    _other: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _meta: tuple[tuple[_Shard, ...], dict[str, Any]] | None = field(
        default=None, init=False, repr=False
    )
    _nulls: tuple[dict[str, frozenset[int]], ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._setup()
        self._resolve()

    def _resolve(self) -> None:
        p = self.path
        if p.is_file():
            if self.config is not None or self.split not in (None, "train"):
                raise SourceError(
                    f"{p.name} is a single parquet file: it has no configs or splits to choose",
                    hint="drop --config/--split, or pass the dataset's folder",
                )
            self._files = (p.name,)
            self._split_resolved = "train"
            self._root = p.parent
            return
        if not p.is_dir():
            raise SourceError(f"original {p} does not exist", hint="check the --original path")
        self._root = p
        layout, self._other = parquet_layout(p)
        if not layout:
            raise SourceError(
                f"{p} holds no parquet shards in a Hugging Face layout",
                hint="pass the folder that holds data/<split>-NNNNN-of-NNNNN.parquet",
            )
        configs = sorted({c for c, _ in layout})
        config = self.config
        if config is None:
            if len(configs) > 1:
                raise SourceError(
                    f"{p} has several configs: {', '.join(configs)}",
                    hint="choose one with --config",
                )
            config = configs[0]
        elif config not in configs:
            raise SourceError(
                f"{p} has no config {config!r}; its configs: {', '.join(configs)}",
                hint="pass one of them with --config",
            )
        splits = [s for c, s in layout if c == config]
        split = self.split
        if split is None:
            if len(splits) > 1:
                raise SourceError(
                    f"{p} has several splits: {', '.join(splits)}",
                    hint="choose one with --split (e.g. --split " + splits[0] + ")",
                )
            split = splits[0]
        elif split not in splits:
            raise SourceError(
                f"{p} has no split {split!r}; its splits: {', '.join(splits)}",
                hint="pass one of them with --split",
            )
        self._split_resolved = split
        self._files = layout[(config, split)]
        for (c, s), files in layout.items():
            if (c, s) != (config, split):
                self._other["parquet (other split)"] = self._other.get(
                    "parquet (other split)", 0
                ) + len(files)

    def _split_name(self) -> str:
        return self._split_resolved

    def _ignored(self) -> dict[str, int]:
        return dict(self._other)

    def _open(self, rel: str) -> Any:
        pq = require("pyarrow.parquet")
        pa_ = require("pyarrow")
        path = self._root / rel
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 4))
                tail = f.read(4)
            if size < 12 or tail != _PARQUET_MAGIC:
                raise pa_.ArrowInvalid("the file does not end with the parquet magic bytes")
            # buffered reads, no memory map: mapped pages would stay resident as the file is read
            return pq.ParquetFile(
                str(path), memory_map=False, pre_buffer=False, buffer_size=1 << 20
            )
        except (pa_.ArrowException, OSError) as e:
            raise SourceError(
                f"{rel}: not a readable parquet file (corrupt or truncated footer: {e})",
                hint="download this shard again and compare its checksum with the Hub's",
            ) from None

    def _load_meta(self) -> tuple[tuple[_Shard, ...], dict[str, Any]]:
        with self._lock:
            if self._meta is not None:
                return self._meta
            shards: list[_Shard] = []
            nulls: list[dict[str, frozenset[int]]] = []
            first_schema = None
            features: dict[str, Any] = {}
            start = 0
            for rel in self._files:
                pf = self._open(rel)
                try:
                    schema = pf.schema_arrow
                    md = pf.metadata
                    starts = [0]
                    maybe_null: dict[str, set[int]] = {}
                    for g in range(md.num_row_groups):
                        rg = md.row_group(g)
                        starts.append(starts[-1] + rg.num_rows)
                        for c in range(rg.num_columns):
                            col = rg.column(c)
                            st = col.statistics
                            if st is None or not st.has_null_count or st.null_count:
                                maybe_null.setdefault(col.path_in_schema, set()).add(g)
                finally:
                    pf.close()
                nulls.append({k: frozenset(v) for k, v in maybe_null.items()})
                feats = _features_of_schema(schema)
                if first_schema is None:
                    first_schema, features = schema, feats
                elif not schema.remove_metadata().equals(first_schema.remove_metadata()) or (
                    feats != features
                ):
                    raise SourceError(
                        f"the schemas of {self._files[0]} and {rel} disagree: "
                        + _schema_diff(features, feats),
                        hint="the shards come from different versions of the dataset; "
                        "download the split again",
                    )
                shards.append(_Shard(name=rel, start=start, batch_starts=tuple(starts)))
                start += starts[-1]
            self._meta = (tuple(shards), features)
            self._nulls = tuple(nulls)
            return self._meta

    def _features(self) -> Mapping[str, Any]:
        return self._load_meta()[1]

    def _shards(self) -> tuple[_Shard, ...]:
        return self._load_meta()[0]

    def _read_batch(self, shard: int, batch: int, columns: Sequence[str]) -> pa.Table:
        pf = self._open(self._shards()[shard].name)
        try:
            return self._read_group(pf, shard, batch, columns)
        finally:
            pf.close()

    def _read_group(self, pf: Any, shard: int, batch: int, columns: Sequence[str]) -> pa.Table:
        pa_ = require("pyarrow")
        try:
            return pf.read_row_group(batch, columns=list(columns), use_threads=False)
        except (pa_.ArrowException, OSError) as e:
            raise SourceError(
                f"{self._shards()[shard].name}, row group {batch}: cannot be read ({e})",
                hint="download this shard again and compare its checksum with the Hub's",
            ) from None

    def _stream(self, shard: int, columns: Sequence[str]) -> Iterator[tuple[int, pa.Table]]:
        pf = self._open(self._shards()[shard].name)
        try:
            for bi in range(len(self._shards()[shard].batch_starts) - 1):
                yield bi, self._read_group(pf, shard, bi, columns)
        finally:
            pf.close()

    def _stream_some(
        self, shard: int, batches: Sequence[int], cols: Sequence[str]
    ) -> Iterator[tuple[int, int, pa.Table]]:
        # Row groups are read READ_BATCH_ROWS rows at a time: memory stays a few images,
        # however large the shard's row groups (some Hub datasets have 1000-image groups).
        pa_ = require("pyarrow")
        name = self._shards()[shard].name
        pf = self._open(name)
        try:
            for bi in batches:
                start = 0
                try:
                    for rb in pf.iter_batches(
                        batch_size=READ_BATCH_ROWS,
                        row_groups=[bi],
                        columns=list(cols),
                        use_threads=False,
                    ):
                        table = pa_.Table.from_batches([rb])
                        yield bi, start, table
                        start += table.num_rows
                        del rb, table
                except (pa_.ArrowException, OSError) as e:
                    raise SourceError(
                        f"{name}, row group {bi}: cannot be read ({e})",
                        hint="download this shard again and compare its checksum with the Hub's",
                    ) from None
        finally:
            pf.close()

    def _null_image_rows_hint(self, shard: int, batch: int) -> bool:
        # the footer's statistics: a row group whose image bytes have no nulls is not read
        self._load_meta()
        image = self._image_column()
        nulls = self._nulls[shard]
        return batch in nulls.get(f"{image}.bytes", frozenset()) or batch in nulls.get(
            image, frozenset()
        )

    def close(self) -> None:
        with self._lock:
            self._cache = None


def _schema_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    for name in list(a) + [n for n in b if n not in a]:
        if name not in b:
            return f"column {name!r} is missing from the second"
        if name not in a:
            return f"column {name!r} is missing from the first"
        if a[name] != b[name]:
            return f"column {name!r} is {a[name]} in the first, {b[name]} in the second"
    return "the column order or arrow types differ"


# -- save_to_disk ----------------------------------------------------------------------


@dataclass(eq=False)
class ArrowSource(HFSource):
    """A ``Dataset.save_to_disk`` folder, or a ``DatasetDict`` one (then ``split=`` chooses)."""

    path: Path
    split: str | None = None
    image_column: str | None = None
    columns: str | Sequence[str] | None = None
    ids: str = "auto"
    _dir: Path = field(default=Path(), init=False, repr=False)
    _split_resolved: str = field(default="", init=False, repr=False)
    _meta: tuple[tuple[_Shard, ...], dict[str, Any], tuple[str, ...]] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._setup()
        p = self.path
        dict_file = p / "dataset_dict.json"
        if dict_file.is_file():
            try:
                splits = [str(s) for s in json.loads(dict_file.read_text("utf-8"))["splits"]]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise SourceError(
                    f"{dict_file} is not a readable dataset_dict.json ({e})",
                    hint="save the DatasetDict again with save_to_disk",
                ) from None
            split = self.split
            if split is None:
                if len(splits) != 1:
                    raise SourceError(
                        f"{p} has several splits: {', '.join(splits)}",
                        hint=f"choose one with --split (e.g. --split {splits[0]})",
                    )
                split = splits[0]
            elif split not in splits:
                raise SourceError(
                    f"{p} has no split {split!r}; its splits: {', '.join(splits)}",
                    hint="pass one of them with --split",
                )
            self._dir = p / split
            self._split_resolved = split
        else:
            self._dir = p
            self._split_resolved = self.split or ""

    def _load_meta(self) -> tuple[tuple[_Shard, ...], dict[str, Any], tuple[str, ...]]:
        with self._lock:
            if self._meta is not None:
                return self._meta
            ds_mod = require("datasets")
            pa_ = require("pyarrow")
            try:
                ds = ds_mod.load_from_disk(str(self._dir))
            except (FileNotFoundError, ValueError, KeyError, OSError, pa_.ArrowException) as e:
                raise SourceError(
                    f"{self._dir} is not a readable save_to_disk folder ({e})",
                    hint="save the dataset again with save_to_disk",
                ) from None
            # one Dataset: its split is the one it was saved with (or its DatasetDict folder name)
            known = (str(ds.split) if ds.split is not None else None) or _dict_split(self.path)
            if self._dir == self.path:
                if self.split is not None and known is not None and self.split != known:
                    raise SourceError(
                        f"{self.path} holds one split, {known!r}, not {self.split!r}",
                        hint="drop --split (or pass the DatasetDict folder that holds it)",
                    )
                self._split_resolved = self.split or known or "train"
            features = dict(ds.features)
            files = tuple(Path(f["filename"]).name for f in ds.cache_files)
            del ds
            shards: list[_Shard] = []
            start = 0
            for name in files:
                starts = [0]
                try:
                    with pa_.memory_map(str(self._dir / name)) as src:
                        reader = pa_.ipc.open_stream(src)
                        for rb in reader:
                            starts.append(starts[-1] + rb.num_rows)
                except (pa_.ArrowException, OSError) as e:
                    raise SourceError(
                        f"{self._rel(name)}: not a readable Arrow file ({e})",
                        hint="save the dataset again with save_to_disk",
                    ) from None
                shards.append(_Shard(name=self._rel(name), start=start, batch_starts=tuple(starts)))
                start += starts[-1]
            self._meta = (tuple(shards), features, files)
            return self._meta

    def _rel(self, name: str) -> str:
        return (self._dir / name).relative_to(self.path).as_posix()

    def _split_name(self) -> str:
        self._load_meta()
        return self._split_resolved

    def _features(self) -> Mapping[str, Any]:
        return self._load_meta()[1]

    def _shards(self) -> tuple[_Shard, ...]:
        return self._load_meta()[0]

    def _file(self, shard: int) -> Path:
        return self._dir / self._load_meta()[2][shard]

    def _read_batch(self, shard: int, batch: int, columns: Sequence[str]) -> pa.Table:
        pa_ = require("pyarrow")
        # zero-copy through a memory map: only the pages of the wanted columns are touched
        try:
            with pa_.memory_map(str(self._file(shard))) as src:
                reader = pa_.ipc.open_stream(src)
                for b, rb in enumerate(reader):
                    if b == batch:
                        return _project(pa_.Table.from_batches([rb]), columns)
        except (pa_.ArrowException, OSError) as e:
            raise SourceError(f"{self._shards()[shard].name}: cannot be read ({e})") from None
        raise SourceError(f"{self._shards()[shard].name}: batch {batch} vanished while reading")

    def _stream_some(
        self, shard: int, batches: Sequence[int], cols: Sequence[str]
    ) -> Iterator[tuple[int, int, pa.Table]]:
        pa_ = require("pyarrow")
        wanted = set(batches)
        # a plain file, not a memory map: each batch is read into the heap and freed after,
        # so the resident memory stays one batch (mapped pages would stay resident)
        try:
            with pa_.OSFile(str(self._file(shard))) as src:
                reader = pa_.ipc.open_stream(src)
                for b in range(len(self._shards()[shard].batch_starts) - 1):
                    rb = reader.read_next_batch()
                    if b in wanted:
                        yield b, 0, pa_.Table.from_batches([rb]).select(_top(cols))
                    del rb
        except (pa_.ArrowException, OSError) as e:
            raise SourceError(f"{self._shards()[shard].name}: cannot be read ({e})") from None

    def _stream(self, shard: int, columns: Sequence[str]) -> Iterator[tuple[int, pa.Table]]:
        pa_ = require("pyarrow")
        # listing: the memory map, so the image bytes are not read at all
        try:
            with pa_.memory_map(str(self._file(shard))) as src:
                reader = pa_.ipc.open_stream(src)
                for b, rb in enumerate(reader):
                    yield b, _project(pa_.Table.from_batches([rb]), columns)
        except (pa_.ArrowException, OSError) as e:
            raise SourceError(f"{self._shards()[shard].name}: cannot be read ({e})") from None

    def _null_image_rows_hint(self, shard: int, batch: int) -> bool:
        return True  # Arrow files carry no statistics; check the validity bitmaps

    def close(self) -> None:
        with self._lock:
            self._cache = None


def _dict_split(folder: Path) -> str | None:
    """The split name of a DatasetDict's split folder (its name, if the parent lists it)."""
    try:
        doc = json.loads((folder.parent / "dataset_dict.json").read_text("utf-8"))
        return folder.name if folder.name in doc.get("splits", ()) else None
    except (OSError, ValueError, AttributeError):
        return None


def _top(columns: Sequence[str]) -> list[str]:
    out: list[str] = []
    for c in columns:
        top = c.split(".", 1)[0]
        if top not in out:
            out.append(top)
    return out


def _project(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """Select columns; ``image.path`` keeps only the struct's ``path`` child."""
    pa_ = require("pyarrow")
    arrays = []
    names = []
    for c in columns:
        top, _, child = c.partition(".")
        col = table.column(top).combine_chunks()
        if child:
            col = pa_.StructArray.from_arrays([col.field(child)], names=[child], mask=_mask(col))
        arrays.append(col)
        names.append(top)
    return pa_.Table.from_arrays(arrays, names=names) if arrays else table.select([])


def _mask(col: pa.StructArray) -> Any:
    pc = require("pyarrow.compute")
    return pc.is_null(col) if col.null_count else None


# -- an in-memory datasets.Dataset -----------------------------------------------------


@dataclass(eq=False)
class DatasetSource(HFSource):
    """An in-memory :class:`datasets.Dataset` (``select``/``shuffle`` indices are honoured)."""

    dataset: Any
    split: str | None = None
    image_column: str | None = None
    columns: str | Sequence[str] | None = None
    ids: str = "auto"
    path: Path = field(default=Path("dataset"), init=False)

    def __post_init__(self) -> None:
        self._setup()
        files = [f["filename"] for f in self.dataset.cache_files]
        self.path = Path(files[0]).parent if files else Path("dataset")
        n = len(self.dataset)
        starts = (*range(0, n, DATASET_BATCH_ROWS), n) if n else (0,)
        self._shard = _Shard(name="dataset", start=0, batch_starts=starts)

    @property
    def name(self) -> str:
        info_name = getattr(self.dataset.info, "dataset_name", None)
        return str(info_name) if info_name else self.path.name

    def _split_name(self) -> str:
        if self.split:
            return self.split
        return str(self.dataset.split) if self.dataset.split is not None else "train"

    def _where(self) -> str:
        return f"split {self._split_name()!r} of the dataset"

    def _features(self) -> Mapping[str, Any]:
        return dict(self.dataset.features)

    def _shards(self) -> tuple[_Shard, ...]:
        return (self._shard,)

    def _read_batch(self, shard: int, batch: int, columns: Sequence[str]) -> pa.Table:
        s = self._shard.batch_starts
        ds = self.dataset.select_columns(_top(columns)).with_format("arrow")
        table = ds[s[batch] : s[batch + 1]]
        return _project(table, columns) if any("." in c for c in columns) else table

    def _null_image_rows_hint(self, shard: int, batch: int) -> bool:
        return True

    def _row_where(self, shard: int, row_in_shard: int) -> str:
        return f"dataset row {row_in_shard} (split {self._split_name()!r})"


# -- folder-per-class labels -----------------------------------------------------------


def is_dataset(obj: object) -> bool:
    """True for a :class:`datasets.Dataset` (checked without importing ``datasets``)."""
    return any(
        c.__name__ == "Dataset" and c.__module__.startswith("datasets") for c in type(obj).__mro__
    )
