"""Dask as deployed: `dask scheduler` and pinned `benchmark-regen dask-worker` processes.

Each cluster is a scheduler and workers started as separate process groups on
127.0.0.1 (random free ports) and stopped by process group when the test ends,
also when it fails. The runs use `--executor dask --scheduler tcp://127.0.0.1:PORT`
and must give the local run's root.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clusters import DaskCluster, cli_env, dask_cluster
from toolchain.audit.verify import verify_benchmark
from toolchain.diff import create_diff
from toolchain.run.determinism import MARKER, PINNED, pinned_environ
from toolchain.run.generate import generate_benchmark

pytestmark = pytest.mark.slow

FAST = 2
SLOW = 15  # PGD steps: long enough that a worker can be killed mid-run
RUN_TIMEOUT = 300  # no run here may take longer: a hung executor fails the test


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    with dask_cluster(tmp_path_factory.mktemp("dask")) as c:
        yield c


@pytest.fixture(scope="module")
def local(small_original: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local pool's benchmark (and root) of the same run, made here."""
    out = tmp_path_factory.mktemp("local") / "bench"
    generate_benchmark(small_original, "adversarial", out, params={"steps": FAST}, workers=2)
    return out


def _root(bench: Path) -> str:
    report = verify_benchmark(bench)
    assert report.ok
    return str(report.manifest.root)


def _cli(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toolchain", *args],
        env=cli_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(kv.split("=", 1) for kv in raw.decode().split("\0") if "=" in kv)


def test_dask_worker_command_starts_pinned_worker_processes(cluster: DaskCluster) -> None:
    """`benchmark-regen dask-worker`: the nanny and the worker process it spawns run pinned."""
    expected = pinned_environ(cli_env())
    for proc in cluster.workers.values():
        for pid in [proc.pid, *_children(proc.pid)]:
            env = _environ(pid)
            assert env[MARKER] == expected[MARKER], pid
            assert {k: env.get(k, "") for k in PINNED} == {k: s.value for k, s in PINNED.items()}
        assert _children(proc.pid), "the nanny runs its worker in a child process"


def test_generate_on_the_cluster_equals_the_local_root(
    cluster: DaskCluster, small_original: Path, tmp_path: Path, local: Path
) -> None:
    result = generate_benchmark(
        small_original, "adversarial", tmp_path / "out", params={"steps": FAST},
        executor="dask", scheduler=cluster.address,
    )  # fmt: skip
    assert str(result.root) == _root(local)
    assert result.manifest.fingerprint["pinned"] == "true"
    # The CLI too, in a fresh process.
    proc = _cli("generate", "--recipe", "adversarial", "--param", f"steps={FAST}", "--original",
                str(small_original), "--out", str(tmp_path / "cli"), "--executor", "dask",
                "--scheduler", cluster.address, "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["root"] == _root(local)


def test_diff_apply_on_the_cluster_equals_the_local_root(
    cluster: DaskCluster, small_original: Path, tmp_path: Path, local: Path
) -> None:
    diff = tmp_path / "bench.bdiff"
    create_diff(small_original, local, diff)
    proc = _cli("diff", "apply", "--original", str(small_original), "--diff", str(diff), "--out",
                str(tmp_path / "out"), "--executor", "dask", "--scheduler", cluster.address,
                "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _root(tmp_path / "out") == _root(local)


def _wait_for_progress(out: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not any(out.rglob("*.png")):
        assert proc.poll() is None, "the run ended before it wrote a sample"
        assert time.monotonic() < end, "the run wrote nothing within the time limit"
        time.sleep(0.05)


def test_a_worker_killed_mid_run_never_costs_the_root(small_original: Path, tmp_path: Path) -> None:
    """SIGKILL one worker (nanny and worker: a lost node) while it holds tasks: the run
    finishes on the other with the same root, or stops resumable, never with a wrong
    manifest."""
    clean = generate_benchmark(
        small_original, "adversarial", tmp_path / "clean", params={"steps": SLOW}, workers=2
    )
    out = tmp_path / "out"
    with dask_cluster(tmp_path / "dask") as c:
        argv = ["generate", "--recipe", "adversarial", "--param", f"steps={SLOW}", "--original",
                str(small_original), "--out", str(out), "--executor", "dask", "--scheduler",
                c.address, "--json"]  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "toolchain", *argv], env=cli_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            _wait_for_progress(out, proc)
            c.kill_worker("w1")
            stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.communicate()
        if proc.returncode != 0:
            # Stopped: resumable, nothing that looks finished, and --resume completes.
            assert proc.returncode == 4, stderr
            assert "Traceback" not in stderr and "--resume" in stderr, stderr
            assert not (out / "manifest.json").exists()
            again = _cli(*argv, "--resume")
            assert again.returncode == 0, again.stderr
            stdout = again.stdout
    assert json.loads(stdout)["root"] == str(clean.root)
    assert _root(out) == str(clean.root)


def test_a_worker_in_another_environment_is_refused(small_original: Path, tmp_path: Path) -> None:
    odd = {"OPENBLAS_CORETYPE": "Sandybridge"}
    with dask_cluster(tmp_path / "dask", ["w0"], odd_workers={"odd": odd}) as c:
        proc = _cli("generate", "--recipe", "adversarial", "--param", f"steps={FAST}",
                    "--original", str(small_original), "--out", str(tmp_path / "out"),
                    "--executor", "dask", "--scheduler", c.address)  # fmt: skip
        odd_address = c.worker_address("odd")
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert odd_address in proc.stderr  # names the worker ...
    assert "OPENBLAS_CORETYPE" in proc.stderr  # ... and the differing fingerprint field
    assert not (tmp_path / "out" / "manifest.json").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_scheduler_that_does_not_answer_is_an_environment_error(
    small_original: Path, tmp_path: Path
) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    proc = _cli("generate", "--recipe", "adversarial", "--param", f"steps={FAST}", "--original",
                str(small_original), "--out", str(tmp_path / "out"), "--executor", "dask",
                "--scheduler", address, timeout=120)  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Dask" in proc.stderr and address in proc.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()
