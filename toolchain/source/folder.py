"""An original stored as a folder tree, listed and read without leaving it or following a
link swapped in during a run (``docs/sources.md``)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from toolchain._internal import safefs
from toolchain._internal.packed import PackedStrings
from toolchain.errors import SourceError, os_error_text
from toolchain.model.columns import ColumnSpec, ColumnValue
from toolchain.model.ids import check_collisions, check_sample_id
from toolchain.source._common import (
    MAX_SAMPLE_BYTES,
    Listing,
    Source,
    class_labels_from_ids,
    is_sample_name,
    select_columns,
)

__all__ = ["FolderSource"]


def ignored_kind(rel: str) -> str:
    """How an ignored file is counted: ``hidden``, or its suffix (``.gif``), or ``(none)``."""
    if any(p.startswith(".") for p in rel.split("/")):
        return "hidden"
    return PurePosixPath(rel).suffix.lower() or "(none)"


@dataclass(eq=False)
class FolderSource(Source):
    """An original stored as a folder tree."""

    path: Path
    columns: str | Sequence[str] | None = None
    """Which carried columns to keep (``--columns``): of a folder-per-class original, ``label``."""
    _where: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    """Sample id -> its real path relative to the root, where a link led elsewhere inside."""
    _labels: Mapping[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._real = Path(os.path.realpath(self.path))

    def listing(self) -> Listing:
        ignored: Counter[str] = Counter()
        metadata = False
        visited: dict[tuple[int, int], str] = {}

        def found() -> Iterator[str]:  # in walk order: the ids' order for most trees
            nonlocal metadata
            for dirpath, dirnames, filenames in os.walk(
                self._real, followlinks=True, onerror=_raise
            ):
                st = os.stat(dirpath)
                here = Path(dirpath).relative_to(self._real).as_posix()
                first = visited.get((st.st_dev, st.st_ino))
                if first is not None:
                    raise SourceError(
                        f"folder {here!r} is a second path (a symlink) to {first!r}: its "
                        "images would be listed twice, or forever in a loop",
                        hint="remove the symlink, or copy the folder",
                    )
                visited[(st.st_dev, st.st_ino)] = here
                dirnames.sort()  # a deterministic walk: messages must not depend on FS order
                for d in dirnames:
                    self._inside(Path(dirpath) / d)
                real_here = self._inside(Path(dirpath)).relative_to(self._real).as_posix()
                for fn in sorted(filenames):
                    rel = fn if here == "." else f"{here}/{fn}"
                    if not is_sample_name(rel):
                        ignored[ignored_kind(rel)] += 1
                        metadata = metadata or fn in METADATA_FILES
                        continue
                    yield check_sample_id(rel)
                    full = os.path.join(dirpath, fn)
                    if os.path.islink(full):
                        real_rel = self._inside(Path(full)).relative_to(self._real).as_posix()
                    else:
                        real_rel = fn if real_here == "." else f"{real_here}/{fn}"
                    if real_rel != rel:
                        self._where[rel] = real_rel

        ids = PackedStrings.in_order(found())  # packed as found: no list of every id
        check_collisions(ids)
        spec, self._labels = folder_labels(ids, self.columns, has_metadata_file=metadata)
        return Listing(
            ids=ids,
            ignored=sum(ignored.values()),
            ignored_kinds=dict(sorted(ignored.items())),
            columns=spec,
        )

    def columns_of(self, sample_id: str) -> Mapping[str, ColumnValue]:
        return {"label": self._labels[sample_id]} if self._labels else {}

    def _inside(self, p: Path) -> Path:
        try:
            real = Path(os.path.realpath(p))
        except OSError as e:  # a link swapped for a file (or removed) while it was resolved
            rel = p.relative_to(self._real).as_posix() if p.is_relative_to(self._real) else str(p)
            raise SourceError(
                f"{rel!r} changed while the original was being listed ({os_error_text(e)})",
                hint="keep the original unchanged during a run, then run again",
            ) from None
        if real != self._real and self._real not in real.parents:
            rel = p.relative_to(self._real).as_posix() if p.is_relative_to(self._real) else str(p)
            raise SourceError(
                f"{rel!r} is a symlink that points outside the original ({real})",
                hint="copy the target into the original tree, or remove the link",
            )
        return real

    def read(self, sample_id: str) -> bytes:
        check_sample_id(sample_id)
        try:
            return safefs.read_file(
                self._real, self._where.get(sample_id, sample_id), limit=MAX_SAMPLE_BYTES
            )
        except FileNotFoundError:
            raise SourceError(
                "file vanished from the original while the run was reading it",
                sample=sample_id,
                hint="keep the original unchanged during a run, then run again",
            ) from None
        except safefs.UnsafePath as e:
            raise SourceError(
                f"refused: it {os_error_text(e)}",
                sample=sample_id,
                hint="samples must be regular files inside the original (links are resolved "
                "when the original is listed, and must not change during a run)",
            ) from None
        except OSError as e:
            raise SourceError(f"cannot read: {os_error_text(e)}", sample=sample_id) from None


METADATA_FILES = frozenset({"metadata.jsonl", "metadata.csv", "metadata.parquet"})
"""A folder holding one of these gets no labels from its folder names (as in imagefolder)."""


def folder_labels(
    ids: Sequence[str], columns: str | Sequence[str] | None, *, has_metadata_file: bool
) -> tuple[tuple[ColumnSpec, ...], Mapping[str, int]]:
    """The ``label`` column of a folder-per-class original (kept unless ``--columns`` drops it)."""
    found = class_labels_from_ids(ids, has_metadata_file=has_metadata_file)
    carried = select_columns(["label"] if found else [], columns, where="this original")
    if found is None or not carried:
        return (), {}
    return (found[0],), found[1]


def _raise(e: OSError) -> None:
    raise SourceError(f"cannot list {e.filename}: {os_error_text(e)}") from None
