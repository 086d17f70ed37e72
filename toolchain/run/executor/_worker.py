"""What runs inside every worker, whatever the executor, and the run object they feed."""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from toolchain.errors import DeterminismError, Error
from toolchain.model.drift import describe_differences, fingerprint_differences
from toolchain.run.determinism import (
    apply_process_settings,
    pinned_spawn_context,
    process_is_pinned,
)
from toolchain.run.fingerprint import fingerprint_digest, runtime_fingerprint

__all__ = [
    "OrderedRun",
    "WorkerBug",
    "check_pinned",
    "check_same_environment",
    "portable_error",
    "worker_fingerprint",
]

R = TypeVar("R")


def check_pinned() -> None:
    """Refuse to compute pixels in a process that was not started pinned."""
    if not process_is_pinned():
        raise DeterminismError(
            "a worker process is not running in the pinned environment",
            hint="run through the benchmark-regen command, or let the library spawn workers; "
            "Dask workers: start them with `benchmark-regen dask-worker`",
        )


def start_worker() -> Mapping[str, str]:
    """Pin this worker's process settings and return its fingerprint."""
    apply_process_settings()
    check_pinned()
    return runtime_fingerprint()


class WorkerBug(Exception):
    """An unexpected exception in a worker (a bug): carries the worker's traceback text."""


def portable_error(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling as itself (our errors do), else a :class:`WorkerBug`."""
    if isinstance(exc, Error):
        return exc
    text = "".join(traceback.format_exception(exc))
    return WorkerBug(f"a worker raised {type(exc).__name__}: {exc}\n{text}")


def check_same_environment(fingerprints: Mapping[str, Mapping[str, str]]) -> Mapping[str, str]:
    """The one fingerprint all workers share; refuse a worker that differs, naming it.

    The reference is the first pinned worker (by name); a worker that is not pinned is
    refused with the fields in which it differs from that reference.
    """
    if not fingerprints:
        raise DeterminismError("no worker reported its runtime fingerprint")
    names = sorted(fingerprints)
    pinned = [n for n in names if fingerprints[n].get("pinned") == "true"]
    ref_name = pinned[0] if pinned else names[0]
    reference = fingerprints[ref_name]
    for name in names:
        fp = fingerprints[name]
        diff = fingerprint_differences(reference, fp)
        if fp.get("pinned") != "true":
            detail = f" (it differs from worker {ref_name} in {describe_differences(diff)})"
            raise DeterminismError(
                f"worker {name} is not running in the pinned environment"
                + (detail if diff else ""),
                hint="start workers with `benchmark-regen dask-worker`, or from the pinned image",
            )
        if diff:
            raise DeterminismError(
                f"worker {name} runs in a different environment from worker {ref_name} "
                f"({describe_differences(diff)})",
                hint="every worker must run the same pinned environment (the same image)",
            )
    return reference


class OrderedRun(Generic[R]):
    """Results in task order, each checked to come from the run's environment."""

    def __init__(self, results: Iterator[tuple[R, str]], fingerprint: Mapping[str, str]):
        self._results = results
        self.fingerprint = fingerprint
        self.digest = fingerprint_digest(fingerprint)

    def __iter__(self) -> Iterator[R]:
        for result, digest in self._results:
            if digest != self.digest:
                raise DeterminismError(
                    f"a worker's runtime fingerprint ({digest}) differs from the run's "
                    f"({self.digest})",
                    hint="every worker must run the same pinned environment; "
                    "see `benchmark-regen env` on each machine",
                )
            yield result


def _fingerprint_in_child() -> dict[str, str]:
    return dict(start_worker())


def worker_fingerprint() -> Mapping[str, str]:
    """The fingerprint of a process that would compute pixels (this one, if pinned)."""
    if process_is_pinned():
        apply_process_settings()
        return runtime_fingerprint()
    from concurrent.futures import ProcessPoolExecutor

    with (
        pinned_spawn_context() as ctx,
        ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool,
    ):
        return pool.submit(_fingerprint_in_child).result(timeout=300)
