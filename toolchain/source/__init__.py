"""Sources: the user's copy of the original dataset, as a folder tree or a ``.tar``.

A sample's id is its relative POSIX path inside the source. Samples are listed
in one canonical order (sorted by the UTF-8 bytes of the id), whatever order
the file system or the tar stores them in. Only ``.jpg``, ``.jpeg``, ``.png``
and ``.webp`` files (any letter case) are samples; hidden entries (a path
component starting with ``.``) and other files are ignored and counted.

Reads never escape the source: ids with ``..``, absolute paths, backslashes or
NUL bytes are refused, symlinks must resolve inside the source tree, and tar
members that are links or devices are refused.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from toolchain.errors import SourceError
from toolchain.source._common import (
    IMAGE_SUFFIXES,
    MAX_SAMPLE_BYTES,
    ColumnSpec,
    ColumnValue,
    Listing,
    Sample,
    Source,
    check_sample_id,
)
from toolchain.source.folder import FolderSource
from toolchain.source.tar import TarSource

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_SAMPLE_BYTES",
    "ColumnSpec",
    "ColumnValue",
    "FolderSource",
    "Listing",
    "Sample",
    "Source",
    "TarSource",
    "check_sample_id",
    "open_source",
]


def open_source(path: str | os.PathLike[str]) -> Source:
    """Open an original: a folder tree, or a tar archive."""
    p = Path(path)
    if p.is_dir():
        return FolderSource(p)
    if p.is_file():
        if tarfile.is_tarfile(p):
            return TarSource(p)
        raise SourceError(
            f"{p} is a file but not a tar archive",
            hint="pass the folder that holds the images, or a .tar of it",
        )
    raise SourceError(f"original {p} does not exist", hint="check the --original path")
