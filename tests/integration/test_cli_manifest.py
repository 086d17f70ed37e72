"""toolchain.cli.manifest: ``manifest merge`` of shard manifests, through Click."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli import generate_args, no_traceback, run_cli
from tests.diff_cases import pinned, tiny_original
from toolchain.audit.verify import verify_benchmark
from toolchain.errors import ExitCode, Interrupted
from toolchain.model.manifest import Manifest, load_manifest, write_manifest
from toolchain.run.fingerprint import fingerprint_digest
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


# -- Real shards of real photographs, one made on another numpy -----------------------------

ANOTHER_NUMPY = {
    "numpy": "1.26.4",
    "numpy.simd.baseline": "SSE SSE2 SSE3",
    "blas.vendor": "openblas64 0.3.23.dev",
    "blas.config": "OpenBLAS 0.3.23.dev DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64",
}
"""The fields numpy 1.26.4 (with the OpenBLAS its wheels ship) writes differently."""


@pytest.fixture(scope="module")
def photo_shards(small_original: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight real photographs' identity benchmark made as 4 shards and as 2 (not merged)."""
    out = tmp_path_factory.mktemp("photo-shards") / "bench"
    with pinned():
        for n in (4, 2):
            for i in range(n):
                generate_benchmark(small_original, "identity", out, shard=f"{i}/{n}")
    return out


def _foreign(bench: Path, index: int, count: int, dest: Path) -> Path:
    """Shard ``index/count`` as another numpy would have written it (root recomputed)."""
    m = load_manifest(bench / f"manifest.shard-{index}-of-{count}.json")
    foreign = Manifest.build(
        recipe=m.recipe, entries=m.entries, fingerprint={**m.fingerprint, **ANOTHER_NUMPY},
        provenance=m.provenance, encoder=m.encoder, columns=m.columns, shard=m.shard,
    )  # fmt: skip
    dest.mkdir(parents=True, exist_ok=True)
    write_manifest(foreign, dest / f"manifest.shard-{index}-of-{count}.json")
    return dest / f"manifest.shard-{index}-of-{count}.json"


def test_the_odd_shard_given_first_is_named_with_its_values(
    photo_shards: Path, tmp_path: Path
) -> None:
    odd = _foreign(photo_shards, 0, 4, tmp_path / "elsewhere")
    rest = [photo_shards / f"manifest.shard-{i}-of-4.json" for i in (1, 2, 3)]
    out = tmp_path / "merged" / "manifest.json"
    r = no_traceback(run_cli("manifest", "merge", odd, *rest, "--out", out))
    assert r.exit_code == ExitCode.ENVIRONMENT, r.output
    numpy_here = load_manifest(rest[0]).fingerprint["numpy"]
    assert (
        "error: shard 0/4 was made in another environment than the other 3 (1/4, 2/4, 3/4): "
        in r.stderr
    )
    assert f"numpy '1.26.4' (the others: '{numpy_here}')" in r.stderr
    assert "hint: regenerate shard 0/4 where " in r.stderr and "container" not in r.stderr
    assert not out.exists()
    r = run_cli("manifest", "merge", odd, *rest, "--out", out, "--json")
    error = json.loads(r.stdout)["error"]
    assert error["kind"] == "DeterminismError" and error["exit_code"] == 4


def test_two_shards_that_disagree_name_both_and_the_one_this_machine_matches(
    photo_shards: Path, tmp_path: Path
) -> None:
    odd = _foreign(photo_shards, 0, 2, tmp_path / "elsewhere")
    r = no_traceback(run_cli("manifest", "merge", odd, photo_shards / "manifest.shard-1-of-2.json",
                             "--out", tmp_path / "m.json"))  # fmt: skip
    assert r.exit_code == ExitCode.ENVIRONMENT, r.output
    text = r.stderr.replace("\n", " ")
    assert "no environment is shared by a majority of the 2 shards: shard 0/2 has " in text
    assert "numpy '1.26.4'" in text and "; shard 1/2 has " in text
    # This machine (a pinned process here, as `benchmark-regen env` measures) has numpy and
    # the BLAS build of shard 1/2, which was made here.
    machine = re.search(r"; this machine has ([^\n]*)", r.stderr)
    assert machine is not None, r.stderr
    assert re.fullmatch(
        r"the values of shard 1/2|.*\bnumpy, numpy\.simd\.baseline as in shard 1/2.*",
        machine.group(1),
    ), machine.group(1)
    assert "as in shard 0/2" not in machine.group(1)


def test_merge_and_resume_exit_alike_for_the_same_mismatch(
    small_original: Path, photo_shards: Path, tmp_path: Path
) -> None:
    """Made on another numpy: a shard at merge time, an interrupted run at --resume."""
    odd = _foreign(photo_shards, 0, 4, tmp_path / "elsewhere")
    rest = [photo_shards / f"manifest.shard-{i}-of-4.json" for i in (1, 2, 3)]
    merge = run_cli("manifest", "merge", odd, *rest, "--out", tmp_path / "m.json")

    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    out = tmp_path / "interrupted"
    with pinned(), pytest.raises(Interrupted):
        generate_benchmark(small_original, "identity", out, progress=stop)
    journal = out / ".benchmark-regen" / "journal-all.jsonl"
    foreign = {**load_manifest(odd).fingerprint, **ANOTHER_NUMPY, "pinned": "true"}
    lines = [
        json.dumps({"fingerprint": fingerprint_digest(foreign)}) if '"fingerprint"' in ln else ln
        for ln in journal.read_text().splitlines()
    ]
    journal.write_text("\n".join(lines) + "\n")
    resume = no_traceback(run_cli(*generate_args(small_original, out, resume=True), pinned=True))
    assert "the interrupted run was made in a different environment" in resume.output
    assert merge.exit_code == resume.exit_code == ExitCode.ENVIRONMENT


def test_a_shard_manifest_that_is_not_here_is_bad_input_not_usage(
    photo_shards: Path, tmp_path: Path
) -> None:
    """What the merge job of a cluster without shared storage meets: exit 3, not 2."""
    parts = [photo_shards / f"manifest.shard-{i}-of-4.json" for i in range(4)]
    parts[2] = tmp_path / "node-local" / parts[2].name
    r = no_traceback(run_cli("manifest", "merge", *parts, "--out", tmp_path / "m.json"))
    assert r.exit_code == ExitCode.BAD_INPUT, r.output
    assert "1 of the 4 shard manifests are not on " in r.stderr and str(parts[2]) in r.stderr
    assert "filesystem this one shares" in r.stderr
