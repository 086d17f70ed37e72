"""A Hugging Face ``save_to_disk`` original: a ``Dataset`` or ``DatasetDict`` folder, read
from the names its metadata gives, each a plain name inside it (``docs/huggingface.md``)."""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from toolchain._internal import safefs
from toolchain._internal.deps import require
from toolchain._internal.jsonload import load_json
from toolchain.errors import SourceError, os_error_text
from toolchain.source.hf.base import (
    HFSource,
    Shard,
    info_origin,
    project_columns,
    several,
    top_columns,
)
from toolchain.source.hf.features import features_of_schema

if TYPE_CHECKING:
    import pyarrow as pa

    from toolchain.model.original import OriginalRef

__all__ = ["MAX_ARROW_BYTES", "MAX_METADATA_BYTES", "ArrowSource"]

MAX_METADATA_BYTES = 64 << 20
"""The largest ``dataset_dict.json``, ``state.json`` or ``dataset_info.json`` we read."""
MAX_ARROW_BYTES = 1 << 40
"""The largest ``.arrow`` file we open (mapped or streamed, never read whole)."""
_HINT = "save the dataset again with save_to_disk"


@dataclass(eq=False)
class ArrowSource(HFSource):
    """A ``Dataset.save_to_disk`` folder, or a ``DatasetDict`` one (then ``split=`` chooses)."""

    path: Path
    split: str | None = None
    image_column: str | None = None
    columns: str | Sequence[str] | None = None
    ids: str = "auto"
    prefer: OriginalRef | None = None
    """The split chosen where a ``DatasetDict`` folder has several and none is given."""
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
        if (p / "dataset_dict.json").is_file():
            splits = _listed_splits(p)
            split = self.split
            if split is None and self.prefer is not None and self.prefer.split in splits:
                split = self.prefer.split
            if split is None:
                if len(splits) != 1:
                    raise several(
                        p, "split", splits, (self.prefer.split or None) if self.prefer else None
                    )
                split = splits[0]
            elif split not in splits:
                raise SourceError(
                    f"{p} has no split {split!r}; its splits: {', '.join(splits)}",
                    hint="pass one of them with --split",
                )
            self._dir = _inside(p, split)
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
            state = _load(self._dir / "state.json", self._rel("state.json"))
            files = _data_files(state, self._rel("state.json"))
            split = state.get("_split")
            info_rel = self._rel("dataset_info.json")
            try:
                info = ds_mod.DatasetInfo.from_dict(
                    _load(self._dir / "dataset_info.json", info_rel)
                )
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
                raise SourceError(f"{info_rel}: not a dataset info ({e})", hint=_HINT) from None
            if self._dir == self.path:
                # one Dataset: its split is the one it was saved with (or, for the folder of a
                # DatasetDict's split, its name)
                known = split if isinstance(split, str) else _dict_split(self.path)
                if self.split is not None and known is not None and self.split != known:
                    raise SourceError(
                        f"{self.path} holds one split, {known!r}, not {self.split!r}",
                        hint="drop --split (or pass the DatasetDict folder that holds it)",
                    )
                self._split_resolved = self.split or known or "train"
            self._info = info_origin(info)
            shards: list[Shard] = []
            schema = None
            start = 0
            for name in files:
                starts = [0]
                try:
                    reader = pa_.ipc.open_stream(pa_.BufferReader(self._map(name)))
                    if schema is None:
                        schema = reader.schema
                    elif not reader.schema.remove_metadata().equals(schema.remove_metadata()):
                        raise SourceError(
                            f"{self._rel(name)}: its columns differ from {self._rel(files[0])}'s",
                            hint=_HINT,
                        )
                    for rb in reader:
                        starts.append(starts[-1] + rb.num_rows)
                except (pa_.ArrowException, OSError) as e:
                    raise SourceError(
                        f"{self._rel(name)}: not a readable Arrow file ({e})", hint=_HINT
                    ) from None
                shards.append(Shard(name=self._rel(name), start=start, batch_starts=tuple(starts)))
                start += starts[-1]
            assert schema is not None  # _data_files: at least one
            features = self._check_features(info.features, schema, self._rel(files[0]))
            self._meta = (tuple(shards), features, files)
            return self._meta

    def _check_features(self, declared: Any, schema: pa.Schema, where: str) -> dict[str, Any]:
        """The features ``dataset_info.json`` declares (in the files' column order), which
        must describe the files' columns; the files' own when it declares none."""
        found = features_of_schema(schema, where=where)
        if declared is None:
            return found
        ds_mod = require("datasets")
        try:
            features = declared.reorder_fields_as(ds_mod.Features(found))
            if features.type != ds_mod.Features(found).type:
                raise ValueError(f"{features.type} is not {ds_mod.Features(found).type}")
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            raise SourceError(
                f"{self._rel('dataset_info.json')}: its features do not describe the columns of "
                f"{where} ({e})",
                hint=_HINT,
            ) from None
        return dict(features)

    def _map(self, name: str) -> Any:
        """The whole of data file ``name``, memory-mapped from the one descriptor checked (a
        regular file, opened without blocking: a FIFO is refused, never waited on)."""
        pa_ = require("pyarrow")
        with self._open(name) as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise OSError(errno.EINVAL, "the file is empty")
            return pa_.py_buffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))

    def _open(self, name: str) -> BinaryIO:
        try:
            return safefs.open_path(self._dir / name, limit=MAX_ARROW_BYTES)
        except OSError as e:
            raise SourceError(
                f"{self._rel(name)}: not a readable Arrow file ({os_error_text(e)})", hint=_HINT
            ) from None

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

    def _file(self, shard: int) -> str:
        return self._load_meta()[2][shard]

    def _read_batch(self, shard: int, batch: int, columns: Sequence[str]) -> pa.Table:
        pa_ = require("pyarrow")
        # zero-copy through a memory map: only the pages of the wanted columns are touched
        try:
            reader = pa_.ipc.open_stream(pa_.BufferReader(self._map(self._file(shard))))
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
        # plain reads, not a memory map: each batch is read into the heap and freed after,
        # so the resident memory stays one batch (mapped pages would stay resident)
        try:
            with self._open(self._file(shard)) as src:
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
            reader = pa_.ipc.open_stream(pa_.BufferReader(self._map(self._file(shard))))
            for b, rb in enumerate(reader):
                yield b, project_columns(pa_.Table.from_batches([rb]), columns)
        except (pa_.ArrowException, OSError) as e:
            raise SourceError(f"{self._shards()[shard].name}: cannot be read ({e})") from None

    def _null_image_rows_hint(self, shard: int, batch: int) -> bool:
        return True  # Arrow files carry no statistics; check the validity bitmaps

    def close(self) -> None:
        with self._lock:
            self._cache = None


def _load(path: Path, what: str) -> Any:
    """A metadata file of the dataset, parsed: a regular file (links followed, as in a Hub
    cache snapshot), bounded, strict JSON."""
    try:
        data = safefs.read_path(path, limit=MAX_METADATA_BYTES)
    except OSError as e:
        raise SourceError(f"{what}: cannot be read ({os_error_text(e)})", hint=_HINT) from None
    return load_json(data, what=what, error=SourceError, hint=_HINT)


def _plain_name(name: object) -> bool:
    """A name of an entry inside a folder: not a path, not ``..``, nothing a path could hide."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in "/\\\0")
    )


def _listed_splits(root: Path) -> list[str]:
    """The splits ``dataset_dict.json`` lists: each must be a folder name inside ``root``."""
    doc = _load(root / "dataset_dict.json", "dataset_dict.json")
    splits = doc.get("splits") if isinstance(doc, dict) else None
    if not isinstance(splits, list) or not splits:
        raise SourceError("dataset_dict.json: no list of splits", hint=_HINT)
    for s in splits:
        if not _plain_name(s):
            raise SourceError(
                f"dataset_dict.json lists a split {s!r}, which is not a folder name: a split "
                f"must be a folder inside {root}",
                hint="the folder is damaged or hostile; save the DatasetDict again with "
                "save_to_disk",
            )
    return [str(s) for s in splits]


def _inside(root: Path, name: str) -> Path:
    """``root/name``, a folder that is inside ``root`` (also where links lead)."""
    path = root / name
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if top not in real.parents:
        raise SourceError(
            f"split {name!r} of {root} is a link that leads outside it ({real})",
            hint="copy the split's folder into the DatasetDict folder",
        )
    if not path.is_dir():
        raise SourceError(f"split {name!r} of {root} is not a folder", hint=_HINT)
    return path


def _data_files(state: Any, where: str) -> tuple[str, ...]:
    """The ``.arrow`` files ``state.json`` names: at least one, each a plain name in its folder."""
    files = state.get("_data_files") if isinstance(state, dict) else None
    if not isinstance(files, list) or not files:
        raise SourceError(f"{where}: no list of data files (_data_files)", hint=_HINT)
    names = []
    for f in files:
        name = f.get("filename") if isinstance(f, dict) else None
        if not _plain_name(name):
            raise SourceError(
                f"{where} names a data file {name!r}, which is not a file name: data files "
                "must be in the dataset's own folder",
                hint="the folder is damaged or hostile; save the dataset again with save_to_disk",
            )
        names.append(str(name))
    return tuple(names)


def _dict_split(folder: Path) -> str | None:
    """The split name of a DatasetDict's split folder (its name, if the parent lists it)."""
    try:
        doc = load_json(
            safefs.read_path(folder.parent / "dataset_dict.json", limit=MAX_METADATA_BYTES),
            what="dataset_dict.json",
            error=SourceError,
        )
        return folder.name if folder.name in doc.get("splits", ()) else None
    except (OSError, SourceError, AttributeError, TypeError):
        return None
