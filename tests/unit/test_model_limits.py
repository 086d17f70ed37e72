from __future__ import annotations

import pytest

from toolchain.model.limits import (
    MAX_COMPONENT_BYTES,
    MAX_PATH_BYTES,
    SHOWN_CHARS,
    cut,
    path_problem,
    shown,
    size_problem,
)


def test_a_message_quotes_a_value_cut_short() -> None:
    assert shown("abc") == "'abc'" and shown(12) == "12"
    long = shown("B" * 10_000)
    assert long == "'" + "B" * (SHOWN_CHARS - 1) + "..." and len(long) == SHOWN_CHARS + 3
    assert shown("\x1b]52;c;x\x07") == repr("\x1b]52;c;x\x07")  # repr escapes controls
    assert cut("x" * 5, 5) == "xxxxx" and cut("x" * 6, 5) == "xxxxx..."


def test_size_problem_says_the_size_and_the_limit() -> None:
    assert size_problem("x" * 10, 10) is None
    assert size_problem("x" * 11, 10) == "it is 11 characters, over the 10-character limit"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a/b.png", None),
        ("é" * (MAX_COMPONENT_BYTES // 2), None),  # 254 bytes: two per character
        ("a/" + "x" * MAX_COMPONENT_BYTES, None),
        ("a/" + "x" * (MAX_COMPONENT_BYTES + 1), "a component of it is 256 bytes"),
        ("é" * 128, "a component of it is 256 bytes"),
        ("/".join(["é" * 100] * 21), f"it is {201 * 21 - 1} bytes, over the 4096-byte limit"),
        ("x" * (MAX_PATH_BYTES + 1), "it is over 4096 bytes"),
        ("a/\ud800.png", "not valid Unicode"),
    ],
)
def test_path_problem(value: str, problem: str | None) -> None:
    found = path_problem(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
