"""toolchain._internal.terminal: what a terminal would act on is shown as an escape."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import HOSTILE
from toolchain._internal.terminal import printable

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _acted_on(c: str) -> bool:
    """A character a terminal acts on or a reader is misled by: control (C0 but newline
    and tab, DEL, C1), a lone surrogate, a bidi control."""
    return (unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t") or c in BIDI


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),  # OSC 0: the window title
        ("\x1b]52;c;b3duZWQ=\x07", "\\x1b]52;c;b3duZWQ=\\x07"),  # OSC 52: the clipboard
        ("\x1b[2J\x1b[31m", "\\x1b[2J\\x1b[31m"),  # CSI: clear the screen, colour
        ("\u009b31m\u009d0;t\u009c", "\\u009b31m\\u009d0;t\\u009c"),  # C1 CSI, OSC, ST
        ("a\rb\x08c\x00d\x7f", "a\\x0db\\x08c\\x00d\\x7f"),  # overwrite, backspace, NUL, DEL
        ("id\u202egnp.png", "id\\u202egnp.png"),  # a right-to-left override
        ("x\u2066y\u2069\u200f", "x\\u2066y\\u2069\\u200f"),  # an isolate, a mark
        ("not UTF-8 \udcff", "not UTF-8 \\udcff"),  # a byte os.fsdecode could not decode
    ],
)
def test_what_a_terminal_acts_on_is_shown_escaped(text: str, shown: str) -> None:
    assert printable(text) == shown
    shown.encode("ascii")  # the escapes are plain ASCII


def test_ordinary_text_is_untouched() -> None:
    text = "café 東京 naïve ✓ \U0001f600 a\\x1b\nline two\tcolumn"
    assert printable(text) == text


@HOSTILE
@given(
    st.text(
        alphabet=st.characters(codec=None, exclude_categories=())  # surrogates too
        | st.sampled_from([*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA1)), *BIDI, "\\"])
    )
)
def test_exactly_what_a_terminal_acts_on_is_escaped(text: str) -> None:
    """The regular expression against Unicode's own categories: each such character is
    one escape, every other character is kept as it is."""
    shown = printable(text)
    expected = "".join(
        (f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}") if _acted_on(c) else c
        for c in text
    )
    assert shown == expected
    assert printable(shown) == shown  # idempotent: echo may see style()'s text again
    shown.encode("utf-8")  # writable to any UTF-8 stream: no lone surrogate left
