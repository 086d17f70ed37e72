"""toolchain.cluster.dask_worker: the pinned ``dask worker`` command line and the exec."""

from __future__ import annotations

import pytest

from toolchain.cluster.dask_worker import worker_argv


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
        dask_worker.exec_pinned_worker(["tcp://h:8786"])
        expected_env = pinned_environ()
    ((program, argv, env),) = calls
    assert program == argv[0] and argv == worker_argv(["tcp://h:8786"])
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
