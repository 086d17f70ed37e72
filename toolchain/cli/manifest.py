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
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@out_option("Where to write the merged manifest (e.g. BENCH/manifest.json).", dir_okay=False)
@json_option
def merge(shards: tuple[Path, ...], out: Path, as_json: bool) -> None:
    """Merge the shard manifests of one run; the root equals the unsharded run's.

    \b
    Examples:
      benchmark-regen manifest merge bench/manifest.shard-*-of-4.json --out bench/manifest.json
    """
    from toolchain.model.manifest import load_manifest
    from toolchain.run.shard import merge_manifests, write_merged

    merged = merge_manifests([load_manifest(p) for p in shards])
    write_merged(merged, out)
    if as_json:
        emit_json({"out": str(out), "root": str(merged.root), "samples": len(merged.entries)})
        return
    echo(f"merged {len(shards)} shards, {len(merged.entries)} samples into {out}")
    echo(f"root {merged.root}")
