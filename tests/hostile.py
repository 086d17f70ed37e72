"""Shared helpers of the hostile-input suite (``tests/unit/test_hostile_*.py``).

The contract every parser we own must keep, for any bytes or text at all:
return a value, or raise the one documented :class:`toolchain.errors.Error`
subclass with a non-empty message; never another exception type, never hang,
never allocate (or read) more than a bound that does not grow with declared sizes.
Costs are counted (bytes allocated, bytes read, decodes started), never timed.
"""

from __future__ import annotations

import contextlib
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from unittest import mock

import deflate
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import ImageFile

from toolchain.errors import Error

T = TypeVar("T")

EXAMPLES = 300
"""Examples per property: enough to find shallow bugs, fast enough for every CI run."""
HOSTILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
"""``derandomize``: CI runs the same inputs every time, so a failure is reproducible."""

SECONDS_PER_INPUT = 20
"""An input taking longer than this is a hang (the slowest legitimate case is < 1 s)."""


class Hang(AssertionError):
    pass


@contextlib.contextmanager
def no_hang(seconds: float = SECONDS_PER_INPUT) -> Iterator[None]:
    def fire(_sig: int, _frame: object) -> None:
        raise Hang(f"input took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def typed(fn: Callable[[], T], allowed: type[Error] | tuple[type[Error], ...]) -> T | Error:
    """Run ``fn``: return its value, or the allowed typed error; anything else fails the test."""
    try:
        with no_hang():
            return fn()
    except allowed as e:
        assert isinstance(e, Error)
        assert e.message.strip(), f"{type(e).__name__} without a message"
        assert "Traceback" not in e.diagnostics()
        return e


def peak_allocation(fn: Callable[[], Any]) -> int:
    """Peak bytes Python allocated while running ``fn`` (errors are swallowed)."""
    tracemalloc.start()
    try:
        with contextlib.suppress(Error):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bytes_read(fn: Callable[[], Any]) -> int:
    """Bytes this process read (files, pipes: Linux's ``rchar`` in ``/proc/self/io``)
    while running ``fn``."""

    def rchar() -> int:
        with open("/proc/self/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))

    before = rchar()
    fn()
    return rchar() - before


@contextlib.contextmanager
def pixel_decodes() -> Iterator[list[str]]:
    """Record each pixel decode started in the block: Pillow loading an image's data
    (``"pillow WxH"``), the PNG reader inflating its image data (``"inflate N"`` bytes)."""
    seen: list[str] = []
    load, inflate = ImageFile.ImageFile.load, deflate.zlib_decompress

    def counted_load(img: ImageFile.ImageFile) -> Any:
        seen.append(f"pillow {img.size[0]}x{img.size[1]}")
        return load(img)

    def counted_inflate(data: Any, size: int) -> Any:
        seen.append(f"inflate {size}")
        return inflate(data, size)

    with (
        mock.patch.object(ImageFile.ImageFile, "load", counted_load),
        mock.patch.object(deflate, "zlib_decompress", counted_inflate),
    ):
        yield seen


def mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Truncations, bit flips, byte overwrites, insertions and splices of ``seed``."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.sampled_from(["truncate", "flip", "set", "insert", "delete", "dup"]))
            if not data:
                data = bytearray(draw(st.binary(max_size=64)))
                continue
            i = draw(st.integers(0, len(data) - 1))
            if kind == "truncate":
                del data[i:]
            elif kind == "flip":
                data[i] ^= 1 << draw(st.integers(0, 7))
            elif kind == "set":
                data[i] = draw(st.integers(0, 255))
            elif kind == "insert":
                data[i:i] = draw(st.binary(min_size=1, max_size=16))
            elif kind == "delete":
                del data[i : i + draw(st.integers(1, 16))]
            else:
                j = draw(st.integers(i, min(len(data), i + 64)))
                data[i:i] = data[i:j]
        return bytes(data)

    return mutate()


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**40, max_value=10**60),
    st.text(max_size=20),
    st.sampled_from(["", "sha256:", "sha256:" + "0" * 64, "../x.png", "/abs.png", "a\\b.png"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
