from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.conftest import make_image
from toolchain.errors import SourceError
from toolchain.source import FolderSource, TarSource, check_sample_id, open_source


def test_listing_is_sorted_and_skips_hidden_and_non_images(tmp_path: Path) -> None:
    for name in ["b/z.png", "a/y.JPG", "a/x.webp", ".hidden/q.png", "a/.dot.png"]:
        make_image(
            tmp_path / name,
            fmt={"png": "PNG", "JPG": "JPEG", "webp": "WEBP"}[name.rsplit(".", 1)[1]],
        )
    (tmp_path / "README.txt").write_text("not an image")
    listing = open_source(tmp_path).listing()
    assert listing.ids == ("a/x.webp", "a/y.JPG", "b/z.png")
    assert listing.ignored == 3  # README.txt and the two hidden images


def test_listing_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    names = [f"d{i % 3}/img{i}.png" for i in range(9)]
    one, two = tmp_path / "one", tmp_path / "two"
    for n in names:
        make_image(one / n, seed=len(n))
    for n in reversed(names):
        make_image(two / n, seed=len(n))
    assert open_source(one).listing().ids == open_source(two).listing().ids


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/abs.png",
        "../up.png",
        "a/../b.png",
        "a\\b.png",
        "a\x00.png",
        "a//b.png",
        "./a.png",
        "e\u0301.png",
    ],
)
def test_unsafe_ids_are_refused(bad: str) -> None:
    with pytest.raises(SourceError, match="unsafe sample id"):
        check_sample_id(bad)


def test_symlink_escaping_the_original_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make_image(outside / "secret.png")
    root = tmp_path / "orig"
    make_image(root / "ok.png")
    os.symlink(outside / "secret.png", root / "link.png")
    with pytest.raises(SourceError, match="points outside the original"):
        FolderSource(root).listing()
    with pytest.raises(SourceError, match="symlink: not followed"):
        FolderSource(root).read("link.png")  # never followed, listed or not


def test_case_collision_is_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "A.png")
    make_image(tmp_path / "a.png")
    if len(list(tmp_path.iterdir())) < 2:
        pytest.skip("case-insensitive file system")
    with pytest.raises(SourceError, match="collide"):
        open_source(tmp_path).listing()


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_tar_source_reads_like_a_folder(tmp_path: Path) -> None:
    a = make_image(tmp_path / "f/x/a.png")
    b = make_image(tmp_path / "f/b.jpg", seed=1)
    tar = _tar(tmp_path / "o.tar", {"./x/a.png": a, "b.jpg": b, "notes.txt": b"hi"})
    with open_source(tar) as src:
        assert isinstance(src, TarSource)
        assert src.listing().ids == ("b.jpg", "x/a.png")
        assert src.listing().ignored == 1
        assert src.read("x/a.png") == a


def test_tar_with_dotdot_member_is_refused(tmp_path: Path) -> None:
    tar = _tar(tmp_path / "evil.tar", {"../evil.png": b"x"})
    with pytest.raises(SourceError, match="unsafe sample id"):
        open_source(tar).listing()


def test_tar_symlink_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("a.png")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(SourceError, match="link or special file"):
        open_source(path).listing()


def test_missing_original_and_non_tar_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        open_source(tmp_path / "nope")
    (tmp_path / "f.bin").write_bytes(b"junk")
    with pytest.raises(SourceError, match="not a tar archive"):
        open_source(tmp_path / "f.bin")


def test_vanished_file_names_the_sample(tmp_path: Path) -> None:
    make_image(tmp_path / "gone.png")
    src = open_source(tmp_path)
    (tmp_path / "gone.png").unlink()
    with pytest.raises(SourceError, match="vanished") as e:
        src.read("gone.png")
    assert e.value.sample == "gone.png"
