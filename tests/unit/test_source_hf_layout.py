"""source/hf/layout.py: which paths are Hugging Face datasets, a parquet folder's shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import hf_offline, make_dataset, to_converted_parquet, to_folder
from tests.hf_sources import hub, rows
from toolchain.errors import SourceError
from toolchain.source import FolderSource, open_source
from toolchain.source.hf import ArrowSource, DatasetSource, ParquetSource
from toolchain.source.hf.layout import detect, parquet_layout, split_patterns

__all__ = ["hf_offline", "hub", "rows"]

pytestmark = pytest.mark.usefixtures("hf_offline")


def _touch(root: Path, *rels: str) -> Path:
    """Empty files at ``rels`` under ``root``: the layout is read from names alone."""
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


def test_detect_kinds(tmp_path: Path, hub: Path, rows: list[dict[str, Any]]) -> None:
    conv = tmp_path / "conv"
    to_converted_parquet(make_dataset(rows), conv, "default", "train")
    arrow = tmp_path / "arrow"
    make_dataset(rows).save_to_disk(str(arrow))
    folder = to_folder(rows, tmp_path / "folder")
    assert detect(hub) == "parquet"
    assert detect(conv) == "parquet"
    assert detect(hub / "data" / "test-00000-of-00001.parquet") == "parquet"
    assert detect(arrow) == "arrow"
    assert detect(folder) is None
    assert detect(tmp_path / "missing") is None
    assert isinstance(open_source(hub, split="train"), ParquetSource)
    assert isinstance(open_source(arrow), ArrowSource)
    assert isinstance(open_source(folder), FolderSource)
    assert isinstance(open_source(make_dataset(rows)), DatasetSource)


def test_detect_a_file_by_its_suffix(tmp_path: Path) -> None:
    assert detect(_touch(tmp_path, "x.PARQUET") / "x.PARQUET") == "parquet"
    assert detect(_touch(tmp_path, "x.txt") / "x.txt") is None
    assert detect(_touch(tmp_path / "top", "train.parquet")) == "parquet"


def test_layout_by_config_and_split_and_the_other_files(tmp_path: Path) -> None:
    root = _touch(
        tmp_path,
        "data/train-00001-of-00002.parquet",
        "data/train-00000-of-00002.parquet",
        "data/test.parquet",
        "other/validation/0000.parquet",
        "README.md",
        ".cache/x.parquet",
    )
    layout, ignored = parquet_layout(root)
    assert layout == {
        ("default", "test"): ("data/test.parquet",),
        ("default", "train"): (
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
        ),
        ("other", "validation"): ("other/validation/0000.parquet",),
    }
    assert ignored == {".md": 1, "hidden": 1}


@pytest.mark.parametrize(
    ("files", "match"),
    [
        (["a/b/c/d.parquet"], "'a/b/c/d.parquet' in .* outside the Hugging Face layouts"),
        (["data/train.parquet", "data/train-00000-of-00001.parquet"], "stored twice"),
        (
            ["data/train-00000-of-00002.parquet", "data/train-00001-of-00003.parquet"],
            "disagree on how many there are",
        ),
    ],
)
def test_layouts_that_are_refused(tmp_path: Path, files: list[str], match: str) -> None:
    with pytest.raises(SourceError, match=match):
        parquet_layout(_touch(tmp_path, *files))


def test_missing_shard_is_named(hub: Path) -> None:
    (hub / "data" / "train-00000-of-00002.parquet").unlink()
    with pytest.raises(SourceError, match="1 of its 2 shards; missing: train-00000-of-00002"):
        open_source(hub, split="train")


_REPO_FILES = (
    "README.md",
    "data/validation-00000-of-00002.parquet",
    "data/validation-00001-of-00002.parquet",
    "data/validation_extra-00000-of-00001.parquet",
    "data/train-00000-of-00001.parquet",
    "cfg/validation/0000.parquet",
    "cfg/train/0000.parquet",
    "other/validation.parquet",
    "images/validation/x.png",
)


def _fetched(patterns: list[str] | None) -> list[str]:
    """The repo files ``snapshot_download(allow_patterns=patterns)`` would fetch."""
    from huggingface_hub.utils import filter_repo_objects

    return sorted(filter_repo_objects(_REPO_FILES, allow_patterns=patterns))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("default", [f"data/validation-0000{i}-of-00002.parquet" for i in (0, 1)]),
        ("cfg", ["cfg/validation/0000.parquet"]),
        ("other", ["other/validation.parquet"]),
    ],
)  # fmt: skip
def test_split_patterns_fetch_one_splits_shards_and_the_card(
    tmp_path: Path, config: str, expected: list[str]
) -> None:
    fetched = _fetched(split_patterns("validation", config))
    assert fetched == sorted(["README.md", *expected])
    # what is fetched is, in the layout we read, exactly that split of the whole repo
    whole, _ = parquet_layout(_touch(tmp_path / "whole", *_REPO_FILES))
    part, _ = parquet_layout(_touch(tmp_path / "part", *fetched))
    assert part == {(config, "validation"): whole[(config, "validation")]}


def test_split_patterns_without_a_config_fetch_the_split_of_every_config() -> None:
    fetched = _fetched(split_patterns("validation", None))
    assert "data/train-00000-of-00001.parquet" not in fetched
    assert "data/validation_extra-00000-of-00001.parquet" not in fetched
    assert {"cfg/validation/0000.parquet", "other/validation.parquet"} <= set(fetched)


@pytest.mark.parametrize(("split", "config"), [(None, None), ("", "cfg"), ("../x", None),
                                               ("val*", None), ("validation", "a/b")])  # fmt: skip
def test_split_patterns_fetch_everything_for_unknown_or_odd_names(
    split: str | None, config: str | None
) -> None:
    assert split_patterns(split, config) is None
