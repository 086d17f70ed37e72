"""Sample ids: the one check that an id is a safe relative path, and case-fold collisions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from toolchain._internal.packed import StringIndex
from toolchain.errors import SourceError

__all__ = ["check_collisions", "check_sample_id", "fold_key"]

_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # how Python spells a name's undecodable bytes


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
    elif _CONTROL.search(sample_id):
        problem = "it contains a NUL or control character"
    elif sample_id.startswith("/"):
        problem = "it is an absolute path"
    elif any(part in ("", ".", "..") for part in sample_id.split("/")):
        problem = "it has an empty, '.' or '..' path component"
    elif not sample_id.isascii() and _SURROGATE.search(sample_id):
        problem = "its name is not valid UTF-8 (the file system holds bytes that are not text)"
    elif unicodedata.normalize("NFC", sample_id) != sample_id:
        problem = "it is not in Unicode NFC form"
    if problem:
        raise SourceError(
            f"unsafe sample id {sample_id!r}: {problem}",
            hint="rename the file to a UTF-8 name"
            if problem.startswith("its name is not valid UTF-8")
            else "sample ids must be plain relative paths inside the original",
        )
    return sample_id


def fold_key(sample_id: str) -> str:
    """The key under which two ids collide on a case-insensitive file system (NFC, casefold)."""
    return unicodedata.normalize("NFC", sample_id).casefold()


def check_collisions(ids: Sequence[str]) -> None:
    """Refuse two ids that are one name on a case-insensitive file system (memory: each
    folded id's hash and position, :class:`StringIndex`, not the folded ids)."""
    seen = StringIndex(lambda i: fold_key(ids[i]), len(ids))
    for n, sid in enumerate(ids):
        key = fold_key(sid)
        first = seen.find(key)
        if first is not None:
            raise SourceError(
                f"sample ids {ids[first]!r} and {sid!r} collide once case is folded",
                hint="rename one of them: they would overwrite each other on many file systems",
            )
        seen.add(key, n)
