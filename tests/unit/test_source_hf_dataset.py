"""source/hf/dataset.py: an in-memory ``datasets.Dataset`` as an original (Python API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import hf_offline, load_parquet_dir, make_dataset, to_hub_parquet
from tests.hf_sources import rows
from tests.hub_snapshots import COMMIT, with_downloads
from toolchain.model.original import OriginalRef
from toolchain.source import open_source
from toolchain.source.hf import dataset
from toolchain.source.hf.dataset import DatasetSource, is_dataset

__all__ = ["hf_offline", "rows"]

pytestmark = pytest.mark.usefixtures("hf_offline")


def test_dataset_object_honours_select(rows: list[dict[str, Any]]) -> None:
    ds = make_dataset(rows, paths=False).select([5, 1, 3])
    with open_source(ds, split="val") as src:
        assert src.listing().ids == ("val/0", "val/1", "val/2")
        got = [(s.id, s.data, s.columns["label"]) for s in src.iter_samples(src.listing().ids)]
    assert got == [
        (f"val/{i}", rows[r]["bytes"], rows[r]["label"]) for i, r in enumerate([5, 1, 3])
    ]


def test_is_dataset_by_its_class_not_its_name(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    class Dataset:  # a look-alike from another package
        pass

    assert is_dataset(make_dataset(rows))
    assert not is_dataset(Dataset()) and not is_dataset(tmp_path) and not is_dataset(None)


def test_a_dataset_is_read_in_batches(
    monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]]
) -> None:
    monkeypatch.setattr(dataset, "DATASET_BATCH_ROWS", 3)
    with DatasetSource(make_dataset(rows, paths=False)) as src:
        assert src._shards()[0].batch_starts == (0, 3, 6, 8)
        assert src.listing().ids == tuple(sorted((f"train/{i}" for i in range(8)), key=str.encode))
        assert src.read("train/7") == rows[7]["bytes"]
        got = [(s.id, s.data) for s in src.iter_samples(["train/7", "train/2", "train/4"])]
    assert got == [(f"train/{i}", rows[i]["bytes"]) for i in (2, 4, 7)]


def test_a_dataset_records_its_split_and_what_its_info_knows(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    with open_source(make_dataset(rows)) as src:  # no split, no config, no repo known
        assert src.original_ref == OriginalRef(split="train")
    with open_source(make_dataset(rows), split="validation") as src:
        assert src.original_ref == OriginalRef(split="validation")
    to_hub_parquet(make_dataset(rows), tmp_path / "hub", "validation")
    loaded = load_parquet_dir(tmp_path / "hub" / "data", tmp_path / "cache", split="validation")
    with open_source(loaded) as src:
        assert src.original_ref == OriginalRef(config="default", split="validation")
        assert src.name == "parquet"  # datasets' own name for it: no repo to name
    hub = [f"hf://datasets/photo-lab/pets@{COMMIT}/data/{s}-00000-of-00001.parquet" for s in "ab"]
    with open_source(with_downloads(loaded, hub)) as src:
        assert src.original_ref == OriginalRef(
            repo="photo-lab/pets", revision=COMMIT, config="default", split="validation"
        )
        assert src.name == "photo-lab/pets"
    # files from two repos, or from no repo at all: none is recorded, none guessed
    other = f"hf://datasets/other/pets@{COMMIT}/data/x.parquet"
    for urls in ([*hub, other], ["https://example.org/pets.tar.gz"]):
        with open_source(with_downloads(loaded, urls)) as src:
            assert src.original_ref == OriginalRef(config="default", split="validation")
