"""A Hugging Face parquet original: a folder of shards in a Hub layout, or one ``.parquet`` file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolchain._internal.deps import require
from toolchain._internal.parquet import open_parquet
from toolchain.errors import SourceError
from toolchain.source.hf.base import HFSource, Shard, several
from toolchain.source.hf.features import features_of_schema, plain_features_of_schema
from toolchain.source.hf.layout import parquet_layout

if TYPE_CHECKING:
    import pyarrow as pa

    from toolchain.model.original import OriginalRef

__all__ = ["READ_BATCH_ROWS", "RELEASE_BYTES", "ParquetSource"]

READ_BATCH_ROWS = 16
"""Rows decoded at a time when streaming a parquet row group."""
RELEASE_BYTES = 1 << 20
"""Streaming, pyarrow's pool gives back what it freed after each row group, and within one
after each batch that brings the rows read since to this many bytes (1 MiB: a 1000-image
shard of 50 kB JPEGs peaks 1 MB above a release after every batch, 4 MB below one after
every row group, and pays 25 ms for it)."""


@dataclass(eq=False)
class ParquetSource(HFSource):
    """A folder of parquet shards in a Hub layout, or one ``.parquet`` file."""

    path: Path
    split: str | None = None
    config: str | None = None
    image_column: str | None = None
    columns: str | Sequence[str] | None = None
    ids: str = "auto"
    prefer: OriginalRef | None = None
    """The config and split chosen where the folder has several and none is given."""
    _files: tuple[str, ...] = field(default=(), init=False, repr=False)
    _split_resolved: str = field(default="", init=False, repr=False)
    _config_resolved: str = field(default="", init=False, repr=False)
    _other: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _meta: tuple[tuple[Shard, ...], dict[str, Any]] | None = field(
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
        if config is None and self.prefer is not None and self.prefer.config in configs:
            config = self.prefer.config
        if config is None:
            if len(configs) > 1:
                raise several(
                    p, "config", configs, (self.prefer.config or None) if self.prefer else None
                )
            config = configs[0]
        elif config not in configs:
            raise SourceError(
                f"{p} has no config {config!r}; its configs: {', '.join(configs)}",
                hint="pass one of them with --config",
            )
        splits = [s for c, s in layout if c == config]
        split = self.split
        if split is None and self.prefer is not None and self.prefer.split in splits:
            split = self.prefer.split
        if split is None:
            if len(splits) > 1:
                raise several(
                    p, "split", splits, (self.prefer.split or None) if self.prefer else None
                )
            split = splits[0]
        elif split not in splits:
            raise SourceError(
                f"{p} has no split {split!r}; its splits: {', '.join(splits)}",
                hint="pass one of them with --split",
            )
        self._split_resolved, self._config_resolved = split, config
        self._files = layout[(config, split)]
        for (c, s), files in layout.items():
            if (c, s) != (config, split):
                self._other["parquet (other split)"] = self._other.get(
                    "parquet (other split)", 0
                ) + len(files)

    def _split_name(self) -> str:
        return self._split_resolved

    def _config_name(self) -> str:
        return self._config_resolved  # a single file: none known

    def _ignored(self) -> dict[str, int]:
        return dict(self._other)

    def _open(self, rel: str) -> Any:
        # buffered reads of 1 MiB: a large row group is never read whole
        return open_parquet(
            self._root / rel,
            error=SourceError,
            what=rel,
            hint="download this shard again and compare its checksum with the Hub's",
            buffer_size=1 << 20,
        )

    def _load_meta(self) -> tuple[tuple[Shard, ...], dict[str, Any]]:
        with self._lock:
            if self._meta is not None:
                return self._meta
            shards: list[Shard] = []
            nulls: list[dict[str, frozenset[int]]] = []
            schemas: list[pa.Schema] = []
            plain: list[dict[str, Any] | None] = []
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
                # the schema metadata usually suffices: datasets (1 s, 145 MB) is not imported
                plain.append(plain_features_of_schema(schema, where=rel))
                schemas.append(schema)
                if len(schemas) > 1 and None not in (plain[0], plain[-1]):
                    self._same_schema(schemas, plain, len(schemas) - 1)
                shards.append(Shard(name=rel, start=start, batch_starts=tuple(starts)))
                start += starts[-1]
            features = plain
            if None in plain:  # every shard's features from datasets, so that all compare
                features = [
                    features_of_schema(s, where=r)
                    for s, r in zip(schemas, self._files, strict=True)
                ]
                for i in range(1, len(schemas)):
                    self._same_schema(schemas, features, i)
            first = features[0] if features else {}
            assert first is not None
            self._meta = (tuple(shards), first)
            self._nulls = tuple(nulls)
            return self._meta

    def _same_schema(
        self, schemas: Sequence[pa.Schema], features: Sequence[dict[str, Any] | None], i: int
    ) -> None:
        """Raise unless shard ``i`` has the first shard's columns and features."""
        first, feats = features[0], features[i]
        assert first is not None and feats is not None
        if not schemas[i].remove_metadata().equals(schemas[0].remove_metadata()) or (
            feats != first
        ):
            raise SourceError(
                f"the schemas of {self._files[0]} and {self._files[i]} disagree: "
                + _schema_diff(first, feats),
                hint="the shards come from different versions of the dataset; "
                "download the split again",
            )

    def _features(self) -> Mapping[str, Any]:
        return self._load_meta()[1]

    def _shards(self) -> tuple[Shard, ...]:
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
        # pyarrow's pool (mimalloc) keeps what it freed: read on without giving it back, its
        # resident set grows by 40 MB over a 1000-image shard (`release_unused`: 0.8 ms)
        pool, unreleased = pa_.default_memory_pool(), 0
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
                        unreleased += table.nbytes
                        del rb, table
                        if unreleased >= RELEASE_BYTES:
                            pool.release_unused()
                            unreleased = 0
                except (pa_.ArrowException, OSError) as e:
                    raise SourceError(
                        f"{name}, row group {bi}: cannot be read ({e})",
                        hint="download this shard again and compare its checksum with the Hub's",
                    ) from None
                pool.release_unused()  # the row group's read buffers
                unreleased = 0
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
