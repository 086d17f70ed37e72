"""recipes --check: every finding kind, what stays quiet, the opt-out, errors, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolchain.cli.main import cli
from toolchain.errors import RecipeError
from toolchain.recipes import BUILTIN_RECIPES, load_recipe, recipe
from toolchain.recipes.check import (
    Kind,
    check_file,
    check_source,
    recipe_file,
    recipe_findings,
)

ROOT = Path(__file__).resolve().parents[2]

HEADER = """\
import math
import random

import numpy as np
import toolchain
from PIL import Image


@toolchain.recipe(name="r", version="1", seed=1)
def r(pixels, rng, *, eps=8, gamma=2.2):
    x = pixels.astype(np.float32)
    ints = pixels.astype(np.int64)
"""


def _found(body: str) -> list[tuple[int, str]]:
    """(line within ``body``, kind) of every open finding in HEADER + body."""
    source = HEADER + textwrap.indent(textwrap.dedent(body), "    ")
    offset = HEADER.count("\n")
    return [(f.line - offset, f.kind.value) for f in check_source(source).findings]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("y = x @ x.T\n", "blas"),
        ("x @= x\n", "blas"),
        ("y = np.dot(x, x)\n", "blas"),
        ("y = x.dot(x)\n", "blas"),
        ("y = np.einsum('ij,jk', x, x)\n", "blas"),
        ("y = np.tensordot(x, x, 1)\n", "blas"),
        ("y = np.inner(x, x)\n", "blas"),
        ("y = np.linalg.norm(x)\n", "blas"),
        ("y = np.fft.rfft2(x)\n", "fft"),
        ("y = np.exp(x)\n", "libm"),
        ("y = np.tanh(x)\n", "libm"),
        ("y = math.log(2.0)\n", "libm"),
        ("y = np.power(x, gamma)\n", "libm"),
        ("y = x ** gamma\n", "libm"),
        ("y = x ** 0.5\n", "libm"),
        ("y = pow(x, 1 / 2.2)\n", "libm"),
        ("y = x.sum()\n", "float-reduction"),
        ("y = np.mean(x)\n", "float-reduction"),
        ("y = ints.sum(dtype=np.float32)\n", "float-reduction"),
        ("y = np.add.reduce(x)\n", "float-reduction"),
        ("y = rng.normal(0, 1, x.shape)\n", "generator"),
        ("y = rng.integers(0, 3, x.shape)\n", "generator"),
        ("y = np.random.default_rng(1).uniform()\n", "generator"),
        ("g = np.random.default_rng(1)\ny = g.choice(3)\n", "generator"),
        ("y = np.random.normal(size=3)\n", "global-random"),
        ("y = np.random.choice(3, p=[0.2, 0.3, 0.5])\n", "global-random"),
        ("s = np.random.RandomState(1)\ny = s.standard_normal(3)\n", "global-random"),
        ("y = random.gauss(0, 1)\n", "global-random"),
        ("y = random.randint(0, 9)\n", "global-random"),
        ("y = Image.fromarray(pixels).resize((8, 8))\n", "resize"),
        ("y = Image.fromarray(pixels).thumbnail((8, 8))\n", "resize"),
    ],
)
def test_each_kind_is_found_on_its_line(body: str, kind: str) -> None:
    last = body.count("\n")
    assert _found(body) == [(last, kind)]


@pytest.mark.parametrize(
    "body",
    [
        "y = ints @ ints.T\n",  # integer products: numpy uses no BLAS, exact
        "y = np.dot(ints, ints)\n",
        "y = pixels.astype(np.int64).sum(axis=0)\n",
        "y = x.sum(axis=0, dtype=np.int64)\n",
        "y = np.mean(ints)\n",
        "y = np.sqrt(x)\n",  # correctly rounded (IEEE 754)
        "y = x ** 2 + x * x - x / 3\n",  # + - * / are correctly rounded
        "y = ints ** eps\n",
        "y = np.power(ints, 3)\n",
        "y = np.clip(ints + (ints >> 2), 0, 255).astype(np.uint8)\n",
        "y = rng.bit_generator.random_raw(5) % np.uint64(3)\n",
        "y = np.random.randint(0, 9, size=3)\n",  # legacy stream, NEP 19-frozen, exact
        "y = np.random.rand(3)\n",
        "y = random.random()\n",  # the one method Python guarantees
        "random.seed(3)\n",
        "y = Image.fromarray(pixels).resize((8, 8), resample=Image.Resampling.BICUBIC)\n",
        "y = Image.fromarray(pixels).resize((8, 8), Image.Resampling.NEAREST)\n",
        "n = 0\nfor i in range(3):\n    n += i\ny = np.arange(n).sum()\n",
    ],
)
def test_portable_constructs_are_quiet(body: str) -> None:
    assert _found(body) == []


def test_integer_inference_follows_annotations_aliases_and_returns() -> None:
    source = textwrap.dedent(
        """\
        from typing import TYPE_CHECKING
        import numpy as np
        if TYPE_CHECKING:
            import numpy.typing as npt
            Ints = npt.NDArray[np.int64]

        def weights() -> tuple[Ints, Ints]:
            ...

        def f(shape: tuple[int, ...], a: Ints, b: npt.NDArray[np.float64]):
            w1, w2 = weights()
            n = np.prod(shape)
            y = a @ w1 @ w2
            return b.sum() + n
        """
    )
    assert [(f.line, f.kind) for f in check_source(source).findings] == [(14, Kind.FLOAT_REDUCTION)]


def test_a_name_assigned_a_float_anywhere_is_not_an_integer() -> None:
    assert _found("z = ints\nif eps:\n    z = x\ny = z.sum()\n") == [(4, "float-reduction")]


def test_findings_say_where_what_why_and_what_to_do() -> None:
    report = check_source(HEADER + "    y = np.exp(x)\n", path="my_recipe.py")
    (f,) = report.findings
    assert f.location == "my_recipe.py:13:9" and f.construct == "np.exp(...)"
    assert "correctly rounded" in f.why and "integer" in f.fix
    assert not report.ok and report.exempted == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.line = 1  # type: ignore[misc]
    doc = report.to_json()
    assert doc["ok"] is False and doc["findings"][0]["kind"] == "libm"  # type: ignore[index]


def test_opt_out_with_a_reason_exempts_its_construct() -> None:
    body = "y = x @ x.T  # portable: integer-valued, sums < 2**24\nz = x @ x.T\n"
    source = HEADER + textwrap.indent(body, "    ")
    report = check_source(source)
    assert [(f.line, f.kind) for f in report.findings] == [(14, Kind.BLAS)]
    (e,) = report.exempted
    assert e.line == 13 and e.exemption == "integer-valued, sums < 2**24"


def test_opt_out_on_any_line_of_a_multiline_construct() -> None:
    body = "y = np.dot(\n    x,\n    x,  # portable: reasoned\n)\n"
    report = check_source(HEADER + textwrap.indent(body, "    "))
    assert report.ok and [e.line for e in report.exempted] == [13]


def test_opt_out_without_a_reason_or_without_a_finding_is_a_finding() -> None:
    body = "y = x @ x.T  # portable:\nz = ints + 1  # portable: nothing to exempt here\n"
    found = _found(body)
    assert found == [(1, "opt-out"), (1, "blas"), (2, "opt-out")]  # by line, then column
    report = check_source(HEADER + textwrap.indent(body, "    "))
    whys = [f.why for f in report.findings if f.kind is Kind.OPT_OUT]
    assert "without a reason" in whys[0] and "exempts nothing" in whys[1]


def test_a_file_that_does_not_parse_raises_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\n\ndef f(:\n    pass\n")
    with pytest.raises(RecipeError, match=r"bad\.py:3:\d+: .*does not parse"):
        check_file(bad)
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"x = '\xe9'\n")
    with pytest.raises(RecipeError, match="not UTF-8"):
        check_file(latin)


def test_every_builtin_recipe_passes_and_adversarial_has_its_reasoned_exemption() -> None:
    for name in BUILTIN_RECIPES:
        report = check_file(recipe_file(name))
        assert report.ok, (name, [str(f) for f in report.findings])
    (e,) = check_file(recipe_file("adversarial")).exempted
    assert e.kind is Kind.BLAS and e.construct == "a @ b" and "2**24" in (e.exemption or "")


def test_the_v1_float32_recipe_that_drifted_on_arm64_is_flagged() -> None:
    report = check_file(ROOT / "tests" / "float_adversarial.py")
    kinds = sorted({f.kind for f in report.findings}, key=lambda k: k.value)
    assert kinds == [Kind.BLAS, Kind.FLOAT_REDUCTION]
    blas = [f.construct for f in report.findings if f.kind is Kind.BLAS]
    assert blas == ["x @ w1", "hidden.sum(axis=0, dtype=np.float32) @ w2", "d_hidden @ w1.T"]


def test_a_loaded_recipe_gets_the_findings_of_its_file() -> None:
    path = ROOT / "tests" / "float_adversarial.py"
    findings = recipe_findings(load_recipe(f"{path}:float_adversarial"))
    assert findings == check_file(path).findings and len(findings) == 4
    assert findings[0].path == str(path) and findings[0].line == 83
    for name in BUILTIN_RECIPES:  # adversarial's one construct is exempted with its reason
        assert recipe_findings(load_recipe(name)) == (), name


def test_a_recipe_without_a_checkable_file_has_no_findings(tmp_path: Path) -> None:
    """The findings are advice before a run: what cannot be checked holds nothing up."""
    namespace: dict[str, object] = {"recipe": recipe}
    exec(  # no file behind this code
        "import numpy as np\n"
        "@recipe(name='nofile', version='1', seed=1)\n"
        "def f(pixels, rng):\n    return np.exp(pixels)\n",
        namespace,
    )
    assert recipe_findings(namespace["f"]) == ()  # type: ignore[arg-type]


def test_a_file_is_read_in_the_encoding_it_declares(tmp_path: Path) -> None:
    latin = tmp_path / "latin.py"
    latin.write_bytes(
        b"# -*- coding: latin-1 -*-\nimport numpy as np\nimport toolchain\n# caf\xe9\n"
        b"@toolchain.recipe(name='latin', version='1', seed=1)\n"
        b"def f(pixels, rng):\n    return np.exp(pixels)\n"
    )
    (finding,) = recipe_findings(load_recipe(f"{latin}:f"))
    assert (finding.line, finding.kind, finding.construct) == (7, Kind.LIBM, "np.exp(...)")
    latin.write_bytes(b"# -*- coding: latin-99 -*-\nx = 1\n")
    with pytest.raises(RecipeError, match="declares no encoding Python knows"):
        check_file(latin)
    latin.write_bytes(b"# coding: utf-8\nx = '\xe9'\n")
    with pytest.raises(RecipeError, match=r"not UTF-8 \(byte 21\)"):
        check_file(latin)


# -- the CLI -----------------------------------------------------------------------------


def test_cli_exit_codes_and_text(tmp_path: Path) -> None:
    runner = CliRunner()
    clean = tmp_path / "clean.py"
    clean.write_text("import numpy as np\n\ndef f(a):\n    return np.sqrt(a)\n")
    r = runner.invoke(cli, ["recipes", "--check", str(clean)])
    assert r.exit_code == 0 and "no portability findings" in r.output
    r = runner.invoke(cli, ["recipes", "--check", "adversarial"])
    assert r.exit_code == 0 and "exempt: exact integer GEMM" in r.output
    float_recipe = ROOT / "tests" / "float_adversarial.py"
    r = runner.invoke(cli, ["recipes", "--check", f"{float_recipe}:float_adversarial"])
    assert r.exit_code == 1
    assert "float_adversarial.py:83:11: blas: x @ w1" in r.output and "why:" in r.output
    assert "4 finding(s)" in r.output
    r = runner.invoke(cli, ["recipes", "--check", f"{float_recipe}:adversarial-float32"])
    assert r.exit_code == 1 and "4 finding(s)" in r.output  # by the name it declares
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    r = runner.invoke(cli, ["recipes", "--check", str(bad)])
    assert r.exit_code == 3 and "does not parse" in r.output
    r = runner.invoke(cli, ["recipes", "--check", str(tmp_path / "missing.py")])
    assert r.exit_code == 2 and "neither a file nor a built-in recipe" in r.output


def test_cli_json(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["recipes", "--check", str(ROOT / "tests" / "float_adversarial.py"),
                            "--json"])  # fmt: skip
    assert r.exit_code == 1
    doc = json.loads(r.output)
    assert doc["ok"] is False and doc["exempted"] == []
    assert {f["kind"] for f in doc["findings"]} == {"blas", "float-reduction"}
    first = doc["findings"][0]
    assert set(first) == {"column", "construct", "exemption", "fix", "kind", "line", "path",
                          "why"}  # fmt: skip
    r = runner.invoke(cli, ["recipes", "--check", "adversarial", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["ok"] is True
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    r = runner.invoke(cli, ["recipes", "--check", str(bad), "--json"])
    assert r.exit_code == 3 and json.loads(r.stdout)["error"]["kind"] == "RecipeError"


def test_listing_is_unchanged_without_check() -> None:
    r = CliRunner().invoke(cli, ["recipes", "--json"])
    assert r.exit_code == 0
    assert {row["name"]: row["version"] for row in json.loads(r.output)} == {
        "adversarial": "2.0",
        "gaussian-noise": "1.0",
        "identity": "1.0",
    }
