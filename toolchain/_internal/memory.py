"""Keeping a long run's resident memory flat under glibc's allocator.

A process of a run handles a stream of buffers from a few KiB to megabytes
(originals, sealed payloads, arrays, PNG bytes, pickled batches of tasks) and frees
each as its sample ends. By default glibc raises its mmap threshold to the largest
block freed, so megabyte buffers come to live on the heap, and it gives heap memory
back only from the top: the freed space between live blocks stays resident. Measured
on ``diff apply`` with 2 workers, the collecting process grew by 7 MiB over 10,000
samples, holding 12 MiB of free heap at the end.

:func:`tune_allocator` fixes the mmap threshold at 1 MiB (a buffer that large is
mapped and unmapped on its own; an image array of a typical sample stays below it, so
the numeric work keeps its heap speed) and raises the trim threshold to 32 MiB (no
trimming on every free, which would cost page faults), and :class:`Trimmer` calls
``malloc_trim(0)`` a few times a second, which returns every whole free page of the
heap. Measured together: flat memory, no CPU cost (25.07 against 25.21 CPU seconds
for ``diff apply`` of 10,000 samples). A fixed 128 KiB threshold alone costs 8 to
14 % of the CPU instead.

None of this can change a pixel or a byte of output. Elsewhere than glibc, nothing
happens.
"""

from __future__ import annotations

import ctypes
import functools
import time
from typing import Any

__all__ = ["MMAP_THRESHOLD", "TRIM_SECONDS", "TRIM_THRESHOLD", "Trimmer", "tune_allocator"]

MMAP_THRESHOLD = 1 << 20
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
