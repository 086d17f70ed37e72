"""The optional Hugging Face packages, imported on first use (no stability guarantee).

``datasets``, ``pyarrow`` and ``mlcroissant`` are the extra
``benchmark-regen[hf]``: the core must import and run without them, and using
a Hugging Face source or output without them must say how to get them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from toolchain.errors import InputError

__all__ = ["HF_EXTRA_HINT", "require"]

HF_EXTRA_HINT = "pip install 'benchmark-regen[hf]'"


def require(module: str, *, purpose: str = "Hugging Face datasets") -> ModuleType:
    """Import ``module`` (e.g. ``pyarrow.parquet``) or raise a clear :class:`InputError`."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".", 1)[0]
        raise InputError(
            f"{purpose} need the optional package {top!r}, which is not installed ({e})",
            hint=HF_EXTRA_HINT,
        ) from None
