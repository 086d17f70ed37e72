"""The local executor: results in task order, errors carried, and it never hangs.

Each test spawns real pinned worker processes; the jobs are module-level classes
so the spawned workers can unpickle them.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import pytest

from toolchain._internal.executor import make_executor
from toolchain._internal.executor._worker import WorkerBug
from toolchain.errors import DecodeError, ExecutorError


@dataclass(frozen=True)
class Task:
    sample_id: str
    n: int


@dataclass(frozen=True)
class Square:
    """Later tasks finish first: order must still be the tasks' order."""

    def __call__(self, t: Task) -> int:
        time.sleep(0.02 * (5 - t.n % 5))
        return t.n * t.n


@dataclass(frozen=True)
class KillItself:
    victim: int

    def __call__(self, t: Task) -> int:
        if t.n == self.victim:
            os.kill(os.getpid(), signal.SIGKILL)
        return t.n


@dataclass(frozen=True)
class Fails:
    def __call__(self, t: Task) -> int:
        if t.n == 3:
            raise DecodeError("not an image", sample=t.sample_id)
        if t.n == 4:
            raise ZeroDivisionError("a bug")
        return t.n


class DiesOnArrival:
    """A job that kills the worker as it is unpickled there: the worker never starts."""

    def __init__(self) -> None:
        self.state = "something to unpickle"  # an empty __dict__ would skip __setstate__

    def __call__(self, t: Task) -> int:  # pragma: no cover - never runs
        return t.n

    def __setstate__(self, state: object) -> None:
        os._exit(3)


def _tasks(n: int) -> list[Task]:
    return [Task(sample_id=f"s{i}.png", n=i) for i in range(n)]


def test_results_come_in_task_order_from_two_workers() -> None:
    with make_executor("local", workers=2).run(Square(), iter(_tasks(12))) as run:
        assert list(run) == [i * i for i in range(12)]
        assert run.fingerprint["pinned"] == "true"


def test_tasks_are_consumed_lazily() -> None:
    """The collecting process reads a sample only when a worker is free for it."""
    pulled: list[int] = []

    def tasks():  # type: ignore[no-untyped-def]
        for t in _tasks(20):
            pulled.append(t.n)
            yield t

    with make_executor("local", workers=2).run(Square(), tasks()) as run:
        it = iter(run)
        assert next(it) == 0
        assert len(pulled) <= 4  # two in flight, plus what was pulled as they came back
        assert list(it) == [i * i for i in range(1, 20)]


def test_a_worker_that_dies_mid_task_is_an_error_naming_the_sample() -> None:
    started = time.monotonic()
    with (
        pytest.raises(ExecutorError, match=r"killed by SIGKILL while working on sample 's5.png'"),
        make_executor("local", workers=2).run(KillItself(victim=5), iter(_tasks(10))) as run,
    ):
        list(run)
    assert time.monotonic() - started < 60  # noticed at once, not after a timeout


def test_a_worker_that_cannot_start_is_an_error_not_a_hang() -> None:
    with (
        pytest.raises(ExecutorError, match="could not start: it exited with code 3"),
        make_executor("local", workers=2).run(DiesOnArrival(), iter(_tasks(4))) as run,
    ):
        list(run)


def test_errors_cross_the_process_boundary() -> None:
    with (
        pytest.raises(DecodeError) as e,
        make_executor("local", workers=2).run(Fails(), iter(_tasks(4))) as run,
    ):
        list(run)
    assert e.value.sample == "s3.png" and e.value.exit_code == 3
    with (
        pytest.raises(WorkerBug, match="ZeroDivisionError: a bug"),
        make_executor("local", workers=1).run(Fails(), iter(_tasks(6)[4:])) as run,
    ):
        list(run)


def test_workers_leave_no_process_behind() -> None:
    import multiprocessing

    with make_executor("local", workers=2).run(Square(), iter(_tasks(3))) as run:
        list(run)
    assert not multiprocessing.active_children()
    with (
        pytest.raises(ExecutorError),
        make_executor("local", workers=2).run(KillItself(victim=0), iter(_tasks(3))) as run,
    ):
        list(run)
    assert not multiprocessing.active_children()


@dataclass(frozen=True)
class Pid:
    def __call__(self, t: Task) -> int:
        return os.getpid()


def test_one_worker_in_a_pinned_process_runs_here_without_a_pool() -> None:
    import multiprocessing

    from tests.compare_cases import pinned_here

    with (
        pinned_here(pytest.MonkeyPatch()),
        make_executor("local", workers=1).run(Pid(), iter(_tasks(3))) as run,
    ):
        assert not multiprocessing.active_children()
        assert list(run) == [os.getpid()] * 3
        assert run.fingerprint["pinned"] == "true"


def test_an_unpinned_process_runs_even_one_worker_in_a_pinned_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from toolchain.determinism import MARKER

    monkeypatch.delenv(MARKER, raising=False)
    with make_executor("local", workers=1).run(Pid(), iter(_tasks(2))) as run:
        pids = list(run)
    assert len(set(pids)) == 1 and pids[0] != os.getpid()
