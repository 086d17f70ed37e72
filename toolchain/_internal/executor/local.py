"""The local executor: in this process, or a pool of spawned, pinned processes.

The pool is written here rather than taken from :mod:`multiprocessing.pool`,
because its two failure modes are the ones we must not have: a worker that dies
(or cannot start) leaves ``Pool.apply``/``imap`` waiting forever, and stopping a
pool on Ctrl-C waits for the running tasks. Here every worker has one pipe and
at most :data:`IN_FLIGHT` tasks queued (the one it runs and the next, so that it
never waits for the parent between two samples); the parent waits on the pipes
*and* the processes' sentinels, so a dead worker is noticed at once, and on any
exception (Ctrl-C included) every worker is terminated before the exception
propagates.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from typing import Any, TypeVar

from toolchain._internal.executor._worker import (
    OrderedRun,
    check_same_environment,
    portable_error,
    start_worker,
)
from toolchain.determinism import pinned_spawn_context, process_is_pinned
from toolchain.errors import ExecutorError
from toolchain.fingerprint import fingerprint_digest, runtime_digest

__all__ = ["LocalExecutor"]

T = TypeVar("T")
R = TypeVar("R")

START_TIMEOUT = 300.0
"""Seconds a spawned worker may take to import numpy and report ready (slow disks, emulation)."""
_STOP_GRACE = 2.0
IN_FLIGHT = 2
"""Tasks queued at each worker: the next one is there when the current one ends."""


def _worker_main(conn: Connection, job: Callable[[Any], Any]) -> None:
    """A pool worker: report the fingerprint, then run tasks until told to stop.

    A thread receives the tasks while the main thread computes, so the parent's send of
    the next task never waits for the current one to finish, and never blocks against
    this worker's send of a large result (each end of the pipe is always being drained).
    """
    # Ctrl-C is the parent's to handle: it terminates the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fingerprint = dict(start_worker())
    except BaseException as exc:
        conn.send(("failed", portable_error(exc)))
        return
    conn.send(("ready", fingerprint))
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_receive, args=(conn, inbox), daemon=True).start()
    while (message := inbox.get()) is not None:
        index, task = message
        try:
            conn.send(("ok", index, job(task)))
        except BaseException as exc:
            conn.send(("error", index, portable_error(exc)))


def _receive(conn: Connection, inbox: queue.SimpleQueue[Any]) -> None:
    """Move the parent's messages into ``inbox`` as they arrive; ``None`` ends the worker."""
    try:
        while (message := conn.recv()) is not None:
            inbox.put(message)
    except (EOFError, OSError):
        pass
    inbox.put(None)


def _label(task: object, index: int) -> str:
    sample = getattr(task, "sample_id", None)
    return f"sample {sample!r}" if sample else f"task {index}"


def _death(process: SpawnProcess) -> str:
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


class _Pool:
    """Spawned, pinned workers with one pipe each; see the module docstring."""

    def __init__(self, job: Callable[[Any], Any], workers: int):
        self.processes: list[SpawnProcess] = []
        self.conns: list[Connection] = []
        with pinned_spawn_context() as ctx:
            for _ in range(workers):
                parent, child = ctx.Pipe(duplex=True)
                process = ctx.Process(target=_worker_main, args=(child, job), daemon=True)
                process.start()
                child.close()
                self.processes.append(process)
                self.conns.append(parent)

    def wait_ready(self) -> Mapping[str, str]:
        fingerprints: dict[str, Mapping[str, str]] = {}
        waiting = dict(enumerate(self.conns))
        while waiting:
            sentinels = {self.processes[i].sentinel: i for i in waiting}
            ready = wait([*waiting.values(), *sentinels], timeout=START_TIMEOUT)
            if not ready:
                raise ExecutorError(
                    f"{len(waiting)} worker process(es) did not start within {START_TIMEOUT:.0f} s",
                    hint="check that numpy imports in this Python (`benchmark-regen env`)",
                )
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
                    fingerprints[f"#{i} (pid {self.processes[i].pid})"] = payload
                    del waiting[i]
                elif conn in ready or self.processes[i].sentinel in ready:
                    raise ExecutorError(
                        f"worker process {self.processes[i].pid} could not start: it "
                        f"{_death(self.processes[i])}",
                        hint="its error is printed above; check `benchmark-regen env`",
                    )
        return check_same_environment(fingerprints)

    def results(self, tasks: Iterable[Any]) -> Iterator[tuple[Any, str]]:
        """Results in task order; at most :data:`IN_FLIGHT` tasks queued at each worker."""
        digest = fingerprint_digest(self.fingerprint)
        pending: dict[int, Any] = {}
        # worker -> its tasks (index, task) in the order sent; it runs them in that order
        busy: dict[int, collections.deque[tuple[int, Any]]] = {
            w: collections.deque() for w in range(len(self.conns))
        }
        source = enumerate(tasks)
        exhausted = False
        following = 0
        while True:
            # Fill round-robin, one task per worker per round, so that a short run
            # spreads over every worker instead of queueing on the first.
            while not exhausted:
                room = [w for w in busy if len(busy[w]) < IN_FLIGHT]
                if not room:
                    break
                for worker in sorted(room, key=lambda w: len(busy[w])):
                    nxt = next(source, None)
                    if nxt is None:
                        exhausted = True
                        break
                    with contextlib.suppress(OSError):  # a dead worker: the wait names it
                        self.conns[worker].send(nxt)
                    busy[worker].append(nxt)
            while following in pending:
                yield pending.pop(following), digest
                following += 1
            working = [w for w in busy if busy[w]]
            if not working:
                return
            watched: dict[object, int] = {self.conns[w]: w for w in working}
            watched.update({self.processes[w].sentinel: w for w in working})
            for ready in wait(list(watched)):  # type: ignore[arg-type]
                worker = watched[ready]
                conn = self.conns[worker]
                # Every result already in the pipe is taken before a death is believed:
                # a worker that finished its tasks and then died lost nothing.
                while busy[worker]:
                    try:
                        if not conn.poll():
                            if ready is conn:
                                break
                            raise EOFError
                        kind, got, payload = conn.recv()
                    except (EOFError, OSError):
                        index, task = busy[worker][0]
                        raise ExecutorError(
                            f"worker process {self.processes[worker].pid} "
                            f"{_death(self.processes[worker])} while working on "
                            f"{_label(task, index)}",
                            hint="out of memory? (see dmesg); run again with --resume to continue",
                        ) from None
                    if kind == "error":
                        raise payload
                    pending[got] = payload
                    busy[worker].popleft()

    def stop(self, *, clean: bool) -> None:
        """Ask idle workers to exit (clean), or terminate them all at once."""
        for conn, process in zip(self.conns, self.processes, strict=True):
            if clean and process.is_alive():
                with contextlib.suppress(OSError, ValueError):
                    conn.send(None)
            else:
                process.terminate()
        for process in self.processes:
            process.join(_STOP_GRACE if clean else 0.5)
            if process.is_alive():
                process.kill()
                process.join(_STOP_GRACE)
        for conn in self.conns:
            conn.close()

    fingerprint: Mapping[str, str]


class LocalExecutor:
    """Run in this process when it is pinned and one worker is asked for; else a pool."""

    def __init__(self, *, workers: int):
        self.workers = workers

    @contextlib.contextmanager
    def run(self, job: Callable[[T], R], tasks: Iterable[T]) -> Iterator[OrderedRun[R]]:
        if self.workers == 1 and process_is_pinned():
            fingerprint = start_worker()
            digest = runtime_digest()
            yield OrderedRun(((job(t), digest) for t in tasks), fingerprint)
            return
        pool = _Pool(job, self.workers)
        clean = False
        try:
            pool.fingerprint = pool.wait_ready()
            yield OrderedRun(pool.results(tasks), pool.fingerprint)
            clean = True
        finally:
            pool.stop(clean=clean)
