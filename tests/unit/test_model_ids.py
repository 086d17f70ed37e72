"""Sample ids: the safe-path check and case-fold collisions."""

from __future__ import annotations

import re

import pytest

from toolchain.errors import SourceError
from toolchain.model.ids import check_collisions, check_sample_id, fold_key


@pytest.mark.parametrize(
    "good", ["a.png", "cat/x y.JPG", "\u00e9t\u00e9/caf\u00e9.webp", "a/b/c.jpeg"]
)
def test_safe_ids_are_returned_unchanged(good: str) -> None:
    assert check_sample_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/abs.png",
        "../up.png",
        "a/../b.png",
        "a\\b.png",
        "a\x00.png",
        "a//b.png",
        "./a.png",
        "e\u0301.png",
    ],
)
def test_unsafe_ids_are_refused(bad: str) -> None:
    with pytest.raises(SourceError, match="unsafe sample id"):
        check_sample_id(bad)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "empty"),
        ("a\\b.png", "backslash"),
        ("a\x7f.png", "control character"),
        ("/a.png", "absolute"),
        ("a/./b.png", "'.' or '..'"),
        ("e\u0301.png", "NFC"),
    ],
)
def test_the_refusal_says_why_and_what_to_do(bad: str, why: str) -> None:
    with pytest.raises(SourceError, match=re.escape(why)) as e:
        check_sample_id(bad)
    assert e.value.hint and "relative paths" in e.value.hint


def test_ids_that_fold_to_one_name_collide() -> None:
    check_collisions(["A.png", "b.png", "a/A.png"])  # distinct once folded: fine
    with pytest.raises(SourceError, match=r"'A\.png' and 'a\.png' collide"):
        check_collisions(["A.png", "b.png", "a.png"])
    with pytest.raises(SourceError, match="collide"):
        check_collisions(["Stra\u00dfe.png", "STRASSE.png"])  # full case folding, not lower()


def test_fold_key_is_nfc_then_casefold() -> None:
    assert fold_key("Stra\u00dfe.png") == fold_key("STRASSE.png") == "strasse.png"
    assert fold_key("e\u0301.PNG") == "\u00e9.png"


def test_a_name_that_is_not_utf8_is_refused_with_what_to_do() -> None:
    """os.listdir spells undecodable bytes as lone surrogates (b'b\\xff.jpg' -> 'b\\udcff.jpg')."""
    name = b"b\xff.jpg".decode("utf-8", "surrogateescape")
    with pytest.raises(SourceError, match="not valid UTF-8") as e:
        check_sample_id(name)
    assert e.value.hint == "rename the file to a UTF-8 name"
    assert check_sample_id("caf\u00e9/\u4e2d.jpg") == "caf\u00e9/\u4e2d.jpg"
