"""Path safety: no read or write ever escapes the original or ``--out``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_image
from tests.hostile import HOSTILE
from toolchain.errors import ExitCode, OutputError, SourceError
from toolchain.model.ids import check_sample_id
from toolchain.run.generate import generate_benchmark, plan_outputs
from toolchain.source import FolderSource


@HOSTILE
@given(st.text(max_size=40))
def test_an_accepted_id_always_stays_inside(sample_id: str) -> None:
    """Any id check_sample_id accepts resolves to a path strictly inside any root."""
    try:
        check_sample_id(sample_id)
    except SourceError as e:
        assert e.exit_code == ExitCode.BAD_INPUT and "unsafe sample id" in e.message
        return
    root = Path("/nonexistent-root/out")
    joined = Path(os.path.normpath(root / sample_id))
    assert root in joined.parents
    assert "\\" not in sample_id and "\x00" not in sample_id


def test_symlinked_file_pointing_outside_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    make_image(secret)
    orig = tmp_path / "orig"
    make_image(orig / "ok.png")
    (orig / "leak.png").symlink_to(secret)
    with pytest.raises(SourceError, match="points outside the original") as e:
        FolderSource(orig).listing()  # refused when listed: nothing is read
    assert e.value.exit_code == ExitCode.BAD_INPUT
    with pytest.raises(SourceError, match="symlink: not followed"):
        FolderSource(orig).read("leak.png")
    with pytest.raises(SourceError, match="points outside the original"):
        generate_benchmark(orig, "identity", tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_symlinked_folder_pointing_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make_image(outside / "x.png")
    orig = tmp_path / "orig"
    make_image(orig / "ok.png")
    (orig / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SourceError, match="'sub' is a symlink that points outside"):
        FolderSource(orig).listing()


def test_a_second_path_to_the_same_folder_is_refused(tmp_path: Path) -> None:
    """A symlink aliasing a folder inside the original would list its images twice;
    it is refused like a loop (conservative: one path per file)."""
    orig = tmp_path / "orig"
    make_image(orig / "a" / "x.png")
    (orig / "b").symlink_to(orig / "a", target_is_directory=True)
    with pytest.raises(SourceError, match=r"'b' is a second path \(a symlink\) to 'a'") as e:
        FolderSource(orig).listing()
    assert e.value.exit_code == ExitCode.BAD_INPUT


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    orig = tmp_path / "orig"
    make_image(orig / "a" / "x.png")
    (orig / "a" / "loop").symlink_to(orig / "a", target_is_directory=True)
    with pytest.raises(SourceError, match=r"second path .* in a loop"):
        FolderSource(orig).listing()


@pytest.mark.parametrize(
    "bad", ["../x.png", "/etc/passwd", "a/../../x.png", "a\\..\\x.png", "a\x00.png"]
)
def test_reading_an_unsafe_id_is_refused(tmp_path: Path, bad: str) -> None:
    make_image(tmp_path / "ok.png")
    with pytest.raises(SourceError, match="unsafe sample id"):
        FolderSource(tmp_path).read(bad)


def test_names_colliding_after_case_folding_are_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "A.png")
    make_image(tmp_path / "a.png", seed=1)
    with pytest.raises(SourceError, match="collide once case is folded") as e:
        FolderSource(tmp_path).listing()
    assert e.value.exit_code == ExitCode.BAD_INPUT


def test_names_colliding_after_the_png_rename_are_refused() -> None:
    with pytest.raises(SourceError, match=r"would both be written to 'x\.png'"):
        plan_outputs(["x.jpg", "x.webp"])


def test_out_symlinks_are_not_followed_on_overwrite(tmp_path: Path, small_original: Path) -> None:
    """--overwrite never follows a symlink in --out: it names it, refuses, and deletes nothing."""
    keep = tmp_path / "keep"
    make_image(keep / "precious.png")
    out = tmp_path / "out"
    generate_benchmark(small_original, "identity", out)
    (out / "link").symlink_to(keep, target_is_directory=True)
    with pytest.raises(OutputError, match="'link \\(link\\)'"):
        generate_benchmark(small_original, "identity", out, overwrite=True)
    assert (keep / "precious.png").is_file()
    assert (out / "manifest.json").is_file()  # refused before anything was deleted
