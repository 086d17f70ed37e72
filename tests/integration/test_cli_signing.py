"""CLI: `key generate`, `sign`, and `verify --pubkey`."""

from __future__ import annotations

import base64
import json
import os
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


def test_sign_out_replaces_only_a_signature(tmp_path: Path, bench: Path) -> None:
    """``sign --out notes.txt`` overwrote the user's notes: an existing --out must be one
    of our signatures (re-signing replaces it); anything else is refused, untouched."""
    run_cli("key", "generate", "--out", tmp_path / "k")
    manifest = bench / "manifest.json"
    sig = tmp_path / "bench.sig"
    assert run_cli("sign", manifest, "--key", tmp_path / "k", "--out", sig).exit_code == 0
    first = sig.read_bytes()
    sig.write_bytes(first.replace(b'"payload"', b' "payload"', 1))  # ours, reformatted
    r = run_cli("sign", manifest, "--key", tmp_path / "k", "--out", sig)
    assert r.exit_code == ExitCode.OK, r.output
    assert sig.read_bytes() == first
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    foreign = tmp_path / "other.sig"  # an in-toto envelope, but not about a manifest of ours
    doc = json.loads(first)
    statement = json.loads(base64.b64decode(doc["payload"]))
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    doc["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    foreign.write_text(json.dumps(doc))
    link = tmp_path / "link.sig"
    link.symlink_to(notes)
    dangling = tmp_path / "dangling.sig"
    dangling.symlink_to(tmp_path / "nowhere")
    fifo = tmp_path / "fifo.sig"
    os.mkfifo(fifo)
    before = {p: p.read_bytes() for p in (notes, foreign)}
    for target, why in [
        (notes, "not valid JSON"),
        (foreign, "not about a benchmark-regen manifest"),
        (link, "not valid JSON"),
        (dangling, "No such file"),
        (fifo, "not a regular file"),
    ]:
        r = no_traceback(run_cli("sign", manifest, "--key", tmp_path / "k", "--out", target))
        assert r.exit_code == ExitCode.ENVIRONMENT, r.output
        assert "is not a signature" in r.output and why in r.output, r.output
        assert "refusing to overwrite" in r.output
    assert {p: p.read_bytes() for p in (notes, foreign)} == before
    assert link.is_symlink() and dangling.is_symlink() and stat.S_ISFIFO(fifo.lstat().st_mode)
    # A link to one of our signatures is replaced by the new signature, never written through.
    link.unlink()
    link.symlink_to(sig)
    r = run_cli("sign", manifest, "--key", tmp_path / "k", "--out", link)
    assert r.exit_code == ExitCode.OK, r.output
    assert not link.is_symlink() and sig.read_bytes() == first == link.read_bytes()
