"""``benchmark-regen dask-worker`` (a pinned Dask worker for ``--executor dask --scheduler``) and
``benchmark-regen cluster certs`` (the cluster's TLS certificates)."""

from __future__ import annotations

from pathlib import Path

import click

from toolchain.cli.options import EPILOG_EXIT_CODES, echo, emit_json, json_option

__all__ = ["cluster", "dask_worker"]


@click.command(
    "dask-worker",
    epilog=EPILOG_EXIT_CODES,
    context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]},
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow a plain tcp:// scheduler on another host (unauthenticated, unencrypted).",
)
@click.argument(
    "worker_args", nargs=-1, type=click.UNPROCESSED, metavar="SCHEDULER [DASK-WORKER-OPTIONS]..."
)
def dask_worker(insecure: bool, worker_args: tuple[str, ...]) -> None:
    """Start a Dask worker, pinned, for `--executor dask --scheduler SCHEDULER`.

    Everything after the command goes to `dask worker`: the scheduler address
    (or --scheduler-file FILE) and its options (--nworkers, --memory-limit,
    --name, --tls-ca-file, ...). The worker runs in the determinism guard's pinned
    environment, like every process that computes pixels, and one task at a time per
    worker process (--nthreads 1): scale with --nworkers. Runs until stopped.

    The scheduler is reached over TLS with this node's certificate (`cluster certs`):
    an address without a scheme, and plain tcp:// to another host without --insecure,
    are refused.

    \b
    Examples:
      benchmark-regen cluster certs --out certs --node node1         # once, anywhere
      dask scheduler --host 10.0.0.1 --protocol tls --tls-ca-file certs/ca.pem \\
          --tls-cert certs/scheduler.pem --tls-key certs/scheduler.key  # head node
      benchmark-regen dask-worker tls://10.0.0.1:8786 --nworkers 8 \\
          --tls-ca-file certs/ca.pem --tls-cert certs/node1.pem \\
          --tls-key certs/node1.key                                     # each node
      benchmark-regen generate --recipe adversarial --original /shared/val \\
          --out /shared/adv --executor dask --scheduler tls://10.0.0.1:8786 --certs certs
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
    exec_pinned_worker(worker_args, insecure=insecure)


@click.group("cluster", epilog=EPILOG_EXIT_CODES)
def cluster() -> None:
    """Set up the machines of a Dask cluster."""


@cluster.command("certs", epilog=EPILOG_EXIT_CODES)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A new folder (made private, 0700), or one of ours that holds a CA to add nodes.",
)
@click.option(
    "--node",
    "nodes",
    multiple=True,
    metavar="NAME",
    help="A worker node to make a certificate for; repeatable (default: one named 'worker').",
)
@click.option(
    "--days",
    type=click.IntRange(1, 365),  # tls.MAX_CERT_DAYS, tls.CERT_DAYS: not imported for --help's
    default=30,  # sake (cryptography); tests/integration/test_cli_cluster.py holds them equal
    show_default=True,
    help="Validity of every certificate (Dask checks no revocation: keep it short).",
)
@json_option
def certs(out: Path, nodes: tuple[str, ...], days: int, as_json: bool) -> None:
    """Make a CA and TLS certificates for the scheduler, this client and each worker node.

    Writes ca.pem and ca.key, then NAME.pem and NAME.key (ECDSA P-256, keys mode 0600)
    for `scheduler`, `client` and each --node. Copy to each machine only ca.pem and its
    own pair; keep ca.key here, to add nodes later (`--out` the same folder, `--node`).

    \b
    Examples:
      benchmark-regen cluster certs --out certs --node node1 --node node2
      benchmark-regen cluster certs --out certs --node node3     # add a node later
    """
    from toolchain.cluster.certs import make_certs

    result = make_certs(out, nodes, days=days)
    if as_json:
        emit_json(result.to_json())
        return
    made = "a new CA and " if result.ca_made else "with the CA there, "
    echo(f"wrote {made}certificates for {', '.join(result.nodes)} into {result.folder}")
    echo(f"they expire on {result.expires:%Y-%m-%d %H:%M} UTC")
