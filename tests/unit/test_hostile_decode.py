"""Hostile image bytes and decompression bombs: DecodeError, before the memory is spent."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.hostile import HOSTILE, mutations, pixel_decodes, typed
from toolchain.codec.decode import decode
from toolchain.codec.png import MAX_PIXELS
from toolchain.errors import DecodeError, ExitCode


def _encoded(fmt: str, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {
    "png": _encoded("PNG"),
    "png-p": _encoded("PNG", "P"),
    "png-la": _encoded("PNG", "LA"),
    "jpeg": _encoded("JPEG"),
    "webp": _encoded("WEBP"),
}


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_mutated_images(kind: str) -> None:
    @HOSTILE
    @given(mutations(SEEDS[kind]))
    def prop(data: bytes) -> None:
        result = typed(lambda: decode(data), DecodeError)
        if not isinstance(result, DecodeError):
            assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] in (1, 3, 4)

    prop()


@HOSTILE
@given(st.binary(max_size=256))
def test_arbitrary_bytes(data: bytes) -> None:
    typed(lambda: decode(data), DecodeError)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_dimensions(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR declares ``width`` x ``height`` (the data is a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("w", "h"), [(100_000, 100_000), (2**31 - 1, 2**31 - 1), (MAX_PIXELS + 1, 1), (1, 2**31 - 1)]
)
def test_huge_declared_dimensions_are_refused_from_the_header(w: int, h: int) -> None:
    data = png_with_dimensions(w, h)
    with (
        pixel_decodes() as decodes,
        pytest.raises(DecodeError, match=r"pixels|exceeds limit|decompression bomb") as e,
    ):
        decode(data)
    assert decodes == []  # neither inflated nor handed to Pillow
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert e.value.hint and "absurd dimensions" in e.value.hint


@pytest.mark.parametrize(("w", "h"), [(0, 10), (10, 0)])
def test_zero_dimensions_are_refused(w: int, h: int) -> None:
    with pytest.raises(DecodeError):
        decode(png_with_dimensions(w, h))


def test_bomb_is_refused_with_small_rss() -> None:
    """In a fresh process: decoding a 100000x100000 PNG header costs no pixel memory."""
    code = (
        "import resource, sys\n"
        "from tests.unit.test_hostile_decode import png_with_dimensions\n"
        "from toolchain.codec.decode import decode\n"
        "from toolchain.errors import DecodeError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    decode(png_with_dimensions(100_000, 100_000))\n"
        "except DecodeError:\n"
        "    pass\n"
        "else:\n"
        "    sys.exit('accepted')\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    grown_kib = int(out.stdout.strip())
    assert grown_kib < 32 * 1024, f"RSS grew by {grown_kib} KiB"
