"""toolchain.diff.create: a deterministic .bdiff of a benchmark that verifies, from the very
original it was made from, written only where nothing of ours is overwritten."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import toolchain
from tests.diff_cases import build, pinned, tiny_original
from toolchain.diff import create_diff
from toolchain.diff.format import KeyOn, PayloadKind
from toolchain.diff.reader import open_diff
from toolchain.errors import InputError
from toolchain.model.manifest import MANIFEST_NAME, load_manifest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("create")
    original = tiny_original(work / "original")
    bench, diff = build(original, "adversarial", work)
    return original, bench, diff


def test_create_twice_gives_identical_bytes(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, bench, diff = tiny
    with pinned():
        toolchain.create_diff(original, bench, tmp_path / "again.bdiff")
    assert (tmp_path / "again.bdiff").read_bytes() == diff.read_bytes()


def test_create_refuses_a_benchmark_that_does_not_verify(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, bench, _ = tiny
    copy = Path(shutil.copytree(bench, tmp_path / "bench"))
    entry = load_manifest(copy / MANIFEST_NAME).entries[0]
    (copy / entry.path).unlink()
    with pytest.raises(InputError, match="does not verify"):
        create_diff(original, copy, tmp_path / "x.bdiff")
    assert not (tmp_path / "x.bdiff").exists()


def test_create_refuses_another_original(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, bench, _ = tiny
    other = tiny_original(tmp_path / "other")
    from tests.conftest import make_image

    make_image(other / "a/one.png", seed=99)
    with pinned(), pytest.raises(InputError, match="other pixels") as e:
        create_diff(other, bench, tmp_path / "x.bdiff")
    assert e.value.sample == "a/one.png"


def test_the_result_describes_what_was_written(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, bench, _ = tiny
    with pinned():
        result = create_diff(original, bench, tmp_path / "d.bdiff", key_on="pixels")
    doc = result.to_json()
    assert doc["samples"] == 5 and doc["delta"] + doc["full"] == 5
    assert doc["key_on"] == "pixels" and doc["bytes"] == (tmp_path / "d.bdiff").stat().st_size
    with open_diff(tmp_path / "d.bdiff") as reader:
        assert reader.header.key_on is KeyOn.PIXELS
        assert [r.kind for r in reader.records] == list(result.kinds)
        assert reader.manifest.root == load_manifest(bench / MANIFEST_NAME).root
    assert set(result.kinds) <= set(PayloadKind)


@pytest.mark.parametrize(
    ("kw", "words"),
    [({"key_on": "name"}, "key_on must be 'file' or 'pixels'"),
     ({"format": "zip"}, "unknown diff format 'zip'")],
)  # fmt: skip
def test_bad_options_are_bad_input(
    tiny: tuple[Path, Path, Path], tmp_path: Path, kw: dict[str, str], words: str
) -> None:
    original, bench, _ = tiny
    with pytest.raises(InputError, match=words):
        create_diff(original, bench, tmp_path / "x.bdiff", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["manifest.json", "metadata.jsonl", "manifest.shard-0-of-2.json"])
def test_out_never_overwrites_a_file_of_a_benchmark_folder(
    tiny: tuple[Path, Path, Path], tmp_path: Path, name: str
) -> None:
    original, bench, _ = tiny
    target = tmp_path / name
    target.write_text("keep")
    with pinned(), pytest.raises(InputError, match="refusing to overwrite"):
        create_diff(original, bench, target)
    assert target.read_text() == "keep"


def test_out_may_not_be_a_folder(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, bench, _ = tiny
    with pinned(), pytest.raises(InputError, match="is a folder"):
        create_diff(original, bench, tmp_path)


def test_a_renamed_original_still_makes_the_same_diff(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """The container commits to the benchmark and the originals' bytes, not to where they are."""
    original, bench, diff = tiny
    copy = Path(shutil.copytree(original, tmp_path / "elsewhere" / "val"))
    with pinned():
        toolchain.create_diff(copy, bench, tmp_path / "again.bdiff")
    assert (tmp_path / "again.bdiff").read_bytes() == diff.read_bytes()
