"""toolchain.cli.manifest: ``manifest merge`` of shard manifests, through Click."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.diff_cases import pinned, tiny_original
from toolchain.audit.verify import verify_benchmark
from toolchain.errors import ExitCode
from toolchain.run.generate import generate_benchmark


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A benchmark made as three shards (not yet merged), and the unsharded run's root."""
    work = tmp_path_factory.mktemp("merge")
    small_original = tiny_original(work / "original")
    with pinned():
        whole = generate_benchmark(small_original, "identity", work / "whole")
        for i in range(3):
            generate_benchmark(small_original, "identity", work / "bench", shard=f"{i}/3")
    return work / "bench", str(whole.root)


def test_merge_gives_the_unsharded_root_and_a_benchmark_that_verifies(
    shards: tuple[Path, str], tmp_path: Path
) -> None:
    bench, root = shards
    parts = sorted(bench.glob("manifest.shard-*-of-3.json"))
    assert len(parts) == 3
    out = tmp_path / "merged.json"
    r = run_cli("manifest", "merge", *reversed(parts), "--out", out, "--json")
    assert r.exit_code == ExitCode.OK, r.output
    assert json.loads(r.output) == {"out": str(out), "root": root, "samples": 5}
    r = run_cli("manifest", "merge", *parts, "--out", bench / "manifest.json")
    assert r.exit_code == ExitCode.OK, r.output
    assert f"merged 3 shards, 5 samples into {bench / 'manifest.json'}" in r.output
    assert f"root {root}" in r.output
    report = verify_benchmark(bench)
    assert report.ok and str(report.manifest.root) == root


def test_a_missing_shard_is_bad_input_and_nothing_is_written(
    shards: tuple[Path, str], tmp_path: Path
) -> None:
    bench, _ = shards
    parts = sorted(bench.glob("manifest.shard-*-of-3.json"))[:2]
    out = tmp_path / "merged.json"
    r = run_cli("manifest", "merge", *parts, "--out", out)
    assert r.exit_code == ExitCode.BAD_INPUT and "error: " in r.output
    assert not out.exists()


def test_merge_needs_shards_and_an_out_file(shards: tuple[Path, str], tmp_path: Path) -> None:
    bench, _ = shards
    r = run_cli("manifest", "merge", "--out", tmp_path / "m.json")
    assert r.exit_code == ExitCode.USAGE
    r = run_cli("manifest", "merge", bench / "manifest.shard-0-of-3.json")
    assert r.exit_code == ExitCode.USAGE and "--out" in r.output
