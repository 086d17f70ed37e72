"""toolchain.cli.cluster: ``dask-worker`` refuses what would break determinism, then execs a
pinned ``dask worker`` (the real one runs in test_dask_cluster.py)."""

from __future__ import annotations

import pytest

from tests.cli import run_cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tcp://h:8786", "--nthreads", "4"], "one task at a time"),
        (["tcp://h:8786", "--nthreads=2"], "one task at a time"),
        (["tcp://h:8786", "--nworkers", "auto"], "give a number"),
        ([], "give the scheduler address"),
    ],
)
def test_dask_worker_refuses_threads(args: list[str], message: str) -> None:
    r = run_cli("dask-worker", *args)
    assert r.exit_code == 2 and message in r.output


def test_dask_worker_hands_its_arguments_to_the_pinned_exec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, ...]] = []
    monkeypatch.setattr(
        "toolchain.cluster.dask_worker.exec_pinned_worker", lambda args: seen.append(args)
    )
    args = ["tcp://head:8786", "--nworkers", "4", "--nthreads", "1", "--name", "w"]
    r = run_cli("dask-worker", *args)
    assert r.exit_code == 0, r.output
    assert seen == [tuple(args)]  # unknown options pass through untouched


def test_dask_worker_help_is_its_own() -> None:
    r = run_cli("dask-worker", "--help")
    assert r.exit_code == 0 and "--nthreads 1" in r.output and "Examples:" in r.output
