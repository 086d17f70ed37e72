"""toolchain.cli.generate: ``generate`` through Click: --json, exit codes, messages, options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import generate_args, no_traceback, run_cli
from tests.conftest import make_image
from tests.diff_cases import tiny_original
from toolchain.errors import ExitCode
from toolchain.model.manifest import load_manifest


def test_generate_then_verify_json(small_original: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli(*generate_args(small_original, out, "gaussian-noise", param="sigma=4", json=True))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["root"].startswith("sha256:") and doc["samples"] == 4
    assert doc["recipe"]["params"] == {"sigma": "4.0"}
    r = run_cli("verify", out, "--json")
    assert r.exit_code == 0
    assert json.loads(r.output)["ok"] is True and json.loads(r.output)["root"] == doc["root"]


def test_undecodable_input_exit_code_3(tmp_path: Path) -> None:
    data = make_image(tmp_path / "orig/cat/x.jpg")
    (tmp_path / "orig/cat/x.jpg").write_bytes(data[:100])
    r = no_traceback(run_cli(*generate_args(tmp_path / "orig", tmp_path / "out")))
    assert r.exit_code == 3
    assert "sample 'cat/x.jpg'" in r.output and "truncated or corrupt" in r.output
    assert not (tmp_path / "out/manifest.json").exists()


@pytest.mark.parametrize(
    ("recipe", "param", "code", "words"),
    [
        ("nope", None, 3, "unknown recipe"),
        ("adversarial", "eps", 2, "name=value"),
        ("adversarial", "zzz=1", 2, "no parameter 'zzz'"),
        ("adversarial", "eps=big", 2, "expected int"),
    ],
)
def test_bad_arguments(
    small_original: Path, tmp_path: Path, recipe: str, param: str | None, code: int, words: str
) -> None:
    r = no_traceback(run_cli(*generate_args(small_original, tmp_path / "o", recipe, param=param)))
    assert r.exit_code == code, r.output
    assert words in r.output


def test_generate_in_container_forwards_the_same_command(
    small_original: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import toolchain.cli.generate as cc

    seen: dict[str, object] = {}

    def fake(
        argv: list[str], *, original: Path, out: Path, image: str, diff: Path | None = None
    ) -> int:
        seen.update(argv=argv, original=original, out=out, image=image)
        return 7

    monkeypatch.setattr(cc, "run_in_pinned_image", fake)
    out = tmp_path / "o"
    r = run_cli(*generate_args(small_original, out, "adversarial", param="eps=4", workers=2,
                               in_container=True, json=True))  # fmt: skip
    assert r.exit_code == 7  # the container's exit code is ours
    argv = seen["argv"]
    assert isinstance(argv, list) and argv[0] == "generate"
    assert "--in-container" not in argv and "--image" not in argv
    assert argv[argv.index("--param") + 1] == "eps=4" and "--json" in argv
    assert seen["original"] == small_original and seen["out"] == out
    r = run_cli(*generate_args(small_original, out, "x.py:r", in_container=True))
    assert r.exit_code == 2 and "built-in recipe" in r.output


def test_a_non_empty_out_needs_overwrite(tmp_path: Path) -> None:
    args = generate_args(tiny_original(tmp_path / "orig"), tmp_path / "out")
    assert run_cli(*args, "-q", pinned=True).exit_code == 0
    r = run_cli(*args, "-q", pinned=True)
    assert r.exit_code == ExitCode.ENVIRONMENT and "--overwrite" in r.output
    r = run_cli(*args, "--overwrite", "--json", pinned=True)
    assert r.exit_code == 0 and json.loads(r.output)["samples"] == 5


def test_a_shard_writes_its_manifest_and_says_so(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "orig")
    out = tmp_path / "out"
    r = run_cli(*generate_args(original, out, shard="1/2"), pinned=True)
    assert r.exit_code == 0, r.output
    assert "(shard 1/2; merge the shards for the whole benchmark)" in r.output
    assert (out / "manifest.shard-1-of-2.json").is_file() and not (out / "manifest.json").exists()
    r = run_cli(*generate_args(original, tmp_path / "o2", shard="2/2"), pinned=True)
    assert r.exit_code == ExitCode.USAGE and "--shard" in r.output


def test_provenance_options_are_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    terms = "https://example.org/terms"
    r = run_cli(*generate_args(tiny_original(tmp_path / "orig"), out, quiet=True,
                               original_name="Tiny 1.0", original_terms=terms,
                               recipe_license="MIT"), pinned=True)  # fmt: skip
    assert r.exit_code == 0, r.output
    p = load_manifest(out / "manifest.json").provenance
    assert (p.original_name, p.original_terms, p.recipe_license) == (
        "Tiny 1.0", terms, "MIT",
    )  # fmt: skip
    assert (p.samples_used, p.samples_in_original) == (5, 5)


def test_the_summary_says_what_the_recipe_selected(small_original: Path, tmp_path: Path) -> None:
    out = tmp_path / "noise"
    r = run_cli(*generate_args(small_original, out, "gaussian-noise", quiet=True), pinned=True)
    assert r.exit_code == 0, r.output
    assert f"generated 4 of 8 samples (select=1/2) of gaussian-noise 1.0 into {out}\n" in r.stdout
    p = load_manifest(out / "manifest.json").provenance
    assert (p.samples_used, p.samples_in_original) == (4, 8)
    out = tmp_path / "identity"
    r = run_cli(*generate_args(small_original, out, "identity", quiet=True), pinned=True)
    assert r.exit_code == 0, r.output
    assert f"generated 8 samples of identity 1.0 into {out}\n" in r.stdout


def test_a_subset_shard_says_both(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "orig")
    recipe = tmp_path / "three.py"
    recipe.write_text(
        "import toolchain\n\n"
        "@toolchain.recipe(name='three', version='2', seed=9, select=3)\n"
        "def three(pixels, rng):\n    return pixels\n"
    )
    out = tmp_path / "out"
    r = run_cli(*generate_args(original, out, f"{recipe}:three", shard="0/2"), pinned=True)
    assert r.exit_code == 0, r.output
    made = len(load_manifest(out / "manifest.shard-0-of-2.json").entries)
    assert 0 < made < 3
    assert (
        f"generated {made} of 5 samples (select=3) of three 2 into {out} "
        "(shard 0/2; merge the shards for the whole benchmark)" in r.stdout
    )


NOT_PORTABLE = """\
import numpy as np
import toolchain


@toolchain.recipe(name="my-blur", version="1", seed=3)
def my_blur(pixels, rng, *, sigma=1.5):
    weights = np.exp(-np.arange(3) / sigma)
    return np.clip(pixels.astype(np.int16) + int(weights.sum()), 0, 255).astype(np.uint8)
"""


@pytest.mark.parametrize("flags", [{}, {"quiet": True}, {"json": True}], ids=["-", "quiet", "json"])
def test_a_recipe_that_is_not_portable_is_run_with_a_warning(
    tmp_path: Path, flags: dict[str, bool]
) -> None:
    recipe = tmp_path / "my_recipes.py"
    recipe.write_text(NOT_PORTABLE)
    out = tmp_path / "out"
    # By its declared name, as `recipes` and the manifest call it.
    r = run_cli(*generate_args(tiny_original(tmp_path / "orig"), out, f"{recipe}:my-blur",
                               **flags), pinned=True)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (out / "manifest.json").is_file()
    lines = r.stderr.splitlines()
    assert lines[0].startswith("warning: recipe my-blur uses 2 construct(s) that are not portable")
    assert lines[1:3] == [
        f"  {recipe}:7:15: libm: np.exp(...)",
        f"  {recipe}:8:50: float-reduction: weights.sum(...)",
    ]
    assert lines[3] == f"  why and what to do: benchmark-regen recipes --check {recipe}"
    assert "warning" not in r.stdout
    if flags.get("json"):
        assert json.loads(r.stdout)["samples"] == 5


def test_the_builtin_recipes_run_without_a_warning(small_original: Path, tmp_path: Path) -> None:
    for name in ("identity", "gaussian-noise", "adversarial"):
        r = run_cli(*generate_args(small_original, tmp_path / name, name, quiet=True,
                                   shard="0/8"), pinned=True)  # fmt: skip
        assert r.exit_code == 0, r.output
        assert r.stderr == "", name
