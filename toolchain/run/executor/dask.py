"""The Dask executor: per-sample tasks on a Dask distributed cluster.

Each task carries its sample's bytes, and each result its output bytes, so the
workers need no shared file system: only the collecting process (the client)
reads the original and writes the benchmark. Before any task runs, every
worker's runtime fingerprint is collected; a worker that is not pinned, or whose
fingerprint differs from the others', stops the run with a
:class:`~toolchain.errors.DeterminismError` naming the worker and the differing
fields, and every result carries its worker's fingerprint digest, so a worker
that joins later in another environment is refused too.

A worker that dies mid-run is Dask's to handle: its tasks are rescheduled on the
others (a task that kills several workers ends the run with an
:class:`~toolchain.errors.ExecutorError`). A scheduler that does not answer is an
``ExecutorError`` within :data:`CONNECT_TIMEOUT` seconds.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from toolchain.errors import ClusterError, DeterminismError, ExecutorError
from toolchain.model.drift import describe_differences, fingerprint_differences
from toolchain.run.determinism import MARKER, NPY_FEATURES, PINNED, pinned_spawn_context
from toolchain.run.executor._worker import (
    OrderedRun,
    check_same_environment,
    start_worker,
)
from toolchain.run.fingerprint import runtime_digest

__all__ = ["CONNECT_TIMEOUT", "DaskExecutor"]

T = TypeVar("T")
R = TypeVar("R")
_WINDOW_PER_WORKER = 4
CONNECT_TIMEOUT = 20
"""Seconds to wait for a scheduler to answer."""
_START_HINT = (
    "start a scheduler (`dask scheduler`) and pinned workers "
    "(`benchmark-regen dask-worker tcp://HOST:8786`), or check the address"
)


def _dask_fingerprint() -> dict[str, str]:
    """The worker's fingerprint, pinned or not (the client names what differs)."""
    from toolchain.run.determinism import apply_process_settings
    from toolchain.run.fingerprint import runtime_fingerprint

    apply_process_settings()
    return dict(runtime_fingerprint())


def _dask_task(job: Callable[[Any], Any], task: Any) -> tuple[Any, str, str]:
    from distributed import get_worker

    start_worker()
    return job(task), runtime_digest(), str(get_worker().address)


def _label(task: object) -> str:
    sample = getattr(task, "sample_id", None)
    return f"sample {sample!r}" if sample else "a task"


class DaskExecutor:
    """Run on the cluster at ``scheduler``, or on a ``LocalCluster`` of ``workers`` processes."""

    def __init__(self, *, workers: int, scheduler: str | None):
        self.workers = workers
        self.scheduler = scheduler

    @property
    def shares_files(self) -> bool:
        """Dask workers may run on other machines: the collecting process writes."""
        return False

    def prestart(self) -> None:
        """Nothing to start ahead: the cluster is reached (or made) when a run begins."""

    def close(self) -> None:
        """Nothing held between runs."""

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _client(self, stack: contextlib.ExitStack) -> Any:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError(
                "--executor dask needs the 'distributed' package",
                hint="pip install 'benchmark-regen[dask]'",
            ) from None
        if self.scheduler:
            try:
                return stack.enter_context(
                    Client(self.scheduler, set_as_default=False, timeout=CONNECT_TIMEOUT)
                )
            except (OSError, TimeoutError) as e:
                raise ClusterError(
                    f"no Dask scheduler answers at {self.scheduler} ({type(e).__name__}: {e})",
                    hint=_START_HINT,
                ) from None
        import dask

        stack.enter_context(pinned_spawn_context())
        # The nanny sets its own PYTHONHASHSEED (and thread variables) before it
        # spawns a worker; make those the pinned values.
        pinned = {k: os.environ[k] for k in (*PINNED, MARKER, NPY_FEATURES) if k in os.environ}
        stack.enter_context(dask.config.set({"distributed.nanny.pre-spawn-environ": pinned}))
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # No dashboard, and the scheduler's small HTTP server on a free port: the
                # default (8787) may be taken by another cluster on this machine.
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                silence_logs=50,
            )
        )
        return stack.enter_context(Client(cluster, set_as_default=False))

    @contextlib.contextmanager
    def run(self, job: Callable[[T], R], tasks: Iterable[T]) -> Iterator[OrderedRun[R]]:
        where = self.scheduler or "a local Dask cluster"
        with contextlib.ExitStack() as stack:
            client = self._client(stack)  # says which extra to install when Dask is missing
            from distributed.client import FutureCancelledError
            from distributed.scheduler import KilledWorker

            fingerprints = client.run(_dask_fingerprint)
            if not fingerprints:
                raise ClusterError(f"the Dask cluster at {where} has no workers", hint=_START_HINT)
            fingerprint = check_same_environment(fingerprints)
            n_workers = len(fingerprints)
            [job_future] = client.scatter([job], broadcast=True, hash=False)
            reference = OrderedRun[R](iter(()), fingerprint).digest

            def results() -> Iterator[tuple[R, str]]:
                window: deque[tuple[Any, T]] = deque()
                source = iter(tasks)

                def submit(task: T) -> None:
                    window.append((client.submit(_dask_task, job_future, task, pure=False), task))

                for task in source:
                    submit(task)
                    if len(window) >= _WINDOW_PER_WORKER * n_workers:
                        break
                while window:
                    future, task = window.popleft()
                    try:
                        value, digest, worker = future.result()
                    except KilledWorker:
                        raise ExecutorError(
                            f"Dask lost every worker it gave {_label(task)} to (KilledWorker)",
                            hint="a worker runs out of memory or crashes on it; run again "
                            "with --resume after fixing the workers",
                        ) from None
                    except (OSError, FutureCancelledError) as e:
                        raise ClusterError(
                            f"lost the Dask scheduler at {where} ({type(e).__name__}: {e})",
                            hint="run again with --resume once the cluster is back",
                        ) from None
                    if digest != reference:
                        late = client.run(_dask_fingerprint, workers=[worker]).get(worker, {})
                        diff = fingerprint_differences(fingerprint, late)
                        raise DeterminismError(
                            f"Dask worker {worker} joined in a different environment "
                            f"({describe_differences(diff) or 'fingerprint ' + digest})",
                            hint="every worker must run the same pinned environment "
                            "(the same image, or `benchmark-regen dask-worker`)",
                        )
                    yield value, digest
                    nxt = next(source, None)
                    if nxt is not None:
                        submit(nxt)

            yield OrderedRun(results(), fingerprint)
