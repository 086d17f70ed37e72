"""The CLI in-process (CliRunner): exit codes, messages, --json, --help, --version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_image
from toolchain.cli import cli


def test_version_and_help(runner: CliRunner) -> None:
    r = runner.invoke(cli, ["--version"])
    assert r.exit_code == 0 and "benchmark-regen, version" in r.output
    r = runner.invoke(cli, ["--help"])
    assert r.exit_code == 0 and "Examples:" in r.output and "Exit codes" in r.output
    for cmd in ("generate", "verify", "env", "demo"):
        r = runner.invoke(cli, [cmd, "--help"])
        assert r.exit_code == 0 and "Examples:" in r.output, cmd


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


def test_verify_failure_exit_code_and_listing(
    runner: CliRunner, small_original: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert (
        runner.invoke(
            cli,
            [
                "generate",
                "--recipe",
                "identity",
                "--original",
                str(small_original),
                "--out",
                str(out),
                "-q",
            ],
        ).exit_code
        == 0
    )
    victim = sorted(out.rglob("*.png"))[0]
    victim.unlink()
    r = runner.invoke(cli, ["verify", str(out)])
    assert r.exit_code == 1
    assert "missing" in r.output and victim.name in r.output and "FAILED" in r.output


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


def test_env_json_is_a_pinned_fingerprint(runner: CliRunner) -> None:
    r = runner.invoke(cli, ["env", "--json"])
    assert r.exit_code == 0
    fp = json.loads(r.output)
    assert fp["pinned"] == "true"
    assert fp["env.OPENBLAS_NUM_THREADS"] == "1" and fp["blas.threads"] == "1"
    assert fp["numpy.simd.in_use"] == ""
    for key in ("python", "numpy", "pillow", "pillow.jpg", "pillow.zlib", "blas.coretype"):
        assert fp[key]


def test_no_color_and_plain_output(runner: CliRunner, small_original: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        cli,
        [
            "generate",
            "--recipe",
            "identity",
            "--original",
            str(small_original),
            "--out",
            str(tmp_path / "o"),
        ],
        env={"NO_COLOR": "1"},
        color=True,
    )
    assert r.exit_code == 0 and "\x1b[" not in r.output and "root sha256:" in r.output


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
