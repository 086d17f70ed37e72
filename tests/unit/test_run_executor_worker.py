"""toolchain.run.executor._worker: the pinned check, one environment, portable errors,
results only from the run's environment."""

from __future__ import annotations

import pickle

import pytest

from tests.compare_cases import pinned_here
from toolchain.errors import DecodeError, DeterminismError
from toolchain.run.determinism import MARKER
from toolchain.run.executor._worker import (
    OrderedRun,
    WorkerBug,
    check_pinned,
    check_same_environment,
    portable_error,
    worker_fingerprint,
)
from toolchain.run.fingerprint import fingerprint_digest

FP = {"pinned": "true", "numpy": "2.4.6", "env.OPENBLAS_CORETYPE": "Haswell"}


def test_a_run_refuses_a_worker_from_another_environment() -> None:
    from toolchain.run.executor._worker import check_same_environment

    a = {"pinned": "true", "numpy": "2.4.6", "env.OPENBLAS_CORETYPE": "Haswell"}
    b = {**a, "env.OPENBLAS_CORETYPE": "Prescott"}
    with pytest.raises(DeterminismError, match=r"worker w2 .*OPENBLAS_CORETYPE"):
        check_same_environment({"w1": a, "w2": b})
    with pytest.raises(DeterminismError, match="not running in the pinned"):
        check_same_environment({"w1": {**a, "pinned": "false"}})


def test_the_shared_fingerprint_is_returned_and_the_reference_is_a_pinned_worker() -> None:
    assert check_same_environment({"b": FP, "a": dict(FP)}) == FP
    with pytest.raises(DeterminismError) as e:
        check_same_environment({"a": {**FP, "pinned": "false"}, "b": FP})
    # the unpinned worker is named, and compared with the first *pinned* one
    assert "worker a is not running in the pinned environment" in e.value.message
    assert "differs from worker b in pinned: 'true' vs 'false'" in e.value.message
    assert "dask-worker" in (e.value.hint or "")
    with pytest.raises(DeterminismError, match="no worker reported"):
        check_same_environment({})


def test_our_errors_cross_processes_as_themselves_and_bugs_as_worker_bugs() -> None:
    ours = DecodeError("not an image", sample="x.png", hint="re-download it")
    assert portable_error(ours) is ours
    try:
        {}["missing"]
    except KeyError as exc:
        bug = portable_error(exc)
    assert isinstance(bug, WorkerBug)
    assert "a worker raised KeyError: 'missing'" in str(bug)
    assert "in test_our_errors_cross_processes_as_themselves_and_bugs_as_worker_bugs" in str(bug)
    back = pickle.loads(pickle.dumps(bug))
    assert type(back) is WorkerBug and str(back) == str(bug)


def test_an_ordered_run_refuses_a_result_from_another_environment() -> None:
    digest = fingerprint_digest(FP)
    assert list(OrderedRun(iter([(1, digest), (2, digest)]), FP)) == [1, 2]
    run = OrderedRun(iter([(1, digest), (2, "0" * 16)]), FP)
    got = iter(run)
    assert next(got) == 1
    with pytest.raises(DeterminismError, match=f"fingerprint \\(0{{16}}\\) differs .*{digest}"):
        next(got)


def test_a_process_started_unpinned_may_not_compute_pixels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pinned_here(pytest.MonkeyPatch()):
        check_pinned()  # pinned: fine
    monkeypatch.delenv(MARKER, raising=False)
    with pytest.raises(DeterminismError, match="not running in the pinned environment") as e:
        check_pinned()
    assert "benchmark-regen" in (e.value.hint or "")


def test_an_unpinned_process_asks_a_pinned_child_for_the_fingerprint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MARKER, raising=False)
    fp = worker_fingerprint()
    assert fp["pinned"] == "true" and fp["env.OPENBLAS_NUM_THREADS"] == "1"
