"""Real clusters for the integration tests: a one-node Slurm, a Dask scheduler with workers.

Each helper is a context manager that starts real daemons as separate processes,
records their pids, and on exit (also when the test failed) stops exactly those
processes: TERM, then KILL after a grace period, by pid or by the process group
of a child started in its own session. Every wait is bounded, so a hung cluster
fails the test instead of hanging CI.

Slurm needs root and Debian's ``slurm-wlm munge``; without them the Slurm tests
skip, unless ``BENCHMARK_REGEN_REQUIRE_SLURM=1`` (set by ``.ci/run``) makes them fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from toolchain.cluster.slurm import FAILED_STATES, JobState, parse_show_job
from toolchain.run.determinism import MARKER, pinned_environ

REPO = Path(__file__).resolve().parents[1]
SLURM_SH = REPO / ".ci" / "slurm.sh"
REQUIRE_SLURM = os.environ.get("BENCHMARK_REGEN_REQUIRE_SLURM") == "1"
SLURM_PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "squeue")
TERMINAL = FAILED_STATES | {"COMPLETED"}


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for ``benchmark-regen`` subprocesses: not pinned yet (the command
    pins itself), with this interpreter's ``bin`` first on PATH (so a Slurm job finds
    the ``benchmark-regen`` under test)."""
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def _alive(pid: int, name: str) -> bool:
    """Is ``pid`` still the process we started (not a reused pid)?"""
    try:
        return name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """TERM, then KILL, the process group of a child started with start_new_session."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            # The leader is gone; its group may still hold children (a nanny's worker).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


# -- Slurm -------------------------------------------------------------------------------


def slurm_unavailable() -> str | None:
    """Why a private Slurm cannot start here, or None."""
    missing = [p for p in SLURM_PROGRAMS if shutil.which(p) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} missing: slurm-wlm munge)"
    if os.geteuid() != 0:
        return "a private Slurm needs root (slurmd launches the jobs)"
    return None


@dataclass
class SlurmCluster:
    """A running one-node cluster started by .ci/slurm.sh."""

    conf: Path
    state_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        return cli_env(SLURM_CONF=str(self.conf), **extra)

    def run(self, argv: Sequence[str], *, cwd: Path, timeout: float = 60) -> str:
        proc = subprocess.run(
            list(argv), cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr}"
        return proc.stdout

    def sbatch(self, *args: str, cwd: Path) -> str:
        return self.run(["sbatch", "--parsable", *args], cwd=cwd).strip().split(";")[0]

    def jobs(self, job_id: str) -> dict[str, JobState]:
        out = subprocess.run(
            ["scontrol", "--oneliner", "show", "job", job_id],
            env=self.env(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return {j.job_id: j for j in parse_show_job(out.stdout)}

    def own_job_id(self, task: str) -> str:
        """The job id Slurm gave array task ``A_I`` (its ``SLURM_JOB_ID``)."""
        text = self.run(["scontrol", "--oneliner", "show", "job", task], cwd=self.state_dir)
        found = re.search(r"\bJobId=(\d+)", text)
        assert found, text
        return found.group(1)

    def wait(self, job_id: str, *, tasks: int, timeout: float) -> dict[str, JobState]:
        """Wait until ``tasks`` tasks of ``job_id`` ended (any terminal state)."""
        end = time.monotonic() + timeout
        states: dict[str, JobState] = {}
        while time.monotonic() < end:
            states = self.jobs(job_id)
            done = [j for j in states.values() if j.state in TERMINAL]
            if len(done) >= tasks and len(done) == len(states):
                return states
            time.sleep(0.5)
        pytest.fail(f"Slurm job {job_id} did not end within {timeout:.0f} s: {states}")

    def wait_state(self, job_id: str, wanted: set[str], *, timeout: float) -> JobState:
        end = time.monotonic() + timeout
        job = None
        while time.monotonic() < end:
            job = self.jobs(job_id).get(job_id)
            if job is not None and job.state in wanted:
                return job
            time.sleep(0.2)
        pytest.fail(f"Slurm job {job_id} not in {sorted(wanted)} within {timeout:.0f} s: {job}")


@contextlib.contextmanager
def slurm_cluster(state_dir: Path) -> Iterator[SlurmCluster]:
    """A private Slurm (munged, slurmctld, slurmd) whose files all live in ``state_dir``."""
    reason = slurm_unavailable()
    if reason:
        if REQUIRE_SLURM:
            pytest.fail(f"BENCHMARK_REGEN_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    env = {**os.environ, "BENCHMARK_REGEN_SLURM_DIR": str(state_dir)}
    names = ("munged", "slurmctld", "slurmd")
    try:
        try:
            start = subprocess.run(
                ["bash", str(SLURM_SH), "start"], env=env, capture_output=True, text=True,
                timeout=120,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail(".ci/slurm.sh start did not finish within 120 s")
        assert start.returncode == 0, f".ci/slurm.sh start failed:\n{start.stderr}"
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", start.stdout, re.M))
        yield SlurmCluster(conf=Path(exports["SLURM_CONF"]), state_dir=state_dir)
    finally:
        pids = {}
        for name in names:
            with contextlib.suppress(OSError, ValueError):
                pids[name] = int((state_dir / f"{name}.pid").read_text())
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                ["bash", str(SLURM_SH), "stop", str(state_dir)],
                env={**env, "BENCHMARK_REGEN_SLURM_KEEP": "1"},
                capture_output=True, timeout=120,
            )  # fmt: skip
        for name, pid in pids.items():  # whatever `stop` could not stop, by pid
            if _alive(pid, name):
                os.kill(pid, signal.SIGKILL)


# -- Dask --------------------------------------------------------------------------------


@dataclass
class DaskCluster:
    """A scheduler and workers, each a separate process group on 127.0.0.1."""

    address: str
    logs: Path
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def worker_address(self, name: str) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace")
        found = re.findall(r"Start worker at:\s+(\S+)", text)
        assert found, f"worker {name} has not started:\n{text}"
        return found[-1]

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker's whole process group (nanny and worker): a lost node."""
        proc = self.workers[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def tls_args(certs: Path | None, node: str) -> list[str]:
    """``dask scheduler``/``dask worker`` options for ``node``'s certificate in ``certs``."""
    if certs is None:
        return []
    return ["--tls-ca-file", str(certs / "ca.pem"), "--tls-cert", str(certs / f"{node}.pem"),
            "--tls-key", str(certs / f"{node}.key")]  # fmt: skip


@contextlib.contextmanager
def dask_cluster(
    folder: Path,
    workers: Sequence[str] = ("w0", "w1"),
    *,
    odd_workers: Mapping[str, Mapping[str, str]] | None = None,
    certs: Path | None = None,
    extra_args: Mapping[str, Sequence[str]] | None = None,
    timeout: float = 90,
) -> Iterator[DaskCluster]:
    """``dask scheduler`` and pinned ``benchmark-regen dask-worker`` processes.

    ``odd_workers`` maps a worker name to environment changes: such a worker is
    started with plain ``dask worker`` under the pinned environment plus those
    changes, to stand for a node that was set up differently. ``certs``: a
    ``cluster certs`` folder; then everything speaks TLS (the scheduler with
    ``scheduler.pem``, each worker with ``worker.pem``). ``extra_args``: more
    ``dask worker`` options for the named workers (a ``--preload``, say).
    """
    folder.mkdir(parents=True, exist_ok=True)
    files: list[IO[bytes]] = []
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, argv: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed in the finally below
        files.append(log)
        proc = subprocess.Popen(
            argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=folder,
        )  # fmt: skip
        procs.append(proc)
        return proc

    try:
        sched_file = folder / "scheduler.json"
        scheduler = spawn(
            "scheduler",
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file),
             *(["--protocol", "tls", *tls_args(certs, "scheduler")] if certs else [])],
            cli_env(),
        )  # fmt: skip
        end = time.monotonic() + timeout
        while not (sched_file.exists() and sched_file.stat().st_size):
            if scheduler.poll() is not None or time.monotonic() > end:
                pytest.fail(f"dask scheduler did not start:\n{_tail(folder / 'scheduler.log')}")
            time.sleep(0.1)
        address = str(json.loads(sched_file.read_text())["address"])
        cluster = DaskCluster(address=address, logs=folder, scheduler=scheduler)
        common = ["--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60",
                  *tls_args(certs, "worker")]  # fmt: skip
        extra = extra_args or {}
        for name in workers:
            cluster.workers[name] = spawn(
                name,
                [sys.executable, "-m", "toolchain", "dask-worker", address, *common,
                 "--name", name, "--local-directory", str(folder / f"{name}-scratch"),
                 *extra.get(name, ())],
                cli_env(),
            )  # fmt: skip
        for name, changes in (odd_workers or {}).items():
            env = {**pinned_environ(cli_env()), **changes}
            cluster.workers[name] = spawn(
                name,
                [sys.executable, "-m", "distributed.cli.dask_worker", address, *common,
                 "--nthreads", "1", "--name", name,
                 "--local-directory", str(folder / f"{name}-scratch")],
                env,
            )  # fmt: skip
        for name, proc in cluster.workers.items():
            log = folder / f"{name}.log"
            while "Registered to:" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > end:
                    pytest.fail(f"dask worker {name} did not register:\n{_tail(log)}")
                time.sleep(0.1)
        yield cluster
    finally:
        for proc in reversed(procs):  # workers first, the scheduler last
            _stop_group(proc)
        for f in files:
            f.close()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"({path}: {e})"
