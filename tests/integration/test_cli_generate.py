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
