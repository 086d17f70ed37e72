"""Shared helpers of the CLI tests: run a command in this process, the argument lists
they repeat (``generate``, ``diff create``, ``diff apply``), and the no-traceback check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from tests.diff_cases import pinned as pinned_process
from toolchain.cli import cli

__all__ = [
    "diff_apply_args",
    "diff_create_args",
    "generate_args",
    "no_traceback",
    "options",
    "run_cli",
]

Option = str | Path | int | bool | Sequence[str] | None


def options(**opts: Option) -> list[str]:
    """``--name value`` per option, in the order given (``_`` in a name becomes ``-``):
    ``True`` is a bare flag, ``False`` and ``None`` leave the option out, a list repeats it."""
    argv: list[str] = []
    for name, value in opts.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, str | Path | int):
            argv += [flag, str(value)]
        else:
            for item in value:
                argv += [flag, item]
    return argv


def generate_args(original: Path, out: Path, recipe: str = "identity", **opts: Option) -> list[str]:
    """``generate --recipe RECIPE --original ORIGINAL --out OUT`` and :func:`options`."""
    return ["generate", "--recipe", recipe, "--original", str(original), "--out", str(out),
            *options(**opts)]  # fmt: skip


def diff_create_args(original: Path, benchmark: Path, out: Path, **opts: Option) -> list[str]:
    """``diff create --original ORIGINAL --benchmark BENCHMARK --out OUT`` and :func:`options`."""
    return ["diff", "create", "--original", str(original), "--benchmark", str(benchmark),
            "--out", str(out), *options(**opts)]  # fmt: skip


def diff_apply_args(original: Path, diff: Path, out: Path, **opts: Option) -> list[str]:
    """``diff apply --original ORIGINAL --diff DIFF --out OUT`` and :func:`options`."""
    return ["diff", "apply", "--original", str(original), "--diff", str(diff), "--out", str(out),
            *options(**opts)]  # fmt: skip


def run_cli(*args: str | Path, pinned: bool = False, **invoke: Any) -> Result:
    """``benchmark-regen ARGS`` through Click's :class:`CliRunner` in this process.

    ``pinned``: this process counts as pinned for the call, so the pipeline runs here
    without spawning a worker pool. ``invoke`` goes to :meth:`CliRunner.invoke`
    (``env``, ``color``, ``catch_exceptions``...).
    """
    argv = [str(a) for a in args]
    if not pinned:
        return CliRunner().invoke(cli, argv, **invoke)
    with pinned_process():
        return CliRunner().invoke(cli, argv, **invoke)


def no_traceback(result: Result) -> Result:
    """Check that the command ended by exiting (an exit code, never an escaped exception)
    and printed no traceback; return ``result``."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}"
    )
    assert "Traceback" not in result.output
    return result
