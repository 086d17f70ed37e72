"""toolchain.cli.verify: exit 0 only when bit-exact; the listing, --json, --manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli import run_cli
from tests.diff_cases import pinned
from toolchain.errors import ExitCode
from toolchain.run.generate import generate_benchmark


def test_verify_failure_exit_code_and_listing(identity_bench: Path, tmp_path: Path) -> None:
    out = Path(shutil.copytree(identity_bench, tmp_path / "out"))
    victim = sorted(out.rglob("*.png"))[0]
    victim.unlink()
    r = run_cli("verify", out)
    assert r.exit_code == 1
    assert "missing" in r.output and victim.name in r.output and "FAILED" in r.output


def test_a_bit_exact_benchmark_exits_0(identity_bench: Path) -> None:
    r = run_cli("verify", identity_bench)
    assert r.exit_code == ExitCode.OK, r.output
    assert "OK: 8 samples checked, 0 problems" in r.output and "root sha256:" in r.output
    doc = json.loads(run_cli("verify", identity_bench, "--json").output)
    assert doc["ok"] is True and doc["problems"] == [] and doc["root"].startswith("sha256:")


def test_a_changed_file_fails_with_its_path_in_json(identity_bench: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(identity_bench, tmp_path / "b"))
    a, b = sorted(copy.rglob("*.png"))[:2]
    a.write_bytes(b.read_bytes())
    r = run_cli("verify", copy, "--json")
    assert r.exit_code == ExitCode.CHECK_FAILED
    doc = json.loads(r.output)
    assert doc["ok"] is False
    assert [p["path"] for p in doc["problems"]] == [a.relative_to(copy).as_posix()]


def test_manifest_option_checks_against_another_manifest(
    identity_bench: Path, tmp_path: Path
) -> None:
    published = tmp_path / "published.json"
    shutil.copy(identity_bench / "manifest.json", published)
    r = run_cli("verify", identity_bench, "--manifest", published, "-q")
    assert r.exit_code == ExitCode.OK, r.output
    r = run_cli("verify", tmp_path, "--manifest", published, "-q")
    assert r.exit_code == ExitCode.CHECK_FAILED and "missing" in r.output


def test_signature_without_pubkey_is_a_usage_error(identity_bench: Path, tmp_path: Path) -> None:
    r = run_cli("verify", identity_bench, "--signature", tmp_path / "x.sig")
    assert r.exit_code == ExitCode.USAGE and "needs --pubkey" in r.output


def test_a_folder_without_manifest_is_bad_input(tmp_path: Path) -> None:
    r = run_cli("verify", tmp_path, "--json")
    assert r.exit_code == ExitCode.BAD_INPUT
    assert json.loads(r.stdout)["error"]["kind"] == "ManifestError"


def test_a_shard_says_it_is_a_shard(small_original: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    with pinned():
        generate_benchmark(small_original, "identity", out, shard="0/2")
    (shard,) = out.glob("manifest.shard-*.json")
    r = run_cli("verify", out, "--manifest", shard)
    assert "this is shard 0/2: merge the shards to verify the whole" in r.output
