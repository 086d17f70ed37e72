from __future__ import annotations

import pytest

from toolchain._internal.packed import MadeOnAccess


class Squares(MadeOnAccess[int]):
    """Items made from their index: what a packed table does with its records."""

    def __init__(self, n: int):
        self.n = n
        self.made: list[int] = []

    def __len__(self) -> int:
        return self.n

    def _item(self, i: int) -> int:
        self.made.append(i)
        return i * i


def test_indexing_like_a_tuple() -> None:
    s = Squares(5)
    assert s[0] == 0 and s[4] == 16 and s[-1] == 16 and s[-5] == 0
    assert s[1:4] == (1, 4, 9) and s[::-2] == (16, 4, 0) and s[7:] == ()
    assert list(s) == [0, 1, 4, 9, 16] and 9 in s and s.index(9) == 3
    for bad in (5, -6):
        with pytest.raises(IndexError, match="Squares index out of range"):
            s[bad]


def test_items_are_made_only_when_read() -> None:
    s = Squares(1000)
    assert s[500] == 250_000 and s.made == [500]


def test_equal_element_wise_to_any_sequence_but_text() -> None:
    assert Squares(3) == (0, 1, 4) == Squares(3) and Squares(3) == [0, 1, 4]
    assert Squares(3) != (0, 1) and Squares(3) != (0, 1, 5)
    assert Squares(0) != "" and Squares(0) != b""
    with pytest.raises(TypeError):
        hash(Squares(1))
