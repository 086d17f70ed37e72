"""A Hugging Face original in memory: a :class:`datasets.Dataset` (Python API only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolchain.model.original import OriginalRef, ref_from_download_urls
from toolchain.source.hf.base import HFSource, Shard, info_origin, project_columns, top_columns

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DATASET_BATCH_ROWS", "DatasetSource", "is_dataset"]

DATASET_BATCH_ROWS = 1000
"""Rows per batch when reading an in-memory :class:`datasets.Dataset`."""


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
        self._shard = Shard(name="dataset", start=0, batch_starts=starts)

    def _local_name(self) -> str:
        info_name = getattr(self.dataset.info, "dataset_name", None)
        return str(info_name) if info_name else self.path.name

    def _repo_ref(self) -> OriginalRef | None:
        if not self.path.is_absolute():  # in memory: no files, no Hub cache path to read
            return ref_from_download_urls(self._download_urls())
        return super()._repo_ref()

    def _config_name(self) -> str:
        return info_origin(self.dataset.info)[0]

    def _download_urls(self) -> Sequence[str]:
        return info_origin(self.dataset.info)[1]

    def _split_name(self) -> str:
        if self.split:
            return self.split
        return str(self.dataset.split) if self.dataset.split is not None else "train"

    def _where(self) -> str:
        return f"split {self._split_name()!r} of the dataset"

    def _features(self) -> Mapping[str, Any]:
        return dict(self.dataset.features)

    def _shards(self) -> tuple[Shard, ...]:
        return (self._shard,)

    def _read_batch(self, shard: int, batch: int, columns: Sequence[str]) -> pa.Table:
        s = self._shard.batch_starts
        ds = self.dataset.select_columns(top_columns(columns)).with_format("arrow")
        table = ds[s[batch] : s[batch + 1]]
        return project_columns(table, columns) if any("." in c for c in columns) else table

    def _null_image_rows_hint(self, shard: int, batch: int) -> bool:
        return True

    def _row_where(self, shard: int, row_in_shard: int) -> str:
        return f"dataset row {row_in_shard} (split {self._split_name()!r})"


def is_dataset(obj: object) -> bool:
    """True for a :class:`datasets.Dataset` (checked without importing ``datasets``)."""
    return any(
        c.__name__ == "Dataset" and c.__module__.startswith("datasets") for c in type(obj).__mro__
    )
