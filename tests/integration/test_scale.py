"""Scale-out without losing a bit: shards, workers, Dask, kill -9 and Ctrl-C, resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.terminal import default_sigint
from tests.unit.test_run_generate import ADVERSARIAL_SMALL_STEPS2
from toolchain.audit.verify import verify_benchmark
from toolchain.cli import cli
from toolchain.run.generate import generate_benchmark

ARGS = ["--recipe", "adversarial", "--param", "steps=2"]


def _shards(runner: CliRunner, original: Path, out: Path, n: int, order: list[int]) -> str:
    for i in order:
        r = runner.invoke(
            cli,
            [
                "generate",
                *ARGS,
                "--original",
                str(original),
                "--out",
                str(out),
                "--shard",
                f"{i}/{n}",
                "-q",
            ],
        )
        assert r.exit_code == 0, r.output
    shard_files = [str(out / f"manifest.shard-{i}-of-{n}.json") for i in order]
    r = runner.invoke(
        cli, ["manifest", "merge", *shard_files, "--out", str(out / "manifest.json"), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert verify_benchmark(out).ok
    return str(json.loads(r.output)["root"])


def test_three_shards_merged_equal_the_unsharded_root(small_original: Path, tmp_path: Path) -> None:
    assert (
        _shards(CliRunner(), small_original, tmp_path / "o", 3, [0, 1, 2])
        == ADVERSARIAL_SMALL_STEPS2
    )


def test_seven_shards_merged_in_reverse_order(small_original: Path, tmp_path: Path) -> None:
    root = _shards(CliRunner(), small_original, tmp_path / "o", 7, list(reversed(range(7))))
    assert root == ADVERSARIAL_SMALL_STEPS2


def test_a_shard_alone_never_verifies_as_the_benchmark(
    small_original: Path, tmp_path: Path
) -> None:
    result = generate_benchmark(small_original, "identity", tmp_path / "o", shard="0/2")
    assert result.manifest.shard == "0/2"
    assert not (tmp_path / "o/manifest.json").exists()


def test_dask_local_cluster_with_two_workers(small_original: Path, tmp_path: Path) -> None:
    result = generate_benchmark(
        small_original,
        "adversarial",
        tmp_path / "o",
        params={"steps": 2},
        executor="dask",
        workers=2,
    )
    assert str(result.root) == ADVERSARIAL_SMALL_STEPS2
    assert result.manifest.fingerprint["pinned"] == "true"


def _start(
    original: Path, out: Path, *extra: str, command: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """``generate`` of the slow adversarial benchmark (or ``command``) into ``out``."""
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    slow = ["generate", "--recipe", "adversarial", "--param", f"steps={SLOW_STEPS}"]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolchain",
            *(slow if command is None else command),
            "--original",
            str(original),
            "--out",
            str(out),
            "--workers",
            "2",
            "--json",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=default_sigint,  # Ctrl-C must stop it, even in a background test run
    )


# Enough PGD steps that a run on the demo photos lasts long enough to be interrupted.
SLOW_STEPS = 40


def _wait_for_progress(out: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the run has written at least one sample (so the interrupt lands mid-run)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if any(out.rglob("*.png")):
            return
        time.sleep(0.05)


def _temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.startswith(".tmp-")]


@pytest.fixture(scope="module")
def slow_clean(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Path:
    """The demo photographs' adversarial benchmark at SLOW_STEPS, made without a stop."""
    out = tmp_path_factory.mktemp("slow") / "clean"
    generate_benchmark(demo_dir, "adversarial", out, workers=2, params={"steps": SLOW_STEPS})
    return out


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume(
    demo_dir: Path, slow_clean: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    rng = random.Random(20261123)
    kills = 0
    for trial in range(4):
        proc = _start(demo_dir, out, *(["--resume"] if trial else []))
        _wait_for_progress(out, proc)
        time.sleep(rng.uniform(0.0, 2.0))
        if proc.poll() is None:
            os.killpg(
                proc.pid, signal.SIGKILL
            )  # the whole group: parent and workers, like power loss
            kills += 1
        proc.wait()
        proc.communicate()
        if (out / "manifest.json").exists():
            break
        # Never anything that looks complete: no manifest while samples are missing.
        assert not (out / "manifest.json").exists()
    assert kills >= 1
    # A torn write and a corrupted finished file must not be trusted on resume.
    pngs = sorted(out.rglob("*.png"))
    if pngs:
        pngs[0].write_bytes(pngs[0].read_bytes()[:50])
    (out / ".tmp-99999-torn.png").write_bytes(b"\x89PNG partial")
    proc = _start(demo_dir, out, "--resume")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()
    assert (
        json.loads(stdout)["root"] == json.loads((slow_clean / "manifest.json").read_text())["root"]
    )
    assert not _temp_files(out)
    assert verify_benchmark(out).ok
    assert not (out / ".benchmark-regen").exists()


@pytest.mark.slow
def test_kill_9_during_diff_apply_then_resume(
    demo_dir: Path, slow_clean: Path, tmp_path: Path
) -> None:
    """Recipe entries make apply run the slow recipe, so kills land mid-run; a resumed
    apply keeps what the journal vouches for and writes the carried manifest."""
    diff = tmp_path / "slow.bdiff"
    made = subprocess.run(
        [sys.executable, "-m", "toolchain", "diff", "create", "--original", str(demo_dir),
         "--benchmark", str(slow_clean), "--out", str(diff), "--workers", "2", "-q"],
        capture_output=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr.decode()
    out = tmp_path / "killed"
    apply = ["diff", "apply", "--diff", str(diff)]
    rng = random.Random(20261207)
    kills = 0
    for trial in range(4):
        proc = _start(demo_dir, out, *(["--resume"] if trial else []), command=apply)
        _wait_for_progress(out, proc)
        time.sleep(rng.uniform(0.0, 2.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        proc.communicate()
        if (out / "manifest.json").exists():
            break
    assert kills >= 1
    pngs = sorted(out.rglob("*.png"))
    if pngs:  # a finished file cut short is made again, not trusted
        pngs[0].write_bytes(pngs[0].read_bytes()[:50])
    proc = _start(demo_dir, out, "--resume", command=apply)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()
    assert json.loads(stdout)["found"]["finished-before-resume"] > 0
    assert (out / "manifest.json").read_bytes() == (slow_clean / "manifest.json").read_bytes()
    assert not _temp_files(out)
    assert verify_benchmark(out).ok


def test_ctrl_c_exits_130_and_resumes(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    proc = _start(demo_dir, out)
    _wait_for_progress(out, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130, stderr.decode()
    assert b"--resume" in stderr and b"Traceback" not in stderr
    assert not (out / "manifest.json").exists()
    r = CliRunner().invoke(
        cli,
        [
            "generate",
            "--recipe",
            "adversarial",
            "--original",
            str(demo_dir),
            "--out",
            str(out),
            "-q",
        ],
    )
    assert r.exit_code == 4 and "interrupted run" in r.output
    proc = _start(demo_dir, out, "--resume")
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()
    assert verify_benchmark(out).ok


def test_resume_refuses_a_different_run(small_original: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / ".benchmark-regen").mkdir()
    (out / ".benchmark-regen/journal-all.jsonl").write_text(
        json.dumps(
            {"format": "benchmark-regen.journal/v1", "recipe": {}, "samples": 1, "shard": ""}
        )
        + "\n"
    )
    r = CliRunner().invoke(
        cli,
        [
            "generate",
            "--recipe",
            "identity",
            "--original",
            str(small_original),
            "--out",
            str(out),
            "--resume",
        ],
    )
    assert r.exit_code == 4 and "different run" in r.output
