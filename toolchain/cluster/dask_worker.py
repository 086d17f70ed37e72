"""Start a Dask worker in the pinned environment (no stability guarantee): replace this pinned
process with ``dask worker``, one thread per process (``docs/scale-out.md``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence

from toolchain._internal.argv import option_value
from toolchain.errors import ClusterError, DeterminismError
from toolchain.run.determinism import pinned_environ, process_is_pinned

__all__ = ["exec_pinned_worker", "worker_argv"]


def worker_argv(args: Sequence[str]) -> list[str]:
    """The ``dask worker`` command line: ``args``, with one thread per process."""
    extra = [] if option_value(args, "--nthreads") is not None else ["--nthreads", "1"]
    return [sys.executable, "-m", "distributed.cli.dask_worker", *args, *extra]


def exec_pinned_worker(args: Sequence[str]) -> None:
    """Replace this (pinned) process with a pinned ``dask worker``; never returns."""
    if importlib.util.find_spec("distributed") is None:
        raise ClusterError(
            "Dask's 'distributed' package is not installed, so no Dask worker can start",
            hint="pip install 'benchmark-regen[dask]' (the pinned image has it)",
        )
    if not process_is_pinned():  # pragma: no cover - the console script pins first
        raise DeterminismError(
            "dask-worker must start pinned", hint="run it as `benchmark-regen dask-worker`"
        )
    argv = worker_argv(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, pinned_environ())
