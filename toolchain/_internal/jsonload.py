"""The one bounded JSON reader: bytes in, a value out, or the caller's error, never a traceback."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from toolchain.errors import Error

__all__ = ["load_json"]


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def load_json(data: bytes | str, *, what: str, error: type[Error], hint: str | None = None) -> Any:
    """Parse ``data`` (UTF-8), naming ``what`` in ``error`` when it is not strict JSON (NaN and
    Infinity refused), not UTF-8, or nested too deep for the parser (a RecursionError, caught:
    the formats we read nest a few levels, a hostile file thousands). Size is the caller's
    bound: read ``data`` through :mod:`toolchain._internal.safefs` with a limit."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError as e:
        detail = f"not UTF-8 at byte {e.start}"
    except RecursionError:
        detail = "nested too deep"
    except ValueError as e:
        detail = str(e)
    raise error(
        f"{what}: not valid JSON ({detail})",
        hint=hint or "the file is corrupt or was not written by benchmark-regen: replace it",
    )
