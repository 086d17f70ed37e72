"""The local executor: this process, or a pool of spawned, pinned processes that never hangs
(docs/internals.md, "The local pool")."""

from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing
import os
import queue
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from toolchain._internal.memory import Trimmer, tune_allocator
from toolchain.errors import ExecutorError
from toolchain.run.determinism import pinned_spawn_context, process_is_pinned, started_pinned
from toolchain.run.executor._worker import (
    OrderedRun,
    check_same_environment,
    portable_error,
    start_worker,
)
from toolchain.run.fingerprint import fingerprint_digest, runtime_digest
from toolchain.run.signals import blocked, handled_here, ignore_in_worker

__all__ = ["LocalExecutor"]

_END: Any = object()

T = TypeVar("T")
R = TypeVar("R")

START_TIMEOUT = 300.0
"""Seconds a spawned worker may take to import numpy and report ready (slow disks, emulation)."""
_STOP_GRACE = 2.0
IN_FLIGHT = 2
"""Batches queued at each worker: the next one is there when the current one ends."""
BATCH_SECONDS = 0.02
"""A batch holds about this much of a worker's time, at the rate measured so far: short,
since what a worker has queued when the tasks run out is the run's last stretch for it
alone (a message costs some 0.1 ms)."""
MAX_BATCH = 32
MAX_BATCH_BYTES = 1 << 20
"""A batch stops growing once its tasks' ``data`` reach this many bytes."""


def _worker_main(
    conn: Connection,
    current: Any,
    slot: int,
    ignored: tuple[int, ...],
    parent_ends: tuple[int, ...] = (),
) -> None:
    """A pool worker: start (imports, pinning), receive the job, report the fingerprint,
    then run tasks until told to stop, or until the parent is gone.

    The job comes through the pipe, not with the process: a pool can be started (the
    imports take a good part of a second) while the parent is still reading the
    original, before it knows the job. A thread receives the tasks while the main thread
    computes, so the parent's send of the next task never waits for the current one to
    finish, and never blocks against this worker's send of a large result (each end of
    the pipe is always being drained).

    ``ignored``: the signals the parent handles (Ctrl-C, SIGTERM...): it kills the workers
    itself, after it has taken what they finished.

    ``parent_ends``: a forked worker's copies of the parent's ends of the pipes (its own
    and earlier workers'): let go at once, or a pipe would not end when the parent dies.

    A worker told to stop leaves without the interpreter's teardown (``os._exit``): it has
    nothing left to write, and the parent waits for it to be gone.
    """
    _let_go(parent_ends)
    ignore_in_worker(ignored)
    try:
        fingerprint = dict(start_worker())
        job = conn.recv()
    except (EOFError, OSError):
        return  # the parent went away (or stopped an unused pool) before sending a job
    except BaseException as exc:
        _to_parent(conn, ("failed", portable_error(exc)))
        return
    _to_parent(conn, ("ready", fingerprint))
    tune_allocator()
    trimmer = Trimmer()
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_receive, args=(conn, inbox), daemon=True).start()
    while (batch := inbox.get()) is not None:
        results: list[tuple[int, Any]] = []
        for index, task in batch:
            current[slot] = index  # shared memory: the parent names this task if we die
            try:
                results.append((index, job(task)))
            except BaseException as exc:
                _to_parent(conn, (results, (index, portable_error(exc))))
                break
        else:
            _to_parent(conn, (results, None))
        trimmer.tick()
    _leave(0)


def _let_go(fds: Iterable[int]) -> None:
    """Point ``fds`` at /dev/null: the pipes they held are released, and no number is
    freed for a file this process opens later (the objects that own them may still close
    them when collected)."""
    fds = tuple(fds)
    if not fds:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            os.dup2(null, fd)
    finally:
        os.close(null)


def _leave(code: int) -> None:
    """Exit now, without the interpreter's teardown, what was printed written out."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _receive(conn: Connection, inbox: queue.SimpleQueue[Any]) -> None:
    """Move the parent's batches into ``inbox`` as they arrive; ``None`` ends the worker."""
    try:
        while (message := conn.recv()) is not None:
            inbox.put(message)
    except (EOFError, OSError):
        _parent_gone()
    inbox.put(None)


def _to_parent(conn: Connection, message: object) -> None:
    try:
        conn.send(message)
    except OSError:
        _parent_gone()


def _parent_gone() -> None:
    """The parent closed its end of the pipe without saying stop: it died (kill -9, a crash).

    Nobody will read what this worker makes, and a sample it finished now would be a file
    no journal names: it stops at once, mid-task (a temp file cut short is for ``--resume``
    to remove), without the ``BrokenPipeError`` traceback of its next send. A live parent
    kills its workers before it closes their pipes, so this is never a live parent's pool.
    """
    os._exit(0)


def _sample_of(task: object) -> str | None:
    """What names a task in an error: its ``sample_id``, when it has one."""
    return getattr(task, "sample_id", None)


def _label(sample: str | None, index: int) -> str:
    return f"sample {sample!r}" if sample else f"task {index}"


def _death(process: BaseProcess) -> str:
    process.join(2.0)
    code = process.exitcode
    if code is None:
        return "closed its pipe"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


class _BatchSizer:
    """How many tasks the next batch holds, from the pool's measured rate."""

    def __init__(self, workers: int):
        self.workers = workers
        self.started = time.monotonic()
        self.done = 0

    def finished(self, count: int) -> None:
        self.done += count

    def take(self, source: Iterator[tuple[int, Any]]) -> list[tuple[int, Any]]:
        """The next batch from ``source`` (empty when it is exhausted)."""
        elapsed = time.monotonic() - self.started
        per_worker = self.done / elapsed / self.workers if self.done and elapsed > 0 else 0.0
        size = max(1, min(MAX_BATCH, int(per_worker * BATCH_SECONDS)))
        batch: list[tuple[int, Any]] = []
        nbytes = 0
        while len(batch) < size and nbytes < MAX_BATCH_BYTES:
            nxt = next(source, None)
            if nxt is None:
                break
            batch.append(nxt)
            nbytes += len(getattr(nxt[1], "data", b""))
        return batch


def _may_fork() -> bool:
    """Whether this process may start its workers as copies of itself (``fork``).

    Only the command's own process, pinned before numpy was imported
    (:func:`~toolchain.run.determinism.started_pinned`), so that a copy is as pinned as a
    fresh start; only on Linux, where the kernel's list of this process's threads says it
    has one: a copy made while another thread held a lock would wait for it forever.
    A copy starts in milliseconds; a fresh pinned interpreter imports numpy, Pillow and
    the package first (0.1 to 0.2 s), and ``spawn`` starts a resource tracker besides.
    """
    if not sys.platform.startswith("linux") or not started_pinned():
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


class _Pool:
    """Pinned workers with one pipe each; see the module docstring. They are copies of this
    process when :func:`_may_fork` allows it, freshly started pinned interpreters if not."""

    def __init__(self, workers: int):
        self.processes: list[BaseProcess] = []
        self.conns: list[Connection] = []
        ignored = handled_here()
        self.forked = forked = _may_fork()
        starting: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext(multiprocessing.get_context("fork"))
            if forked
            else pinned_spawn_context()
        )
        with starting as ctx, blocked(ignored):
            # Each worker's slot holds the index of the task it runs (results travel a
            # batch at a time, so the pipe alone cannot tell which task a dead worker ran).
            self.current = ctx.RawArray("q", [-1] * workers)
            for slot in range(workers):
                parent, child = ctx.Pipe(duplex=True)
                ends = tuple(c.fileno() for c in [*self.conns, parent]) if forked else ()
                process = ctx.Process(
                    target=_worker_main,
                    args=(child, self.current, slot, ignored, ends),
                    daemon=True,
                )
                process.start()
                child.close()
                self.processes.append(process)
                self.conns.append(parent)
        self._waiting = dict(enumerate(self.conns))
        """The workers that have not reported their start yet."""
        self._fingerprints: dict[str, Mapping[str, str]] = {}
        # One poll object per pipe, made once: Connection.poll() builds a selector for
        # each look, and this process looks after every task it runs itself.
        self._polls: list[select.poll] = []
        for conn in self.conns:
            self._polls.append(poll := select.poll())
            poll.register(conn.fileno(), select.POLLIN)

    def send_job(self, job: Callable[[Any], Any]) -> None:
        """Give every worker the job (before :meth:`wait_ready`)."""
        for conn in self.conns:
            with contextlib.suppress(OSError):  # a dead worker: wait_ready names it
                conn.send(job)

    def wait_ready(self) -> Mapping[str, str]:
        """The fingerprint every worker shares, once all have started."""
        while self._waiting:
            if not self._take_reports(START_TIMEOUT):
                raise ExecutorError(
                    f"{len(self._waiting)} worker process(es) did not start within "
                    f"{START_TIMEOUT:.0f} s",
                    hint="check that numpy imports in this Python (`benchmark-regen env`)",
                )
        return check_same_environment(self._fingerprints)

    def all_ready(self) -> bool:
        """Whether every worker has reported its start, taking reports already sent."""
        if self._waiting:
            self._take_reports(0)
        return not self._waiting

    def _take_reports(self, timeout: float) -> bool:
        """Take the start reports that come within ``timeout`` seconds (a worker that failed
        to start is raised); ``False`` if none came."""
        waiting = self._waiting
        sentinels = {self.processes[i].sentinel: i for i in waiting}
        ready = wait([*waiting.values(), *sentinels], timeout=timeout)
        for i, conn in list(waiting.items()):
            message = None
            if conn in ready:
                try:
                    message = conn.recv() if conn.poll() else None
                except (EOFError, OSError):
                    message = None
            if message is not None:
                kind, payload = message
                if kind == "failed":
                    raise payload
                self._fingerprints[f"#{i} (pid {self.processes[i].pid})"] = payload
                del waiting[i]
            elif conn in ready or self.processes[i].sentinel in ready:
                raise ExecutorError(
                    f"worker process {self.processes[i].pid} could not start: it "
                    f"{_death(self.processes[i])}",
                    hint="its error is printed above; check `benchmark-regen env`",
                )
        return bool(ready)

    def results(
        self, tasks: Iterable[Any], here: Callable[[Any], Any] | None = None
    ) -> Iterator[tuple[Any, str]]:
        """Results in task order; at most :data:`IN_FLIGHT` batches queued at each worker.

        ``here``: the job, when this process is a worker too; it then runs one task
        between two looks at the pipes (which do not wait while it has tasks to run).
        """
        digest = fingerprint_digest(self.fingerprint)
        self._pending = {}
        self._busy = {w: collections.deque() for w in range(len(self.conns))}
        self._batches = {w: collections.deque() for w in self._busy}
        busy, batches, pending = self._busy, self._batches, self._pending
        source = enumerate(tasks)
        self._sizer = sizer = _BatchSizer(len(self.conns) + (here is not None))
        exhausted = False
        following = 0
        trimmer = Trimmer()
        while True:
            # Fill round-robin, one batch per worker per round, so that a short run
            # spreads over every worker instead of queueing on the first.
            while not exhausted:
                room = [w for w in busy if len(batches[w]) < IN_FLIGHT]
                if not room:
                    break
                for worker in sorted(room, key=lambda w: len(batches[w])):
                    batch = sizer.take(source)
                    if not batch:
                        exhausted = True
                        break
                    with contextlib.suppress(OSError):  # a dead worker: the wait names it
                        self.conns[worker].send(batch)
                    # Only each task's name is kept: its bytes are freed once sent.
                    busy[worker].extend((i, _sample_of(t)) for i, t in batch)
                    batches[worker].append(len(batch))
            while following in pending:
                yield pending.pop(following), digest
                following += 1
            trimmer.tick()
            if here is not None and not exhausted:
                if (mine := next(source, None)) is None:
                    exhausted = True
                else:
                    pending[mine[0]] = here(mine[1])
                    sizer.finished(1)
                    self._collect(block=False)
                continue
            if not any(busy.values()):
                return
            self._collect(block=True)

    def _collect(self, *, block: bool) -> None:
        """Take every batch of results the workers have sent (waiting for one if ``block``);
        a worker that died is an :class:`ExecutorError` naming the task it ran."""
        busy = self._busy
        working = [w for w in busy if busy[w]]
        if block:
            watched: dict[object, int] = {self.conns[w]: w for w in working}
            watched.update({self.processes[w].sentinel: w for w in working})
            signalled = wait(list(watched))  # type: ignore[arg-type]
            ready = [(watched[r], r is self.conns[watched[r]]) for r in signalled]
        else:
            # A dead worker's pipe reads as ready (end of file): no need to watch sentinels.
            ready = [(w, True) for w in working if self._has_data(w)]
        for worker, readable in ready:
            conn = self.conns[worker]
            # Every result already in the pipe is taken before a death is believed:
            # a worker that finished its tasks and then died lost nothing.
            while busy[worker]:
                try:
                    if not self._has_data(worker):
                        if readable:
                            break
                        raise EOFError
                    done, failed = conn.recv()
                except (EOFError, OSError):
                    running = self.current[worker]
                    index, sample = next(
                        (t for t in busy[worker] if t[0] == running), busy[worker][0]
                    )
                    raise ExecutorError(
                        f"worker process {self.processes[worker].pid} "
                        f"{_death(self.processes[worker])} while working on "
                        f"{_label(sample, index)}",
                        hint="out of memory? (see dmesg); run again with --resume to continue",
                    ) from None
                if failed is not None:
                    raise failed[1]
                for index, payload in done:
                    self._pending[index] = payload
                    busy[worker].popleft()
                self._batches[worker].popleft()
                self._sizer.finished(len(done))

    def _has_data(self, worker: int) -> bool:
        """Whether ``worker``'s pipe can be read without waiting (data, or its end)."""
        return bool(self._polls[worker].poll(0))

    def stop(self, *, clean: bool) -> None:
        """Ask idle workers to exit (clean), or kill them all at once."""
        for conn, process in zip(self.conns, self.processes, strict=True):
            if clean and process.is_alive():
                with contextlib.suppress(OSError, ValueError):
                    conn.send(None)
            else:
                process.kill()  # SIGTERM would not do: workers may ignore it (see _worker_main)
        for process in self.processes:
            process.join(_STOP_GRACE if clean else 0.5)
            if process.is_alive():
                process.kill()
                process.join(_STOP_GRACE)
        for conn in self.conns:
            conn.close()

    fingerprint: Mapping[str, str]
    _pending: dict[int, Any]
    """Results that came back before an earlier task's, by task index."""
    _busy: dict[int, collections.deque[tuple[int, str | None]]]
    """Worker -> its tasks (index, sample) in the order sent; it runs them in that order."""
    _batches: dict[int, collections.deque[int]]
    """Worker -> the sizes of the batches it has queued."""
    _sizer: _BatchSizer


def _in_process(job: Callable[[T], R], tasks: Iterable[T], digest: str) -> Iterator[tuple[R, str]]:
    trimmer = Trimmer()
    for task in tasks:
        yield job(task), digest
        trimmer.tick()


class LocalExecutor:
    """``workers`` processes: this one, when it is pinned, and spawned ones for the rest
    (all of them when it is not). One pinned worker runs here without a pool.

    :meth:`prestart` spawns the pool early (its workers import while the caller reads
    the original); :meth:`close`, or leaving the ``with`` block, stops a pool that was
    started and never used.
    """

    def __init__(self, *, workers: int):
        self.workers = workers
        self._warm: _Pool | None = None

    @property
    def shares_files(self) -> bool:
        return True

    def _spawned(self) -> int:
        """How many processes to spawn: this one is a worker too when it is pinned."""
        return self.workers - 1 if process_is_pinned() else self.workers

    def prestart(self) -> None:
        if self._warm is None and (count := self._spawned()):
            self._warm = _Pool(count)

    def close(self) -> None:
        if self._warm is not None:
            self._warm.stop(clean=False)
            self._warm = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def run(self, job: Callable[[T], R], tasks: Iterable[T]) -> Iterator[OrderedRun[R]]:
        count = self._spawned()
        here = start_worker() if count < self.workers else None
        if here is not None:
            tune_allocator()  # pinned: the process is ours, and it runs tasks
            if not count:
                yield OrderedRun(_in_process(job, tasks, runtime_digest()), here)
                return
        pool, self._warm = self._warm or _Pool(count), None
        clean = False
        try:
            pool.send_job(job)
            early: list[tuple[T, R]] = []
            if here is not None:
                tasks, early = self._while_starting(pool, job, iter(tasks))
            pool.fingerprint = pool.wait_ready()
            shared = fingerprint_digest(pool.fingerprint)
            if here is not None and fingerprint_digest(here) != shared:
                # Pinned by its environment only (numpy was loaded before it was pinned, as
                # in a test runner): its pixels could differ, so it only collects, all the
                # workers are spawned, and what it made while they started is made again.
                pool.stop(clean=False)
                pool, here = _Pool(self.workers), None
                tasks = itertools.chain((task for task, _ in early), tasks)
                early = []
                pool.send_job(job)
                pool.fingerprint = pool.wait_ready()
            results = pool.results(tasks, job if here else None)
            if early:
                digest = fingerprint_digest(pool.fingerprint)
                results = itertools.chain(((r, digest) for _, r in early), results)
            yield OrderedRun(results, pool.fingerprint)
            clean = True
        finally:
            pool.stop(clean=clean)

    @staticmethod
    def _while_starting(
        pool: _Pool, job: Callable[[T], R], tasks: Iterator[T]
    ) -> tuple[Iterator[T], list[tuple[T, R]]]:
        """Run tasks here, in order, until the spawned workers have all started (they take
        a good part of a second to import): the tasks left, and each one run with its result.

        The results are handed on only once the workers' fingerprint is known to be this
        process's (else the tasks are run again by spawned workers, and their files
        written again)."""
        early: list[tuple[T, R]] = []
        while not pool.all_ready():
            task = next(tasks, _END)
            if task is _END:
                break
            early.append((task, job(task)))
        return tasks, early
