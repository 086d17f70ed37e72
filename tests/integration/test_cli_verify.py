"""toolchain.cli.verify: exit 0 only when bit-exact; the listing, --json, --manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.diff_cases import pinned
from toolchain.cli import cli
from toolchain.errors import ExitCode
from toolchain.run.generate import generate_benchmark


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


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, small_original: Path) -> Path:
    out = tmp_path_factory.mktemp("verify") / "bench"
    with pinned():  # in this process: no worker pool to spawn
        generate_benchmark(small_original, "identity", out)
    return out


def test_a_bit_exact_benchmark_exits_0(runner: CliRunner, bench: Path) -> None:
    r = runner.invoke(cli, ["verify", str(bench)])
    assert r.exit_code == ExitCode.OK, r.output
    assert "OK: 8 samples checked, 0 problems" in r.output and "root sha256:" in r.output
    doc = json.loads(runner.invoke(cli, ["verify", str(bench), "--json"]).output)
    assert doc["ok"] is True and doc["problems"] == [] and doc["root"].startswith("sha256:")


def test_a_changed_file_fails_with_its_path_in_json(
    runner: CliRunner, bench: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(bench, tmp_path / "b"))
    a, b = sorted(copy.rglob("*.png"))[:2]
    a.write_bytes(b.read_bytes())
    r = runner.invoke(cli, ["verify", str(copy), "--json"])
    assert r.exit_code == ExitCode.CHECK_FAILED
    doc = json.loads(r.output)
    assert doc["ok"] is False
    assert [p["path"] for p in doc["problems"]] == [a.relative_to(copy).as_posix()]


def test_manifest_option_checks_against_another_manifest(
    runner: CliRunner, bench: Path, tmp_path: Path
) -> None:
    published = tmp_path / "published.json"
    shutil.copy(bench / "manifest.json", published)
    r = runner.invoke(cli, ["verify", str(bench), "--manifest", str(published), "-q"])
    assert r.exit_code == ExitCode.OK, r.output
    r = runner.invoke(cli, ["verify", str(tmp_path), "--manifest", str(published), "-q"])
    assert r.exit_code == ExitCode.CHECK_FAILED and "missing" in r.output


def test_signature_without_pubkey_is_a_usage_error(
    runner: CliRunner, bench: Path, tmp_path: Path
) -> None:
    r = runner.invoke(cli, ["verify", str(bench), "--signature", str(tmp_path / "x.sig")])
    assert r.exit_code == ExitCode.USAGE and "needs --pubkey" in r.output


def test_a_folder_without_manifest_is_bad_input(runner: CliRunner, tmp_path: Path) -> None:
    r = runner.invoke(cli, ["verify", str(tmp_path), "--json"])
    assert r.exit_code == ExitCode.BAD_INPUT
    assert json.loads(r.stdout)["error"]["kind"] == "ManifestError"


def test_a_shard_says_it_is_a_shard(
    runner: CliRunner, small_original: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    with pinned():
        generate_benchmark(small_original, "identity", out, shard="0/2")
    (shard,) = out.glob("manifest.shard-*.json")
    r = runner.invoke(cli, ["verify", str(out), "--manifest", str(shard)])
    assert "this is shard 0/2: merge the shards to verify the whole" in r.output
