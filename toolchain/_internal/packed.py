"""A read-only sequence whose items are made on access from a compact store (the manifest's
entry table, a diff's index, ``diff apply``'s outcomes: bytes, not a million objects)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["MadeOnAccess"]

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
