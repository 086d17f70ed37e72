"""Read-only sequences whose items are made on access from a compact store (the manifest's
entry table, a diff's index, ``diff apply``'s outcomes, a listing's ids: bytes, not a
million objects)."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["MadeOnAccess", "PackedStrings", "Records", "StringIndex", "packed_ids"]

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


class Records:
    """Byte strings packed end to end into one buffer, with an array of where each ends:
    8 bytes a record beside its bytes, and no object. The store behind
    :class:`PackedStrings` and the manifest's entry table.

    Grown with :meth:`append` while its buffer is a ``bytearray``; a buffer given to it is
    adopted, never copied, and never changed by it unless appended to.
    """

    __slots__ = ("_blob", "_ends")

    def __init__(self, blob: bytes | bytearray | None = None, ends: array[int] | None = None):
        self._blob: bytes | bytearray = bytearray() if blob is None else blob
        self._ends: array[int] = array("Q") if ends is None else ends

    @classmethod
    def of(cls, records: Iterable[bytes | memoryview]) -> Records:
        """``records`` packed in the order given."""
        packed = cls()
        for r in records:
            packed.append(r)
        return packed

    def append(self, record: bytes | memoryview) -> None:
        blob = self._blob
        if not isinstance(blob, bytearray):
            raise TypeError("frozen records are never appended to")
        blob += record
        self._ends.append(len(blob))

    def frozen(self) -> Records:
        """The same records in an immutable buffer (one copy)."""
        return Records(bytes(self._blob), self._ends)

    def __len__(self) -> int:
        return len(self._ends)

    @property
    def nbytes(self) -> int:
        """The records' bytes (the buffer's length)."""
        return len(self._blob)

    def __getitem__(self, i: int) -> bytes | bytearray:
        """Record ``i`` (``0 <= i < len``), copied out."""
        return self._blob[self._ends[i - 1] if i else 0 : self._ends[i]]

    def view(self, i: int) -> memoryview:
        """Record ``i`` (``0 <= i < len``), without a copy."""
        return memoryview(self._blob)[self._ends[i - 1] if i else 0 : self._ends[i]]

    def __iter__(self) -> Iterator[memoryview]:
        view, start = memoryview(self._blob), 0
        for end in self._ends:
            yield view[start:end]
            start = end

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Records):
            return self._ends == other._ends and self._blob == other._blob
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Records: {len(self)}, {self.nbytes} bytes>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_records_from_state, (bytes(self._blob), self._ends.tobytes()))


def _records_from_state(blob: bytes, ends: bytes) -> Records:
    packed = array("Q")
    packed.frombytes(ends)
    return Records(blob, packed)


class PackedStrings(MadeOnAccess[str]):
    """Strings packed as UTF-8 into one buffer, each made again on access.

    About the string's UTF-8 length plus 8 bytes each, where a tuple of ``str`` objects
    takes some 60 bytes more: a listing of a million ids is 30 MB, not 90. When the
    strings are sorted by their UTF-8 bytes (:attr:`is_sorted`, found as they are packed),
    ``in`` and :meth:`index` are a binary search; otherwise a scan.
    """

    __slots__ = ("_records", "is_sorted")

    def __init__(self, strings: Iterable[str] = ()):
        records = Records()
        previous: bytes | None = None
        ordered = True
        for s in strings:
            b = s.encode("utf-8")
            if previous is not None and b <= previous:
                ordered = False
            previous = b
            records.append(b)
        self._records = records.frozen()
        self.is_sorted = ordered
        """Strictly ascending by UTF-8 bytes (so also free of repeats)."""

    @classmethod
    def in_order(cls, strings: Iterable[str]) -> PackedStrings:
        """``strings`` packed in their UTF-8 order: as they come, when they come in it (no
        list of them is made), else sorted once packed."""
        packed = cls(strings)
        return packed if packed.is_sorted else cls(sorted(packed))  # code points: UTF-8 order

    def __len__(self) -> int:
        return len(self._records)

    def _item(self, i: int) -> str:
        return self._records[i].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for b in self._records:
            yield str(b, "utf-8")

    def _find(self, b: bytes) -> int:
        """The position of ``b`` (sorted strings only), or -1."""
        records = self._records
        lo, hi = 0, len(records)
        while lo < hi:
            mid = (lo + hi) // 2
            if records[mid] < b:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(records) and records[lo] == b else -1

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
            return self._records == other._records
        return super().__eq__(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"<PackedStrings of {len(self)} strings, {self._records.nbytes} bytes>"

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
