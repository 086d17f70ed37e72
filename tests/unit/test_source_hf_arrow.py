"""source/hf/arrow.py: ``save_to_disk`` originals, a ``Dataset`` or a ``DatasetDict`` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import hf_offline, make_dataset
from tests.hf_sources import SPECS, expected, rows, samples
from tests.hub_snapshots import COMMIT, with_downloads
from toolchain.errors import SourceError
from toolchain.model.original import OriginalRef
from toolchain.source import open_source

__all__ = ["hf_offline", "rows"]

pytestmark = pytest.mark.usefixtures("hf_offline")


def test_arrow_dataset_and_dict(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    import datasets

    single = tmp_path / "single"
    make_dataset(rows).save_to_disk(str(single), num_shards=2)
    with open_source(single) as src:
        assert src.listing().columns == SPECS
        got = {sid: (data, cols) for sid, data, cols in samples(src)}
        # save_to_disk (like push_to_hub) embeds the images and keeps only the paths' base names
        assert got == {k.split("/")[-1]: v for k, v in expected(rows).items()}
        assert src.read("horse.png") == rows[2]["bytes"]
    dd = tmp_path / "dict"
    datasets.DatasetDict(
        {"train": make_dataset(rows), "test": make_dataset(rows[:2], paths=False)}
    ).save_to_disk(str(dd))
    with pytest.raises(SourceError, match="several splits: train, test"):
        open_source(dd)
    with pytest.raises(SourceError, match="no split 'dev'"):
        open_source(dd, split="dev")
    with open_source(dd, split="test") as src:
        assert src.listing().ids == ("test/0", "test/1")
        assert src.read("test/1") == rows[1]["bytes"]
    with open_source(dd / "test") as src:  # one split's folder: a Dataset saved as 'test'
        assert src.listing().ids == ("test/0", "test/1")
    with pytest.raises(SourceError, match="holds one split, 'test', not 'train'"):
        open_source(dd / "test", split="train").listing()


def test_arrow_null_image_names_the_file(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    import datasets

    ds = make_dataset(rows)
    images = [{"bytes": r["bytes"], "path": r["path"]} for r in rows]
    images[6] = None
    ds = (
        ds.remove_columns("image")
        .add_column("image", images)
        .cast_column("image", datasets.Image())
    )
    ds.save_to_disk(str(tmp_path / "a"))
    with pytest.raises(SourceError, match=r"data-00000-of-00001.arrow, row 6 .*no image"):
        open_source(tmp_path / "a").listing()


def test_a_saved_dataset_records_what_its_info_knows(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    import datasets

    url = f"hf://datasets/photo-lab/pets@{COMMIT}/data/test-00000-of-00001.parquet"
    test = with_downloads(make_dataset(rows[:2], paths=False), [url])
    datasets.DatasetDict({"train": make_dataset(rows), "test": test}).save_to_disk(
        str(tmp_path / "dict")
    )
    with open_source(tmp_path / "dict", split="test") as src:
        assert src.original_ref == OriginalRef(
            repo="photo-lab/pets", revision=COMMIT, config="default", split="test"
        )
        assert src.name == "photo-lab/pets"
    with open_source(tmp_path / "dict", split="train") as src:  # its info names no download
        assert src.original_ref == OriginalRef(split="train")
        assert src.name == "dict"
