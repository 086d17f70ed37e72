"""Recipe parameters have declared bounds: a negative sigma or steps=1e10 never runs.

``@toolchain.recipe(..., bounds={name: (low, high)})`` declares them; ``parse_params``
(the CLI's ``--param``) and ``Recipe.with_params`` (the Python API) both refuse a value
outside them, or of the wrong type, with a ParamError, before any sample is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import toolchain
from tests.conftest import make_image
from toolchain.cli import cli
from toolchain.errors import ExitCode, ParamError, RecipeError
from toolchain.recipes import load_recipe, parse_params
from toolchain.run.generate import generate_benchmark


@toolchain.recipe(
    name="bounded", version="1", seed=1, bounds={"steps": (1, 1000), "eps": (0.0, None)}
)
def bounded(pixels: Any, rng: Any, *, steps: int = 10, eps: float = 1.0, tag: str = "x") -> Any:
    return pixels


@pytest.mark.parametrize(
    ("pair", "match"),
    [
        ("steps=0", r"out of bounds: the recipe accepts 1 <= steps <= 1000"),
        ("steps=1001", "out of bounds"),
        ("steps=10000000000", "out of bounds"),
        ("steps=1e10", "expected int"),  # not an int: refused by the parser already
        ("eps=-0.5", r"accepts 0.0 <= eps <= inf"),
        ("eps=-1e-300", "out of bounds"),
    ],
)
def test_parse_params_refuses_values_outside_the_bounds(pair: str, match: str) -> None:
    with pytest.raises(ParamError, match=match) as e:
        parse_params(bounded, [pair])
    assert e.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"steps": 10**10}, "out of bounds"),
        ({"steps": 1e10}, "expected int"),  # the API may pass any Python value
        ({"steps": True}, "expected int"),
        ({"steps": "5"}, "expected int"),
        ({"eps": float("nan")}, "out of bounds"),
        ({"eps": -1}, "out of bounds"),
        ({"eps": "1.0"}, "expected number"),
    ],
)
def test_with_params_refuses_what_the_cli_would(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ParamError, match=match):
        bounded.with_params(overrides)


def test_values_inside_the_bounds_pass_and_unbounded_parameters_are_free() -> None:
    assert parse_params(bounded, ["steps=1", "eps=1e9", "tag=anything"]) == {
        "steps": 1,
        "eps": 1e9,
        "tag": "anything",
    }
    assert bounded.with_params({"steps": 1000, "eps": 0}).effective_params["steps"] == 1000


def test_gaussian_noise_declares_sigma_bounds(tmp_path: Path) -> None:
    g = load_recipe("gaussian-noise")
    assert g.bounds == {"sigma": (0.0, 255.0)}
    for bad in ("sigma=-1", "sigma=-0.001", "sigma=255.5", "sigma=1e300"):
        with pytest.raises(ParamError, match="out of bounds"):
            parse_params(g, [bad])
    assert parse_params(g, ["sigma=0"]) == {"sigma": 0.0}
    # Through the Python API: refused before the original is even listed.
    with pytest.raises(ParamError, match=r"sigma=-3.0 of recipe 'gaussian-noise'"):
        generate_benchmark(tmp_path / "does-not-exist", "gaussian-noise", tmp_path / "o",
                           params={"sigma": -3.0})  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_the_cli_refuses_a_negative_sigma_as_a_usage_error(tmp_path: Path) -> None:
    make_image(tmp_path / "orig" / "a.png")
    r = CliRunner().invoke(
        cli,
        ["generate", "--recipe", "gaussian-noise", "--param", "sigma=-2",
         "--original", str(tmp_path / "orig"), "--out", str(tmp_path / "o"), "-q"],
    )  # fmt: skip
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "sigma=-2.0" in r.output and "0.0 <= sigma <= 255.0" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()


def test_every_numeric_builtin_parameter_is_bounded() -> None:
    for name in ("gaussian-noise", "identity", "adversarial"):
        r = load_recipe(name)
        numeric = {k for k, v in r.defaults.items() if isinstance(v, int | float)}
        assert numeric <= set(r.bounds), f"{name}: unbounded {sorted(numeric - set(r.bounds))}"
    adversarial = load_recipe("adversarial")
    with pytest.raises(ParamError, match="out of bounds"):
        adversarial.with_params({"steps": 10**10})
    with pytest.raises(ParamError, match="out of bounds"):
        adversarial.with_params({"eps": -1})


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        ({"nope": (0, 1)}, "unknown parameter 'nope'"),
        ({"tag": (0, 1)}, "non-numeric parameter 'tag'"),
        ({"steps": (5, 1)}, r"empty \(5 > 1\)"),
        ({"steps": (20, None)}, "default steps=10 is outside its bounds"),
        ({"steps": (0, float("nan"))}, "numbers or None"),
        ({"steps": [0, 1]}, r"must be \(low, high\)"),
    ],
)
def test_a_bad_declaration_is_a_recipe_error(bounds: Any, match: str) -> None:
    with pytest.raises(RecipeError, match=match):

        @toolchain.recipe(name="bad", version="1", seed=1, bounds=bounds)
        def bad(pixels: Any, rng: Any, *, steps: int = 10, tag: str = "x") -> Any:
            return pixels
