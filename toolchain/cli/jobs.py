"""``benchmark-regen jobs slurm|k8s``: batch-scheduler job files that run shard by shard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from toolchain.cli.options import EPILOG_EXIT_CODES, echo, emit_json, image_option, json_option

__all__ = ["jobs"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group("jobs", epilog=EPILOG_EXIT_CODES)
def jobs() -> None:
    """Write batch-scheduler job files that run the benchmark shard by shard."""


def _job_options(fn: F) -> F:
    for option in reversed([
        click.option("--name", required=True, help="Job name (lowercase letters, digits, '-')."),
        click.option("--shards", type=int, required=True, help="Number of shards N."),
        image_option,
        click.option("--original", default=None,
                     help="Shared path (Slurm) or PVC name (k8s) of the original, mounted "
                          "read-only at /original."),
        click.option("--out", "out_dir", required=True,
                     help="Shared path (Slurm) or PVC name (k8s) of the output."),
        click.option("--diff", default=None, help="With `diff apply`: path or PVC of the diff."),
        click.option("--write", "write_to", type=click.Path(path_type=Path),
                     help="Write the job file here instead of printing it."),
    ]):  # fmt: skip
        fn = option(fn)
    return fn


_command_argument = click.argument("command", nargs=-1, required=True)


def _emit(text: str, write_to: Path | None) -> None:
    if write_to is None:
        click.echo(text, nl=False)
        return
    from toolchain._internal.atomic import atomic_write

    atomic_write(write_to, text.encode())
    echo(f"wrote {write_to}", err=True)


def _spec(args: dict[str, Any]) -> Any:
    """Build the JobSpec from a jobs command's arguments."""
    from toolchain.cluster.jobs import JobSpec

    return JobSpec(
        name=args["name"],
        shards=args["shards"],
        image=args["image_tag"],
        command=args["command"],
        original=args["original"],
        out=args["out_dir"],
        diff=args["diff"],
        runtime=args.get("runtime") or "docker",
        time_limit=args.get("time_limit"),
    )


@jobs.command("slurm", epilog=EPILOG_EXIT_CODES)
@_job_options
@click.option(
    "--runtime",
    type=click.Choice(["docker", "none"]),
    default=None,
    help="docker: each task runs the pinned image. none: each task runs the benchmark-regen "
    "on the node's PATH, with the command's paths as they are. Default: docker when a Docker "
    "engine answers here or --original is given, else none.",
)
@click.option("--time", "time_limit", metavar="TIME", help="Slurm time limit per task (H:M:S).")
@click.option(
    "--submit", is_flag=True, help="Submit the array and its merge job with sbatch (needs --write)."
)
@click.option("--tasks", metavar="LIST", help="With --submit: only these shards, e.g. 1,3.")
@click.option(
    "--after",
    metavar="JOBID",
    multiple=True,
    help="With --submit: the merge also waits for this earlier job (after a rerun).",
)
@click.option("--wait", is_flag=True, help="With --submit: wait for the merge, print the root.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=86400.0,
    show_default=True,
    help="With --wait: give up after this many seconds (the jobs keep running).",
)
@json_option
@_command_argument
def slurm(
    name: str,
    shards: int,
    image_tag: str,
    original: str | None,
    out_dir: str,
    diff: str | None,
    write_to: Path | None,
    runtime: str | None,
    time_limit: str | None,
    submit: bool,
    tasks: str | None,
    after: tuple[str, ...],
    wait: bool,
    timeout: float,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """A Slurm array script: one array task per shard, then a merge job.

    COMMAND is what each shard runs after `benchmark-regen`: with container paths
    (/original, /out, /diff) for --runtime docker, the shared paths themselves
    for --runtime none. --submit first checks on this node what the tasks need
    (a Docker engine for --runtime docker, a writable --out the nodes share).

    \b
    Examples:
      benchmark-regen jobs slurm --name adv --shards 64 --original /shared/val \\
          --out /shared/adv -- generate --recipe adversarial --original /original --out /out
      benchmark-regen jobs slurm --name adv --shards 64 --runtime none --out /shared/adv \\
          --write adv.sbatch --submit --wait -- \\
          generate --recipe adversarial --original /shared/val --out /shared/adv
    """
    from toolchain.cluster.jobs import slurm_array_script, submit_slurm, wait_slurm
    from toolchain.cluster.preflight import check_submission, default_runtime

    for flag, used in (("--tasks", tasks), ("--after", after), ("--wait", wait)):
        if used and not submit:
            raise click.BadParameter(f"{flag} needs --submit", param_hint=flag)
    if submit and write_to is None:
        raise click.BadParameter("--submit needs --write FILE: sbatch runs that file",
                                 param_hint="--write")  # fmt: skip
    if runtime is None:
        runtime, note = default_runtime(image_tag, original_given=original is not None)
        if note:
            echo(f"note: {note}", err=True)
    spec = _spec(locals())
    _emit(slurm_array_script(spec), write_to)
    if not submit:
        return
    assert write_to is not None
    for note in check_submission(spec, write_to):
        echo(f"note: {note}", err=True)
    sub = submit_slurm(write_to, spec, tasks=tasks, after=after)
    report: dict[str, object] = {
        "merge_job": sub.merge_job,
        "shards_job": sub.shards_job,
        "tasks": sub.tasks,
    }
    if not as_json:
        echo(f"submitted shards {sub.tasks} as Slurm job {sub.shards_job}, "
             f"the merge as job {sub.merge_job}")  # fmt: skip
    if wait:
        manifest = wait_slurm(sub, spec, timeout=timeout)
        report["root"] = str(manifest.root)
        report["samples"] = len(manifest.entries)
        if not as_json:
            echo(f"merged {len(manifest.entries)} samples into {spec.out}")
            echo(f"root {manifest.root}")
    if as_json:
        emit_json(report)


@jobs.command("k8s", epilog=EPILOG_EXIT_CODES)
@_job_options
@_command_argument
def k8s(
    name: str,
    shards: int,
    image_tag: str,
    original: str | None,
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
    from toolchain.cluster.jobs import k8s_indexed_job

    _emit(k8s_indexed_job(_spec(locals())), write_to)
