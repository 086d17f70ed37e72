"""Slurm, for real: `jobs slurm` array jobs on a private one-node cluster (.ci/slurm.sh).

The cluster (munged, slurmctld, slurmd) is started once for this module and
stopped by pid afterwards; without Slurm or root the cluster tests skip, unless
BENCHMARK_REGEN_REQUIRE_SLURM=1. The native script is also run without Slurm,
task by task, so its shell is tested everywhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.clusters import SlurmCluster, cli_env, slurm_cluster
from tests.conftest import REQUIRE_DOCKER
from toolchain._internal import safefs
from toolchain.audit.verify import verify_benchmark
from toolchain.cli import cli
from toolchain.run.generate import generate_benchmark
from toolchain.run.shard import Shard

try:  # the id -> output path rule moved to toolchain.model.layout on main; drop the fallback then
    from toolchain.model.layout import output_path_for
except ImportError:  # pragma: no cover
    from toolchain.codec.encode import output_path_for  # type: ignore[attr-defined,no-redef]

pytestmark = pytest.mark.slow

IMAGE = os.environ.get("BENCHMARK_REGEN_TEST_IMAGE", "benchmark-regen:latest")
FAST = 2  # PGD steps: a whole run of the eight photographs takes about a second
SLOW = 15  # enough steps that a shard is still running when it is cancelled
RUNTIMES = ["none", pytest.param("docker", marks=pytest.mark.docker)]
# A container start copies the image on the vfs storage driver (CI): fewer, longer tasks.
SHARDS = {"none": 3, "docker": 2}
WAIT = {"none": 300.0, "docker": 900.0}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def local_root(small_original: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The unsharded run's root, made here (the manifest format may change)."""
    out = tmp_path_factory.mktemp("local") / "bench"
    result = generate_benchmark(small_original, "adversarial", out, params={"steps": FAST})
    return str(result.root)


def _ids(original: Path) -> list[str]:
    return sorted(p.relative_to(original).as_posix() for p in original.rglob("*") if p.is_file())


def _image_available() -> None:
    """Skip (or, when CI requires Docker, fail) without the pinned image."""
    try:
        found = subprocess.run(
            ["docker", "image", "inspect", IMAGE], capture_output=True, timeout=60
        ).returncode == 0  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        found = False
    if not found:
        reason = f"the image {IMAGE} is not there (benchmark-regen image build)"
        if REQUIRE_DOCKER:
            pytest.fail(f"BENCHMARK_REGEN_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)


def _write_script(
    runtime: str, original: Path, out: Path, script: Path, shards: int, steps: int
) -> None:
    """`jobs slurm` for `generate --shard`, the paths as the job sees them."""
    inside = (Path("/original"), Path("/out")) if runtime == "docker" else (original, out)
    mounts = ["--original", str(original)] if runtime == "docker" else []
    r = CliRunner().invoke(cli, [
        "jobs", "slurm", "--name", "regen", "--shards", str(shards), "--runtime", runtime,
        "--image", IMAGE, *mounts, "--out", str(out), "--write", str(script), "--",
        "generate", "--recipe", "adversarial", "--param", f"steps={steps}",
        "--original", str(inside[0]), "--out", str(inside[1]), "-q",
    ])  # fmt: skip
    assert r.exit_code == 0, r.output


def _merge(out: Path, shards: int) -> str:
    files = [str(out / f"manifest.shard-{i}-of-{shards}.json") for i in range(shards)]
    r = CliRunner().invoke(
        cli, ["manifest", "merge", *files, "--out", str(out / "manifest.json"), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert verify_benchmark(out).ok
    return str(json.loads(r.output)["root"])


def test_the_native_script_runs_task_by_task_without_slurm(
    small_original: Path, tmp_path: Path, local_root: str
) -> None:
    """The shell of `--runtime none` itself, as Slurm would run it: one task per index."""
    out, script = tmp_path / "out", tmp_path / "regen.sbatch"
    _write_script("none", small_original, out, script, shards=3, steps=FAST)
    for i in (2, 0, 1):
        proc = subprocess.run(
            ["bash", str(script)], env=cli_env(SLURM_ARRAY_TASK_ID=str(i)), cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert (out / f"manifest.shard-{i}-of-3.json").exists()
    assert not (out / "manifest.json").exists()
    proc = subprocess.run(
        ["bash", str(script), "merge"], env=cli_env(), cwd=tmp_path, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert verify_benchmark(out).ok
    assert str(verify_benchmark(out).manifest.root) == local_root


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_slurm_array_then_merge_equals_the_unsharded_root(
    slurm: SlurmCluster, small_original: Path, tmp_path: Path, local_root: str, runtime: str
) -> None:
    if runtime == "docker":
        _image_available()
    out, script = tmp_path / "out", tmp_path / "regen.sbatch"
    out.mkdir()
    shards = SHARDS[runtime]
    _write_script(runtime, small_original, out, script, shards=shards, steps=FAST)
    job = slurm.sbatch(str(script), cwd=tmp_path)
    states = slurm.wait(job, tasks=shards, timeout=WAIT[runtime])
    assert sorted(states) == [f"{job}_{i}" for i in range(shards)]
    for task_id, task in states.items():
        log = tmp_path / f"regen-{task_id}.log"
        assert task.state == "COMPLETED", f"{task_id}: {task}\n{log.read_text()}"
    assert not (out / "manifest.json").exists()  # only the merge makes the benchmark
    assert _merge(out, shards) == local_root


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_cancelled_task_resubmitted_resumes_to_the_same_root(
    slurm: SlurmCluster, small_original: Path, tmp_path: Path, runtime: str
) -> None:
    if runtime == "docker":
        _image_available()
    clean = generate_benchmark(
        small_original, "adversarial", tmp_path / "clean", params={"steps": SLOW}, workers=2
    )
    out, script = tmp_path / "out", tmp_path / "regen.sbatch"
    out.mkdir()
    shards = SHARDS[runtime]
    _write_script(runtime, small_original, out, script, shards=shards, steps=SLOW)
    # Cancel the shard with the most samples, once it has written some but not all.
    members = {
        i: [
            output_path_for(s)
            for s in _ids(small_original)
            if Shard(index=i, count=shards).contains(s)
        ]
        for i in range(shards)
    }
    victim = max(members, key=lambda i: len(members[i]))
    job = slurm.sbatch(str(script), cwd=tmp_path)
    task = f"{job}_{victim}"
    slurm.wait_state(task, {"RUNNING"}, timeout=WAIT[runtime])
    end = time.monotonic() + WAIT[runtime]
    while not any((out / p).exists() for p in members[victim]):
        assert time.monotonic() < end, "the shard wrote nothing in time"
        time.sleep(0.05)
    slurm.run(["scancel", task], cwd=tmp_path)
    assert slurm.wait_state(task, {"CANCELLED"}, timeout=60).state == "CANCELLED"
    if runtime == "docker":  # the task's trap killed its container: it must stop now
        name = f"regen-{slurm.own_job_id(task)}"
        end = time.monotonic() + 60
        while name in subprocess.run(
            ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True,
            timeout=60,
        ).stdout.split():  # fmt: skip
            assert time.monotonic() < end, f"container {name} still runs after scancel"
            time.sleep(0.5)
    assert not (out / f"manifest.shard-{victim}-of-{shards}.json").exists(), (
        f"shard {victim} finished before the cancel landed; raise SLOW"
    )
    kept = {p: (out / p).stat().st_ino for p in members[victim] if (out / p).exists()}
    slurm.wait(job, tasks=shards, timeout=WAIT[runtime])
    again = slurm.sbatch(f"--array={victim}", str(script), cwd=tmp_path)
    states = slurm.wait(again, tasks=1, timeout=WAIT[runtime])
    assert [s.state for s in states.values()] == ["COMPLETED"], states
    # Resumed, not redone: a sample finished before the cancel is still the same file.
    assert any((out / p).stat().st_ino == ino for p, ino in kept.items()), kept
    assert _merge(out, shards) == str(clean.root)


def _submit(
    slurm: SlurmCluster, cwd: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toolchain", "jobs", "slurm", *args],
        env=slurm.env(), cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _generate(original: Path | str, out: Path, steps: int) -> list[str]:
    return ["generate", "--recipe", "adversarial", "--param", f"steps={steps}",
            "--original", str(original), "--out", str(out), "-q"]  # fmt: skip


def test_submit_and_wait_merges_and_prints_the_root(
    slurm: SlurmCluster, small_original: Path, tmp_path: Path, local_root: str
) -> None:
    out = tmp_path / "out"
    proc = _submit(
        slurm, tmp_path, "--name", "regen", "--shards", "2", "--runtime", "none", "--out",
        str(out), "--write", str(tmp_path / "regen.sbatch"), "--submit", "--wait",
        "--timeout", "240", "--json", "--", *_generate(small_original, out, FAST),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["root"] == local_root and report["samples"] == 8
    assert report["tasks"] == "0-1"
    assert verify_benchmark(out).ok


def test_a_failed_shard_stops_the_wait_and_nothing_is_merged(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    out, missing = tmp_path / "out", tmp_path / "no-such-original"
    proc = _submit(
        slurm, tmp_path, "--name", "regen", "--shards", "2", "--runtime", "none", "--out",
        str(out), "--write", str(tmp_path / "regen.sbatch"), "--submit", "--wait",
        "--timeout", "120", "--", *_generate(missing, out, FAST),
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    assert "Slurm shard task(s)" in proc.stderr and "no manifest.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    # The wait stops at the first failed task: the other may not have failed yet (on a
    # loaded machine it starts later), so the hint names the one or both that had.
    rerun = re.search(r"--submit --tasks ([0-9,]+) --after (\d+)", proc.stderr)
    assert rerun is not None, proc.stderr
    tasks, job = rerun.group(1).split(","), rerun.group(2)
    assert tasks in (["0"], ["1"], ["0", "1"]), proc.stderr
    assert all(f"{job}_{t} " in proc.stderr for t in tasks), proc.stderr
    assert not (out / "manifest.json").exists()


def test_a_wait_that_times_out_names_slurm_and_leaves_nothing_merged(
    slurm: SlurmCluster, small_original: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = _submit(
        slurm, tmp_path, "--name", "regen", "--shards", "2", "--runtime", "none", "--out",
        str(out), "--write", str(tmp_path / "regen.sbatch"), "--submit", "--wait",
        "--timeout", "2", "--json", "--", *_generate(small_original, out, SLOW),
    )  # fmt: skip
    try:
        assert proc.returncode == 4, proc.stderr
        error = json.loads(proc.stdout)["error"]
        assert error["kind"] == "ClusterError" and "did not finish within 2 s" in error["message"]
        assert "scancel" in error["hint"] and "Traceback" not in proc.stderr
        assert not (out / "manifest.json").exists()
    finally:
        for name in ("regen", "regen-merge"):
            slurm.run(["scancel", f"--name={name}"], cwd=tmp_path)


def test_a_resumed_shard_leaves_the_files_of_running_shards_alone(
    small_original: Path, tmp_path: Path
) -> None:
    """Every array task runs with --resume, and shards share OUT: a task that starts
    while another shard is writing must not delete that shard's in-flight temp file
    (`.tmp-<shard>-<random>-<name>`, docs/scale-out.md), or the other shard's rename fails."""
    out = tmp_path / "out"
    ids = _ids(small_original)
    other = next(s for s in ids if Shard(index=0, count=2).contains(s))
    target = out / output_path_for(other)
    # Shard 0 is "running": its process (this one) is alive, its temp file half-written.
    slug = Shard(index=0, count=2).slug
    inflight = target.with_name(f"{safefs.temp_prefix(slug)}{os.getpid():x}-{target.name}")
    inflight.parent.mkdir(parents=True)
    inflight.write_bytes(b"\x89PNG half")
    r = CliRunner().invoke(cli, [
        *_generate(small_original, out, FAST), "--shard", "1/2", "--resume",
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert inflight.exists(), "shard 1 deleted shard 0's in-flight file"
