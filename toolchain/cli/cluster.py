"""``benchmark-regen dask-worker``: a pinned Dask worker for ``--executor dask --scheduler``."""

from __future__ import annotations

import click

from toolchain.cli.options import EPILOG_EXIT_CODES

__all__ = ["dask_worker"]


@click.command(
    "dask-worker",
    epilog=EPILOG_EXIT_CODES,
    context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]},
)
@click.argument(
    "worker_args", nargs=-1, type=click.UNPROCESSED, metavar="SCHEDULER [DASK-WORKER-OPTIONS]..."
)
def dask_worker(worker_args: tuple[str, ...]) -> None:
    """Start a Dask worker, pinned, for `--executor dask --scheduler SCHEDULER`.

    Everything after the command goes to `dask worker`: the scheduler address
    (or --scheduler-file FILE) and its options (--nworkers, --memory-limit,
    --name, ...). The worker runs in the determinism guard's pinned environment,
    like every process that computes pixels, and one task at a time per worker
    process (--nthreads 1): scale with --nworkers. Runs until stopped.

    \b
    Examples:
      dask scheduler --port 8786                                   # on the head node
      benchmark-regen dask-worker tcp://head:8786 --nworkers 8     # on each node
      benchmark-regen generate --recipe adversarial --original /shared/val \\
          --out /shared/adv --executor dask --scheduler tcp://head:8786
    """
    from toolchain._internal.argv import option_value
    from toolchain.cluster.dask_worker import exec_pinned_worker

    threads = option_value(worker_args, "--nthreads")
    if threads is not None and threads != "1":
        raise click.BadParameter(
            f"{threads!r}: each worker process runs one task at a time (recipes seed the "
            "global random state per sample); start more processes with --nworkers",
            param_hint="--nthreads",
        )
    if option_value(worker_args, "--nworkers") == "auto":
        raise click.BadParameter(
            "'auto' also picks several threads per process; give a number "
            "(-1: one process per CPU)",
            param_hint="--nworkers",
        )
    if not worker_args:
        raise click.UsageError("give the scheduler address (or --scheduler-file FILE)")
    exec_pinned_worker(worker_args)
