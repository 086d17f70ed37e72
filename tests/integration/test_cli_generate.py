"""toolchain.cli.generate: ``generate`` through Click: --json, exit codes, messages, options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.conftest import make_image
from tests.diff_cases import pinned, tiny_original
from toolchain.cli import cli
from toolchain.errors import ExitCode
from toolchain.model.manifest import load_manifest


def test_generate_then_verify_json(runner: CliRunner, small_original: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = runner.invoke(
        cli,
        [
            "generate",
            "--recipe",
            "gaussian-noise",
            "--original",
            str(small_original),
            "--out",
            str(out),
            "--param",
            "sigma=4",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["root"].startswith("sha256:") and doc["samples"] == 4
    assert doc["recipe"]["params"] == {"sigma": "4.0"}
    r = runner.invoke(cli, ["verify", str(out), "--json"])
    assert r.exit_code == 0
    assert json.loads(r.output)["ok"] is True and json.loads(r.output)["root"] == doc["root"]


def test_undecodable_input_exit_code_3(runner: CliRunner, tmp_path: Path) -> None:
    data = make_image(tmp_path / "orig/cat/x.jpg")
    (tmp_path / "orig/cat/x.jpg").write_bytes(data[:100])
    r = runner.invoke(
        cli,
        [
            "generate",
            "--recipe",
            "identity",
            "--original",
            str(tmp_path / "orig"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert r.exit_code == 3
    assert "sample 'cat/x.jpg'" in r.output and "truncated or corrupt" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "out/manifest.json").exists()


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--recipe", "nope"], 3, "unknown recipe"),
        (["--recipe", "adversarial", "--param", "eps"], 2, "name=value"),
        (["--recipe", "adversarial", "--param", "zzz=1"], 2, "no parameter 'zzz'"),
        (["--recipe", "adversarial", "--param", "eps=big"], 2, "expected int"),
    ],
)
def test_bad_arguments(
    runner: CliRunner, small_original: Path, tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    r = runner.invoke(
        cli, ["generate", *args, "--original", str(small_original), "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == code, r.output
    assert words in r.output and "Traceback" not in r.output


def test_generate_in_container_forwards_the_same_command(
    runner: CliRunner, small_original: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
    r = runner.invoke(
        cli,
        [
            "generate",
            "--recipe",
            "adversarial",
            "--original",
            str(small_original),
            "--out",
            str(out),
            "--param",
            "eps=4",
            "--workers",
            "2",
            "--in-container",
            "--json",
        ],
    )
    assert r.exit_code == 7  # the container's exit code is ours
    argv = seen["argv"]
    assert isinstance(argv, list) and argv[0] == "generate"
    assert "--in-container" not in argv and "--image" not in argv
    assert argv[argv.index("--param") + 1] == "eps=4" and "--json" in argv
    assert seen["original"] == small_original and seen["out"] == out
    r = runner.invoke(
        cli,
        [
            "generate",
            "--recipe",
            "x.py:r",
            "--original",
            str(small_original),
            "--out",
            str(out),
            "--in-container",
        ],
    )
    assert r.exit_code == 2 and "built-in recipe" in r.output


def _generate(runner: CliRunner, original: Path, out: Path, *extra: str) -> Result:
    with pinned():  # in this process: no worker pool to spawn
        return runner.invoke(cli, ["generate", "--recipe", "identity", "--original",
                                   str(original), "--out", str(out), *extra])  # fmt: skip


def test_a_non_empty_out_needs_overwrite(runner: CliRunner, tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "orig")
    out = tmp_path / "out"
    assert _generate(runner, original, out, "-q").exit_code == 0
    r = _generate(runner, original, out, "-q")
    assert r.exit_code == ExitCode.ENVIRONMENT and "--overwrite" in r.output
    r = _generate(runner, original, out, "--overwrite", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["samples"] == 5


def test_a_shard_writes_its_manifest_and_says_so(runner: CliRunner, tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "orig")
    out = tmp_path / "out"
    r = _generate(runner, original, out, "--shard", "1/2")
    assert r.exit_code == 0, r.output
    assert "(shard 1/2; merge the shards for the whole benchmark)" in r.output
    assert (out / "manifest.shard-1-of-2.json").is_file() and not (out / "manifest.json").exists()
    r = _generate(runner, original, tmp_path / "o2", "--shard", "2/2")
    assert r.exit_code == ExitCode.USAGE and "--shard" in r.output


def test_provenance_options_are_recorded(runner: CliRunner, tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "orig")
    out = tmp_path / "out"
    terms = "https://example.org/terms"
    r = _generate(runner, original, out, "-q", "--original-name", "Tiny 1.0",
                  "--original-terms", terms, "--recipe-license", "MIT")  # fmt: skip
    assert r.exit_code == 0, r.output
    p = load_manifest(out / "manifest.json").provenance
    assert (p.original_name, p.original_terms, p.recipe_license) == (
        "Tiny 1.0", terms, "MIT",
    )  # fmt: skip
    assert (p.samples_used, p.samples_in_original) == (5, 5)
