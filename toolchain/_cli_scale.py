"""CLI for scale-out: ``manifest merge`` and ``jobs slurm|k8s`` (thin, like cli.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from toolchain.cli import EPILOG_EXIT_CODES, _echo, _emit_json, json_option

__all__ = ["jobs", "manifest"]


@click.group("manifest", epilog=EPILOG_EXIT_CODES)
def _manifest() -> None:
    """Work with manifests (merge shard manifests)."""


@_manifest.command("merge", epilog=EPILOG_EXIT_CODES)
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write the merged manifest (e.g. BENCH/manifest.json).",
)
@json_option
def merge(shards: tuple[Path, ...], out: Path, as_json: bool) -> None:
    """Merge the shard manifests of one run; the root equals the unsharded run's.

    \b
    Examples:
      benchmark-regen manifest merge bench/manifest.shard-*-of-4.json --out bench/manifest.json
    """
    from toolchain.generate import write_merged
    from toolchain.manifest import load_manifest
    from toolchain.shard import merge_manifests

    merged = merge_manifests([load_manifest(p) for p in shards])
    write_merged(merged, out)
    if as_json:
        _emit_json({"out": str(out), "root": str(merged.root), "samples": len(merged.entries)})
        return
    _echo(f"merged {len(shards)} shards, {len(merged.entries)} samples into {out}")
    _echo(f"root {merged.root}")


@click.group("jobs", epilog=EPILOG_EXIT_CODES)
def _jobs() -> None:
    """Write batch-scheduler job files that run the pinned image shard by shard."""


F = TypeVar("F", bound=Callable[..., Any])


def _job_options(fn: F) -> F:
    for option in reversed([
        click.option("--name", required=True, help="Job name (lowercase letters, digits, '-')."),
        click.option("--shards", type=int, required=True, help="Number of shards N."),
        click.option("--image", default="benchmark-regen:latest", show_default=True,
                     help="The pinned image (use its digest in production)."),
        click.option("--original", required=True,
                     help="Shared path (Slurm) or PVC name (k8s) of the original."),
        click.option("--out", "out_dir", required=True,
                     help="Shared path (Slurm) or PVC name (k8s) of the output."),
        click.option("--diff", default=None, help="With `diff apply`: path or PVC of the diff."),
        click.option("--write", "write_to", type=click.Path(path_type=Path),
                     help="Write the job file here instead of printing it."),
        click.argument("command", nargs=-1, required=True),
    ]):  # fmt: skip
        fn = option(fn)
    return fn


def _emit(text: str, write_to: Path | None) -> None:
    if write_to is None:
        click.echo(text, nl=False)
        return
    from toolchain._internal.atomic import atomic_write

    atomic_write(write_to, text.encode())
    _echo(f"wrote {write_to}", err=True)


def _emit_job(writer: Callable[[Any], str], args: dict[str, Any]) -> None:
    """Build the JobSpec from a jobs command's arguments and emit the writer's file."""
    from toolchain.jobs import JobSpec

    spec = JobSpec(
        name=args["name"],
        shards=args["shards"],
        image=args["image"],
        command=args["command"],
        original=args["original"],
        out=args["out_dir"],
        diff=args["diff"],
    )
    _emit(writer(spec), args["write_to"])


@_jobs.command("slurm", epilog=EPILOG_EXIT_CODES)
@_job_options
def slurm(
    name: str,
    shards: int,
    image: str,
    original: str,
    out_dir: str,
    diff: str | None,
    write_to: Path | None,
    command: tuple[str, ...],
) -> None:
    """A Slurm array script: one array task per shard, then a merge step.

    COMMAND is what each shard runs after `benchmark-regen`, with container paths.

    \b
    Examples:
      benchmark-regen jobs slurm --name adv --shards 64 --original /shared/val \\
          --out /shared/adv -- generate --recipe adversarial --original /original --out /out
    """
    from toolchain.jobs import slurm_array_script

    _emit_job(slurm_array_script, locals())


@_jobs.command("k8s", epilog=EPILOG_EXIT_CODES)
@_job_options
def k8s(
    name: str,
    shards: int,
    image: str,
    original: str,
    out_dir: str,
    diff: str | None,
    write_to: Path | None,
    command: tuple[str, ...],
) -> None:
    """A Kubernetes Indexed Job (one pod per shard) plus a merge Job, as YAML.

    \b
    Examples:
      benchmark-regen jobs k8s --name adv --shards 16 --original imagenet-val-pvc \\
          --out adv-pvc -- generate --recipe adversarial --original /original --out /out
    """
    from toolchain.jobs import k8s_indexed_job

    _emit_job(k8s_indexed_job, locals())


# Typed aliases: cli.py imports these (the import cycle hides decorated types from mypy).
manifest: click.Group = _manifest
jobs: click.Group = _jobs
