"""An original stored as a folder tree."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from toolchain.errors import SourceError
from toolchain.source._common import (
    MAX_SAMPLE_BYTES,
    Listing,
    Source,
    check_collisions,
    check_sample_id,
    is_sample_name,
)

__all__ = ["FolderSource"]


@dataclass(eq=False)
class FolderSource(Source):
    """An original stored as a folder tree."""

    path: Path

    def __post_init__(self) -> None:
        self._real = Path(os.path.realpath(self.path))

    def listing(self) -> Listing:
        ids: list[str] = []
        ignored = 0
        visited: dict[tuple[int, int], str] = {}
        for dirpath, dirnames, filenames in os.walk(self._real, followlinks=True, onerror=_raise):
            st = os.stat(dirpath)
            here = Path(dirpath).relative_to(self._real).as_posix()
            first = visited.get((st.st_dev, st.st_ino))
            if first is not None:
                raise SourceError(
                    f"folder {here!r} is a second path (a symlink) to {first!r}: its images "
                    "would be listed twice, or forever in a loop",
                    hint="remove the symlink, or copy the folder",
                )
            visited[(st.st_dev, st.st_ino)] = here
            dirnames.sort()  # a deterministic walk: messages must not depend on the FS order
            for d in dirnames:
                self._inside(Path(dirpath) / d)
            rel_dir = Path(dirpath).relative_to(self._real).as_posix()
            for fn in filenames:
                rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
                if not is_sample_name(rel):
                    ignored += 1
                    continue
                ids.append(check_sample_id(rel))
        ids.sort(key=lambda s: s.encode("utf-8"))
        check_collisions(ids)
        return Listing(ids=tuple(ids), ignored=ignored)

    def _inside(self, p: Path) -> Path:
        real = Path(os.path.realpath(p))
        if real != self._real and self._real not in real.parents:
            rel = p.relative_to(self._real).as_posix() if p.is_relative_to(self._real) else str(p)
            raise SourceError(
                f"{rel!r} is a symlink that points outside the original ({real})",
                hint="copy the target into the original tree, or remove the link",
            )
        return real

    def read(self, sample_id: str) -> bytes:
        check_sample_id(sample_id)
        p = self._inside(self._real / sample_id)
        try:
            with open(p, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise SourceError("not a regular file", sample=sample_id)
                if st.st_size > MAX_SAMPLE_BYTES:
                    raise SourceError(
                        f"file is {st.st_size} bytes, over the {MAX_SAMPLE_BYTES}-byte limit",
                        sample=sample_id,
                    )
                return f.read()
        except FileNotFoundError:
            raise SourceError(
                "file vanished from the original while the run was reading it",
                sample=sample_id,
                hint="keep the original unchanged during a run, then run again",
            ) from None
        except OSError as e:
            raise SourceError(f"cannot read: {e.strerror or e}", sample=sample_id) from None


def _raise(e: OSError) -> None:
    raise SourceError(f"cannot list {e.filename}: {e.strerror}") from None
