"""CLI: `key generate`, `sign`, and `verify --pubkey`."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_image
from toolchain.cli import cli
from toolchain.errors import ExitCode


@pytest.fixture(scope="module")
def bench_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    orig = tmp_path_factory.mktemp("orig")
    for i in range(3):
        make_image(orig / f"{i}.png", seed=i)
    out = tmp_path_factory.mktemp("bench") / "b"
    result = CliRunner().invoke(
        cli, ["generate", "--recipe", "identity", "--original", str(orig), "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def bench(tmp_path: Path, bench_src: Path) -> Path:
    return Path(shutil.copytree(bench_src, tmp_path / "bench"))


def _no_traceback(result: object) -> None:
    assert isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]


def test_key_sign_verify_round_trip(runner: CliRunner, tmp_path: Path, bench: Path) -> None:
    r = runner.invoke(cli, ["key", "generate", "--out", str(tmp_path / "pub.key"), "--json"])
    assert r.exit_code == ExitCode.OK, r.output
    info = json.loads(r.output)
    assert info["keyid"].startswith("sha256:")
    assert stat.S_IMODE((tmp_path / "pub.key").stat().st_mode) == 0o600
    r = runner.invoke(
        cli, ["sign", str(bench / "manifest.json"), "--key", str(tmp_path / "pub.key")]
    )
    assert r.exit_code == ExitCode.OK, r.output
    assert (bench / "manifest.sig").is_file()
    r = runner.invoke(cli, ["verify", str(bench), "--pubkey", str(tmp_path / "pub.key.pub"), "-q"])
    assert r.exit_code == ExitCode.OK, r.output
    assert f"signature: valid, by {info['keyid']}" in r.output
    r = runner.invoke(
        cli, ["verify", str(bench), "--pubkey", str(tmp_path / "pub.key.pub"), "--json"]
    )
    assert json.loads(r.output)["signature"]["ok"] is True


def test_sign_to_explicit_out(runner: CliRunner, tmp_path: Path, bench: Path) -> None:
    runner.invoke(cli, ["key", "generate", "--out", str(tmp_path / "k")])
    r = runner.invoke(
        cli,
        [
            "sign",
            str(bench / "manifest.json"),
            "--key",
            str(tmp_path / "k"),
            "--out",
            str(tmp_path / "elsewhere.sig"),
        ],
    )
    assert r.exit_code == ExitCode.OK, r.output
    r = runner.invoke(
        cli,
        [
            "verify",
            str(bench),
            "--pubkey",
            str(tmp_path / "k.pub"),
            "--signature",
            str(tmp_path / "elsewhere.sig"),
            "-q",
        ],
    )
    assert r.exit_code == ExitCode.OK, r.output


def test_verify_with_pubkey_needs_a_signature(
    runner: CliRunner, tmp_path: Path, bench: Path
) -> None:
    runner.invoke(cli, ["key", "generate", "--out", str(tmp_path / "k")])
    r = runner.invoke(cli, ["verify", str(bench), "--pubkey", str(tmp_path / "k.pub"), "-q"])
    assert r.exit_code == ExitCode.CHECK_FAILED
    assert "no signature at" in r.output and "FAILED" in r.output
    _no_traceback(r)


def test_verify_rejects_another_key_and_a_tampered_manifest(
    runner: CliRunner, tmp_path: Path, bench: Path
) -> None:
    runner.invoke(cli, ["key", "generate", "--out", str(tmp_path / "a")])
    runner.invoke(cli, ["key", "generate", "--out", str(tmp_path / "b")])
    runner.invoke(cli, ["sign", str(bench / "manifest.json"), "--key", str(tmp_path / "a")])
    r = runner.invoke(cli, ["verify", str(bench), "--pubkey", str(tmp_path / "b.pub"), "-q"])
    assert r.exit_code == ExitCode.CHECK_FAILED
    assert "signed by another key" in r.output
    m = bench / "manifest.json"
    m.write_bytes(m.read_bytes().replace(b'"original_name": "', b'"original_name": "X', 1))
    r = runner.invoke(cli, ["verify", str(bench), "--pubkey", str(tmp_path / "a.pub"), "-q"])
    assert r.exit_code == ExitCode.CHECK_FAILED
    assert "does not match the manifest" in r.output
    _no_traceback(r)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["sign", "{m}", "--key", "{t}/missing"], ExitCode.BAD_INPUT, "does not exist"),
        (["sign", "{t}/missing.json", "--key", "{t}/k"], ExitCode.BAD_INPUT, "no manifest"),
        (["verify", "{b}", "--pubkey", "{t}/k"], ExitCode.BAD_INPUT, "not a PEM public key"),
        (["verify", "{b}", "--signature", "{t}/x.sig"], ExitCode.USAGE, "needs --pubkey"),
        (["key", "generate", "--out", "{t}/k"], ExitCode.ENVIRONMENT, "already exists"),
    ],
)
def test_cli_errors(
    runner: CliRunner, tmp_path: Path, bench: Path, args: list[str], code: int, words: str
) -> None:
    runner.invoke(cli, ["key", "generate", "--out", str(tmp_path / "k")])
    argv = [a.format(m=bench / "manifest.json", t=tmp_path, b=bench) for a in args]
    r = runner.invoke(cli, argv)
    assert r.exit_code == code, r.output
    assert words in r.output
    _no_traceback(r)
