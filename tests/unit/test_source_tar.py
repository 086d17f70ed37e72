"""toolchain.source.tar: a .tar original reads like a folder, in one streaming pass, safely."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.conftest import make_image
from tests.hostile import no_hang
from toolchain.errors import SourceError
from toolchain.source import TarSource, open_source


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


def test_compressed_tar_streams_in_archive_order_and_reads_at_random(tmp_path: Path) -> None:
    a = make_image(tmp_path / "f/a.png")
    b = make_image(tmp_path / "f/b.png", seed=1)
    c = make_image(tmp_path / "f/c.png", seed=2)
    plain = _tar(tmp_path / "o.tar", {"c.png": c, "a.png": a, "b.png": b})
    packed = tmp_path / "o.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    with open_source(packed) as src:
        assert src.listing().ids == ("a.png", "b.png", "c.png")
        streamed = [(s.id, s.data) for s in src.iter_samples(["a.png", "c.png"])]
        assert streamed == [("c.png", c), ("a.png", a)]  # the archive's order, each once
        assert src.read("b.png") == b and src.read("c.png") == c


def test_a_sample_not_in_the_archive_is_named(tmp_path: Path) -> None:
    tar = _tar(tmp_path / "o.tar", {"a.png": make_image(tmp_path / "a.png")})
    with TarSource(tar) as src:
        with pytest.raises(SourceError, match="not in the tar archive") as e:
            src.read("b.png")
        assert e.value.sample == "b.png"
        with pytest.raises(SourceError, match="not in the tar archive"):
            list(src.iter_samples(["a.png", "zz.png"]))


def test_a_member_stored_twice_is_refused(tmp_path: Path) -> None:
    data = make_image(tmp_path / "a.png")
    path = tmp_path / "twice.tar"
    with tarfile.open(path, "w") as tar:
        for _ in range(2):
            info = tarfile.TarInfo("a.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(SourceError, match="appears twice"):
        TarSource(path).listing()


def test_a_truncated_archive_is_a_source_error_naming_it(tmp_path: Path) -> None:
    data = make_image(tmp_path / "a.png", size=(200, 200))
    whole = _tar(tmp_path / "o.tar", {"a.png": data, "b.png": data})
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    with pytest.raises(SourceError, match=r"cut\.tar") as e, TarSource(cut) as src:
        src.listing()
        list(src.iter_samples(src.listing().ids))
    assert "Traceback" not in e.value.diagnostics()


def test_class_folders_in_a_tar_carry_labels(tmp_path: Path) -> None:
    a = make_image(tmp_path / "a.png")
    tar = _tar(tmp_path / "o.tar", {"./dog/1.png": a, "./cat/2.png": a})
    with TarSource(tar) as src:
        assert src.listing().columns[0].names == ("cat", "dog")
        assert [dict(s.columns) for s in src.iter_samples(["cat/2.png", "dog/1.png"])] == [
            {"label": 1},
            {"label": 0},
        ]


def test_a_fifo_named_as_the_original_is_refused_for_what_it_is(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.tar")
    with no_hang(10), pytest.raises(SourceError, match="not a folder or a regular file"):
        open_source(tmp_path / "x.tar")


def test_a_fifo_swapped_in_after_the_listing_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Every open of the archive (listing, streaming, random access) takes a regular file
    only: a FIFO put at its path meanwhile is refused at once."""
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.png").write_bytes(b"png")
    with tarfile.open(tmp_path / "o.tar", "w") as tar:
        tar.add(src / "a", arcname="a")
    source = open_source(tmp_path / "o.tar")
    assert source.listing().ids == ("a/x.png",)
    (tmp_path / "o.tar").unlink()
    os.mkfifo(tmp_path / "o.tar")
    with no_hang(10):
        with pytest.raises(SourceError, match="not a regular file"):
            list(source.iter_samples(["a/x.png"]))
        with pytest.raises(SourceError, match="not a regular file"):
            source.read("a/x.png")
