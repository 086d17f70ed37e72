"""The root of the ``benchmark-regen`` command line: a thin layer over the library.

Each command parses its arguments, calls one library function, prints the
result (``--json`` for machines) and maps it to an exit code. Errors of the
library (:class:`toolchain.errors.Error`) are caught in exactly one place,
:meth:`_Group.invoke`, and printed with their hint (as a JSON object on
stdout when the command was given ``--json``).

Exit codes (``toolchain.errors.ExitCode``): 0 ok, 1 a check failed (not
bit-exact), 2 usage error, 3 bad input, 4 environment error, 5 partial
result, 130 interrupted.
"""

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
