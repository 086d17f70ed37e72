"""toolchain.cluster.dask_worker: how the worker may reach its scheduler, the pinned
``dask worker`` command line, and the exec."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolchain.cluster.dask_worker import check_worker_args, worker_argv
from toolchain.errors import InputError


def test_dask_worker_runs_one_thread_per_process() -> None:
    from toolchain.cluster.dask_worker import worker_argv

    argv = worker_argv(["tcp://h:8786", "--nworkers", "4"])
    assert argv[1:3] == ["-m", "distributed.cli.dask_worker"]
    assert argv[3:] == ["tcp://h:8786", "--nworkers", "4", "--nthreads", "1"]
    assert worker_argv(["tcp://h:8786", "--nthreads", "1"])[3:] == [
        "tcp://h:8786",
        "--nthreads",
        "1",
    ]


def test_the_worker_is_exec_ed_with_the_pinned_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.compare_cases import pinned_here
    from toolchain.cluster import dask_worker
    from toolchain.run.determinism import MARKER, pinned_environ

    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(dask_worker.os, "execve", lambda p, a, e: calls.append((p, a, e)))
    with pinned_here(pytest.MonkeyPatch()):
        dask_worker.exec_pinned_worker(["tcp://127.0.0.1:8786"])
        expected_env = pinned_environ()
    ((program, argv, env),) = calls
    assert program == argv[0] and argv == worker_argv(["tcp://127.0.0.1:8786"])
    assert env == expected_env and env[MARKER] and env["OPENBLAS_NUM_THREADS"] == "1"


def test_without_distributed_no_worker_starts_and_the_hint_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from toolchain.cluster import dask_worker
    from toolchain.errors import ClusterError

    real = dask_worker.importlib.util.find_spec
    monkeypatch.setattr(
        dask_worker.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "distributed" else real(name, *a),
    )
    monkeypatch.setattr(dask_worker.os, "execve", lambda *a: pytest.fail("exec'd anyway"))
    with pytest.raises(ClusterError, match="'distributed' package is not installed") as e:
        dask_worker.exec_pinned_worker(["tcp://h:8786"])
    assert e.value.hint == "pip install 'benchmark-regen[dask]' (the pinned image has it)"


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    from toolchain.cluster.certs import make_certs

    make_certs(tmp_path / "certs", ["node1"])
    return tmp_path / "certs"


def _tls(certs: Path) -> list[str]:
    return ["--tls-ca-file", str(certs / "ca.pem"), "--tls-cert", str(certs / "node1.pem"),
            "--tls-key", str(certs / "node1.key")]  # fmt: skip


def test_a_worker_reaches_its_scheduler_over_tls_with_its_certificate(certs: Path) -> None:
    check_worker_args(["tls://10.0.0.1:8786", "--nworkers", "2", *_tls(certs)])
    check_worker_args(["--nworkers", "2", *_tls(certs), "tls://head:8786"])  # anywhere
    check_worker_args(["tcp://127.0.0.1:8786"])  # this machine: the user's choice
    check_worker_args(["tcp://10.0.0.1:8786"], insecure=True)
    check_worker_args(["--scheduler-file", "sched.json"])  # the scheduler writes the address


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["tcp://10.0.0.1:8786"], "plain TCP to another machine", "--insecure"),
        (["--name", "w", "tcp://head:8786"], "plain TCP to another machine", "tls://head:8786"),
        (["head:8786"], "has no scheme", "tls://head:8786"),
        (["tls://head:8786"], "needs its certificate", "cluster certs"),
        (["ws://head:8786"], "not a Dask scheduler address", "tls://head:8786"),
    ],
)
def test_a_worker_that_would_reach_its_scheduler_unauthenticated_is_refused(
    args: list[str], message: str, hint: str
) -> None:
    with pytest.raises(InputError, match=message) as e:
        check_worker_args(args)
    assert hint in (e.value.hint or "")


def test_a_preload_is_not_imported_to_read_the_arguments(tmp_path: Path) -> None:
    """``dask worker``'s own parser imports ``--preload`` modules: ours must not run them."""
    ran = tmp_path / "ran"
    preload = tmp_path / "preload.py"
    preload.write_text(f"open({str(ran)!r}, 'w').close()\n")
    check_worker_args(["tcp://127.0.0.1:8786", "--preload", str(preload)])
    assert not ran.exists()


def test_a_refused_worker_is_never_exec_ed(monkeypatch: pytest.MonkeyPatch) -> None:
    from toolchain.cluster import dask_worker

    monkeypatch.setattr(dask_worker.os, "execve", lambda *a: pytest.fail("exec'd anyway"))
    with pytest.raises(InputError, match="plain TCP"):
        dask_worker.exec_pinned_worker(["tcp://10.0.0.1:8786"])
