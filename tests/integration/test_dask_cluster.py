"""Dask as deployed: `dask scheduler` and pinned `benchmark-regen dask-worker` processes.

Each cluster is a scheduler and workers started as separate process groups on
127.0.0.1 (random free ports) and stopped by process group when the test ends,
also when it fails. The runs use `--executor dask --scheduler tls://127.0.0.1:PORT`
with certificates from `cluster certs` (or `tcp://` on loopback) and must give the
golden root; a rogue worker must be caught and named.
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
from toolchain.cluster.certs import make_certs
from toolchain.diff import create_diff
from toolchain.run.determinism import MARKER, PINNED, pinned_environ
from toolchain.run.generate import generate_benchmark

pytestmark = pytest.mark.slow

FAST = 2
GOLDEN_FAST = "sha256:ee2e2f7b2b422fef9501a90dab903f591dfa569ad7d80d34da0a8863feaff681"
"""adversarial, steps=2, of the small original (tests/unit/test_run_generate.py)."""
SLOW = 15  # PGD steps: long enough that a worker can be killed mid-run
RUN_TIMEOUT = 300  # no run here may take longer: a hung executor fails the test


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cluster certs``: a CA, and certificates for the scheduler, the client and workers."""
    folder = tmp_path_factory.mktemp("tls") / "certs"
    make_certs(folder)
    return folder


def _tls_env(certs: Path) -> dict[str, str]:
    """Dask's own configuration naming this client's certificate (the client side of
    ``--certs``, which a subprocess's environment can carry)."""
    return {
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(certs / "ca.pem"),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(certs / "client.pem"),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(certs / "client.key"),
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[DaskCluster]:
    with dask_cluster(tmp_path_factory.mktemp("dask"), certs=certs) as c:
        yield c


@pytest.fixture(scope="module")
def local(small_original: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local pool's benchmark (and root) of the same run, made here."""
    out = tmp_path_factory.mktemp("local") / "bench"
    generate_benchmark(small_original, "adversarial", out, params={"steps": FAST}, workers=2)
    assert _root(out) == GOLDEN_FAST
    return out


def _root(bench: Path) -> str:
    report = verify_benchmark(bench)
    assert report.ok
    return str(report.manifest.root)


def _cli(
    *args: str, timeout: float = RUN_TIMEOUT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toolchain", *args],
        env=cli_env(**(env or {})), capture_output=True, text=True, timeout=timeout,
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


def test_generate_on_a_tls_cluster_gives_the_golden_root(
    cluster: DaskCluster, certs: Path, small_original: Path, tmp_path: Path
) -> None:
    import dask
    import distributed  # noqa: F401 - its defaults first: set() drops keys it added

    assert cluster.address.startswith("tls://127.0.0.1:")
    config = {k[5:].lower().replace("__", "."): v for k, v in _tls_env(certs).items()}
    with dask.config.set(config):  # Dask's own configuration names the certificate
        result = generate_benchmark(
            small_original, "adversarial", tmp_path / "out", params={"steps": FAST},
            executor="dask", scheduler=cluster.address,
        )  # fmt: skip
    assert str(result.root) == GOLDEN_FAST
    again = generate_benchmark(
        small_original, "adversarial", tmp_path / "again", params={"steps": FAST},
        executor="dask", scheduler=cluster.address, certs=certs, recheck=1.0,
    )  # fmt: skip
    assert str(again.root) == GOLDEN_FAST  # every task recomputed here, and all the same
    assert result.manifest.fingerprint["pinned"] == "true"
    # The CLI too, in a fresh process; the address without its scheme is TLS.
    proc = _cli("generate", "--recipe", "adversarial", "--param", f"steps={FAST}", "--original",
                str(small_original), "--out", str(tmp_path / "cli"), "--executor", "dask",
                "--scheduler", cluster.address.removeprefix("tls://"), "--certs", str(certs),
                "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["root"] == GOLDEN_FAST


def test_diff_apply_on_a_tls_cluster_gives_the_golden_root(
    cluster: DaskCluster, certs: Path, small_original: Path, tmp_path: Path, local: Path
) -> None:
    diff = tmp_path / "bench.bdiff"
    create_diff(small_original, local, diff)
    proc = _cli("diff", "apply", "--original", str(small_original), "--diff", str(diff), "--out",
                str(tmp_path / "out"), "--executor", "dask", "--scheduler", cluster.address,
                "--certs", str(certs), "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _root(tmp_path / "out") == GOLDEN_FAST


_OUTSIDER = """
import sys
import dask
from distributed import Client
from distributed.security import Security
with dask.config.set({"distributed.comm.timeouts.connect": "5s"}), Client(
    sys.argv[1], security=Security.temporary(), timeout=5, set_as_default=False
) as c:
    print("RAN CODE IN A WORKER:", c.submit(sum, [1, 2]).result())
"""


def test_a_client_with_a_certificate_of_its_own_cannot_use_the_cluster(
    cluster: DaskCluster,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _OUTSIDER, cluster.address],
        env=cli_env(), capture_output=True, text=True, timeout=120,  # a hang guard
    )  # fmt: skip
    assert proc.returncode != 0 and "RAN CODE" not in proc.stdout
    assert "TLS" in proc.stderr


_ROGUE = """
\"\"\"A rogue worker: one pixel of every sample it makes is changed, its digests to match.\"\"\"
import toolchain.run.generate as generate

_honest = generate._transform


def _altered(recipe, sample_id, original):
    pixels = _honest(recipe, sample_id, original).copy()
    pixels.flat[0] ^= 1
    return pixels


def dask_setup(worker):
    generate._transform = _altered
"""


def test_a_rogue_worker_is_caught_by_the_spot_check_and_named(
    certs: Path, small_original: Path, tmp_path: Path
) -> None:
    """A real `dask worker` (certified, pinned) whose preload alters the pixels it returns:
    the default spot check recomputes one task here, and the run stops (exit 4) naming it."""
    preload = tmp_path / "rogue.py"
    preload.write_text(_ROGUE)
    out = tmp_path / "out"
    extra = {"rogue": ["--preload", str(preload)]}
    with dask_cluster(tmp_path / "dask", ["rogue"], certs=certs, extra_args=extra) as c:
        argv = ["generate", "--recipe", "adversarial", "--param", f"steps={FAST}",
                "--original", str(small_original), "--executor", "dask", "--scheduler",
                c.address, "--certs", str(certs)]  # fmt: skip
        proc = _cli(*argv, "--out", str(out))
        unchecked = _cli(*argv, "--out", str(tmp_path / "unchecked"), "--recheck", "0", "--json")
        rogue = c.worker_address("rogue")
    # Unchecked, the rogue's benchmark is made, and verifies: the attack the check stops.
    assert unchecked.returncode == 0, unchecked.stderr
    assert json.loads(unchecked.stdout)["root"] != GOLDEN_FAST
    assert _root(tmp_path / "unchecked") != GOLDEN_FAST
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"Dask worker {rogue} returned a result for sample" in proc.stderr
    assert "--overwrite" in proc.stderr
    assert not (out / "manifest.json").exists()


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        ("tcp://192.0.2.1:8786", "plain TCP to another machine"),  # TEST-NET-1: never routed
        ("127.0.0.1:9", "a tls:// scheduler needs this client's certificate"),
    ],
)
def test_an_unauthenticated_scheduler_is_refused_before_anything_is_made(
    small_original: Path, tmp_path: Path, scheduler: str, message: str
) -> None:
    out = tmp_path / "out"
    proc = _cli("generate", "--recipe", "identity", "--original", str(small_original), "--out",
                str(out), "--executor", "dask", "--scheduler", scheduler,
                timeout=120)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert message in proc.stderr and "benchmark-regen cluster certs" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


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
