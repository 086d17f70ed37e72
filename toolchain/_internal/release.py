"""This release's version: one string every floor may read (``toolchain.__version__``,
the fingerprint's ``toolchain`` field, the shipped recipes' messages). It equals the
installed distribution's version (``pyproject.toml``; ``tests/unit/test_internal_release.py``)
and is read without ``importlib.metadata``, whose import alone is some 20 ms of every
pinned process's start."""

from __future__ import annotations

__all__ = ["VERSION"]

VERSION = "0.1.0"
