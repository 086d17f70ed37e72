"""The ``benchmark-regen`` command line, a thin layer over the library: :mod:`.options`
(shared), one module per command group above it, and :mod:`.main`, the root group."""

from __future__ import annotations

from toolchain.cli.main import cli

__all__ = ["cli"]
