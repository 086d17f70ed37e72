"""A Hugging Face ``save_to_disk`` original: a ``Dataset`` or ``DatasetDict`` folder."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolchain._internal.deps import require
from toolchain.errors import SourceError
from toolchain.source.hf.base import HFSource, Shard, info_origin, project_columns, top_columns

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ArrowSource"]


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
    _meta: tuple[tuple[Shard, ...], dict[str, Any], tuple[str, ...]] | None = field(
        default=None, init=False, repr=False
    )
    _info: tuple[str, tuple[str, ...]] = field(default=("", ()), init=False, repr=False)
    """The dataset info's config name and downloaded files (``download_checksums``)."""

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

    def _load_meta(self) -> tuple[tuple[Shard, ...], dict[str, Any], tuple[str, ...]]:
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
            self._info = info_origin(ds.info)
            del ds
            shards: list[Shard] = []
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
                shards.append(Shard(name=self._rel(name), start=start, batch_starts=tuple(starts)))
                start += starts[-1]
            self._meta = (tuple(shards), features, files)
            return self._meta

    def _rel(self, name: str) -> str:
        return (self._dir / name).relative_to(self.path).as_posix()

    def _split_name(self) -> str:
        self._load_meta()
        return self._split_resolved

    def _config_name(self) -> str:
        self._load_meta()
        return self._info[0]

    def _download_urls(self) -> Sequence[str]:
        self._load_meta()
        return self._info[1]

    def _features(self) -> Mapping[str, Any]:
        return self._load_meta()[1]

    def _shards(self) -> tuple[Shard, ...]:
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
                        return project_columns(pa_.Table.from_batches([rb]), columns)
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
                        yield b, 0, pa_.Table.from_batches([rb]).select(top_columns(cols))
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
                    yield b, project_columns(pa_.Table.from_batches([rb]), columns)
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
