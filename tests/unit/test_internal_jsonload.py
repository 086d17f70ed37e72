"""The one bounded JSON reader: hostile JSON is the caller's error, never a traceback."""

from __future__ import annotations

import pytest

from toolchain._internal.jsonload import load_json
from toolchain.errors import DiffFormatError, ExitCode, ManifestError


def test_strict_json_parses() -> None:
    assert load_json(b'{"a": [1, "\\u00e9"]}', what="x", error=ManifestError) == {"a": [1, "é"]}
    assert load_json("[true, null]", what="x", error=ManifestError) == [True, None]


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested too deep"),
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "nested too deep"),
        (b'{"a": NaN}', "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b'{"a": "\xff"}', "not UTF-8 at byte 7"),
        (b'{"a": 1', "Expecting"),
        (b"", "Expecting value"),
    ],
)
def test_hostile_json_is_the_callers_error(data: bytes, detail: str) -> None:
    with pytest.raises(DiffFormatError) as e:
        load_json(data, what="diff.json", error=DiffFormatError, hint="rebuild the diff")
    assert "diff.json: not valid JSON (" in e.value.message
    assert detail in e.value.message
    assert e.value.hint == "rebuild the diff"
    assert e.value.exit_code == ExitCode.BAD_INPUT
