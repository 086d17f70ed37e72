"""The root ``benchmark-regen`` group: every command added to it, and the one place
(:meth:`_Group.invoke`) where library errors, Ctrl-C, SIGTERM and SIGHUP become a message
and an exit code."""

from __future__ import annotations

import contextlib
from importlib import import_module
from typing import Any

import click

import toolchain
from toolchain.cli.options import EPILOG_EXIT_CODES, JSON_REQUESTED, echo, emit_json, style
from toolchain.errors import Error, ExitCode, Interrupted
from toolchain.run.signals import Received, stop_like_ctrl_c

__all__ = ["cli"]


_COMMANDS = {
    "generate": "generate:generate",
    "verify": "verify:verify",
    "key": "signing:key",
    "sign": "signing:sign",
    "env": "info:env",
    "demo": "info:demo",
    "recipes": "info:list_recipes",
    "compare": "compare:compare",
    "manifest": "manifest:manifest",
    "jobs": "jobs:jobs",
    "image": "image:image",
    "diff": "diff:diff",
    "publish": "hub:publish",
    "get": "hub:get",
    "dask-worker": "cluster:dask_worker",
    "cluster": "cluster:cluster",
}
"""Every command, and where it lives (``toolchain.cli.MODULE:NAME``): a command's module
is imported when the command is looked up, so ``--version`` or one command's run does not
pay for the others' imports (the container builder's, the Hub's)."""


class _Group(click.Group):
    """The root group: commands loaded on first use (:data:`_COMMANDS`), and the one place
    where library errors become exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = _COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, name = where.split(":")
        command = getattr(import_module(f"toolchain.cli.{module}"), name)
        assert isinstance(command, click.Command) and command.name == cmd_name, where
        return command

    def invoke(self, ctx: click.Context) -> Any:
        with stop_like_ctrl_c() as received:
            try:
                return super().invoke(ctx)
            except Error as e:
                if not isinstance(e, Interrupted):
                    _report(ctx, e.to_json(), e.diagnostics())
                    ctx.exit(int(e.exit_code))
                # Ctrl-C exits 130, SIGTERM 143 and SIGHUP 129, with the same hint.
                code = received.exit_code(e.exit_code)
                _report(ctx, {**e.to_json(), "exit_code": code}, _by(received) + e.diagnostics())
                ctx.exit(code)
            except KeyboardInterrupt:
                code = received.exit_code(ExitCode.INTERRUPTED)
                doc = {"exit_code": code, "kind": "Interrupted", "message": "interrupted"}
                _report(ctx, doc, _by(received) + "interrupted", label=False)
                ctx.exit(code)


def _by(received: Received) -> str:
    """``SIGTERM: `` before an interruption's text when a signal, not Ctrl-C, made it."""
    return f"{received.signum.name}: " if received.signum is not None else ""


def _report(ctx: click.Context, doc: dict[str, object], text: str, *, label: bool = True) -> None:
    """The error as JSON (with ``--json``) and as text on stderr (``label``: after ``error:``)."""
    # After SIGHUP the terminal may be gone: then the exit code alone tells.
    with contextlib.suppress(OSError):
        if ctx.meta.get(JSON_REQUESTED):
            emit_json({"error": doc})
        echo((style("error: ", fg="red", bold=True) if label else "") + text, err=True)


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
