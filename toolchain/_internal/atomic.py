"""Atomic writes of single files outside a benchmark folder (keys, reports, job files),
through :func:`toolchain._internal.safefs.write_file` (see docs/security.md)."""

from __future__ import annotations

from pathlib import Path

from toolchain._internal.safefs import TMP_PREFIX, fsync_dir, write_file

__all__ = ["TMP_PREFIX", "atomic_write", "fsync_dir"]


def atomic_write(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; with ``durable``, fsync file and folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path.parent, path.name, data, durable=durable)
