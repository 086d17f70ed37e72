"""Atomic file writes: a temp file in the destination folder, then ``os.replace``.

A reader (or a resumed run) therefore sees either the old file, no file, or
the complete new file, never a prefix. Temp names start with ``.tmp-`` so a
later run can recognise and delete leftovers of a killed one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["TMP_PREFIX", "atomic_write", "fsync_dir"]

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; with ``durable``, fsync file and folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)
