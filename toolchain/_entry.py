"""The console-script entry point: pin the process first, then load the CLI.

Nothing here may import numpy: the determinism guard must run before it.
"""

from __future__ import annotations

import sys

from toolchain.run.determinism import reexec_pinned


def main() -> None:
    reexec_pinned(sys.argv[1:])
    from toolchain.cli import cli

    cli(prog_name="benchmark-regen")
