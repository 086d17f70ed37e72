"""Executors: run one picklable job over many tasks in pinned processes, results in task
order (docs/internals.md, "The executors")."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from toolchain.run.executor._worker import OrderedRun, worker_fingerprint

__all__ = [
    "EXECUTORS",
    "Executor",
    "OrderedRun",
    "check_executor",
    "make_executor",
    "worker_fingerprint",
]

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "dask")


class Executor(Protocol):
    """Runs ``job`` over ``tasks``; see the module docstring.

    ``prestart()`` may start workers before the job is known (the local pool does;
    Dask starts nothing); use the executor as a context manager (or call ``close()``)
    so that workers started and never used are stopped.
    """

    def run(
        self, job: Callable[[T], R], tasks: Iterable[T]
    ) -> AbstractContextManager[OrderedRun[R]]: ...

    @property
    def shares_files(self) -> bool:
        """Whether the workers see this machine's files (then they write the outputs)."""
        ...

    def prestart(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


def check_executor(kind: str, *, workers: int, scheduler: str | None = None) -> None:
    """Refuse (``ValueError``) what :func:`make_executor` cannot make, before anything runs."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if kind == "local" and scheduler is not None:
        raise ValueError("--scheduler needs --executor dask")
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")


def make_executor(
    kind: str,
    *,
    workers: int,
    scheduler: str | None = None,
    insecure: bool = False,
    recheck: float | None = None,
    certs: str | os.PathLike[str] | None = None,
) -> Executor:
    """The executor named ``kind`` (``local`` or ``dask``) with ``workers`` processes; the
    Dask one reaches ``scheduler`` as ``insecure`` and ``certs`` say, and rechecks a share
    ``recheck`` of its tasks here (see :class:`~toolchain.run.executor.dask.DaskExecutor`)."""
    check_executor(kind, workers=workers, scheduler=scheduler)
    if kind == "local":
        from toolchain.run.executor.local import LocalExecutor

        return LocalExecutor(workers=workers)
    from toolchain.run.executor.dask import DaskExecutor

    return DaskExecutor(
        workers=workers, scheduler=scheduler, insecure=insecure, recheck=recheck, certs=certs
    )
