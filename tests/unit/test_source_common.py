"""toolchain.source._common: sample ids, sample names, collisions, columns, folder labels."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import hf_offline, photos
from tests.hub_snapshots import COMMIT, cache_repo
from toolchain.errors import SourceError
from toolchain.model.columns import ColumnSpec
from toolchain.source import open_source
from toolchain.source._common import class_labels_from_ids, is_sample_name, select_columns

__all__ = ["hf_offline"]


@pytest.mark.parametrize(
    ("rel", "is_sample"),
    [
        ("a.png", True),
        ("a/B.JPG", True),
        ("x.jpeg", True),
        ("x.WebP", True),
        ("x.gif", False),
        ("x.png.txt", False),
        ("png", False),
        (".a.png", False),
        ("a/.hidden/b.png", False),
    ],
)
def test_sample_names_are_images_by_suffix_and_never_hidden(rel: str, is_sample: bool) -> None:
    assert is_sample_name(rel) is is_sample


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ("label", "caption", "score")),
        ("", ()),
        ([], ()),
        ("score,label", ("label", "score")),  # schema order, whatever the order typed
        (" label ", ("label",)),
        ("-caption", ("label", "score")),
        ("-caption,-score", ("label",)),
        (["-score"], ("label", "caption")),
    ],
)
def test_select_columns(spec: Any, expected: tuple[str, ...]) -> None:
    assert select_columns(["label", "caption", "score"], spec, where="x") == expected


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("label,-caption", "mixes picked and dropped"),
        ("label,label", "names 'label' twice"),
        ("colour", "no carryable column 'colour'"),
    ],
)
def test_select_columns_refuses(spec: str, match: str) -> None:
    with pytest.raises(SourceError, match=match):
        select_columns(["label", "caption", "score"], spec, where="x")


@pytest.mark.parametrize(
    "tree",
    [
        ["cat/a.png", "dog/b.png", "dog/c.jpg", "bird/d.png"],
        ["train/cat/a.png", "train/dog/b.png", "test/dog/c.png", "test/cat/d.png"],
        # split folders only: imagefolder labels them too (but, in datasets 5.2.0, leaves
        # the first split's rows without a label: its labels are counted split by split)
        ["train/a.png", "test/b.png"],
        ["a.png", "b.png"],  # flat: no labels
        ["cat/a.png", "cat/b.png"],  # one class: no labels
        ["cat/a.png", "dog/x/b.png"],  # mixed depths: no labels
        ["Zebra/a.png", "apple/b.png", "Äpfel/c.png"],  # code-point order
    ],
)
def test_class_labels_match_imagefolder(tmp_path: Path, hf_offline: Path, tree: list[str]) -> None:
    import datasets

    from tests.hf_cases import photos

    root = tmp_path / "orig"
    for rel, (_, data) in zip(tree, photos(len(tree)), strict=True):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    ids = open_source(root).listing().ids
    ours = class_labels_from_ids(ids)
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(root), cache_dir=str(hf_offline / "cache")
    )
    feature = next(iter(loaded.values())).features.get("label")
    if feature is None:
        assert ours is None
        return
    assert ours is not None
    spec, values = ours
    assert spec == ColumnSpec(name="label", type="class_label", names=tuple(feature.names))
    for split in loaded.values():
        split = split.cast_column("image", datasets.Image(decode=False))
        for row in split:
            rel = Path(row["image"]["path"]).relative_to(root).as_posix()
            assert values[rel] == row["label"] or (row["label"] is None and tree[0] == rel)


def test_class_labels_none_with_a_metadata_file() -> None:
    assert class_labels_from_ids(["cat/a.png", "dog/b.png"], has_metadata_file=True) is None


def test_class_labels_are_indices_into_sorted_folder_names() -> None:
    found = class_labels_from_ids(["dog/b.png", "cat/a.png", "dog/c.png", "bird/d.png"])
    assert found is not None
    spec, values = found
    assert spec == ColumnSpec(name="label", type="class_label", names=("bird", "cat", "dog"))
    assert dict(values) == {"bird/d.png": 0, "cat/a.png": 1, "dog/b.png": 2, "dog/c.png": 2}
    # the class is the folder that holds the file, at any (common) depth
    found = class_labels_from_ids(["val/cat/a.png", "val/dog/b.png"])
    assert found is not None and found[0].names == ("cat", "dog")


def test_folders_and_tars_name_no_dataset_but_a_hub_snapshot_is_named_by_its_repo(
    tmp_path: Path,
) -> None:
    staging = tmp_path / "staging"
    for name, data in photos(2):
        (staging / "cat").mkdir(parents=True, exist_ok=True)
        (staging / "cat" / name).write_bytes(data)
    with tarfile.open(staging / "cats.tar", "w") as tar:
        tar.add(staging / "cat", arcname="cat")
    with open_source(staging) as folder, open_source(staging / "cats.tar") as tarred:
        assert folder.original_ref is None and tarred.original_ref is None
        assert (folder.name, tarred.name) == ("staging", "cats.tar")
    # an image-folder dataset repo in the Hub cache: titled by its repo, not its commit
    cache_repo(staging, tmp_path / "hub", "photo-lab/cats")
    snapshot = tmp_path / "hub" / "datasets--photo-lab--cats" / "snapshots" / COMMIT
    with open_source(snapshot / "cat") as folder, open_source(snapshot / "cats.tar") as tarred:
        assert folder.original_ref is None and tarred.original_ref is None
        assert folder.name == tarred.name == "photo-lab/cats"
