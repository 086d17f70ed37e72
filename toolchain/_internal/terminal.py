"""What may reach a terminal: other people's text with its control characters shown as
escapes (no stability guarantee; the reasons: ``docs/security.md``)."""

from __future__ import annotations

import re

__all__ = ["printable"]

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 but newline and tab, DEL, C1, the bidi marks, embeddings, overrides and isolates,
# and lone surrogates (bytes that were not UTF-8, which a UTF-8 stream refuses to write).
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    o = ord(match.group())
    return f"\\x{o:02x}" if o < 0x80 else f"\\u{o:04x}"


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on, or a reader would be misled
    by, shown as an escape (``\\x1b``, ``\\u009b``, ``\\u202e``); newlines and tabs stay.
    Idempotent: the result holds no such character."""
    return _UNSAFE.sub(_escape, text)
