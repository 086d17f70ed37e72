"""toolchain.cli.manifest: ``manifest merge`` of shard manifests, through Click."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.diff_cases import pinned, tiny_original
from toolchain.audit.verify import verify_benchmark
from toolchain.cli import cli
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
    runner: CliRunner, shards: tuple[Path, str], tmp_path: Path
) -> None:
    bench, root = shards
    parts = sorted(bench.glob("manifest.shard-*-of-3.json"))
    assert len(parts) == 3
    out = tmp_path / "merged.json"
    r = runner.invoke(cli, ["manifest", "merge", *map(str, reversed(parts)), "--out", str(out),
                            "--json"])  # fmt: skip
    assert r.exit_code == ExitCode.OK, r.output
    assert json.loads(r.output) == {"out": str(out), "root": root, "samples": 5}
    r = runner.invoke(cli, ["manifest", "merge", *map(str, parts), "--out",
                            str(bench / "manifest.json")])  # fmt: skip
    assert r.exit_code == ExitCode.OK, r.output
    assert f"merged 3 shards, 5 samples into {bench / 'manifest.json'}" in r.output
    assert f"root {root}" in r.output
    report = verify_benchmark(bench)
    assert report.ok and str(report.manifest.root) == root


def test_a_missing_shard_is_bad_input_and_nothing_is_written(
    runner: CliRunner, shards: tuple[Path, str], tmp_path: Path
) -> None:
    bench, _ = shards
    parts = sorted(bench.glob("manifest.shard-*-of-3.json"))[:2]
    out = tmp_path / "merged.json"
    r = runner.invoke(cli, ["manifest", "merge", *map(str, parts), "--out", str(out)])
    assert r.exit_code == ExitCode.BAD_INPUT and "error: " in r.output
    assert not out.exists()


def test_merge_needs_shards_and_an_out_file(
    runner: CliRunner, shards: tuple[Path, str], tmp_path: Path
) -> None:
    bench, _ = shards
    r = runner.invoke(cli, ["manifest", "merge", "--out", str(tmp_path / "m.json")])
    assert r.exit_code == ExitCode.USAGE
    r = runner.invoke(cli, ["manifest", "merge", str(bench / "manifest.shard-0-of-3.json")])
    assert r.exit_code == ExitCode.USAGE and "--out" in r.output
