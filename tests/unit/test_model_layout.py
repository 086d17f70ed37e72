"""toolchain.model.layout: the one rule from sample ids to output paths, and the pairs a benchmark
folder may hold (no collisions, no reserved or hidden names, no file used as a folder)."""

from __future__ import annotations

import pytest

from toolchain.errors import ManifestError, SourceError
from toolchain.model.layout import (
    RESERVED_NAMES,
    check_layout,
    is_shard_manifest,
    output_path_for,
    plan_outputs,
    shard_manifest_name,
)


@pytest.mark.parametrize(
    ("sample_id", "path"),
    [
        ("a.jpg", "a.png"),
        ("cat/a.JPEG", "cat/a.png"),
        ("a.png", "a.png"),
        ("a.b.webp", "a.b.png"),
        ("noext", "noext.png"),
        ("dir.d/noext", "dir.d/noext.png"),  # a dot in a folder name is no suffix
        ("train/17", "train/17.png"),  # a row id of a Hugging Face original
        (".png", ".png"),
    ],
)
def test_output_path_for(sample_id: str, path: str) -> None:
    assert output_path_for(sample_id) == path


def test_shard_manifest_names() -> None:
    assert shard_manifest_name("3-of-8") == "manifest.shard-3-of-8.json"
    assert is_shard_manifest("manifest.shard-3-of-8.json")
    assert not is_shard_manifest("manifest.shard-x-of-8.json")
    assert not is_shard_manifest("sub/manifest.shard-3-of-8.json")
    assert not is_shard_manifest("manifest.json")


def test_the_pairs_we_write_pass() -> None:
    ids = ["a.jpg", "cat/b.png", "cat/c.webp", "dog/d.png"]
    pairs = plan_outputs(ids)
    assert pairs == [(i, output_path_for(i)) for i in ids]
    check_layout(pairs)


def test_a_path_that_is_not_the_ids_own_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"has output path 'x\.png'; it must be 'a\.png'") as e:
        check_layout([("a.jpg", "x.png")])
    assert "not written by benchmark-regen" in (e.value.hint or "")


@pytest.mark.parametrize(
    "name", [*sorted(RESERVED_NAMES), "manifest.shard-0-of-2.json", "README.png"]
)
def test_the_folders_own_files_can_never_be_a_samples_output(name: str) -> None:
    """Output paths end in .png and the folder's own files do not (README.png is a sample)."""
    if name.endswith(".png"):
        check_layout([(name, name)])
        return
    with pytest.raises(ManifestError, match="it must be"):
        check_layout([(name, name)])
    assert output_path_for(name) != name


@pytest.mark.parametrize("sid", [".hidden.png", "a/.b/c.png", ".benchmark-regen/journal.png"])
def test_hidden_paths_and_the_state_folder_are_refused(sid: str) -> None:
    with pytest.raises(ManifestError, match=r"starts with '\.'"):
        check_layout([(sid, output_path_for(sid))])


def test_paths_equal_once_case_is_folded_collide() -> None:
    with pytest.raises(SourceError, match=r"samples 'A\.jpg' and 'a\.png' would both be written"):
        plan_outputs(["A.jpg", "a.png"])
    with pytest.raises(SourceError, match="would both be written"):
        plan_outputs(["x.jpg", "x.png"])  # different ids, one output
    with pytest.raises(SourceError, match="would both be written"):
        plan_outputs(["Stra\u00dfe.png", "STRASSE.png"])


def test_a_file_needed_as_a_folder_collides() -> None:
    with pytest.raises(SourceError, match=r"which sample 'a\.png/b\.png' needs as a folder"):
        plan_outputs(["a.png", "a.png/b.png"])
    with pytest.raises(ManifestError, match="needs as a folder"):
        check_layout([("A.png/b.jpg", "A.png/b.png"), ("a.jpg", "a.png")])  # after case folding


def test_plan_outputs_reports_source_errors_and_check_layout_manifest_errors() -> None:
    with pytest.raises(SourceError):
        plan_outputs(["a.png", "A.png"])
    with pytest.raises(ManifestError):
        check_layout([("a.png", "a.png"), ("A.png", "A.png")])


def test_parquet_shard_names_have_one_owner() -> None:
    from toolchain.model.layout import is_parquet_shard, parquet_shard_name

    name = parquet_shard_name("validation", 3, 12)
    assert name == "validation-00003-of-00012.parquet"
    assert is_parquet_shard(name) and is_parquet_shard(name, "validation")
    assert not is_parquet_shard(name, "train")
    for other in (
        "data/" + name,
        "train-3-of-12.parquet",
        "train-00003-of-00012.parq",
        "x.parquet",
    ):
        assert not is_parquet_shard(other)
