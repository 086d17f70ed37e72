"""toolchain.run.executor: make_executor names the executors and checks its arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compare_cases import pinned_here
from toolchain.run.executor import EXECUTORS, make_executor, worker_fingerprint
from toolchain.run.executor.dask import DaskExecutor
from toolchain.run.executor.local import LocalExecutor
from toolchain.run.fingerprint import runtime_fingerprint


def test_make_executor_builds_the_named_executor_without_starting_anything() -> None:
    assert EXECUTORS == ("local", "dask")
    local = make_executor("local", workers=3)
    assert isinstance(local, LocalExecutor) and local.workers == 3
    dask = make_executor("dask", workers=2, scheduler="tcp://nowhere.invalid:8786")
    assert isinstance(dask, DaskExecutor)
    assert (dask.workers, dask.scheduler) == (2, "tcp://nowhere.invalid:8786")
    assert make_executor("dask", workers=1).scheduler is None  # a LocalCluster, later


def test_unknown_executor_and_bad_worker_count() -> None:
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("slurm", workers=1)
    with pytest.raises(ValueError, match="at least 1"):
        make_executor("local", workers=0)
    with pytest.raises(ValueError, match="needs --executor dask"):
        make_executor("local", workers=1, scheduler="tcp://x:1")


def test_worker_fingerprint_of_a_pinned_process_is_its_own() -> None:
    with pinned_here(pytest.MonkeyPatch()):
        fp = worker_fingerprint()
        assert fp == runtime_fingerprint() and fp["pinned"] == "true"


def test_make_executor_hands_the_dask_options_on(tmp_path: Path) -> None:
    dask = make_executor(
        "dask", workers=1, scheduler="tcp://10.0.0.1:8786", insecure=True, recheck=0.5,
        certs=tmp_path,
    )  # fmt: skip
    assert isinstance(dask, DaskExecutor)
    assert (dask.insecure, dask.recheck, dask.certs) == (True, 0.5, tmp_path)
