from __future__ import annotations

import io
import json
from typing import Any

import pytest

from toolchain._internal import jsonstream
from toolchain._internal.jsonstream import JsonStream, TooLong

DOC = {
    "a": [1, 22, 333, -4444, 5.5e3, True, None, "x"],
    "entries": [{"id": f'é{i}\\"', "n": i * 12345, "o": {"k": [i]}} for i in range(40)],
    "z": "tail",
    "zz": 1234567890123,
}


def _walk(text: str) -> dict[str, Any]:
    """The document rebuilt by the stream: members, and the ``entries`` array elementwise."""
    stream = JsonStream(io.StringIO(text, newline=""))
    out: dict[str, Any] = {}
    for key in stream.members():
        out[key] = list(stream.elements()) if key == "entries" else stream.value()
    stream.end()
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 16])
@pytest.mark.parametrize("indent", [None, 2])
def test_any_refill_boundary_gives_what_json_loads_gives(
    monkeypatch: pytest.MonkeyPatch, chunk: int, indent: int | None
) -> None:
    """Numbers, strings and escapes cut at every buffer boundary still decode whole."""
    monkeypatch.setattr(jsonstream, "_CHUNK", chunk)
    text = json.dumps(DOC, indent=indent, ensure_ascii=False)
    assert _walk(text) == json.loads(text)


def test_a_number_at_the_very_end_of_a_buffer_is_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "_CHUNK", 1)
    stream = JsonStream(io.StringIO("98765 "))
    assert stream.value() == 98765
    stream.end()


def test_empty_object_and_array() -> None:
    stream = JsonStream(io.StringIO('{"entries": [], "b": {}}'))
    seen = {}
    for key in stream.members():
        seen[key] = list(stream.elements()) if key == "entries" else stream.value()
    assert seen == {"entries": [], "b": {}}
    assert list(JsonStream(io.StringIO(" { } ")).members()) == []


@pytest.mark.parametrize(
    ("text", "message", "pos"),
    [
        ('{"a": 1} x', "Extra data", 9),
        ('{"a" 1}', "Expecting ':' delimiter", 5),
        ('{"a": 1 "b": 2}', "Expecting ',' delimiter", 8),
        ("{a: 1}", "Expecting property name", 1),
        ('{"entries": [1 2]}', "Expecting ',' delimiter", 15),
        ('{"a": [1, }', "Expecting value", 10),
        ('{"a": "unterminated', "Unterminated string", 6),
        ("", "Expecting '{'", 0),
    ],
)
def test_errors_name_the_offset_in_the_whole_document(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str, pos: int
) -> None:
    monkeypatch.setattr(jsonstream, "_CHUNK", 3)  # offsets must not be the buffer's
    with pytest.raises(json.JSONDecodeError, match=message) as info:
        _walk(text)
    assert info.value.pos == pos
    assert f"char {pos}" in str(info.value)


def test_a_long_value_is_read_in_growing_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value much longer than a chunk costs a few refills, not one per chunk."""
    monkeypatch.setattr(jsonstream, "_CHUNK", 16)
    reads: list[int] = []

    class Counting(io.StringIO):
        def read(self, size: int | None = -1) -> str:
            reads.append(size or -1)
            return super().read(size)

    text = json.dumps({"big": "x" * 100_000})
    stream = JsonStream(Counting(text))
    assert [stream.value() for _ in stream.members()] == ["x" * 100_000]
    assert len(reads) < 20


@pytest.mark.parametrize("where", ["member", "element"])
def test_nesting_too_deep_is_a_decode_error_naming_where(where: str) -> None:
    """Python's parser gives up past about a thousand levels with a RecursionError; the
    stream turns it into the one error it raises, at the value's offset."""
    deep = "[" * 5000 + "]" * 5000
    text = f'{{"a": 1, "b": {deep}}}' if where == "member" else f'{{"entries": [1, {deep}]}}'
    with pytest.raises(json.JSONDecodeError, match="nested too deep") as info:
        _walk(text)
    assert info.value.pos == text.index("[[")


def test_a_value_over_the_limit_is_refused_once_the_limit_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 10 MB string under a 64 KiB limit: refused after reading about the limit, never
    the string (without the limit, the buffer grows to hold all of it)."""
    monkeypatch.setattr(jsonstream, "_CHUNK", 1024)
    read = 0

    class Counting(io.StringIO):
        def read(self, size: int | None = -1) -> str:
            nonlocal read
            piece = super().read(size)
            read += len(piece)
            return piece

    text = '{"a": "' + "x" * 10_000_000 + '", "b": 2}'
    stream = JsonStream(Counting(text), limit=64 << 10)
    members = stream.members()
    assert next(members) == "a"
    with pytest.raises(TooLong, match=r"a value longer than 65536 characters") as info:
        stream.value()
    assert info.value.pos == 6 and read < 3 * (64 << 10)


def test_each_value_may_have_its_own_limit() -> None:
    """A limit counts the value's JSON text: ``"xxx"`` is 102 characters for 100 x."""
    text = '{"small": "' + "x" * 100 + '", "entries": ["' + "y" * 100 + '"]}'

    def read(default: int | None, small: int | None, entries: int | None) -> dict[str, Any]:
        stream = JsonStream(io.StringIO(text), limit=default)
        return {
            key: list(stream.elements(limit=entries))
            if key == "entries"
            else stream.value(limit=small)
            for key in stream.members()
        }

    assert read(10, 102, 102) == json.loads(text)
    assert read(102, None, None) == json.loads(text)
    for default, small, entries in [(10, None, 102), (10, 102, None), (None, 101, None),
                                    (None, None, 101)]:  # fmt: skip
        with pytest.raises(TooLong):
            read(default, small, entries)


def test_whitespace_between_values_costs_no_memory() -> None:
    text = '{"a":' + " " * 1_000_000 + "1}"
    stream = JsonStream(io.StringIO(text), limit=16)
    assert [stream.value() for _ in stream.members()] == [1]
