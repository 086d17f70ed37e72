"""File access that never follows a symlink and never reads what is not a regular file, and
atomic writes; how and why: docs/security.md ("Safe file access")."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "TMP_PREFIX",
    "Folder",
    "UnsafePath",
    "fsync_dir",
    "open_append",
    "open_file",
    "open_folder",
    "open_path",
    "open_regular",
    "read_file",
    "read_in",
    "read_path",
    "read_path_and_mode",
    "remove_file",
    "remove_folder",
    "remove_in",
    "temp_prefix",
    "walk",
    "write_file",
]

TMP_PREFIX = ".tmp-"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


class UnsafePath(OSError):
    """A path we refuse: a symlink, not a regular file or folder, or too large.

    Its message is a short reason; callers turn it into a project error naming the file.
    """


def _parts(rel: str) -> list[str]:
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") for p in parts):
        raise UnsafePath(errno.EINVAL, f"not a plain relative path: {rel!r}")
    return parts


def _name(name: str) -> str:
    """``name`` if it names an entry of a folder (not a path)."""
    if len(_parts(name)) != 1:
        raise UnsafePath(errno.EINVAL, f"not a name in the folder: {name!r}")
    return name


def _open_dir(parent: int, name: str, *, create: bool, where: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
        return _open_dir(parent, name, create=False, where=where)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(
                e.errno, f"{where!r} is a symlink or a file, not a folder: not followed"
            ) from None
        raise


def _walk_to(root: Path, parts: list[str], *, create: bool) -> int:
    """An open descriptor of folder ``root/parts...``, each part walked without following a link."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        walked: list[str] = []
        for part in parts:
            walked.append(part)
            nfd = _open_dir(fd, part, create=create, where="/".join(walked))
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def _folder_of(root: Path, rel: str, *, create: bool) -> Iterator[tuple[int, str]]:
    """An open descriptor of ``rel``'s folder (walked without following links), and its name."""
    parts = _parts(rel)
    fd = _walk_to(root, parts[:-1], create=create)
    try:
        yield fd, parts[-1]
    finally:
        os.close(fd)


def read_file(root: Path, rel: str, *, limit: int) -> bytes:
    """The bytes of regular file ``root/rel``; never follows a link, never blocks on a FIFO."""
    with _folder_of(root, rel, create=False) as (dfd, name):
        return read_in(dfd, name, limit=limit)


def read_in(dfd: int, name: str, *, limit: int) -> bytes:
    """:func:`read_file` of ``name`` in the open folder ``dfd`` (one a caller has checked)."""
    return _read_fd(_open_in(dfd, name), limit)


def open_file(root: Path, rel: str, *, limit: int) -> BinaryIO:
    """:func:`read_file`'s file, for reading in pieces (bounded as :func:`open_path`)."""
    with _folder_of(root, rel, create=False) as (dfd, name):
        fd = _open_in(dfd, name)
    try:
        _check_regular(fd, limit)
        return io.BufferedReader(_Bounded(fd, limit), _CHUNK)
    except BaseException:
        os.close(fd)
        raise


def _open_in(dfd: int, name: str) -> int:
    try:
        return os.open(_name(name), _READ_FLAGS, dir_fd=dfd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePath(e.errno, "is a symlink: not followed") from None
        raise


def read_path(path: Path, *, limit: int) -> bytes:
    """A file the user named (links followed): a regular file only, never blocks, bounded."""
    return read_path_and_mode(path, limit=limit)[0]


def read_path_and_mode(path: Path, *, limit: int) -> tuple[bytes, int]:
    """:func:`read_path`, and the permission bits of the very file read (``0o600``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return _read_fd(fd, limit, tell_size=not _through_link(path)), mode


def open_path(path: Path, *, limit: int) -> BinaryIO:
    """A file the user named, for reading in pieces: :func:`read_path`'s checks, and
    reading past ``limit`` bytes (a file that grows while read) raises :class:`UnsafePath`."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _check_regular(fd, limit, tell_size=not _through_link(path))
        return io.BufferedReader(_Bounded(fd, limit), _CHUNK)
    except BaseException:
        os.close(fd)
        raise


def open_regular(path: Path) -> BinaryIO:
    """A file the user named (links followed), for reading and seeking, of any size: a
    regular file only, opened without blocking (a FIFO is refused, never waited on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(errno.EINVAL, "is not a regular file (a FIFO, device or folder)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _Bounded(io.RawIOBase):
    def __init__(self, fd: int, limit: int):
        self._fd, self._left = fd, limit + 1

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = os.readv(self._fd, [view[: self._left]]) if self._left else 0
        self._left -= n
        if not self._left:
            raise UnsafePath(errno.EFBIG, "grew over its size limit while read")
        return n

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def _through_link(path: Path) -> bool:
    """Does ``path`` reach its file through a link (then messages tell nothing of the file)?"""
    return os.path.realpath(path) != os.path.abspath(path)


def _check_regular(fd: int, limit: int, *, tell_size: bool = True) -> int:
    """The size of ``fd``, a regular file of at most ``limit`` bytes (made blocking).

    ``tell_size``: the message may say the file's size (not for a file reached through a
    link: what a link points to is none of the message's business)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(errno.EINVAL, "is not a regular file (a FIFO, device or folder)")
    if st.st_size > limit:
        size = f"is {st.st_size} bytes, over" if tell_size else "is over"
        raise UnsafePath(errno.EFBIG, f"{size} the {limit}-byte limit")
    os.set_blocking(fd, True)
    return st.st_size


def _read_fd(fd: int, limit: int, *, tell_size: bool = True) -> bytes:
    try:
        # Reads of the size the file has (one more byte shows it grew): a 1 MiB read of a
        # small file would allocate, and fault in, a 1 MiB buffer for each file.
        size = _check_regular(fd, limit, tell_size=tell_size)
        chunks: list[bytes] = []
        total = 0
        while True:
            want = size - total + 1 if total <= size else _CHUNK
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total, want))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise UnsafePath(errno.EFBIG, f"grew over the {limit}-byte limit while read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def temp_prefix(tag: str = "") -> str:
    """The start of our temp files' names: ``.tmp-`` (and ``TAG-``: whose they are)."""
    return f"{TMP_PREFIX}{tag}-" if tag else TMP_PREFIX


def _refuse_non_file(dfd: int, name: str, shown: str) -> None:
    """Raise unless ``name`` in ``dfd`` is missing, a regular file or a link (replaced, never
    followed)."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise UnsafePath(errno.EISDIR, f"{shown!r} exists and is not a file")


def _create_temp(dfd: int, name: str, tag: str) -> tuple[str, int]:
    """A new file in ``dfd``, created exclusively under a random name: ``(name, descriptor)``."""
    tmp = f"{temp_prefix(tag)}{secrets.token_hex(8)}-{name}"[:255]
    return tmp, os.open(tmp, _CREATE_FLAGS, 0o644, dir_fd=dfd)


def write_file(
    root: Path,
    rel: str,
    data: bytes | Iterable[bytes | bytearray],
    *,
    durable: bool = False,
    tag: str = "",
    before_rename: Callable[[], None] | None = None,
) -> None:
    """Write ``root/rel`` atomically: exclusive random temp file, then rename over the target.

    ``data``: bytes, or pieces written in order (never held whole). ``before_rename`` runs
    once the data is written (and synced, with ``durable``); if it raises, the temp file goes
    and the target is untouched. ``tag`` marks the temp name (``.tmp-TAG-<random>-NAME``) so
    a shard cleans up only its own. Raises :class:`UnsafePath` if a folder on the way is a
    symlink, or the target is neither a regular file nor a symlink (replaced, never followed).
    """
    with _folder_of(root, rel, create=True) as (dfd, name):
        _refuse_non_file(dfd, name, rel)
        tmp, fd = _create_temp(dfd, name, tag)
        try:
            try:
                pieces = [data] if isinstance(data, bytes | bytearray | memoryview) else data
                for piece in pieces:
                    view = memoryview(piece)
                    while view:
                        view = view[os.write(fd, view) :]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if before_rename is not None:
                before_rename()
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        if durable:
            os.fsync(dfd)


class Folder:
    """A folder held open (see :func:`open_folder`): what is created, renamed or removed
    through it happens in that folder, whatever is renamed or linked on the way later."""

    def __init__(self, fd: int, where: str):
        self._fd, self.where = fd, where

    def names(self) -> list[str]:
        """The folder's entries, sorted."""
        with os.scandir(self._fd) as it:
            return sorted(e.name for e in it)

    def create_temp(self, name: str, *, tag: str = "") -> tuple[str, BinaryIO]:
        """A new file for writing, created exclusively (never through a link) under a random
        temp name for ``name`` (``.tmp-[TAG-]<random>-NAME``): ``(temp name, file)``."""
        tmp, fd = _create_temp(self._fd, _name(name), tag)
        return tmp, open(fd, "wb", closefd=True)  # the caller closes it

    def replace(self, src: str, dst: str) -> None:
        """Rename ``src`` over ``dst`` in this folder (a link at ``dst`` is replaced)."""
        _refuse_non_file(self._fd, _name(dst), f"{self.where}/{dst}")
        os.replace(_name(src), dst, src_dir_fd=self._fd, dst_dir_fd=self._fd)

    def remove(self, name: str) -> bool:
        """Unlink ``name`` (a file or a link); False if absent."""
        try:
            os.unlink(_name(name), dir_fd=self._fd)
        except FileNotFoundError:
            return False
        return True

    def sync(self) -> None:
        """Make the renames in this folder durable."""
        os.fsync(self._fd)


@contextlib.contextmanager
def open_folder(root: Path, rel: str, *, create: bool = False) -> Iterator[Folder]:
    """Folder ``root/rel``, walked from ``root`` without following a link (folders made
    0755 where missing, with ``create``); :class:`UnsafePath` if a part is a link or a file."""
    fd = _walk_to(root, _parts(rel), create=create)
    try:
        yield Folder(fd, rel)
    finally:
        os.close(fd)


def open_append(root: Path, rel: str) -> int:
    """A descriptor appending to regular file ``root/rel`` (created 0644 if missing), no links."""
    with _folder_of(root, rel, create=True) as (dfd, name):
        # O_NONBLOCK: opening a FIFO planted at this name must not hang us (it is refused).
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags | os.O_NONBLOCK, 0o644, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafePath(e.errno, f"{rel!r} is a symlink: not followed") from None
            if e.errno == errno.ENXIO:  # a FIFO with no reader
                raise UnsafePath(e.errno, f"{rel!r} is not a regular file") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafePath(errno.EINVAL, f"{rel!r} is not a regular file")
        os.set_blocking(fd, True)
        os.fsync(dfd)
        return fd


def remove_file(root: Path, rel: str) -> bool:
    """Unlink ``root/rel`` (a file or a link, never what a link points to); False if absent."""
    try:
        with _folder_of(root, rel, create=False) as (dfd, name):
            return remove_in(dfd, name)
    except FileNotFoundError:
        return False


def remove_in(dfd: int, name: str) -> bool:
    """:func:`remove_file` of ``name`` in the open folder ``dfd`` (one a caller has checked)."""
    try:
        st = os.stat(_name(name), dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            raise UnsafePath(errno.EISDIR, f"{name!r} is a folder")
        os.unlink(name, dir_fd=dfd)
        return True
    except FileNotFoundError:
        return False


def remove_folder(root: Path, rel: str) -> bool:
    """Remove the empty folder ``root/rel`` (never through a link); False if absent.

    Raises :class:`OSError` if it is not empty, or not a folder (a link is not one)."""
    try:
        with _folder_of(root, rel, create=False) as (dfd, name):
            os.rmdir(name, dir_fd=dfd)
            return True
    except FileNotFoundError:
        return False


def walk(root: Path) -> Iterator[tuple[str, str]]:
    """Every entry under ``root`` as ``(relative path, kind)``, sorted, links not followed.

    ``kind`` is ``file``, ``dir``, ``link`` or ``other`` (FIFO, socket, device).
    """

    def entries(fd: int, prefix: str) -> Iterator[tuple[str, str]]:
        with os.scandir(fd) as it:
            items = sorted((e.name, e) for e in it)
        for name, entry in items:
            rel = f"{prefix}{name}"
            if entry.is_symlink():
                yield rel, "link"
            elif entry.is_dir(follow_symlinks=False):
                yield rel, "dir"
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                try:
                    yield from entries(sub, rel + "/")
                finally:
                    os.close(sub)
            elif entry.is_file(follow_symlinks=False):
                yield rel, "file"
            else:
                yield rel, "other"

    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield from entries(fd, "")
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where folders can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
