"""Sources: the user's copy of the original (a folder tree, a ``.tar`` or a Hugging Face
dataset) behind one entry point, :func:`open_source` (``docs/sources.md``)."""

from __future__ import annotations

import dataclasses
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchain._internal import safefs
from toolchain.errors import SourceError, os_error_text
from toolchain.model.original import OriginalRef
from toolchain.source._common import IMAGE_SUFFIXES, MAX_SAMPLE_BYTES, Listing, Sample, Source
from toolchain.source.folder import FolderSource
from toolchain.source.tar import TarSource

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_SAMPLE_BYTES",
    "FolderSource",
    "Listing",
    "Sample",
    "Source",
    "SourceOptions",
    "TarSource",
    "open_source",
]


@dataclass(frozen=True, kw_only=True)
class SourceOptions:
    """How to read an original: the command line's ``--split``, ``--config``,
    ``--image-column``, ``--columns`` and ``--ids`` (see ``docs/huggingface.md``)."""

    split: str | None = None
    config: str | None = None
    image_column: str | None = None
    columns: str | Sequence[str] | None = None
    ids: str = "auto"
    prefer: OriginalRef | None = None
    """The split and config a manifest records (``diff apply``, ``diff create``, ``diff
    check``): chosen where the dataset has several and ``split``/``config`` is not given."""

    def open(self, original: str | os.PathLike[str] | Any) -> Source:
        return open_source(
            original,
            split=self.split,
            config=self.config,
            image_column=self.image_column,
            columns=self.columns,
            ids=self.ids,
            prefer=self.prefer,
        )

    def preferring(self, recorded: OriginalRef | None) -> SourceOptions:
        """These options, choosing ``recorded``'s split and config where the dataset has
        several and none is given."""
        return dataclasses.replace(self, prefer=recorded)


def open_source(
    path: str | os.PathLike[str] | Any,
    *,
    split: str | None = None,
    config: str | None = None,
    image_column: str | None = None,
    columns: str | Sequence[str] | None = None,
    ids: str = "auto",
    prefer: OriginalRef | None = None,
) -> Source:
    """Open an original: a folder tree, a tar archive, or a Hugging Face dataset.

    ``path`` may be a ``datasets.Dataset`` object (Python API). A folder is a
    Hugging Face dataset when :func:`toolchain.source.hf.detect` says so
    (parquet shards in a Hub layout, or a ``save_to_disk`` folder); a
    ``.parquet`` file is one too. ``split``, ``config``, ``image_column``,
    ``columns`` and ``ids`` apply to Hugging Face datasets only; so does ``prefer``, the
    split and config chosen where a folder holds several and none is given.
    """
    from toolchain.source import hf  # imports no HF package until one is used

    hf_options = {
        "split": split,
        "image_column": image_column,
        "columns": columns,
        "ids": ids,
    }
    if not isinstance(path, str | os.PathLike) and hf.is_dataset(path):
        if config is not None:
            raise SourceError(
                "config applies to parquet folders, not to a Dataset object",
                hint="load the config you want with datasets.load_dataset(..., name=CONFIG)",
            )
        return hf.DatasetSource(
            path, split=split, image_column=image_column, columns=columns, ids=ids
        )
    if not isinstance(path, str | os.PathLike):
        raise SourceError(
            f"cannot open an original of type {type(path).__name__}",
            hint="pass a folder, a .tar, a .parquet file, or a datasets.Dataset",
        )
    p = Path(path)
    kind = hf.detect(p)
    if kind == "parquet":
        return hf.ParquetSource(
            p,
            split=split,
            config=config,
            image_column=image_column,
            columns=columns,
            ids=ids,
            prefer=prefer,
        )
    if kind == "arrow":
        if config is not None:
            raise SourceError(
                f"{p} is a save_to_disk folder: it has no configs",
                hint="drop --config (choose a split with --split)",
            )
        return hf.ArrowSource(
            p, split=split, image_column=image_column, columns=columns, ids=ids, prefer=prefer
        )
    given = [
        k.replace("_", "-")
        for k, v in {**hf_options, "config": config}.items()
        if v is not None and k != "columns" and not (k == "ids" and v == "auto")
    ]
    if given and (p.is_dir() or p.is_file()):
        raise SourceError(
            f"--{given[0]} applies to Hugging Face datasets, and {p} is not one "
            "(no parquet shards in a Hub layout, no save_to_disk folder)",
            hint=f"drop --{given[0]}, or pass the folder that holds the dataset",
        )
    if p.is_dir():
        return FolderSource(p, columns=columns)
    if p.is_file():
        if _is_tar(p):
            return TarSource(p, columns=columns)
        raise SourceError(
            f"{p} is a file but not a tar archive",
            hint="pass the folder that holds the images, a .tar of it, or a .parquet file",
        )
    if p.exists():
        raise SourceError(
            f"original {p} is not a folder or a regular file (a FIFO, device or socket)",
            hint="pass the folder that holds the images, a .tar of it, or a .parquet file",
        )
    raise SourceError(f"original {p} does not exist", hint="check the --original path")


def _is_tar(path: Path) -> bool:
    try:
        with safefs.open_regular(path) as f:  # a FIFO swapped in is refused, not waited on
            return tarfile.is_tarfile(f)
    except OSError as e:
        raise SourceError(f"cannot read original {path}: {os_error_text(e)}") from None
