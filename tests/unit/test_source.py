"""toolchain.source: open_source picks the kind of original, or says why it cannot."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.conftest import make_image
from toolchain.errors import SourceError
from toolchain.source import FolderSource, SourceOptions, TarSource, open_source


def test_missing_original_and_non_tar_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        open_source(tmp_path / "nope")
    (tmp_path / "f.bin").write_bytes(b"junk")
    with pytest.raises(SourceError, match="not a tar archive"):
        open_source(tmp_path / "f.bin")


def test_a_folder_and_a_tar_open_as_their_kind(tmp_path: Path) -> None:
    make_image(tmp_path / "orig/a.png")
    with tarfile.open(tmp_path / "orig.tar", "w") as tar:
        tar.add(tmp_path / "orig/a.png", arcname="a.png")
    with open_source(tmp_path / "orig") as folder, open_source(tmp_path / "orig.tar") as packed:
        assert isinstance(folder, FolderSource) and isinstance(packed, TarSource)
        assert folder.listing().ids == packed.listing().ids == ("a.png",)
        assert folder.read("a.png") == packed.read("a.png")


@pytest.mark.parametrize(
    ("options", "flag"),
    [
        ({"split": "train"}, "--split"),
        ({"config": "default"}, "--config"),
        ({"image_column": "img"}, "--image-column"),
        ({"ids": "row"}, "--ids"),
    ],
)
def test_dataset_options_on_a_plain_folder_are_refused(
    tmp_path: Path, options: dict[str, str], flag: str
) -> None:
    make_image(tmp_path / "a.png")
    with pytest.raises(SourceError, match=f"{flag} applies to Hugging Face datasets") as e:
        SourceOptions(**options).open(tmp_path)
    assert e.value.hint and f"drop {flag}" in e.value.hint


def test_columns_apply_to_folders_too(tmp_path: Path) -> None:
    for rel in ("cat/a.png", "dog/b.png"):
        make_image(tmp_path / rel)
    with SourceOptions(columns="-label").open(tmp_path) as src:
        assert src.listing().columns == ()
    with SourceOptions().open(tmp_path) as src:
        assert [c.name for c in src.listing().columns] == ["label"]


def test_an_object_that_is_no_original_is_refused() -> None:
    with pytest.raises(SourceError, match="cannot open an original of type int"):
        open_source(42)
