"""``benchmark-regen verify``: recompute every hash of a benchmark against its manifest."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from toolchain.cli.options import (
    EPILOG_EXIT_CODES,
    echo,
    emit_json,
    json_option,
    progress,
    quiet_option,
    style,
)
from toolchain.errors import ExitCode

__all__ = ["verify"]


@click.command(epilog=EPILOG_EXIT_CODES)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    help="Manifest to check against (default: DIRECTORY/manifest.json).",
)
@click.option(
    "--pubkey",
    type=click.Path(path_type=Path),
    default=None,
    help="Publisher's Ed25519 public key: the manifest must carry a valid signature.",
)
@click.option(
    "--signature",
    type=click.Path(path_type=Path),
    default=None,
    help="Signature file (default: manifest.sig beside the manifest).",
)
@json_option
@quiet_option
def verify(
    directory: Path,
    manifest: Path | None,
    pubkey: Path | None,
    signature: Path | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Recompute every hash of a benchmark folder; exit 0 only if it is bit-exact.

    \b
    Examples:
      benchmark-regen verify ./bench
      benchmark-regen verify ./bench --manifest published-manifest.json --json
      benchmark-regen verify ./bench --pubkey publisher.pub
    """
    from toolchain.audit.verify import verify_benchmark

    if signature is not None and pubkey is None:
        raise click.BadParameter("needs --pubkey to check it against", param_hint="--signature")
    with progress("verify", quiet=quiet or as_json) as bar:
        report = verify_benchmark(
            directory, manifest=manifest, progress=bar, pubkey=pubkey, signature=signature
        )
    if as_json:
        emit_json(report.to_json())
    else:
        if not report.root_consistent:
            echo("manifest: root hash does not match its entries (tampered or corrupt)")
        for p in report.problems:
            who = f" ({p.sample})" if p.sample and p.sample != p.path else ""
            echo(f"{p.problem:>14}  {p.path}{who}  {p.detail}")
        for note in report.notes:
            echo(f"note: {note}")
        if report.partial:
            echo("this folder holds a partial result: it is not the full benchmark")
        if report.manifest.shard is not None:
            echo(f"this is shard {report.manifest.shard}: merge the shards to verify the whole")
        if report.signature_problem is not None:
            echo(f"signature: {report.signature_problem}")
        elif report.signature is not None:
            echo(f"signature: valid, by {report.signature.keyid}")
        verdict = (
            style("OK", fg="green", bold=True)
            if report.ok
            else style("FAILED", fg="red", bold=True)
        )
        echo(f"{verdict}: {report.checked} samples checked, {len(report.problems)} problems")
        echo(f"root {report.manifest.root}")
    sys.exit(ExitCode.OK if report.ok else ExitCode.CHECK_FAILED)
