"""Run a per-sample job over many tasks, in order, in pinned processes.

The job is a picklable callable. It is sent once to each worker (not with
every task), each worker checks that it runs pinned, and every result comes
back with the digest of the worker's runtime fingerprint so that the caller
can refuse a run whose workers differ. Results are yielded in task order, so
the output never depends on which worker finished first.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from toolchain.determinism import apply_process_settings, pinned_spawn_context, process_is_pinned
from toolchain.errors import DeterminismError
from toolchain.fingerprint import fingerprint_digest, runtime_digest, runtime_fingerprint

__all__ = ["OrderedRun", "run_ordered", "worker_fingerprint"]

T = TypeVar("T")
R = TypeVar("R")

_JOB: Callable[[Any], Any] | None = None


def _init_worker(job: Callable[[Any], Any]) -> None:
    global _JOB
    _JOB = job
    apply_process_settings()
    # Ctrl-C is handled once, by the parent, which stops the pool cleanly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_pinned() -> None:
    if not process_is_pinned():
        raise DeterminismError(
            "a worker process is not running in the pinned environment",
            hint="run through the benchmark-regen command, or let the library spawn workers",
        )


def _run_task(task: Any) -> tuple[Any, str]:
    assert _JOB is not None
    _check_pinned()
    return _JOB(task), runtime_digest()


def _worker_fingerprint(_: object = None) -> Mapping[str, str]:
    _check_pinned()
    return runtime_fingerprint()


class OrderedRun(Generic[R]):
    """Iterates ``(task index, result)`` in order; ``fingerprint`` is the workers' one."""

    def __init__(self, results: Iterator[tuple[R, str]], fingerprint: Mapping[str, str]):
        self._results = results
        self.fingerprint = fingerprint
        self._digest = fingerprint_digest(fingerprint)

    def __iter__(self) -> Iterator[R]:
        for result, digest in self._results:
            if digest != self._digest:
                raise DeterminismError(
                    f"a worker's runtime fingerprint ({digest}) differs from the run's "
                    f"({self._digest})",
                    hint="every worker must run the same pinned environment; "
                    "see `benchmark-regen env` on each machine",
                )
            yield result


@contextlib.contextmanager
def run_ordered(
    job: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int,
    executor: str = "local",
    scheduler: str | None = None,
) -> Iterator[OrderedRun[R]]:
    """Run ``job`` over ``tasks`` with ``workers`` processes; yields an :class:`OrderedRun`.

    With one worker in a process that is already pinned, the job runs in this
    process; otherwise a pool of spawned, pinned processes runs it.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if executor == "dask":
        from toolchain._internal.dask_executor import run_ordered_dask

        with run_ordered_dask(job, tasks, workers=workers, scheduler=scheduler) as run:
            yield run
        return
    if executor != "local":
        raise ValueError(f"unknown executor {executor!r}")
    if workers == 1 and process_is_pinned():
        _init_worker(job)
        yield OrderedRun((_run_task(t) for t in tasks), runtime_fingerprint())
        return
    with (
        pinned_spawn_context() as ctx,
        ctx.Pool(
            processes=min(workers, max(1, len(tasks))), initializer=_init_worker, initargs=(job,)
        ) as pool,
    ):
        try:
            fingerprint = pool.apply(_worker_fingerprint)
            chunk = max(1, min(16, len(tasks) // (workers * 8)))
            yield OrderedRun(pool.imap(_run_task, tasks, chunksize=chunk), fingerprint)
        except BaseException:
            pool.terminate()
            raise


def worker_fingerprint() -> Mapping[str, str]:
    """The fingerprint of a process that would compute pixels (this one, if pinned)."""
    if process_is_pinned():
        apply_process_settings()
        return runtime_fingerprint()
    with pinned_spawn_context() as ctx, ctx.Pool(1, initializer=apply_process_settings) as pool:
        fp: Mapping[str, str] = pool.apply(_worker_fingerprint)
        return fp
