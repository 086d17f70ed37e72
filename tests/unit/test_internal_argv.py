"""toolchain._internal.argv: option values read out of a command line we pass on."""

from __future__ import annotations

import pytest

from toolchain._internal.argv import option_value


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--out", "a"], "a"),
        (["--out=a"], "a"),
        (["--out=a=b"], "a=b"),  # only the first '=' separates
        (["--out", "a", "--out=b"], "b"),  # the last one wins, as in Click
        (["--out=a", "--out", "b"], "b"),
        (["--out"], None),  # no value follows
        (["--output", "a", "--out-dir=b"], None),  # other options sharing a prefix
        ([], None),
        (["x", "--out", ""], ""),
    ],
)
def test_option_value(argv: list[str], expected: str | None) -> None:
    assert option_value(argv, "--out") == expected


def test_a_value_that_looks_like_an_option_is_still_the_value() -> None:
    assert option_value(["--nthreads", "--nworkers"], "--nthreads") == "--nworkers"
