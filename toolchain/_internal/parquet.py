"""The one parquet opener every reader uses: it refuses, saying why, a file that is not a
regular parquet file before pyarrow opens it (no stability guarantee)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain._internal.deps import require
from toolchain._internal.safefs import UnsafePath
from toolchain.errors import Error, os_error_text

if TYPE_CHECKING:
    import pyarrow.parquet as pq

__all__ = ["open_parquet"]

_MAGIC = b"PAR1"  # a parquet file starts and ends with it
_HINT = "write or download the file again: it is damaged, or it is not parquet"
_MIN_SIZE = 12  # magic, footer length, magic: the smallest parquet file


def open_parquet(
    path: str | os.PathLike[str],
    *,
    error: type[Error],
    what: str,
    hint: str = _HINT,
    buffer_size: int = 0,
) -> pq.ParquetFile:
    """``path`` opened for reading without a memory map or pre-buffering; close it.

    ``what`` names the file in messages (its path inside the dataset). Anything
    that is not a regular file ending with the parquet magic (a FIFO, a folder, a
    truncated file), or that pyarrow cannot open, raises ``error`` with ``hint``.
    ``buffer_size``: pyarrow's read buffer (0: each column chunk read whole).
    """
    pa = require("pyarrow")
    pq_ = require("pyarrow.parquet")
    try:
        fd = _checked_fd(Path(path))
    except OSError as e:
        raise error(
            f"{what}: not a readable parquet file ({os_error_text(e)})", hint=hint
        ) from None
    try:
        # pyarrow opens the file we checked, through /proc where there is one (a FIFO
        # swapped in at the path meanwhile is never opened); no memory map: mapped pages
        # would stay resident as the file is read
        return pq_.ParquetFile(
            _fd_path(fd, path), memory_map=False, pre_buffer=False, buffer_size=buffer_size
        )
    except (pa.ArrowException, OSError, UnicodeDecodeError) as e:
        # UnicodeDecodeError: a column or key name in the footer that is not UTF-8
        raise error(
            f"{what}: not a readable parquet file (corrupt or truncated footer: {str(e).strip()})",
            hint=hint,
        ) from None
    finally:
        os.close(fd)


def _fd_path(fd: int, path: str | os.PathLike[str]) -> str:
    """A path that opens the file behind ``fd`` (Linux's ``/proc``), else ``path``."""
    proc = f"/proc/self/fd/{fd}"
    return proc if os.path.exists(proc) else str(path)


def _checked_fd(path: Path) -> int:
    """An fd open on ``path``, a regular file ending with the magic; else
    :class:`UnsafePath`. ``O_NONBLOCK``: opening a FIFO returns at once (and it is
    refused), never hangs."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(errno.EINVAL, "not a regular file, but a FIFO, device or folder")
        tail = os.pread(fd, len(_MAGIC), max(0, st.st_size - len(_MAGIC)))
        if st.st_size < _MIN_SIZE or tail != _MAGIC:
            raise UnsafePath(
                errno.EINVAL,
                "corrupt or truncated footer: the file does not end with the parquet magic "
                "bytes " + _MAGIC.decode(),
            )
    except BaseException:
        os.close(fd)
        raise
    return fd
