"""Reading options out of a command line we pass on (no stability guarantee)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["option_value"]


def option_value(argv: Sequence[str], option: str) -> str | None:
    """The value of ``option`` in ``argv`` (``--opt V`` or ``--opt=V``); the last one wins."""
    value = None
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value
