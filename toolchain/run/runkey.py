"""The per-run keys that make a run's journal unforgeable: random, kept outside ``--out`` in
the user's state folder (0700, keys 0600); why: docs/output-folder.md ("The run key")."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TypeGuard

from toolchain._internal import safefs

__all__ = [
    "KEY_BYTES",
    "KEY_FOLDER_NAME",
    "STATE_VARIABLE",
    "UnsafeKeyFolder",
    "create_key",
    "ensure_key_folder",
    "is_run_id",
    "key_folder",
    "load_key",
    "new_run_id",
    "remove_key",
]

KEY_BYTES = 32
KEY_FOLDER_NAME = "benchmark-regen"
"""The key folder's name, in the user's state folder."""
STATE_VARIABLE = "XDG_STATE_HOME"
"""The variable naming the state folder (when it is absolute)."""
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeKeyFolder(OSError):
    """The key folder is a symlink, not ours, or open to other users: never used."""


def key_folder() -> Path:
    """``$XDG_STATE_HOME/benchmark-regen`` (an absolute one), else
    ``~/.local/state/benchmark-regen``; ``OSError`` when there is no home to put it in."""
    base = os.environ.get(STATE_VARIABLE, "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid, ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            raise OSError(errno.ENOENT, "no home folder (HOME is unset) for the run keys")
        base = os.path.join(home, ".local", "state")
    return Path(base) / KEY_FOLDER_NAME


def ensure_key_folder() -> Path | None:
    """The key folder, made if missing and checked as every key's use checks it; ``None``
    when there is none to use (no home, a link, another user's, open to others). A run in
    the container gets it mounted, so that its keys outlive the container."""
    try:
        where = key_folder()
        with _opened(where, create=True):
            return where
    except OSError:
        return None


def new_run_id() -> str:
    """A random run id: 128 bits as 32 hex digits."""
    return secrets.token_hex(16)


def is_run_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _RUN_ID.fullmatch(value) is not None


def _key_name(run: str) -> str:
    if not is_run_id(run):
        raise ValueError(f"not a run id: {run!r}")
    return f"run-{run}.key"


@contextlib.contextmanager
def _opened(folder: Path, *, create: bool) -> Iterator[int]:
    """``folder`` open, checked: a real folder (its last step not followed if a link), owned
    by this user, closed to everyone else. ``create``: made 0700 (and its parents) if missing."""
    if create:
        os.makedirs(folder.parent, mode=0o700, exist_ok=True)
    parent = os.open(folder.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder.name, 0o700, dir_fd=parent)
        try:
            fd = os.open(folder.name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeKeyFolder(
                    e.errno, f"{folder} is a symlink or a file: not used"
                ) from None
            raise
    finally:
        os.close(parent)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise UnsafeKeyFolder(errno.EPERM, f"{folder} belongs to another user: not used")
        if stat.S_IMODE(st.st_mode) & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise UnsafeKeyFolder(
                errno.EPERM, f"{folder} is open to other users (mode {mode:o}, not 700): not used"
            )
        yield fd
    finally:
        os.close(fd)


def create_key(run: str, folder: Path | None = None) -> bytes:
    """A new random key for ``run``, stored durably as ``run-<id>.key`` (0600) in
    :func:`key_folder` (made 0700 if missing; replacing a damaged key); ``OSError`` if not."""
    name = _key_name(run)
    key = secrets.token_bytes(KEY_BYTES)
    with _opened(folder or key_folder(), create=True) as dfd:
        # Not safefs.write_file: its temp files are 0644, a key is 0600 from its first byte.
        # The same guarantees otherwise: an exclusive random name, no link followed, a rename.
        tmp = f"{safefs.temp_prefix()}{secrets.token_hex(8)}-{name}"
        fd = os.open(tmp, _CREATE_FLAGS, 0o600, dir_fd=dfd)
        try:
            try:
                os.write(fd, key)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        os.fsync(dfd)
    return key


def load_key(run: str, folder: Path | None = None) -> bytes | None:
    """``run``'s key; ``None`` when it is missing or damaged (not :data:`KEY_BYTES` long).
    ``OSError`` when the folder cannot be read or is unsafe (:class:`UnsafeKeyFolder`)."""
    name = _key_name(run)
    where = folder or key_folder()
    try:
        with _opened(where, create=False) as dfd:  # read in the folder checked, not by path
            data = safefs.read_in(dfd, name, limit=KEY_BYTES)
    except FileNotFoundError:
        return None
    except safefs.UnsafePath:
        return None  # a link or a special file where the key was: no key
    return data if len(data) == KEY_BYTES else None


def remove_key(run: str, folder: Path | None = None) -> None:
    """Delete ``run``'s key (its journal is gone); nothing if it is not there."""
    with contextlib.suppress(OSError):
        where = folder or key_folder()
        with _opened(where, create=False) as dfd:
            safefs.remove_in(dfd, _key_name(run))
