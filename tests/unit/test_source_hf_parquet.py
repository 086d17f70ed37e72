"""source/hf/parquet.py: parquet originals, both Hub layouts and a single ``.parquet`` file."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import (
    class_records,
    hf_offline,
    make_dataset,
    to_converted_parquet,
    to_hub_parquet,
)
from tests.hf_sources import SPECS, expected, hub, rows, samples
from tests.hostile import no_hang
from tests.hub_snapshots import COMMIT, cache_repo, hub_offline, snapshot_of
from toolchain.errors import SourceError
from toolchain.model.original import OriginalRef
from toolchain.source import open_source

__all__ = ["hf_offline", "hub", "hub_offline", "rows"]

pytestmark = pytest.mark.usefixtures("hf_offline")


# -- Hub layout data/<split>-NNNNN-of-NNNNN.parquet --------------------------------------


def test_parquet_listing_ids_columns_and_ignored(hub: Path, rows: list[dict[str, Any]]) -> None:
    with open_source(hub, split="train") as src:
        listing = src.listing()
        assert listing.ids == tuple(sorted((r["path"] for r in rows), key=str.encode))
        assert listing.columns == SPECS
        # README.md, .gitattributes, and the test split's shard
        assert listing.ignored == 3
        assert dict(listing.ignored_kinds) == {".md": 1, "hidden": 1, "parquet (other split)": 1}
        got = {sid: (data, cols) for sid, data, cols in samples(src)}
    assert got == expected(rows)


def test_parquet_needs_a_split_and_names_them(hub: Path) -> None:
    with pytest.raises(SourceError, match="several splits: test, train") as e:
        open_source(hub)
    assert "--split" in (e.value.hint or "")
    with pytest.raises(SourceError, match="no split 'validation'; its splits: test, train"):
        open_source(hub, split="validation")


def test_a_preferred_split_is_read_only_where_none_is_given(hub: Path) -> None:
    """``prefer``: the split a manifest records, chosen where the folder has several."""
    with open_source(hub, prefer=OriginalRef(split="test")) as src:
        assert src.original_ref == OriginalRef(config="default", split="test")
    with open_source(hub, split="train", prefer=OriginalRef(split="test")) as src:
        assert src.original_ref == OriginalRef(config="default", split="train")
    with pytest.raises(SourceError, match="several splits \\(test, train\\)") as e:
        open_source(hub, prefer=OriginalRef(split="validation"))  # not here
    assert "not the split 'validation' the manifest records" in e.value.message
    assert "its split 'validation'" in (e.value.hint or "")


def test_source_pickles_for_workers(hub: Path) -> None:
    with open_source(hub, split="train") as src:
        ids = src.listing().ids
        clone = pickle.loads(pickle.dumps(src))
        assert clone.read(ids[3]) == src.read(ids[3])
        clone.close()


def test_single_parquet_file_is_split_train(hub: Path) -> None:
    with open_source(hub / "data" / "test-00000-of-00001.parquet") as src:
        assert len(src.listing().ids) == 3
        with pytest.raises(SourceError, match="no configs or splits"):
            open_source(hub / "data" / "test-00000-of-00001.parquet", split="test")


# -- the original's identity -------------------------------------------------------------


def test_a_hub_cache_snapshot_names_its_repo_commit_config_and_split(
    hub: Path, hub_offline: Path, rows: list[dict[str, Any]]
) -> None:
    cache_repo(hub, hub_offline, "photo-lab/pets")
    snapshot = snapshot_of("photo-lab/pets")  # huggingface_hub resolves it, offline
    assert snapshot.name == COMMIT
    with open_source(snapshot, split="test") as src:
        assert src.original_ref == OriginalRef(
            repo="photo-lab/pets", revision=COMMIT, config="default", split="test"
        )
        assert src.name == "photo-lab/pets"  # not the snapshot's commit
        assert len(src.listing().ids) == 3  # read through the snapshot's links into blobs/
    with open_source(snapshot / "data" / "train-00000-of-00002.parquet") as one:
        assert one.original_ref == OriginalRef(
            repo="photo-lab/pets", revision=COMMIT, split="train"
        )  # a single file: no config


def test_a_plain_folder_knows_its_config_and_split_not_a_repo(
    tmp_path: Path, hub: Path, rows: list[dict[str, Any]]
) -> None:
    with open_source(hub, split="train") as src:
        assert src.original_ref == OriginalRef(config="default", split="train")
        assert src.name == "hub"
    root = tmp_path / "conv"
    to_converted_parquet(make_dataset(rows[:2]), root, "small", "partial-train")
    with open_source(root) as src:
        assert src.original_ref == OriginalRef(config="small", split="partial-train")


# -- Hub layout <config>/<split>/NNNN.parquet ---------------------------------------------


def test_converted_layout_with_configs(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    root = tmp_path / "conv"
    to_converted_parquet(make_dataset(rows), root, "full", "train", shards=2)
    to_converted_parquet(make_dataset(rows[:2]), root, "small", "train")
    with pytest.raises(SourceError, match="several configs: full, small"):
        open_source(root)
    with open_source(root, prefer=OriginalRef(config="small", split="train")) as src:
        assert src.original_ref == OriginalRef(config="small", split="train")
    with pytest.raises(SourceError, match="no config 'tiny'"):
        open_source(root, config="tiny")
    with open_source(root, config="full") as src:
        got = {sid: (data, cols) for sid, data, cols in samples(src)}
    assert got == expected(rows)
    with open_source(root, config="small", split="train") as src:
        assert len(src.listing().ids) == 2


# -- bad shards --------------------------------------------------------------------------


def test_corrupt_footer_names_the_shard(hub: Path) -> None:
    shard = hub / "data" / "train-00001-of-00002.parquet"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(
        SourceError, match=r"train-00001-of-00002.parquet: not a readable parquet"
    ) as e:
        open_source(hub, split="train").listing()
    assert "download this shard again" in (e.value.hint or "")


def test_image_paths_that_are_not_utf8_are_refused_naming_the_rows(hub: Path) -> None:
    """Found by fuzz/atheris_parquet_source.py: parquet writers need not check strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shard = hub / "data" / "train-00001-of-00002.parquet"
    table = pq.read_table(shard)
    image = table.column("image").combine_chunks()
    n = len(image)
    offsets = pa.array(range(n + 1), type=pa.int32()).buffers()[1]
    bad = pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(b"\xff" * n)])
    image = pa.StructArray.from_arrays([image.field("bytes"), bad], names=["bytes", "path"])
    pq.write_table(table.set_column(table.schema.get_field_index("image"), "image", image), shard)
    with pytest.raises(SourceError, match=r"train-00001-of-00002.parquet, row 0 .* column "
                       r"'image.path' holds text that is not UTF-8"):  # fmt: skip
        open_source(hub, split="train").listing()


def test_a_fifo_in_place_of_a_shard_is_refused_not_waited_on(hub: Path) -> None:
    shard = hub / "data" / "train-00001-of-00002.parquet"
    shard.unlink()
    os.mkfifo(shard)
    with (
        no_hang(10),
        pytest.raises(
            SourceError, match=r"train-00001-of-00002.parquet: not a readable parquet file \(not a"
        ) as e,
    ):
        open_source(hub, split="train").listing()
    assert "download this shard again" in (e.value.hint or "")


def test_shards_whose_schemas_disagree(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    root = tmp_path / "mixed"
    to_hub_parquet(make_dataset(rows[:4]), root, "train", shards=2)
    # the second shard from another version of the dataset: other class names
    make_dataset(rows[4:], names=("cat", "wolf")).to_parquet(
        str(root / "data" / "train-00001-of-00002.parquet")
    )
    with pytest.raises(
        SourceError,
        match=r"schemas of .*train-00000.* and .*train-00001.* disagree: column 'label'",
    ):
        open_source(root).listing()


def _set_metadata(shard: Path, features: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(shard)
    doc = json.dumps({"info": {"features": features}}).encode()
    pq.write_table(table.replace_schema_metadata({b"huggingface": doc}), shard, row_group_size=3)


def test_a_shard_whose_features_need_datasets_has_all_read_by_it(hub: Path) -> None:
    """The features of every shard come from one reader, plain or datasets, so that they
    compare: a plain first shard and a second that declares an Audio column it lacks."""
    shard = hub / "data" / "train-00001-of-00002.parquet"
    names = ["cat", "dog"]
    _set_metadata(shard, {"image": {"_type": "Image"}, "gone": {"_type": "Audio"},
                          "label": {"names": names, "_type": "ClassLabel"},
                          "caption": {"dtype": "string", "_type": "Value"},
                          "score": {"dtype": "float32", "_type": "Value"}})  # fmt: skip
    with open_source(hub, split="train") as src:
        assert src.listing().columns == SPECS
    # ... and features it cannot read: the arrow types, which the first shard's are not
    _set_metadata(shard, {"label": 7})
    with pytest.raises(SourceError, match=r"schemas of .* disagree: column 'image' is Image"):
        open_source(hub, split="train").listing()


def test_a_parquet_original_is_read_without_datasets_pandas_or_pyarrow_compute(
    hub: Path,
) -> None:
    """Its schema metadata suffices (``datasets``: 1 s and 145 MB); the image nulls come
    from the validity bitmap (``is_null().to_numpy()`` imports pandas: 0.4 s, 60 MB)."""
    code = (
        "import sys\n"
        "from toolchain.source import open_source\n"
        "with open_source(sys.argv[1], split='train') as src:\n"
        "    ids = src.listing().ids\n"
        "    assert len(list(src.iter_samples(ids))) == len(ids) == 8\n"
        "    assert src.read(ids[0])\n"
        "print([m for m in ('datasets', 'pandas', 'pyarrow.compute') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(hub)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- memory ------------------------------------------------------------------------------


def test_iter_samples_memory_is_a_few_rows_of_a_row_group(tmp_path: Path) -> None:
    """One row group of 160 photographs is decoded READ_BATCH_ROWS (16) rows at a time."""
    import pyarrow as pa

    many = class_records(160)
    root = tmp_path / "many"
    to_hub_parquet(make_dataset(many), root, "train", row_group=160)
    total = sum(len(r["bytes"]) for r in many)
    # pyarrow's count is for the whole process: what earlier tests still hold is not ours.
    base = pa.total_allocated_bytes()
    peak = 0
    with open_source(root) as src:
        for s in src.iter_samples(src.listing().ids):
            assert s.data
            peak = max(peak, pa.total_allocated_bytes() - base)
    assert peak < total / 3


def test_streaming_gives_the_pool_back_what_it_freed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """mimalloc keeps freed memory: without a release after each row group, and every
    RELEASE_BYTES within one, the resident set grows by 40 MB over 1000 small images."""
    import pyarrow as pa

    from toolchain.source.hf import parquet

    many = class_records(160)
    root = tmp_path / "many"
    to_hub_parquet(make_dataset(many), root, "train", row_group=40)
    assert sum(len(r["bytes"]) for r in many[:40]) > 2 * parquet.RELEASE_BYTES
    pool, released = pa.default_memory_pool(), []

    class Pool:
        def release_unused(self) -> None:
            released.append(1)
            pool.release_unused()

    monkeypatch.setattr(pa, "default_memory_pool", Pool)
    with open_source(root) as src:
        assert len(list(src.iter_samples(src.listing().ids))) == 160
    assert len(released) >= 4 * 3  # each of the 4 row groups: twice within, once at its end
