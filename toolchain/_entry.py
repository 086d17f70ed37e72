"""The console-script entry point: pin the process first, then load the CLI.

Nothing here may import numpy: the determinism guard must run before it.
"""

from __future__ import annotations

import sys

from toolchain.run.determinism import reexec_pinned

_PRINT_ONLY = frozenset({"--help", "-h", "--version"})


def prints_only(argv: list[str]) -> bool:
    """Does this command line only print help or the version? ``--version``, or ``--help``
    after command names and arguments alone (no option before it, so that it cannot be an
    option's value): Click prints and exits before any command runs, so no pixel is made
    and the pinned copy of the process (a second interpreter) is not needed."""
    if not argv:
        return True  # the usage and the command list
    *before, last = argv
    return last in _PRINT_ONLY and not any(a.startswith("-") for a in before)


def main() -> None:
    argv = sys.argv[1:]
    if not prints_only(argv):
        reexec_pinned(argv)
    from toolchain.cli import cli

    cli(prog_name="benchmark-regen")
