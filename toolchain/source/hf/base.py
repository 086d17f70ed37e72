"""What the three Hugging Face sources share: the core of :class:`HFSource`, which reads
rows batch by batch, in storage order, one sample per row."""

from __future__ import annotations

import bisect
import functools
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolchain._internal.deps import require
from toolchain._internal.packed import PackedStrings
from toolchain.errors import SourceError
from toolchain.model.columns import RESERVED_COLUMNS, ColumnSpec, ColumnValue
from toolchain.model.ids import check_sample_id, fold_key
from toolchain.model.original import OriginalRef, ref_from_download_urls, ref_from_hub_cache
from toolchain.source._common import MAX_SAMPLE_BYTES, Listing, Sample, Source, select_columns
from toolchain.source.hf.features import column_spec, column_value, has_path, is_image_feature

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "IDS_MODES",
    "HFSource",
    "Shard",
    "info_origin",
    "project_columns",
    "several",
    "top_columns",
]

IDS_MODES = ("auto", "path", "row")


@dataclass(frozen=True, kw_only=True, slots=True)
class Shard:
    """One file of a split (or the whole in-memory dataset), with its batch boundaries."""

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
    """The listing, and each sample's row: 16 bytes a sample beside its packed id (no
    dict, tuple or string object of every id)."""

    listing: Listing
    specs: tuple[ColumnSpec, ...]
    rows: array[int]
    """The row of each listed id (in the listing's order)."""
    positions: array[int]
    """Where each row's id is in the listing."""

    @classmethod
    def of(cls, row_ids: Sequence[str], specs: tuple[ColumnSpec, ...], **listing: Any) -> _Index:
        """From each row's id (unique; :meth:`HFSource._choose_ids`)."""
        order = sorted(range(len(row_ids)), key=lambda r: row_ids[r].encode("utf-8"))
        ids = PackedStrings(row_ids[r] for r in order)  # sorted: Listing keeps it as it is
        if not ids.is_sorted:  # pragma: no cover - _choose_ids refuses a repeated id
            raise ValueError("a sample id names two rows")
        positions = array("Q", [0]) * len(order)
        for i, r in enumerate(order):
            positions[r] = i
        return cls(
            listing=Listing(ids=ids, columns=specs, **listing),
            specs=specs,
            rows=array("Q", order),
            positions=positions,
        )

    def row_of(self, sample_id: str) -> int | None:
        """The row of ``sample_id``, or ``None`` if it is not listed (a binary search)."""
        try:
            return self.rows[self.listing.ids.index(sample_id)]
        except ValueError:
            return None

    def id_of(self, row: int) -> str:
        return self.listing.ids[self.positions[row]]


class HFSource(Source):
    """What the three Hugging Face sources share: columns, ids, checks, batch-wise reads.

    The rules for ``ids`` and ``columns`` are in ``docs/huggingface.md`` ("Sample ids",
    "Carried columns"). A subclass provides the split name, its shards (in ``load_dataset``
    order) with their batch boundaries, the ``datasets`` features, and reads one batch of
    some columns (:meth:`_read_batch`) or streams a shard's batches (:meth:`_stream`).
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

    @property
    def name(self) -> str:
        """The Hub repo (``org/name``) when known, else the folder's name."""
        return self.original_ref.repo or self._local_name()

    @property
    def original_ref(self) -> OriginalRef:
        """The split and config read; the Hub repo and commit when known (a Hub cache
        snapshot, or the files ``datasets`` downloaded), else left empty: never guessed."""
        repo = self._repo_ref() or OriginalRef()
        return OriginalRef.best_effort(
            repo=repo.repo,
            revision=repo.revision,
            config=self._config_name(),
            split=self.split_name,
        )

    def _repo_ref(self) -> OriginalRef | None:
        return ref_from_hub_cache(self.path.absolute()) or ref_from_download_urls(
            self._download_urls()
        )

    # -- to provide -------------------------------------------------------------------

    def _split_name(self) -> str:
        raise NotImplementedError

    def _config_name(self) -> str:
        """The config read (``default`` unless the dataset has several); empty if unknown."""
        return ""

    def _download_urls(self) -> Sequence[str]:
        """The files ``datasets`` downloaded to make this dataset (its info says), if any."""
        return ()

    def _local_name(self) -> str:
        return self.path.name

    def _features(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def _shards(self) -> tuple[Shard, ...]:
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
            if not is_image_feature(features[self.image_column]):
                raise SourceError(
                    f"column {self.image_column!r} of {self._where()} is not an image "
                    f"(its feature is {features[self.image_column]})",
                    hint="pass the column that holds the images (an Image feature)",
                )
            return self.image_column
        found = [n for n, f in features.items() if is_image_feature(f)]
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
            spec = None if name == image else column_spec(name, feat)
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
        with_paths = has_path(self._features()[image])
        split = self._split_name()
        shards = self._shards()
        total = shards[-1].start + shards[-1].rows if shards else 0
        if total == 0:
            raise SourceError(
                f"{self._where()} has no rows: there are no images to make a benchmark from",
                hint="check --split and that the download is complete",
            )
        read_cols = ([f"{image}.path"] if with_paths else []) + [s.name for s in specs]
        paths: list[str | None] = []
        for si, s in enumerate(shards):
            for bi, table in self._stream(si, read_cols):
                base = s.batch_starts[bi]
                if self._null_image_rows_hint(si, bi):
                    self._check_images(si, bi, image)

                def where(j: int, si: int = si, base: int = base) -> str:
                    return self._row_where(si, base + j)

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
                        _check_labels(col, spec, where)
                    elif spec.type == "int":
                        _check_int64(col, spec, where)
                if with_paths:
                    col = table.column(image).combine_chunks().field("path")
                    paths.extend(_texts(col, f"{image}.path", functools.partial(where, 0)))
        if not with_paths:
            paths = [None] * total
        row_ids = self._choose_ids(paths, split)
        del paths
        return _Index.of(
            row_ids,
            specs,
            ignored=sum(self._ignored().values()),
            ignored_kinds=dict(sorted(self._ignored().items())),
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
            key = fold_key(p)
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
        row = self._idx().row_of(sample_id)
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
        base = self._shards()[si].batch_starts[bi]
        cols = [
            (spec, _texts(table.column(spec.name), spec.name, lambda: self._row_where(si, base)))
            for spec in specs
        ]
        for j, sid in zip(rows, ids, strict=True):
            data = images.get(j - start, lambda j=j: self._row_where(si, base + j))
            values = {spec.name: column_value(spec, vals[j - start]) for spec, vals in cols}
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
                    table, si, bi, rows_in, [idx.id_of(base + j) for j in rows_in], start=start
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


_INT64_MAX = (1 << 63) - 1


def _check_int64(col: pa.ChunkedArray, spec: ColumnSpec, where: Any) -> None:
    """A benchmark's ``int`` column is int64 (in its parquet shards): a ``uint64`` value over
    the int64 range is refused here, naming its row, rather than broken at the output."""
    if not require("pyarrow").types.is_uint64(col.type):
        return
    for j, v in enumerate(col.to_pylist()):
        if v > _INT64_MAX:
            raise SourceError(
                f"{where(j)}: value {v} of column {spec.name!r} is over {_INT64_MAX}, the "
                "largest a benchmark's int column holds (int64)",
                hint=f"drop the column with --columns -{spec.name}",
            )


class _Images:
    """One batch's image cells: their bytes sliced straight from the Arrow buffers."""

    def __init__(self, data: pa.StructArray | pa.ChunkedArray):
        np = require("numpy")
        if not hasattr(data, "flatten") or hasattr(data, "chunks"):
            data = data.combine_chunks()
        children = dict(zip(_field_names(data), data.flatten(), strict=True))
        byts, self._paths = children["bytes"], children.get("path")
        bufs = byts.buffers()
        # the nulls from the validity bitmap: `is_null().to_numpy()` would import
        # pyarrow.compute and pandas (0.5 s, 60 MB) for one bit a row
        if byts.null_count:
            bits = np.unpackbits(np.frombuffer(bufs[0], dtype=np.uint8), bitorder="little")
            self._missing = bits[byts.offset : byts.offset + len(byts)] == 0
        else:
            self._missing = np.zeros(len(byts), dtype=bool)
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
            try:
                path = self._paths[j].as_py() if self._paths is not None else None
            except UnicodeDecodeError:
                path = None  # not UTF-8: no path to show
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


def top_columns(columns: Sequence[str]) -> list[str]:
    """The top-level columns of ``columns`` (``image.path`` is in ``image``), in order."""
    out: list[str] = []
    for c in columns:
        top = c.split(".", 1)[0]
        if top not in out:
            out.append(top)
    return out


def project_columns(table: pa.Table, columns: Sequence[str]) -> pa.Table:
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


def info_origin(info: Any) -> tuple[str, tuple[str, ...]]:
    """A ``datasets.DatasetInfo``'s config name and the files it records downloading
    (``download_checksums``, keyed by URL), as far as it knows them."""
    config = getattr(info, "config_name", None)
    checksums = getattr(info, "download_checksums", None)
    urls = tuple(str(u) for u in checksums) if isinstance(checksums, Mapping) else ()
    return (config if isinstance(config, str) else ""), urls


def _texts(column: Any, name: str, where: Callable[[], str]) -> list[Any]:
    """``column.to_pylist()``; text that is not UTF-8 (a parquet writer need not check it)
    is a :class:`SourceError` naming the batch (``where()``: its first row) and column."""
    try:
        return column.to_pylist()  # type: ignore[no-any-return]
    except UnicodeDecodeError:
        raise SourceError(
            f"{where()} or a row after it in the same batch: column {name!r} holds text that "
            "is not UTF-8",
            hint="the shard is damaged, or not written by datasets: download it again",
        ) from None


def several(where: object, what: str, names: Sequence[str], recorded: str | None) -> SourceError:
    """The error for a dataset with several ``what``s (``split``, ``config``) and none given:
    with the one a manifest records (``recorded``, which the dataset lacks), said so."""
    listed = ", ".join(names)
    if recorded is None:
        return SourceError(
            f"{where} has several {what}s: {listed}",
            hint=f"choose one with --{what} (e.g. --{what} {names[0]})",
        )
    return SourceError(
        f"{where} has several {what}s ({listed}), and not the {what} {recorded!r} the "
        "manifest records",
        hint=f"pass the original the benchmark was made from (its {what} {recorded!r}), or "
        f"choose a {what} with --{what}",
    )
