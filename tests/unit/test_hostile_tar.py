"""Hostile ``.tar`` originals: unsafe members are refused, corrupt archives give SourceError."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import HOSTILE, mutations, peak_allocation, typed
from toolchain.errors import ExitCode, SourceError
from toolchain.source import MAX_SAMPLE_BYTES, TarSource, open_source


def _png() -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


IMG = _png()
KINDS = ["file", "symlink", "hardlink", "chr", "blk", "fifo", "dir"]


def _tar(members: list[tuple[str, str, str]], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, kind, target in members:
            info = tarfile.TarInfo(name)
            data = b""
            if kind == "file":
                data = IMG
                info.size = len(data)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, target
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, target
            elif kind == "chr":
                info.type = tarfile.CHRTYPE
            elif kind == "blk":
                info.type = tarfile.BLKTYPE
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                info.type = tarfile.DIRTYPE
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _open_all(path: Path) -> object:
    def run() -> object:
        src = open_source(path)
        try:
            ids = src.listing().ids
            for sid in ids:
                data = src.read(sid)
                assert len(data) <= MAX_SAMPLE_BYTES
            return ids
        finally:
            src.close()

    return typed(run, SourceError)


names = st.one_of(
    st.sampled_from(
        [
            "a.png",
            "./b.png",
            "../evil.png",
            "a/../../evil.png",
            "/abs.png",
            "c\\d.png",
            "x/./y.png",
            "x//y.png",
            "A.PNG",
            "a.PNG",
            "e\u0301.png",
            "\u00e9.png",
            ".hidden.png",
            "dir/",
            "nul\x00.png",
            "ctl\x01.png",
            "notes.txt",
            "../notes.txt",
        ]
    ),
    st.text(min_size=1, max_size=30).map(lambda s: s + ".png"),
)
members = st.lists(
    st.tuples(names, st.sampled_from(KINDS), st.sampled_from(["a.png", "../x", "/etc/passwd"])),
    min_size=1,
    max_size=6,
)


@HOSTILE
@given(members, st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
def test_hostile_member_lists(
    tmp_path_factory: pytest.TempPathFactory, ms: list[tuple[str, str, str]], fmt: int
) -> None:
    try:
        data = _tar(ms, fmt=fmt)
    except (ValueError, UnicodeError):
        return  # the format cannot even hold the name: nothing to test
    p = tmp_path_factory.mktemp("t") / "o.tar"
    p.write_bytes(data)
    result = _open_all(p)
    if isinstance(result, tuple):  # accepted: then every member was safe and regular
        for sid in result:
            assert ".." not in sid.split("/") and not sid.startswith("/") and "\\" not in sid


SEED_TAR = _tar([("a/x.png", "file", ""), ("b.png", "file", ""), ("a/y.png", "file", "")])


@HOSTILE
@given(mutations(SEED_TAR))
def test_mutated_tar_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    p = tmp_path_factory.mktemp("t") / "o.tar"
    p.write_bytes(data)
    if not tarfile.is_tarfile(p):
        with pytest.raises(SourceError, match="not a tar archive"):
            open_source(p)
        return
    _open_all(p)


@pytest.mark.parametrize(
    ("members", "words"),
    [
        ([("../evil.png", "file", "")], "'..' path component"),
        ([("a/../../evil.png", "file", "")], "'..' path component"),
        ([("/abs.png", "file", "")], "absolute path"),
        ([("c\\d.png", "file", "")], "backslash"),
        ([("x.png", "symlink", "/etc/passwd")], "link or special file"),
        ([("x.png", "symlink", "../outside.png")], "link or special file"),
        ([("a.png", "file", ""), ("x.png", "hardlink", "a.png")], "link or special file"),
        ([("x.png", "chr", "")], "link or special file"),
        ([("x.png", "blk", "")], "link or special file"),
        ([("x.png", "fifo", "")], "link or special file"),
        ([("a.png", "file", ""), ("a.png", "file", "")], "appears twice"),
        ([("a.png", "file", ""), ("./a.png", "file", "")], "appears twice"),
        ([("A.png", "file", ""), ("a.png", "file", "")], "collide once case is folded"),
        ([("e\u0301.png", "file", "")], "NFC"),
    ],
)
def test_named_bad_tars(tmp_path: Path, members: list[tuple[str, str, str]], words: str) -> None:
    p = tmp_path / "o.tar"
    p.write_bytes(_tar(members))
    src = TarSource(p)
    with pytest.raises(SourceError, match=words) as e:
        src.listing()
    src.close()
    assert e.value.exit_code == ExitCode.BAD_INPUT


def _huge_member_tar(size: int) -> bytes:
    """One member whose header declares ``size`` bytes but whose data is a few bytes."""
    info = tarfile.TarInfo("huge.png")
    info.size = size
    header = info.tobuf(format=tarfile.GNU_FORMAT)  # base-256 sizes beyond 8 GiB
    return header + IMG + b"\0" * (512 - len(IMG) % 512) + b"\0" * 1024


@pytest.mark.parametrize("size", [MAX_SAMPLE_BYTES + 1, 2**40, 2**62])
def test_huge_declared_member_size_is_refused_without_allocating(tmp_path: Path, size: int) -> None:
    p = tmp_path / "o.tar"
    p.write_bytes(_huge_member_tar(size))
    src = TarSource(p)
    with pytest.raises(SourceError) as e:
        src.listing()
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert "over the" in e.value.message or "cannot read tar" in e.value.message
    src.close()

    def list_and_close() -> None:
        again = TarSource(p)
        try:
            again.listing()
        finally:
            again.close()

    assert peak_allocation(list_and_close) < 16 * 1024 * 1024


def test_truncated_member_is_refused(tmp_path: Path) -> None:
    data = _tar([("a.png", "file", "")])
    p = tmp_path / "o.tar"
    p.write_bytes(data[: 512 + len(IMG) // 2])
    src = TarSource(p)
    with pytest.raises(SourceError, match=r"truncated|cannot read"):
        src.read(src.listing().ids[0])
    src.close()
