"""Read one large JSON document a member, or an array element, at a time: in memory bounded
by its largest single value (one manifest entry), not by its size (docs/scale-out.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["JsonStream"]

_WHITESPACE = " \t\n\r"
_CHUNK = 1 << 16


class JsonStream:
    """A cursor over a JSON text read from ``text`` (a text file, ``newline=""``).

    Walks the two outer levels only (the top-level object's members, an array member's
    elements); each value is decoded by ``decoder.raw_decode`` over a buffer refilled
    from the file. Errors are :class:`json.JSONDecodeError` with the character offset
    in the whole document, as ``json.loads`` gives them.
    """

    def __init__(self, text: TextIO, decoder: json.JSONDecoder | None = None):
        self._file = text
        self._decoder = decoder or json.JSONDecoder()
        self._buf = ""
        self._pos = 0
        self._base = 0  # characters of the document before self._buf
        self._eof = False

    def _fill(self) -> bool:
        """Read more (at least as much as is buffered: a long value costs linear time)."""
        if self._eof:
            return False
        chunk = self._file.read(max(_CHUNK, len(self._buf) - self._pos))
        if not chunk:
            self._eof = True
            return False
        self._base += self._pos
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def _error(self, message: str) -> json.JSONDecodeError:
        return json.JSONDecodeError(message, self._buf, self._pos)

    def _absolute(self, e: json.JSONDecodeError) -> json.JSONDecodeError:
        err = json.JSONDecodeError(e.msg, "", 0)
        err.pos = self._base + e.pos
        err.args = (f"{e.msg}: char {err.pos}",)
        return err

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the document)."""
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in _WHITESPACE:
                self._pos += 1
            if self._pos < len(self._buf) or not self._fill():
                return self._buf[self._pos : self._pos + 1]

    def _expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self._absolute(self._error(f"Expecting {what}"))
        self._pos += 1

    def value(self) -> Any:
        """Decode the next whole value."""
        self.peek()
        while True:
            try:
                obj, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as e:
                if self._fill():
                    continue  # the value may go on past the buffer
                raise self._absolute(e) from None
            if end == len(self._buf) and self._fill():
                continue  # a number at the buffer's end may have more digits
            self._pos = end
            return obj

    def members(self) -> Iterator[str]:
        """The keys of the object that starts here; read each member's value before the next."""
        self._expect("{", "'{'")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self._absolute(
                    self._error("Expecting property name enclosed in double quotes")
                )
            key = self.value()
            self._expect(":", "':' delimiter")
            yield key
            nxt = self.peek()
            self._pos += 1
            if nxt == "}":
                return
            if nxt != ",":
                self._pos -= 1
                raise self._absolute(self._error("Expecting ',' delimiter"))

    def elements(self) -> Iterator[Any]:
        """The values of the array that starts here, one at a time."""
        self._expect("[", "'['")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value()
            nxt = self.peek()
            self._pos += 1
            if nxt == "]":
                return
            if nxt != ",":
                self._pos -= 1
                raise self._absolute(self._error("Expecting ',' delimiter"))

    def end(self) -> None:
        """Refuse anything but whitespace after the document."""
        if self.peek():
            raise self._absolute(self._error("Extra data"))
