"""The progress callback every long step takes: called with (done, total) as work finishes."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress"]

Progress = Callable[[int, int], None]
