"""source/hf/dataset.py: an in-memory ``datasets.Dataset`` as an original (Python API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import hf_offline, make_dataset
from tests.hf_sources import rows
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
