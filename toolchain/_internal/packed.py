"""Read-only sequences whose items are made on access from a compact store (the manifest's
entry table, a diff's index, ``diff apply``'s outcomes, a listing's ids: bytes, not a
million objects)."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["MadeOnAccess", "PackedStrings", "StringIndex", "packed_ids"]

T = TypeVar("T")


class MadeOnAccess(Sequence[T]):
    """Indexing (negative indices, slices as tuples), ``IndexError`` and element-wise
    equality, all from one method, :meth:`_item`."""

    __slots__ = ()

    def _item(self, i: int) -> T:
        """Item ``i``, with ``0 <= i < len(self)``."""
        raise NotImplementedError

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self._item(i) for i in range(*index.indices(len(self))))
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._item(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes | bytearray):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class PackedStrings(MadeOnAccess[str]):
    """Strings packed as UTF-8 into one buffer, each made again on access.

    About the string's UTF-8 length plus 8 bytes each, where a tuple of ``str`` objects
    takes some 60 bytes more: a listing of a million ids is 30 MB, not 90. When the
    strings are sorted by their UTF-8 bytes (:attr:`is_sorted`, found as they are packed),
    ``in`` and :meth:`index` are a binary search; otherwise a scan.
    """

    __slots__ = ("_blob", "_ends", "is_sorted")

    def __init__(self, strings: Iterable[str] = ()):
        blob, ends = bytearray(), array("Q")
        previous: bytes | None = None
        ordered = True
        for s in strings:
            b = s.encode("utf-8")
            if previous is not None and b <= previous:
                ordered = False
            previous = b
            blob += b
            ends.append(len(blob))
        self._blob = bytes(blob)
        self._ends = ends
        self.is_sorted = ordered
        """Strictly ascending by UTF-8 bytes (so also free of repeats)."""

    @classmethod
    def in_order(cls, strings: Iterable[str]) -> PackedStrings:
        """``strings`` packed in their UTF-8 order: as they come, when they come in it (no
        list of them is made), else sorted once packed."""
        packed = cls(strings)
        return packed if packed.is_sorted else cls(sorted(packed))  # code points: UTF-8 order

    def __len__(self) -> int:
        return len(self._ends)

    def _bytes(self, i: int) -> bytes:
        start = self._ends[i - 1] if i else 0
        return self._blob[start : self._ends[i]]

    def _item(self, i: int) -> str:
        return self._bytes(i).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        blob, start = self._blob, 0
        for end in self._ends:
            yield blob[start:end].decode("utf-8")
            start = end

    def _find(self, b: bytes) -> int:
        """The position of ``b`` (sorted strings only), or -1."""
        lo, hi = 0, len(self._ends)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._bytes(mid) < b:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(self._ends) and self._bytes(lo) == b else -1

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if self.is_sorted:
            return self._find(value.encode("utf-8")) >= 0
        return any(s == value for s in self)

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        if self.is_sorted and isinstance(value, str) and start == 0 and stop is None:
            i = self._find(value.encode("utf-8"))
            if i < 0:
                raise ValueError(f"{value!r} is not in the sequence")
            return i
        return super().index(value, start, stop if stop is not None else len(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedStrings):
            return self._blob == other._blob and self._ends == other._ends
        return super().__eq__(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"<PackedStrings of {len(self)} strings, {len(self._blob)} bytes>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PackedStrings, (list(self),))


def packed_ids(ids: Iterable[str]) -> Sequence[str]:
    """``ids`` packed (:class:`PackedStrings`), unless they already are."""
    return ids if isinstance(ids, PackedStrings) else PackedStrings(ids)


class StringIndex:
    """Which position holds a string, among many, in about 24 bytes a string.

    An open-addressing table of each string's hash and position (two arrays), where a
    ``dict`` of the strings takes some 150 bytes each. The strings themselves stay where
    they are: ``key(position)`` gives one back, to confirm a hash that matches, so an
    answer never depends on the hash (nor on ``PYTHONHASHSEED``).
    """

    __slots__ = ("_count", "_hashes", "_key", "_mask", "_positions")

    def __init__(self, key: Callable[[int], str], expected: int = 0):
        self._key = key
        self._count = 0
        self._alloc(1 << max(4, (expected * 3 // 2 + 1).bit_length()))

    def _alloc(self, size: int) -> None:
        self._mask = size - 1
        self._hashes = array("q", [0]) * size  # 0: an empty slot (made in place, no copy)
        self._positions = array("I", [0]) * size  # positions under 2**32

    def __len__(self) -> int:
        return self._count

    def find(self, s: str) -> int | None:
        """The lowest position added whose string is ``s``, or ``None``."""
        h = hash(s) or 1
        hashes, positions, mask = self._hashes, self._positions, self._mask
        best: int | None = None
        i = h & mask
        while (found := hashes[i]) != 0:
            if (
                found == h
                and (best is None or positions[i] < best)
                and self._key(positions[i]) == s
            ):
                best = positions[i]
            i = (i + 1) & mask
        return best

    def __contains__(self, s: object) -> bool:
        return isinstance(s, str) and self.find(s) is not None

    def add(self, s: str, position: int) -> None:
        """Record that ``key(position)`` is ``s`` (a string already there keeps its first)."""
        if 3 * (self._count + 1) > 2 * (self._mask + 1):
            self._grow()
        self._put(hash(s) or 1, position)
        self._count += 1

    def _put(self, h: int, position: int) -> None:
        hashes, mask = self._hashes, self._mask
        i = h & mask
        while hashes[i] != 0:
            i = (i + 1) & mask
        hashes[i] = h
        self._positions[i] = position

    def _grow(self) -> None:
        hashes, positions = self._hashes, self._positions
        self._alloc(2 * (self._mask + 1))
        for h, p in zip(hashes, positions, strict=True):
            if h != 0:
                self._put(h, p)
