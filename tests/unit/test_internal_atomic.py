"""toolchain._internal.atomic: single files written whole or not at all, never through a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolchain._internal import safefs
from toolchain._internal.atomic import TMP_PREFIX, atomic_write


def test_writes_the_file_creating_its_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "key.pub"
    atomic_write(target, b"one")
    assert target.read_bytes() == b"one"
    atomic_write(target, b"two", durable=True)
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["key.pub"]  # no temp file left behind
    assert (target.stat().st_mode & 0o777) == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_symlink_at_the_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.html").symlink_to(victim)
    atomic_write(tmp_path / "out" / "report.html", b"report")
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "out" / "report.html").is_symlink()
    assert (tmp_path / "out" / "report.html").read_bytes() == b"report"


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "jobs.yaml"
    target.write_bytes(b"old")

    def disk_full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safefs.os, "write", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["jobs.yaml"]
    assert TMP_PREFIX == ".tmp-"


def test_a_folder_at_the_target_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(safefs.UnsafePath, match="exists and is not a file"):
        atomic_write(tmp_path / "x", b"data")
