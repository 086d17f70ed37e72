"""``benchmark-regen jobs slurm|k8s``: batch-scheduler job files that run shard by shard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from toolchain.cli.options import EPILOG_EXIT_CODES, echo, image_option

__all__ = ["jobs"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group("jobs", epilog=EPILOG_EXIT_CODES)
def jobs() -> None:
    """Write batch-scheduler job files that run the pinned image shard by shard."""


def _job_options(fn: F) -> F:
    for option in reversed([
        click.option("--name", required=True, help="Job name (lowercase letters, digits, '-')."),
        click.option("--shards", type=int, required=True, help="Number of shards N."),
        image_option,
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
    echo(f"wrote {write_to}", err=True)


def _emit_job(writer: Callable[[Any], str], args: dict[str, Any]) -> None:
    """Build the JobSpec from a jobs command's arguments and emit the writer's file."""
    from toolchain.jobs import JobSpec

    spec = JobSpec(
        name=args["name"],
        shards=args["shards"],
        image=args["image_tag"],
        command=args["command"],
        original=args["original"],
        out=args["out_dir"],
        diff=args["diff"],
    )
    _emit(writer(spec), args["write_to"])


@jobs.command("slurm", epilog=EPILOG_EXIT_CODES)
@_job_options
def slurm(
    name: str,
    shards: int,
    image_tag: str,
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


@jobs.command("k8s", epilog=EPILOG_EXIT_CODES)
@_job_options
def k8s(
    name: str,
    shards: int,
    image_tag: str,
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
