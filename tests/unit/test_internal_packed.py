from __future__ import annotations

import pickle
import tracemalloc
from array import array

import pytest

from toolchain._internal.packed import (
    MadeOnAccess,
    PackedStrings,
    Records,
    StringIndex,
    packed_ids,
)


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


_IDS = ["b/x.jpg", "a-b/y.jpg", "a/z.jpg", "é/1.png", "A/2.png", "a.b/3.png", "中/4.jpg"]


def test_packed_strings_are_the_strings_and_know_whether_they_are_in_utf8_order() -> None:
    packed = PackedStrings(_IDS)
    assert list(packed) == _IDS and packed == _IDS and len(packed) == len(_IDS)
    assert packed[-1] == "中/4.jpg" and packed[1:3] == ("a-b/y.jpg", "a/z.jpg")
    assert not packed.is_sorted and "a/z.jpg" in packed and "zz" not in packed
    ordered = PackedStrings.in_order(_IDS)
    assert list(ordered) == sorted(_IDS, key=lambda s: s.encode("utf-8")) and ordered.is_sorted
    for i, s in enumerate(ordered):  # binary search
        assert s in ordered and ordered.index(s) == i
    assert "a" not in ordered and "zz" not in ordered and 3 not in ordered
    with pytest.raises(ValueError, match="is not in the sequence"):
        ordered.index("a")
    assert not PackedStrings(["a", "a"]).is_sorted  # strictly ascending only
    assert pickle.loads(pickle.dumps(ordered)) == ordered
    assert packed_ids(ordered) is ordered and packed_ids(_IDS) == _IDS


def test_packing_takes_a_few_bytes_over_each_string() -> None:
    ids = [f"n{i % 1000:08d}/ILSVRC2012_val_{i:08d}.JPEG" for i in range(20_000)]
    tracemalloc.start()
    try:
        packed = PackedStrings(ids)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / len(ids) < len(ids[0]) + 12 and len(packed) == len(ids)


@pytest.mark.parametrize("seed", [0, 1])
def test_string_index_finds_the_first_position_whatever_the_hashes(seed: int) -> None:
    import random

    rng = random.Random(seed)
    words = [f"{rng.randrange(400)}" for _ in range(2000)]  # many repeats
    index = StringIndex(words.__getitem__)  # grows from its smallest size
    for i, w in enumerate(words):
        index.add(w, i)
    assert len(index) == len(words)
    for w in set(words):
        assert index.find(w) == words.index(w) and w in index
    assert index.find("absent") is None and "absent" not in index and 3 not in index


def test_string_index_confirms_every_hash_match_against_the_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every string hashing alike (the worst case): answers are still exact."""
    import builtins

    monkeypatch.setattr(builtins, "hash", lambda s: 7)
    words = ["a", "b", "c", "a"]
    index = StringIndex(words.__getitem__, 4)
    for i, w in enumerate(words):
        index.add(w, i)
    assert [index.find(w) for w in ("a", "b", "c", "d")] == [0, 1, 2, None]


def test_records_keep_each_byte_string_whole_and_in_order() -> None:
    given = [b"", b"a", b"\x00\xff", b"", "é".encode(), b"xyz" * 100]
    records = Records.of(given)
    assert len(records) == len(given) and records.nbytes == sum(map(len, given))
    assert [records[i] for i in range(len(given))] == given
    assert [bytes(records.view(i)) for i in range(len(given))] == given
    assert [bytes(v) for v in records] == given
    assert records == Records.of(given) and records != Records.of(given[:-1])
    assert records != Records.of([b"".join(given)])  # the same bytes, cut elsewhere
    assert pickle.loads(pickle.dumps(records)) == records
    assert Records() == Records.of([]) and len(Records()) == 0


def test_records_adopt_their_buffer_and_a_frozen_copy_refuses_to_grow() -> None:
    blob = bytearray(b"abcd")
    ends = array("Q", [1, 4])
    records = Records(blob, ends)
    assert records.view(1).obj is blob  # adopted, not copied
    records.append(b"ef")
    assert blob == b"abcdef" and records[2] == b"ef"
    frozen = records.frozen()
    assert frozen == records and isinstance(frozen[0], bytes)
    with pytest.raises(TypeError, match="never appended"):
        frozen.append(b"g")
    assert len(frozen) == 3
