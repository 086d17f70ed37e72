"""source/hf/arrow.py: ``save_to_disk`` originals, a ``Dataset`` or a ``DatasetDict`` folder."""

from __future__ import annotations

import json
import os
import threading
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
    with open_source(dd, prefer=OriginalRef(split="test")) as src:  # a manifest's split
        assert src.listing().ids == ("test/0", "test/1")
    with pytest.raises(SourceError, match="not the split 'dev' the manifest records"):
        open_source(dd, prefer=OriginalRef(split="dev"))
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


def _saved(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    folder = tmp_path / "saved"
    make_dataset(rows[:3]).save_to_disk(str(folder))
    return folder


def _edit(path: Path, **changes: Any) -> None:
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ([], "no list of data files"),
        ([{"filename": "../data-00000-of-00001.arrow"}], "is not a file name"),
        ([{"filename": "sub/data.arrow"}], "is not a file name"),
        ([{"filename": "."}], "is not a file name"),
        ([{"name": "data-00000-of-00001.arrow"}], "names a data file None"),
    ],
)
def test_state_json_names_data_files_in_its_own_folder_only(
    tmp_path: Path, rows: list[dict[str, Any]], files: list[Any], words: str
) -> None:
    folder = _saved(tmp_path, rows)
    _edit(folder / "state.json", _data_files=files)
    with pytest.raises(SourceError, match=words):
        open_source(folder).listing()


@pytest.mark.parametrize("split", ["", ".", "..", "a/b", "a\\b", "x\0y", 7])
def test_dataset_dict_json_lists_folder_names_only(
    tmp_path: Path, rows: list[dict[str, Any]], split: Any
) -> None:
    import datasets

    folder = tmp_path / "dict"
    datasets.DatasetDict({"train": make_dataset(rows[:2])}).save_to_disk(str(folder))
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["train", split]}))
    with pytest.raises(SourceError, match="which is not a folder name"):
        open_source(folder, split="train")


def test_features_that_do_not_describe_the_files_are_refused(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    folder = _saved(tmp_path, rows)
    info = json.loads((folder / "dataset_info.json").read_text())
    info["features"]["label"] = {"dtype": "string", "_type": "Value"}
    (folder / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(SourceError, match="its features do not describe the columns"):
        open_source(folder).listing()
    info["features"] = {"x": {"_type": "NoSuchFeature"}}
    (folder / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(SourceError, match=r"dataset_info\.json: not a dataset info"):
        open_source(folder).listing()


def test_an_empty_or_cut_arrow_file_is_not_readable(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    folder = _saved(tmp_path, rows)
    data = folder / "data-00000-of-00001.arrow"
    whole = data.read_bytes()
    for cut in (b"", whole[: len(whole) // 2]):
        data.write_bytes(cut)
        with pytest.raises(SourceError, match=r"data-00000-of-00001\.arrow: not a readable Arrow"):
            open_source(folder).listing()


def test_a_fifo_as_a_data_file_is_refused_at_once(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    folder = _saved(tmp_path, rows)
    (folder / "data-00000-of-00001.arrow").unlink()
    os.mkfifo(folder / "data-00000-of-00001.arrow")
    got: list[BaseException] = []

    def run() -> None:
        try:
            open_source(folder).listing()
        except BaseException as e:
            got.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    blocked = t.is_alive()
    if blocked:  # let the blocked open go, so that no thread is left waiting
        os.close(os.open(folder / "data-00000-of-00001.arrow", os.O_WRONLY | os.O_NONBLOCK))
    assert not blocked, "blocked on a FIFO"
    assert isinstance(got[0], SourceError) and "not a regular file" in got[0].message


def test_a_linked_data_file_is_read_where_it_points(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    """As in a Hub cache snapshot (files link into blobs/): the name stays inside."""
    folder = _saved(tmp_path, rows)
    blob = tmp_path / "blobs" / "abc"
    blob.parent.mkdir()
    (folder / "data-00000-of-00001.arrow").rename(blob)
    (folder / "data-00000-of-00001.arrow").symlink_to(blob)
    with open_source(folder) as src:
        assert src.read("horse.png") == rows[2]["bytes"]
