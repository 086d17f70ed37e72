"""Read one large JSON document a member, or an array element, at a time: in memory bounded
by its largest single value (one manifest entry), not by its size (docs/scale-out.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["JsonStream", "TooLong"]

_NOT_WHITESPACE = re.compile(r"[^ \t\n\r]")
_CHUNK = 1 << 16


class TooLong(json.JSONDecodeError):
    """A value longer than the stream's limit (its ``pos``: where the value starts)."""


class JsonStream:
    """A cursor over a JSON text read from ``text`` (a text file, ``newline=""``).

    Walks the two outer levels only (the top-level object's members, an array member's
    elements); each value is decoded by ``decoder.raw_decode`` over a buffer refilled
    from the file. ``limit``: the most characters one value may take (a longer one is
    refused once that much is buffered, so memory stays near it); each call may set its
    own. Errors are :class:`json.JSONDecodeError` with the character offset in the whole
    document, as ``json.loads`` gives them; a value nested too deep for the parser is one
    too ("nested too deep"), never a ``RecursionError``.
    """

    def __init__(
        self, text: TextIO, decoder: json.JSONDecoder | None = None, *, limit: int | None = None
    ):
        self._file = text
        self._decoder = decoder or json.JSONDecoder()
        self._limit = limit
        self._buf = ""
        self._pos = 0
        self._base = 0  # characters of the document before self._buf
        self._eof = False

    def _fill(self, limit: int | None = None) -> bool:
        """Read more (at least as much as is buffered: a long value costs linear time, but
        no more than ``limit`` allows)."""
        if self._eof:
            return False
        held = len(self._buf) - self._pos
        want = max(_CHUNK, held)
        if limit is not None:
            want = min(want, max(_CHUNK, limit + 1 - held))
        chunk = self._file.read(want)
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
            found = _NOT_WHITESPACE.search(self._buf, self._pos)
            self._pos = found.start() if found else len(self._buf)
            if found or not self._fill():
                return self._buf[self._pos : self._pos + 1]

    def _expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self._absolute(self._error(f"Expecting {what}"))
        self._pos += 1

    def value(self, *, limit: int | None = None) -> Any:
        """Decode the next whole value, of at most ``limit`` characters (default: the
        stream's)."""
        limit = self._limit if limit is None else limit
        self.peek()
        while True:
            try:
                obj, end = self._decoder.raw_decode(self._buf, self._pos)
            except RecursionError:
                raise self._absolute(self._error("nested too deep")) from None
            except json.JSONDecodeError as e:
                if limit is not None and len(self._buf) - self._pos > limit:
                    raise self._too_long(limit) from None
                if self._fill(limit):
                    continue  # the value may go on past the buffer
                raise self._absolute(e) from None
            if end == len(self._buf) and self._fill(limit):
                continue  # a number at the buffer's end may have more digits
            if limit is not None and end - self._pos > limit:
                raise self._too_long(limit)
            self._pos = end
            return obj

    def _too_long(self, limit: int) -> TooLong:
        err = TooLong(f"a value longer than {limit} characters", "", 0)
        err.pos = self._base + self._pos
        err.args = (f"{err.msg}: char {err.pos}",)
        return err

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

    def elements(self, *, limit: int | None = None) -> Iterator[Any]:
        """The values of the array that starts here, one at a time (each of at most
        ``limit`` characters, default: the stream's)."""
        self._expect("[", "'['")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value(limit=limit)
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
