"""``benchmark-regen manifest merge``: the shard manifests of one run, merged."""

from __future__ import annotations

from pathlib import Path

import click

from toolchain.cli.options import EPILOG_EXIT_CODES, echo, emit_json, json_option, out_option

__all__ = ["manifest"]


@click.group("manifest", epilog=EPILOG_EXIT_CODES)
def manifest() -> None:
    """Work with manifests (merge shard manifests)."""


@manifest.command("merge", epilog=EPILOG_EXIT_CODES)
# Not exists=True: a missing shard manifest is bad input named by the library (exit 3),
# with a hint about shared storage, not a usage error.
@click.argument("shards", nargs=-1, required=True, type=click.Path(path_type=Path))
@out_option("Where to write the merged manifest (e.g. BENCH/manifest.json).", dir_okay=False)
@json_option
def merge(shards: tuple[Path, ...], out: Path, as_json: bool) -> None:
    """Merge the shard manifests of one run; the root equals the unsharded run's.

    A shard that differs from the others (recipe, environment, ...) is named by
    majority, with the values that differ.

    \b
    Examples:
      benchmark-regen manifest merge bench/manifest.shard-*-of-4.json --out bench/manifest.json
    """
    from toolchain.run.shard import merge_files, write_merged

    merged = merge_files(shards)
    write_merged(merged, out)
    if as_json:
        emit_json({"out": str(out), "root": str(merged.root), "samples": len(merged.entries)})
        return
    echo(f"merged {len(shards)} shards, {len(merged.entries)} samples into {out}")
    echo(f"root {merged.root}")
