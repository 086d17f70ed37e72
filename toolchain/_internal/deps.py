"""The optional Hugging Face packages (the ``benchmark-regen[hf]`` extra), imported on first
use: the core runs without them (no stability guarantee)."""

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
