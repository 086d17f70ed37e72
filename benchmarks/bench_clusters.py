"""Cluster figures for issue #13, as ratios measured in one run on one machine.

* a Slurm array of S shards (`jobs slurm --runtime none --submit --wait`, merge included)
  against the local pool (`generate --workers 2`) on the same input;
* a Dask cluster (`dask scheduler` + 2 `benchmark-regen dask-worker`) against the local pool;
* the same Dask run with one worker SIGKILLed after the first sample: wall time and root.

Every run must give the same root; the script exits 1 if one does not.

Run (as root, with Debian's slurm-wlm and munge; without them the Slurm figure is skipped):
    python benchmarks/bench_clusters.py [--n 48] [--size 384] [--shards 4] [--json]
The Slurm cluster is the private one of .ci/slurm.sh (started and stopped here unless
SLURM_CONF is set); the Dask processes are started here and stopped by process group.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import synthetic_original

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "toolchain"]


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    e.update(extra)
    return e


def timed(argv: list[str], **extra: str) -> tuple[float, str]:
    """Wall time and root of one CLI run (``--json``)."""
    cut = argv.index("--") if "--" in argv else len(argv)  # `jobs slurm ... -- COMMAND`
    argv = [*argv[:cut], "--json", *argv[cut:]]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*CLI, *argv], env=env(**extra), capture_output=True, text=True, timeout=3600
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr}")
    return elapsed, str(json.loads(proc.stdout)["root"])


@contextlib.contextmanager
def slurm() -> Iterator[str | None]:
    if os.environ.get("SLURM_CONF"):
        yield os.environ["SLURM_CONF"]
        return
    if shutil.which("slurmctld") is None or os.geteuid() != 0:
        yield None
        return
    state = Path(tempfile.mkdtemp(prefix="br-slurm-"))
    env_ = {**os.environ, "BENCHMARK_REGEN_SLURM_DIR": str(state)}
    out = subprocess.run(
        ["bash", str(REPO / ".ci/slurm.sh"), "start"],
        env=env_, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    try:
        yield next(line.split("=", 1)[1] for line in out.splitlines() if "SLURM_CONF=" in line)
    finally:
        subprocess.run(["bash", str(REPO / ".ci/slurm.sh"), "stop", str(state)], timeout=120)


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(
            argv, env=env(), stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextlib.contextmanager
def dask(tmp: Path) -> Iterator[tuple[str, dict[str, subprocess.Popen[bytes]]]]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    tmp.mkdir(parents=True, exist_ok=True)
    sched = tmp / "scheduler.json"
    try:
        procs["scheduler"] = _spawn(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(sched)],
            tmp / "scheduler.log",
        )  # fmt: skip
        end = time.monotonic() + 60
        while not (sched.exists() and sched.stat().st_size):
            if time.monotonic() > end:
                raise SystemExit("the dask scheduler did not start")
            time.sleep(0.1)
        address = json.loads(sched.read_text())["address"]
        for name in ("w0", "w1"):
            procs[name] = _spawn(
                [*CLI, "dask-worker", address, "--host", "127.0.0.1", "--no-dashboard",
                 "--name", name, "--local-directory", str(tmp / name)],
                tmp / f"{name}.log",
            )  # fmt: skip
        for name in ("w0", "w1"):
            while "Registered to:" not in (tmp / f"{name}.log").read_text(errors="replace"):
                if time.monotonic() > end:
                    raise SystemExit(f"dask worker {name} did not register")
                time.sleep(0.1)
        yield address, procs
    finally:
        for proc in reversed(procs.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def killed_worker_run(
    gen: list[str], out: Path, victim: subprocess.Popen[bytes]
) -> tuple[float, str, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*CLI, *gen, "--out", str(out), "--json"], env=env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    while not any(out.rglob("*.png")) and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)
    stdout, _ = proc.communicate(timeout=3600)
    outcome = "completed on the remaining worker"
    if proc.returncode != 0:  # stopped resumable: finish it, and count both runs
        outcome = f"stopped (exit {proc.returncode}), finished with --resume"
        stdout = subprocess.run(
            [*CLI, *gen, "--out", str(out), "--json", "--resume"], env=env(),
            capture_output=True, text=True, timeout=3600, check=True,
        ).stdout  # fmt: skip
    return time.perf_counter() - t0, str(json.loads(stdout)["root"]), outcome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48, help="synthetic samples")
    ap.add_argument("--size", type=int, default=384, help="their width and height")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-clusters-"))
    fig: dict[str, object] = {"samples": opts.n, "size": opts.size, "shards": opts.shards}
    roots: dict[str, str] = {}
    try:
        src = synthetic_original(tmp / "src", opts.n, size=opts.size)
        gen = ["generate", "--recipe", "adversarial", "--original", str(src), "-q"]
        t_local, roots["local_workers2"] = timed(
            [*gen, "--out", str(tmp / "local"), "--workers", "2"]
        )
        fig["local_workers2_s"] = round(t_local, 2)
        with slurm() as conf:
            if conf is None:
                fig["slurm"] = "skipped: needs root and slurm-wlm munge"
            else:
                out = tmp / "slurm"
                t, roots["slurm"] = timed(
                    ["jobs", "slurm", "--name", "bench", "--shards", str(opts.shards),
                     "--runtime", "none", "--out", str(out), "--write", str(tmp / "b.sbatch"),
                     "--submit", "--wait", "--timeout", "3600", "--", *gen, "--out", str(out)],
                    SLURM_CONF=conf,
                )  # fmt: skip
                fig["slurm_array_s"] = round(t, 2)
                fig["slurm_over_local_workers2"] = round(t / t_local, 2)
        with dask(tmp / "dask") as (address, procs):
            dgen = [*gen, "--executor", "dask", "--scheduler", address]
            t, roots["dask"] = timed([*dgen, "--out", str(tmp / "dask-out")])
            fig["dask_cluster_s"] = round(t, 2)
            fig["dask_over_local_workers2"] = round(t / t_local, 2)
            t, roots["dask_killed_worker"], outcome = killed_worker_run(
                dgen, tmp / "killed", procs["w1"]
            )
            fig["dask_killed_worker_outcome"] = outcome
            fig["dask_killed_worker_s"] = round(t, 2)
            fig["dask_killed_worker_over_local_workers2"] = round(t / t_local, 2)
        fig["roots_equal"] = len(set(roots.values())) == 1
        fig["root"] = roots["local_workers2"]
        fig["load_average_1min"] = round(os.getloadavg()[0], 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if opts.json:
        print(json.dumps(fig, indent=2, sort_keys=True))
    else:
        for k, v in sorted(fig.items()):
            print(f"{k:<42} {v}")
    if not fig.get("roots_equal"):
        sys.exit(1)


if __name__ == "__main__":
    main()
