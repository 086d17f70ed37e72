"""The root ``benchmark-regen`` group: every command added to it, and the one place
(:meth:`_Group.invoke`) where library errors and Ctrl-C become a message and an exit code."""

from __future__ import annotations

from typing import Any

import click

import toolchain
from toolchain.cli import compare, diff, generate, image, info, jobs, manifest, signing, verify
from toolchain.cli.cluster import dask_worker
from toolchain.cli.options import EPILOG_EXIT_CODES, JSON_REQUESTED, echo, emit_json, style
from toolchain.errors import Error, ExitCode

__all__ = ["cli"]


class _Group(click.Group):
    """The root group: the one place where library errors become exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Error as e:
            if ctx.meta.get(JSON_REQUESTED):
                emit_json({"error": e.to_json()})
            echo(style("error: ", fg="red", bold=True) + e.diagnostics(), err=True)
            ctx.exit(int(e.exit_code))
        except KeyboardInterrupt:
            if ctx.meta.get(JSON_REQUESTED):
                emit_json(
                    {"error": {"exit_code": 130, "kind": "Interrupted", "message": "interrupted"}}
                )
            echo("interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


@click.group(
    cls=_Group, epilog=EPILOG_EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(toolchain.__version__, prog_name="benchmark-regen")
def cli() -> None:
    """Regenerate image benchmarks bit for bit, and prove it.

    \b
    Examples:
      benchmark-regen demo
      benchmark-regen generate --recipe gaussian-noise --original ./imagenet-val --out ./bench
      benchmark-regen verify ./bench
      benchmark-regen env --json
    """


for _command in (
    generate.generate,
    verify.verify,
    signing.key,
    signing.sign,
    info.env,
    info.demo,
    info.list_recipes,
    compare.compare,
    manifest.manifest,
    jobs.jobs,
    image.image,
    diff.diff,
    dask_worker,
):
    cli.add_command(_command)
