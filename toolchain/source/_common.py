"""What every source shares: sample ids, listings, the :class:`Source` interface."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from toolchain.errors import SourceError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_SAMPLE_BYTES",
    "Listing",
    "Source",
    "check_collisions",
    "check_sample_id",
    "is_sample_name",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_SAMPLE_BYTES = 256 * 1024 * 1024
"""The largest original file we read (256 MiB); larger ones are refused, not truncated."""


def check_sample_id(sample_id: str) -> str:
    """Return ``sample_id`` if it is a safe, canonical relative POSIX path, else raise.

    Refused: empty ids, absolute paths, ``.`` or ``..`` components, empty
    components, backslashes, NUL and other control characters, and ids that
    are not in Unicode NFC form (two spellings of one name would collide).
    """
    problem = None
    if not sample_id:
        problem = "it is empty"
    elif "\\" in sample_id:
        problem = "it contains a backslash"
    elif any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in sample_id):
        problem = "it contains a NUL or control character"
    elif sample_id.startswith("/"):
        problem = "it is an absolute path"
    elif any(part in ("", ".", "..") for part in sample_id.split("/")):
        problem = "it has an empty, '.' or '..' path component"
    elif unicodedata.normalize("NFC", sample_id) != sample_id:
        problem = "it is not in Unicode NFC form"
    if problem:
        raise SourceError(
            f"unsafe sample id {sample_id!r}: {problem}",
            hint="sample ids must be plain relative paths inside the original",
        )
    return sample_id


def is_sample_name(rel: str) -> bool:
    parts = rel.split("/")
    if any(p.startswith(".") for p in parts):
        return False
    return PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES


def check_collisions(ids: Iterable[str]) -> None:
    seen: dict[str, str] = {}
    for sid in ids:
        key = unicodedata.normalize("NFC", sid).casefold()
        if key in seen:
            raise SourceError(
                f"sample ids {seen[key]!r} and {sid!r} collide once case is folded",
                hint="rename one of them: they would overwrite each other on many file systems",
            )
        seen[key] = sid


@dataclass(frozen=True, kw_only=True)
class Listing:
    """The canonical listing of a source."""

    ids: tuple[str, ...]
    ignored: int
    """Files that are not samples (other extensions, hidden files)."""


class Source:
    """Base class of sources. Subclasses are picklable: workers reopen them."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def listing(self) -> Listing:
        raise NotImplementedError

    def read(self, sample_id: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        """Release any open handle (a no-op for folders)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
