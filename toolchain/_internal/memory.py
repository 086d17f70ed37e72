"""Keeping a long run's resident memory flat under glibc's allocator (a no-op elsewhere);
it cannot change a byte of output. Why and measured: docs/internals.md."""

from __future__ import annotations

import ctypes
import functools
import time
from typing import Any

__all__ = ["MMAP_THRESHOLD", "TRIM_SECONDS", "TRIM_THRESHOLD", "Trimmer", "tune_allocator"]

MMAP_THRESHOLD = 32 << 20
"""Blocks of this many bytes or more are mapped on their own (glibc ``M_MMAP_THRESHOLD``)."""
TRIM_THRESHOLD = 32 << 20
"""Free heap top kept before glibc trims on its own (``M_TRIM_THRESHOLD``)."""
TRIM_SECONDS = 0.25
"""How often a busy process gives its free heap pages back."""

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3


@functools.cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018 - glibc (or a libc with mallopt and malloc_trim)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


@functools.cache
def tune_allocator() -> bool:
    """Set the two thresholds, once per process; ``False`` where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return True


class Trimmer:
    """Call :meth:`tick` after each sample (or batch); every ``seconds`` at most, and at
    the first tick (what the set-up freed), it returns the heap's free pages."""

    def __init__(self, seconds: float = TRIM_SECONDS):
        self.seconds = seconds
        self._libc = _libc()
        self._next = 0.0

    def tick(self) -> None:
        if self._libc is None:
            return
        now = time.monotonic()
        if now >= self._next:
            self._libc.malloc_trim(0)
            self._next = now + self.seconds
