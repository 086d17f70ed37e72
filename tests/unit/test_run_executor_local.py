"""The local executor: results in task order, errors carried, it never hangs, and its
workers leave signals to their parent and exit quietly when it dies.

Each test spawns real pinned worker processes; the jobs are module-level classes
so the spawned workers can unpickle them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import no_hang
from toolchain.errors import DecodeError, ExecutorError
from toolchain.run.determinism import MARKER, pinned_environ
from toolchain.run.executor import local, make_executor
from toolchain.run.executor._worker import WorkerBug
from toolchain.run.executor.local import (
    BATCH_SECONDS,
    IN_FLIGHT,
    MAX_BATCH,
    MAX_BATCH_BYTES,
    _BatchSizer,
)
from toolchain.run.signals import stop_like_ctrl_c

HANG = 120
"""Seconds after which a wait counts as hung: a guard, never a measure of speed."""


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


@dataclass(frozen=True)
class WaitsForMarker:
    """The first task at each worker waits until ``marker`` exists (or gives up after
    :data:`HANG` s: a guard against a hang, not a measure of speed)."""

    marker: str
    workers: int

    def __call__(self, t: Task) -> bool:
        deadline = time.monotonic() + HANG
        while t.n < self.workers and not os.path.exists(self.marker):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


@dataclass(frozen=True)
class Echo:
    """Returns a result as large as its task: both directions of the pipe carry megabytes."""

    def __call__(self, t: Payload) -> bytes:
        return t.data[::-1]


@dataclass(frozen=True)
class Payload:
    sample_id: str
    data: bytes


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
        # IN_FLIGHT queued at each of the two workers, plus what was pulled as they came back
        assert len(pulled) <= 2 * IN_FLIGHT + 2
        assert list(it) == [i * i for i in range(1, 20)]


def test_each_busy_worker_has_its_next_task_queued(tmp_path: Path) -> None:
    """While every worker runs its first task, the parent has already sent each its next.

    The first task at each worker finishes only once the parent has pulled a second task
    for every worker (the tasks' generator then creates the marker). A pool that sends a
    worker its next task only after its result came back never gets there: both first
    tasks give up after :data:`HANG` s and report ``False``.
    """
    marker = tmp_path / "queued"

    def tasks():  # type: ignore[no-untyped-def]
        for t in _tasks(8):
            if t.n == 2 * IN_FLIGHT - 1:
                marker.touch()
            yield t

    assert IN_FLIGHT >= 2
    job = WaitsForMarker(marker=str(marker), workers=2)
    with make_executor("local", workers=2).run(job, tasks()) as run:
        assert list(run) == [True] * 8


def test_large_tasks_and_results_do_not_deadlock() -> None:
    """Megabytes both ways: the parent's send of a queued task never blocks against a
    worker's send of its result (a worker thread keeps reading its pipe)."""
    tasks = [Payload(sample_id=f"s{i}", data=bytes([i]) * (8 << 20) + b"end") for i in range(6)]
    got: list[bytes] = []

    def consume() -> None:
        with make_executor("local", workers=2).run(Echo(), iter(tasks)) as run:
            got.extend(run)

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    worker.join(timeout=240)
    assert not worker.is_alive(), "the pool deadlocked"
    assert got == [t.data[::-1] for t in tasks]


def test_a_worker_that_dies_mid_task_is_an_error_naming_the_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Noticed at once, from its pipe and its sentinel: no wait of the parent times out."""
    woke: list[bool] = []  # per wait: whether a pipe or a sentinel ended it

    def watched(objects: Any, timeout: float | None = None) -> Any:
        ready = wait(objects, timeout)
        woke.append(bool(ready))
        return ready

    monkeypatch.setattr(local, "wait", watched)
    with (
        no_hang(HANG),
        pytest.raises(ExecutorError, match=r"killed by SIGKILL while working on sample 's5.png'"),
        make_executor("local", workers=2).run(KillItself(victim=5), iter(_tasks(10))) as run,
    ):
        list(run)
    assert woke and all(woke)


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
    from toolchain.run.determinism import MARKER

    monkeypatch.delenv(MARKER, raising=False)
    with make_executor("local", workers=1).run(Pid(), iter(_tasks(2))) as run:
        pids = list(run)
    assert len(set(pids)) == 1 and pids[0] != os.getpid()


def test_batches_grow_with_the_measured_rate_and_stop_at_their_bounds() -> None:
    sizer = _BatchSizer(workers=2)
    tasks = iter(enumerate(Payload(sample_id=f"s{i}", data=b"x" * 1000) for i in range(500)))
    assert len(sizer.take(tasks)) == 1  # nothing measured yet: one at a time
    sizer.started -= 1.0
    rate = 5.5 / BATCH_SECONDS  # tasks per second per worker: 5.5 in a batch's time
    sizer.finished(int(2 * rate))
    assert len(sizer.take(tasks)) == 5
    sizer.finished(100_000)
    assert len(sizer.take(tasks)) == MAX_BATCH
    third = MAX_BATCH_BYTES // 3 + 1
    big = iter(enumerate(Payload(sample_id=f"b{i}", data=b"x" * third) for i in range(9)))
    assert len(sizer.take(big)) == 3  # over MAX_BATCH_BYTES after the third
    assert sizer.take(iter(())) == []


def test_a_worker_killed_inside_a_batch_is_named_by_its_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Results travel a batch at a time; the sample a dead worker ran is still exact."""
    monkeypatch.setattr(local, "BATCH_SECONDS", 1000.0)  # every batch as large as allowed
    with (
        pytest.raises(ExecutorError, match=r"killed by SIGKILL while working on sample 's50.png'"),
        make_executor("local", workers=2).run(KillItself(victim=50), iter(_tasks(200))) as run,
    ):
        list(run)


def test_a_prestarted_pool_takes_its_job_later() -> None:
    with make_executor("local", workers=2) as executor:
        executor.prestart()
        assert isinstance(executor, local.LocalExecutor) and executor._warm is not None
        workers = list(executor._warm.processes)
        time.sleep(0.5)  # the workers import meanwhile
        with executor.run(Square(), iter(_tasks(6))) as run:
            assert list(run) == [i * i for i in range(6)]
    assert all(not p.is_alive() for p in workers)


def test_a_prestarted_pool_never_used_is_stopped() -> None:
    with make_executor("local", workers=2) as executor:
        executor.prestart()
        assert isinstance(executor, local.LocalExecutor) and executor._warm is not None
        workers = list(executor._warm.processes)
    assert all(not p.is_alive() for p in workers)


def test_a_prestarted_worker_that_dies_on_its_job_is_an_error() -> None:
    with make_executor("local", workers=2) as executor:
        executor.prestart()
        with (
            pytest.raises(ExecutorError, match="could not start: it exited with code 3"),
            executor.run(DiesOnArrival(), iter(_tasks(4))) as run,
        ):
            list(run)


def test_one_pinned_worker_runs_in_this_process_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local, "process_is_pinned", lambda: True)
    with make_executor("local", workers=1) as executor:
        executor.prestart()
        assert isinstance(executor, local.LocalExecutor) and executor._warm is None


@dataclass(frozen=True)
class PidAfterAWhile:
    """Slow enough that every worker gets tasks: returns (task, the pid that ran it)."""

    def __call__(self, t: Task) -> tuple[int, int]:
        time.sleep(0.01)
        return t.n, os.getpid()


@dataclass(frozen=True)
class KillsAChild:
    """In a spawned worker, dies on its first task from ``victim`` on, after naming it
    in ``marker``; in the process that made the job, runs everything."""

    parent: int
    victim: int
    marker: str

    def __call__(self, t: Task) -> int:
        time.sleep(0.005)
        if t.n >= self.victim and os.getpid() != self.parent:
            Path(self.marker).write_text(t.sample_id)
            os.kill(os.getpid(), signal.SIGKILL)
        return t.n


STARTS = ("spawn", "fork")
"""How a pinned process starts its workers: a library caller's spawns fresh interpreters;
the command's own, pinned before numpy was imported, forks copies of itself."""

_AS_THE_COMMAND = (
    "from toolchain.run.determinism import reexec_pinned\n"
    "reexec_pinned([])  # pinned already: marks the process as the command's own\n"
)


def _in_a_pinned_python(scenario: str, *args: str, start: str = "spawn") -> dict[str, Any]:
    """Run ``scenario`` (a function of this module) in a fresh pinned Python; its JSON.

    Not this process: pytest imported numpy before any pinning, so its BLAS and SIMD
    settings are not the pinned ones, and a pool that counts it as a worker refuses it
    (as it should). ``start="fork"``: the Python is pinned the way the command's own
    process is (:func:`~toolchain.run.determinism.started_pinned`), so it forks.
    """
    code = (
        (_AS_THE_COMMAND if start == "fork" else "") + "import json, sys\n"
        "from tests.unit import test_run_executor_local as m\n"
        "if __name__ == '__main__':\n"
        f"    print(json.dumps(m.{scenario}(*sys.argv[1:])))\n"
    )
    env = pinned_environ({k: v for k, v in os.environ.items() if k != MARKER})
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def _scenario_one_spawned(_: str = "") -> dict[str, Any]:
    import multiprocessing

    with make_executor("local", workers=2) as executor:
        executor.prestart()
        assert isinstance(executor, local.LocalExecutor) and executor._warm is not None
        spawned = len(executor._warm.processes)
        forked = executor._warm.forked
        with executor.run(PidAfterAWhile(), iter(_tasks(60))) as run:
            got = list(run)
            alive = len(multiprocessing.active_children())
            pinned = run.fingerprint["pinned"]
    return {
        "spawned": spawned,
        "forked": forked,
        "alive": alive,
        "pinned": pinned,
        "order": [n for n, _ in got],
        "pids": sorted({pid for _, pid in got}),
        "me": os.getpid(),
        "left": len(multiprocessing.active_children()),
    }


@dataclass(frozen=True)
class Logged:
    """Returns (task, pid); appends ``pid task`` to ``log`` each time a process runs one."""

    log: str

    def __call__(self, t: Task) -> tuple[int, int]:
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} {t.n}\n")
        time.sleep(0.01)
        return t.n, os.getpid()


def _ran(log: str) -> list[tuple[int, int]]:
    lines = Path(log).read_text().split("\n")
    return [(int(a), int(b)) for a, b in (line.split() for line in lines if line)]


def _scenario_starts_working_at_once(log: str) -> dict[str, Any]:
    """No prestart: the pool's worker starts (imports) when the run does."""
    with make_executor("local", workers=2).run(Logged(log), iter(_tasks(200))) as run:
        got = list(run)
    return {"order": [n for n, _ in got], "pids": [pid for _, pid in got], "me": os.getpid()}


def _scenario_dead_worker(marker: str) -> dict[str, Any]:
    import multiprocessing

    job = KillsAChild(parent=os.getpid(), victim=20, marker=marker)
    try:
        with make_executor("local", workers=2).run(job, iter(_tasks(200))) as run:
            list(run)
    except ExecutorError as exc:
        return {"error": exc.message, "left": len(multiprocessing.active_children())}
    return {"error": None}


@dataclass(frozen=True)
class FailsAtHome:
    """Fails in the process that made the job (from task 3 on); works in spawned ones."""

    parent: int

    def __call__(self, t: Task) -> int:
        time.sleep(0.005)
        if t.n >= 3 and os.getpid() == self.parent:
            raise DecodeError("not an image", sample=t.sample_id)
        return t.n


def _scenario_own_task_fails(_: str = "") -> dict[str, Any]:
    import multiprocessing

    try:
        job = FailsAtHome(parent=os.getpid())
        with make_executor("local", workers=2).run(job, iter(_tasks(40))) as run:
            list(run)
    except DecodeError as exc:
        return {"sample": exc.sample, "left": len(multiprocessing.active_children())}
    return {"sample": None}


@pytest.mark.parametrize("start", STARTS)
def test_a_pinned_process_is_one_of_its_own_workers(start: str) -> None:
    """--workers 2 in a pinned process: one started worker, and this process runs the
    rest; results still come in task order."""
    got = _in_a_pinned_python("_scenario_one_spawned", start=start)
    assert got["spawned"] == 1 and got["alive"] == 1 and got["pinned"] == "true"
    assert got["forked"] is (start == "fork")
    assert got["order"] == list(range(60))
    assert got["me"] in got["pids"] and len(got["pids"]) == 2
    assert got["left"] == 0


@pytest.mark.parametrize("start", STARTS)
def test_a_pinned_process_works_while_its_workers_start(start: str, tmp_path: Path) -> None:
    """It does not wait for the spawned worker's imports: the first tasks are its own, each
    run once, and the results still come in task order. (A forked worker may be ready
    before the first task: then it may run that one; still each task runs once.)"""
    log = str(tmp_path / "log")
    got = _in_a_pinned_python("_scenario_starts_working_at_once", log, start=start)
    assert got["order"] == list(range(200))
    me, pids = got["me"], got["pids"]
    assert me in pids and len(set(pids)) == 2  # the worker took its share once started
    if start == "spawn":
        assert pids[0] == me
    ran = _ran(log)
    assert sorted(n for _, n in ran) == list(range(200))  # nothing run twice
    assert all((pid, n) in ran for n, pid in enumerate(pids))


@pytest.mark.parametrize("start", STARTS)
def test_a_pinned_process_names_the_sample_its_dead_worker_ran(start: str, tmp_path: Path) -> None:
    marker = tmp_path / "victim"
    got = _in_a_pinned_python("_scenario_dead_worker", str(marker), start=start)
    assert got["error"] is not None and "killed by SIGKILL while working on" in got["error"]
    assert f"sample {marker.read_text()!r}" in got["error"]
    assert got["left"] == 0


@pytest.mark.parametrize("start", STARTS)
def test_an_error_in_a_pinned_process_own_task_stops_its_workers(start: str) -> None:
    got = _in_a_pinned_python("_scenario_own_task_fails", start=start)
    assert got["sample"] in {f"s{i}.png" for i in range(3, 40)} and got["left"] == 0


def test_a_process_pinned_after_numpy_only_collects(tmp_path: Path) -> None:
    """This pytest process pinned by its environment alone (numpy was loaded first): its
    fingerprint is not its workers', so it runs no task, and all the workers are spawned."""
    import multiprocessing

    from tests.compare_cases import pinned_here

    log = str(tmp_path / "log")
    with (
        pinned_here(pytest.MonkeyPatch()),
        make_executor("local", workers=2).run(Logged(log), iter(_tasks(40))) as run,
    ):
        got = list(run)
        assert len(multiprocessing.active_children()) == 2
    assert [n for n, _ in got] == list(range(40))
    pids = {pid for _, pid in got}
    assert os.getpid() not in pids and len(pids) == 2
    assert not multiprocessing.active_children()
    # what it ran while the workers started was run again by them: that result is used
    here = [n for pid, n in _ran(log) if pid == os.getpid()]
    assert all((pid, n) in _ran(log) for n, pid in got if n in here)


@dataclass(frozen=True)
class Dispositions:
    """In the worker: which of SIGINT, SIGTERM, SIGHUP it ignores, and which it holds blocked."""

    def __call__(self, t: Task) -> tuple[list[bool], list[int]]:
        ours = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        ignored = [signal.getsignal(s) is signal.SIG_IGN for s in ours]
        return ignored, sorted(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])) & set(ours))


def test_workers_ignore_the_signals_their_parent_handles() -> None:
    """Ctrl-C reaches the whole process group and ``scancel`` signals every process: a
    worker leaves to the parent what the parent handles (it then kills the workers), and
    keeps the default for the rest. None stays blocked."""
    with make_executor("local", workers=2).run(Dispositions(), iter(_tasks(2))) as run:
        assert list(run) == [([True, False, False], [])] * 2
    with (
        stop_like_ctrl_c(),
        make_executor("local", workers=2).run(Dispositions(), iter(_tasks(2))) as run,
    ):
        assert list(run) == [([True, True, True], [])] * 2
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGTERM, signal.SIGHUP}


@dataclass(frozen=True)
class WaitsThenWrites:
    """Names its worker's pid in ``started``, waits for ``release`` (at most :data:`HANG` s),
    then writes ``written``: a task still running when its parent dies."""

    started: str
    release: str
    written: str

    def __call__(self, t: Task) -> int:
        Path(self.started).write_text(str(os.getpid()))
        deadline = time.monotonic() + HANG
        while not os.path.exists(self.release) and time.monotonic() < deadline:
            time.sleep(0.01)
        Path(self.written).write_text("a file the dead parent would never journal")
        return t.n


def _scenario_parent_to_kill(folder: str) -> dict[str, Any]:
    job = WaitsThenWrites(
        started=f"{folder}/started", release=f"{folder}/release", written=f"{folder}/written"
    )
    with make_executor("local", workers=1).run(job, iter(_tasks(1))) as run:
        return {"got": list(run)}


def _parent(
    scenario: str, folder: Path, env: dict[str, str], first: str = ""
) -> subprocess.Popen[bytes]:
    """A Python running ``scenario(folder)`` (after the code ``first``), its output piped."""
    code = (
        first + "import json, sys\n"
        "from tests.unit import test_run_executor_local as m\n"
        "if __name__ == '__main__':\n"
        f"    print(json.dumps(m.{scenario}(sys.argv[1])))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], env=env, cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (an exited orphan may stay a zombie until someone reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_worker_whose_parent_is_killed_stops_mid_task_quietly(tmp_path: Path) -> None:
    """kill -9 of the parent while its worker runs a task: the worker notices its pipe end
    and exits at once, mid-task (it never writes the task's file, which no journal would
    name), printing nothing (before: it finished the task, wrote the file, and printed a
    ``BrokenPipeError`` traceback; here it would wait for ``release`` until :data:`HANG`)."""
    env = {k: v for k, v in os.environ.items() if k != MARKER}  # unpinned: it spawns a worker
    started = tmp_path / "started"
    with _parent("_scenario_parent_to_kill", tmp_path, env) as parent:
        try:
            with no_hang(HANG):
                while not started.exists() or not started.read_text():
                    assert parent.poll() is None, "the parent ended before its task started"
                    time.sleep(0.01)
        finally:
            parent.kill()
        worker = int(started.read_text())
        deadline = time.monotonic() + HANG
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _alive(worker), "the worker outlived its parent"
        (tmp_path / "release").touch()  # too late for anyone to act on it
        out, err = parent.communicate(timeout=HANG)  # the worker shared the parent's pipes
    assert out == b"" and err == b""
    assert not (tmp_path / "written").exists()


@dataclass(frozen=True)
class WaitsAwayFromHome:
    """In a started worker: names its pid in ``folder`` (``started-PID``), waits for
    ``release`` (at most :data:`HANG` s), then writes ``written-PID``; in the process that
    made the job: takes 20 ms (so that it cannot run every task before its workers are
    ready for theirs)."""

    parent: int
    folder: str

    def __call__(self, t: Task) -> int:
        if os.getpid() == self.parent:
            time.sleep(0.02)
            return t.n
        folder = Path(self.folder)
        (folder / f"started-{os.getpid()}").touch()
        deadline = time.monotonic() + HANG
        while not (folder / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        (folder / f"written-{os.getpid()}").write_text("a file no journal would name")
        return t.n


def _scenario_forked_parent_to_kill(folder: str) -> dict[str, Any]:
    job = WaitsAwayFromHome(parent=os.getpid(), folder=folder)
    with make_executor("local", workers=3) as executor:
        executor.prestart()
        with executor.run(job, iter(_tasks(500))) as run:
            return {"got": list(run)}


def test_forked_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    """--workers 3 in the command's own process: two forked workers, the second a copy made
    while the first's pipe was open. kill -9 of the parent while both run a task: each sees
    its pipe end and exits at once, mid-task (a copy keeps no parent's end of a pipe, its
    own or an earlier worker's, or the pipe would never end)."""
    env = pinned_environ({k: v for k, v in os.environ.items() if k != MARKER})
    with _parent("_scenario_forked_parent_to_kill", tmp_path, env, _AS_THE_COMMAND) as parent:
        try:
            with no_hang(HANG):
                while len(list(tmp_path.glob("started-*"))) < 2:
                    assert parent.poll() is None, "the parent ended before its workers waited"
                    time.sleep(0.01)
            workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("started-*")]
            for pid in workers:  # copies of the parent, not fresh interpreters
                assert b"multiprocessing" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        finally:
            parent.kill()
        deadline = time.monotonic() + HANG
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not any(_alive(pid) for pid in workers), "a worker outlived its parent"
        (tmp_path / "release").touch()  # too late for anyone to act on it
        out, err = parent.communicate(timeout=HANG)  # the workers shared the parent's pipes
    assert out == b"" and err == b""
    assert not list(tmp_path.glob("written-*"))


def test_a_library_caller_or_a_threaded_process_does_not_fork(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A copy is as pinned as a fresh start only of the command's own process (this one,
    pinned after numpy, is not), and only one made while no other thread runs."""
    assert not local._may_fork()
    monkeypatch.setattr(local, "started_pinned", lambda: True)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert not local._may_fork()
    finally:
        stop.set()
        other.join()


def test_a_copy_lets_go_of_the_parents_pipe_ends() -> None:
    """The numbers stay taken (pointed at /dev/null), and the pipe ends for its reader."""
    r, w = os.pipe()
    try:
        local._let_go([w])
        assert os.read(r, 1) == b""  # the only write end is gone: end of file
        assert os.path.samestat(os.fstat(w), os.stat(os.devnull))
    finally:
        os.close(r)
        os.close(w)
