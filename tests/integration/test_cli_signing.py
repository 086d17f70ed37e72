"""CLI: `key generate`, `sign`, and `verify --pubkey`."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from tests.cli import no_traceback, run_cli
from toolchain.errors import ExitCode


@pytest.fixture
def bench(tmp_path: Path, identity_bench: Path) -> Path:
    return Path(shutil.copytree(identity_bench, tmp_path / "bench"))


def test_key_sign_verify_round_trip(tmp_path: Path, bench: Path) -> None:
    r = run_cli("key", "generate", "--out", tmp_path / "pub.key", "--json")
    assert r.exit_code == ExitCode.OK, r.output
    info = json.loads(r.output)
    assert info["keyid"].startswith("sha256:")
    assert stat.S_IMODE((tmp_path / "pub.key").stat().st_mode) == 0o600
    r = run_cli("sign", bench / "manifest.json", "--key", tmp_path / "pub.key")
    assert r.exit_code == ExitCode.OK, r.output
    assert (bench / "manifest.sig").is_file()
    r = run_cli("verify", bench, "--pubkey", tmp_path / "pub.key.pub", "-q")
    assert r.exit_code == ExitCode.OK, r.output
    assert f"signature: valid, by {info['keyid']}" in r.output
    r = run_cli("verify", bench, "--pubkey", tmp_path / "pub.key.pub", "--json")
    assert json.loads(r.output)["signature"]["ok"] is True


def test_sign_to_explicit_out(tmp_path: Path, bench: Path) -> None:
    run_cli("key", "generate", "--out", tmp_path / "k")
    r = run_cli("sign", bench / "manifest.json", "--key", tmp_path / "k",
                "--out", tmp_path / "elsewhere.sig")  # fmt: skip
    assert r.exit_code == ExitCode.OK, r.output
    r = run_cli("verify", bench, "--pubkey", tmp_path / "k.pub",
                "--signature", tmp_path / "elsewhere.sig", "-q")  # fmt: skip
    assert r.exit_code == ExitCode.OK, r.output


def test_verify_with_pubkey_needs_a_signature(tmp_path: Path, bench: Path) -> None:
    run_cli("key", "generate", "--out", tmp_path / "k")
    r = no_traceback(run_cli("verify", bench, "--pubkey", tmp_path / "k.pub", "-q"))
    assert r.exit_code == ExitCode.CHECK_FAILED
    assert "no signature at" in r.output and "FAILED" in r.output


def test_verify_rejects_another_key_and_a_tampered_manifest(tmp_path: Path, bench: Path) -> None:
    run_cli("key", "generate", "--out", tmp_path / "a")
    run_cli("key", "generate", "--out", tmp_path / "b")
    run_cli("sign", bench / "manifest.json", "--key", tmp_path / "a")
    r = run_cli("verify", bench, "--pubkey", tmp_path / "b.pub", "-q")
    assert r.exit_code == ExitCode.CHECK_FAILED
    assert "signed by another key" in r.output
    m = bench / "manifest.json"
    m.write_bytes(m.read_bytes().replace(b'"original_name": "', b'"original_name": "X', 1))
    r = no_traceback(run_cli("verify", bench, "--pubkey", tmp_path / "a.pub", "-q"))
    assert r.exit_code == ExitCode.CHECK_FAILED
    assert "does not match the manifest" in r.output


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
def test_cli_errors(tmp_path: Path, bench: Path, args: list[str], code: int, words: str) -> None:
    run_cli("key", "generate", "--out", tmp_path / "k")
    argv = [a.format(m=bench / "manifest.json", t=tmp_path, b=bench) for a in args]
    r = no_traceback(run_cli(*argv))
    assert r.exit_code == code, r.output
    assert words in r.output
