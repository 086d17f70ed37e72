"""toolchain.run.runkey: run keys live in a 0700 folder of the user's, 0600 each, and a folder
or key that a co-user could have planted or read is never used."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolchain.run import runkey
from toolchain.run.runkey import (
    KEY_BYTES,
    UnsafeKeyFolder,
    create_key,
    is_run_id,
    key_folder,
    load_key,
    new_run_id,
    remove_key,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_folder_is_the_xdg_state_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert key_folder() == tmp_path / "state" / "benchmark-regen"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for ignored in ("", "relative/state"):  # the XDG spec: a relative path is ignored
        monkeypatch.setenv("XDG_STATE_HOME", ignored)
        assert key_folder() == tmp_path / "home" / ".local" / "state" / "benchmark-regen"


def test_run_ids_are_random_and_only_hex_names_a_key(tmp_path: Path) -> None:
    a, b = new_run_id(), new_run_id()
    assert a != b and is_run_id(a) and len(a) == 32
    for bad in ("../../etc/passwd", a.upper(), a[:-1], a + "0", None, 7):
        assert not is_run_id(bad)
    with pytest.raises(ValueError, match="not a run id"):
        create_key("../" + a[3:], tmp_path / "keys")
    assert not (tmp_path / "keys").exists()


def test_a_key_is_made_0600_in_a_0700_folder_loaded_and_removed(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "benchmark-regen"  # the parents are made too
    run = new_run_id()
    key = create_key(run, folder)
    assert len(key) == KEY_BYTES and key != create_key(new_run_id(), folder)
    assert _mode(folder) == 0o700 and _mode(folder.parent) == 0o700
    assert _mode(folder / f"run-{run}.key") == 0o600
    assert load_key(run, folder) == key
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]
    remove_key(run, folder)
    assert load_key(run, folder) is None
    remove_key(run, folder)  # twice is fine
    assert load_key(new_run_id(), tmp_path / "nowhere") is None


def test_the_key_is_read_and_removed_in_the_folder_that_was_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder swapped in at the path after the check (its parent is the user's, but a
    mistake or another program may move it) is neither read nor touched."""
    import contextlib

    folder = tmp_path / "keys"
    run = new_run_id()
    key = create_key(run, folder)
    checked = runkey._opened
    planted: list[Path] = []

    @contextlib.contextmanager
    def swapped_after_check(where: Path, *, create: bool) -> Iterator[int]:
        with checked(where, create=create) as fd:
            where.rename(tmp_path / "moved")
            where.mkdir(mode=0o700)
            (where / f"run-{run}.key").write_bytes(b"p" * KEY_BYTES)
            yield fd
        planted.append(where.rename(tmp_path / f"planted-{len(planted)}"))
        (tmp_path / "moved").rename(where)

    monkeypatch.setattr(runkey, "_opened", swapped_after_check)
    assert load_key(run, folder) == key
    remove_key(run, folder)
    assert [(p / f"run-{run}.key").read_bytes() for p in planted] == [b"p" * KEY_BYTES] * 2
    monkeypatch.undo()
    assert load_key(run, folder) is None  # the checked folder's key was the one removed


def test_a_damaged_or_planted_key_is_no_key_and_is_replaced_never_written_through(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "keys"
    run = new_run_id()
    create_key(run, folder)
    name = folder / f"run-{run}.key"
    name.write_bytes(b"short")  # torn
    assert load_key(run, folder) is None
    name.write_bytes(b"x" * (KEY_BYTES + 1))  # over the size
    assert load_key(run, folder) is None
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"x" * KEY_BYTES)
    name.unlink()
    name.symlink_to(victim)
    assert load_key(run, folder) is None  # a link is not followed
    key = create_key(run, folder)  # replaces the link, not what it points to
    assert victim.read_bytes() == b"x" * KEY_BYTES
    assert not name.is_symlink() and load_key(run, folder) == key


def test_a_fifo_as_the_key_is_no_key_and_never_blocks(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    run = new_run_id()
    create_key(run, folder)
    name = folder / f"run-{run}.key"
    name.unlink()
    os.mkfifo(name)
    found: list[bytes | None] = []
    # The hang guard: a blocking open of a FIFO with no writer never returns.
    reader = threading.Thread(target=lambda: found.append(load_key(run, folder)), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "load_key blocked on a FIFO"
    assert found == [None]


def test_a_linked_folder_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "co-user"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "benchmark-regen").symlink_to(elsewhere, target_is_directory=True)
    folder = tmp_path / "state" / "benchmark-regen"
    with pytest.raises(UnsafeKeyFolder, match="is a symlink or a file: not used"):
        create_key(new_run_id(), folder)
    with pytest.raises(UnsafeKeyFolder):
        load_key(new_run_id(), folder)
    assert list(elsewhere.iterdir()) == []


def test_a_folder_open_to_others_or_of_another_user_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "keys"
    run = new_run_id()
    create_key(run, folder)
    folder.chmod(0o755)  # others could read the keys
    with pytest.raises(UnsafeKeyFolder, match="open to other users"):
        load_key(run, folder)
    with pytest.raises(UnsafeKeyFolder, match="mode 755"):
        create_key(new_run_id(), folder)
    folder.chmod(0o700)
    assert load_key(run, folder) is not None
    monkeypatch.setattr(runkey.os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(UnsafeKeyFolder, match="belongs to another user"):
        load_key(run, folder)


def test_ensure_key_folder_makes_it_private_and_refuses_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    made = runkey.ensure_key_folder()
    assert made == tmp_path / "state" / "benchmark-regen"
    assert made.stat().st_mode & 0o777 == 0o700
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "other"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "benchmark-regen").symlink_to(made)
    assert runkey.ensure_key_folder() is None  # a link is never followed to the keys
