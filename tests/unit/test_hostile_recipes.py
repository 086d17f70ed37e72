"""Hostile recipe references and ``--param`` values: RecipeError / ParamError only."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import HOSTILE, typed
from toolchain.errors import ExitCode, ParamError, RecipeError
from toolchain.recipes import Recipe, load_recipe, parse_params

_real_import = importlib.import_module


def _guarded_import(name: str, package: str | None = None) -> ModuleType:
    """Fuzzed names may only import what is loaded already (no side effects such as
    ``antigravity`` opening a browser); any other name behaves as if it did not exist."""
    if name in sys.modules or name.startswith("toolchain"):
        return _real_import(name, package)
    raise ModuleNotFoundError(f"No module named {name!r}")


specs = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            ":",
            "::",
            "identity:",
            ":identity",
            "os:path",
            "toolchain:recipe",
            "toolchain.recipes:Recipe",
            "toolchain.recipes.identity:nope",
            "nope.py:x",
            "/etc/passwd:x",
            "../x.py:y",
            "a\x00b",
            "x" * 5000,
            "toolchain.recipes",
            "1abc",
            "toolchain..recipes:x",
            "/dev/null.py:x",
            "/:x",
        ]
    ),
    st.builds(
        lambda a, b: f"{a}:{b}",
        st.from_regex(r"[a-z_.]{0,20}", fullmatch=True),
        st.text(max_size=10),
    ),
)


@HOSTILE
@given(specs)
def test_load_recipe_any_text(spec: str) -> None:
    with mock.patch.object(importlib, "import_module", _guarded_import):
        result = typed(lambda: load_recipe(spec), RecipeError)
    assert isinstance(result, Recipe | RecipeError)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("", "bad recipe reference"),
        ("a\x00b", "bad recipe reference"),
        ("x" * 5000, "bad recipe reference"),
        ("no such recipe!", "unknown recipe"),
        ("nope.py:x", "does not exist"),
        ("os:path", "is not a recipe"),
        ("toolchain.recipes.identity:nope", "is not a recipe"),
        ("definitely_not_a_module_xyz:r", "cannot import recipe module"),
    ],
)
def test_named_bad_recipe_refs(spec: str, words: str) -> None:
    with pytest.raises(RecipeError, match=words) as e:
        load_recipe(spec)
    assert e.value.exit_code == ExitCode.BAD_INPUT


def test_recipe_file_that_raises_on_import(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("raise SystemError('boom')\n")
    with pytest.raises(RecipeError, match="failed to import: SystemError: boom"):
        load_recipe(str(tmp_path / "bad.py") + ":x")


@pytest.fixture(scope="module")
def typed_recipe() -> Recipe:
    import toolchain

    @toolchain.recipe(name="typed", version="1", seed=0)
    def typed_fn(
        pixels: object, rng: object, *, i: int = 1, f: float = 0.5, b: bool = False, s: str = "x"
    ) -> object:
        return pixels

    return typed_fn


pairs = st.lists(
    st.one_of(
        st.text(max_size=30),
        st.builds(
            lambda k, v: f"{k}={v}",
            st.sampled_from(["i", "f", "b", "s", "zz", " i", ""]),
            st.one_of(
                st.text(max_size=30),
                st.sampled_from(
                    [
                        "1e999",
                        "-1e999",
                        "nan",
                        "inf",
                        "9" * 5000,
                        "0x10",
                        "1_000",
                        " 7 ",
                        "true",
                        "",
                        "\x00",
                    ]
                ),
            ),
        ),
    ),
    max_size=5,
)


@HOSTILE
@given(pairs)
def test_parse_params_any_text(typed_recipe: Recipe, ps: list[str]) -> None:
    result = typed(lambda: parse_params(typed_recipe, ps), ParamError)
    if isinstance(result, dict):
        assert set(result) <= {"i", "f", "b", "s"}
        f = result.get("f", 0.0)
        assert isinstance(f, int | float | str) and f == f  # no NaN
        typed_recipe.with_params(result)  # and the recipe accepts what was parsed


@pytest.mark.parametrize(
    ("pair", "words"),
    [
        ("i", "expected name=value"),
        ("i=1\x00", "expected name=value"),
        ("zz=1", "has no parameter 'zz'"),
        ("i=x", "expected int"),
        ("i=" + "9" * 5000, "over the 4096 limit"),
        ("f=nan", "expected float"),
        ("f=1e999", "expected float"),
        ("b=maybe", "expected bool"),
    ],
)
def test_named_bad_params(typed_recipe: Recipe, pair: str, words: str) -> None:
    with pytest.raises(ParamError, match=words) as e:
        parse_params(typed_recipe, [pair])
    assert e.value.exit_code == ExitCode.BAD_INPUT


def test_param_given_twice(typed_recipe: Recipe) -> None:
    with pytest.raises(ParamError, match="given twice"):
        parse_params(typed_recipe, ["i=1", "i=2"])
