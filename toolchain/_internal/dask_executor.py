"""The Dask executor: per-sample tasks on a Dask distributed cluster.

Workers read the original from a path they share with the client; the client
collects results in task order and writes the journal and the manifest. Before
any task runs, every worker's runtime fingerprint is collected; workers that
are not pinned, or whose fingerprint differs from the others', stop the run
with a :class:`~toolchain.errors.DeterminismError` naming the worker and the
differing fields.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from toolchain._internal.executor import OrderedRun, _check_pinned
from toolchain.determinism import (
    MARKER,
    NPY_FEATURES,
    PINNED,
    apply_process_settings,
    pinned_spawn_context,
)
from toolchain.errors import DeterminismError
from toolchain.fingerprint import runtime_digest, runtime_fingerprint

__all__ = ["run_ordered_dask"]

T = TypeVar("T")
R = TypeVar("R")
_WINDOW_PER_WORKER = 4


def _dask_fingerprint() -> dict[str, str]:
    apply_process_settings()
    return dict(runtime_fingerprint())


def _dask_task(job: Callable[[Any], Any], task: Any) -> tuple[Any, str]:
    _check_pinned()
    apply_process_settings()
    return job(task), runtime_digest()


def _check_fingerprints(fps: Mapping[str, Mapping[str, str]]) -> Mapping[str, str]:
    if not fps:
        raise DeterminismError("the Dask cluster has no workers")
    addresses = sorted(fps)
    reference = fps[addresses[0]]
    for addr in addresses:
        fp = fps[addr]
        if fp.get("pinned") != "true":
            raise DeterminismError(
                f"Dask worker {addr} is not running in the pinned environment",
                hint="start workers with the pinned image, or under `benchmark-regen env` settings",
            )
        if dict(fp) != dict(reference):
            keys = sorted(k for k in set(fp) | set(reference) if fp.get(k) != reference.get(k))
            detail = ", ".join(f"{k}: {reference.get(k)!r} vs {fp.get(k)!r}" for k in keys[:6])
            raise DeterminismError(
                f"Dask worker {addr} has a different runtime fingerprint from "
                f"{addresses[0]} ({detail})",
                hint="every worker must run the same pinned environment (the same image)",
            )
    return reference


@contextlib.contextmanager
def run_ordered_dask(
    job: Callable[[T], R], tasks: Sequence[T], *, workers: int, scheduler: str | None
) -> Iterator[OrderedRun[R]]:
    """Like :func:`~toolchain._internal.executor.run_ordered`, on Dask.

    Without ``scheduler`` a ``LocalCluster`` of ``workers`` pinned processes
    (one thread each) is started for the run.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DeterminismError(
            "--executor dask needs the 'distributed' package",
            hint="pip install 'benchmark-regen[dask]'",
        ) from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler, set_as_default=False))
        else:
            import dask

            stack.enter_context(pinned_spawn_context())
            # The nanny sets its own PYTHONHASHSEED (and thread variables) before it
            # spawns a worker; make those the pinned values.
            pinned = {k: os.environ[k] for k in (*PINNED, MARKER, NPY_FEATURES) if k in os.environ}
            stack.enter_context(dask.config.set({"distributed.nanny.pre-spawn-environ": pinned}))
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=50,
                )
            )
            client = stack.enter_context(Client(cluster, set_as_default=False))
        fingerprint = _check_fingerprints(client.run(_dask_fingerprint))
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        [job_future] = client.scatter([job], broadcast=True)

        def results() -> Iterator[tuple[R, str]]:
            window: deque[Any] = deque()
            it = iter(tasks)
            for task in it:
                window.append(client.submit(_dask_task, job_future, task, pure=False))
                if len(window) >= _WINDOW_PER_WORKER * n_workers:
                    break
            for task in it:
                yield window.popleft().result()
                window.append(client.submit(_dask_task, job_future, task, pure=False))
            while window:
                yield window.popleft().result()

        yield OrderedRun(results(), fingerprint)
