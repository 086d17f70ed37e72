"""Start a Dask worker in the pinned environment (no stability guarantee): check how it reaches
its scheduler, then replace this pinned process with ``dask worker``, one thread per process."""

from __future__ import annotations

import copy
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from toolchain._internal.argv import option_value
from toolchain.errors import ClusterError, DeterminismError, InputError
from toolchain.run.determinism import pinned_environ, process_is_pinned
from toolchain.run.executor.tls import check_scheduler_address

__all__ = ["check_worker_args", "exec_pinned_worker", "worker_argv"]

_CERTS = (
    "--tls-ca-file DIR/ca.pem --tls-cert DIR/NODE.pem --tls-key DIR/NODE.key, from "
    "`benchmark-regen cluster certs --out DIR --node NODE`"
)


def worker_argv(args: Sequence[str]) -> list[str]:
    """The ``dask worker`` command line: ``args``, with one thread per process."""
    extra = [] if option_value(args, "--nthreads") is not None else ["--nthreads", "1"]
    return [sys.executable, "-m", "distributed.cli.dask_worker", *args, *extra]


def _parsed(args: Sequence[str]) -> Mapping[str, Any]:
    """``args`` as ``dask worker`` reads them, without running its option callbacks (one
    of them imports the ``--preload`` modules)."""
    import click
    from distributed.cli.dask_worker import main

    params = []
    for param in main.params:
        quiet = copy.copy(param)
        quiet.callback = None
        params.append(quiet)
    command = click.Command("dask-worker", params=params)
    with command.make_context("dask-worker", list(args), resilient_parsing=True) as ctx:
        return dict(ctx.params)


def check_worker_args(args: Sequence[str], *, insecure: bool = False) -> None:
    """Refuse a scheduler this worker would reach unauthenticated: an address without a
    scheme (``dask worker`` would use plain TCP), plain ``tcp://`` to another host unless
    ``insecure``, and ``tls://`` without this worker's certificate."""
    params = _parsed(args)
    scheduler = params.get("scheduler")
    if not scheduler:
        return  # --scheduler-file: the address is the scheduler's to write
    if "://" not in scheduler:
        raise InputError(
            f"{scheduler!r} has no scheme, and `dask worker` would reach it over plain TCP",
            hint=f"give tls://{scheduler} with {_CERTS}",
        )
    try:
        address = check_scheduler_address(scheduler, insecure=insecure)
    except InputError as e:
        scheme, _, rest = scheduler.partition("://")
        loose = "; or --insecure if this network is yours alone" if scheme == "tcp" else ""
        raise InputError(e.message, hint=f"use tls://{rest} with {_CERTS}{loose}") from None
    if address.startswith("tls://"):
        import dask

        ca = params.get("tls_ca_file") or dask.config.get("distributed.comm.tls.ca-file", None)
        cert = params.get("tls_cert") or dask.config.get("distributed.comm.tls.worker.cert", None)
        if not (ca and cert):
            raise InputError(
                f"a worker of the tls:// scheduler {scheduler} needs its certificate",
                hint=f"add {_CERTS}",
            )


def exec_pinned_worker(args: Sequence[str], *, insecure: bool = False) -> None:
    """Replace this (pinned) process with a pinned ``dask worker``; never returns."""
    if importlib.util.find_spec("distributed") is None:
        raise ClusterError(
            "Dask's 'distributed' package is not installed, so no Dask worker can start",
            hint="pip install 'benchmark-regen[dask]' (the pinned image has it)",
        )
    check_worker_args(args, insecure=insecure)
    if not process_is_pinned():  # pragma: no cover - the console script pins first
        raise DeterminismError(
            "dask-worker must start pinned", hint="run it as `benchmark-regen dask-worker`"
        )
    argv = worker_argv(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, pinned_environ())
