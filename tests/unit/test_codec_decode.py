from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from toolchain.codec.decode import decode
from toolchain.errors import DecodeError


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("mode", "channels"), [("L", 1), ("RGB", 3), ("RGBA", 4), ("LA", 4), ("1", 1)]
)
def test_modes_become_canonical_channels(mode: str, channels: int) -> None:
    img = Image.new(mode, (7, 5))
    px = decode(_save(img, "PNG"))
    assert px.dtype == np.uint8 and px.shape == (5, 7, channels)


def test_palette_with_and_without_transparency() -> None:
    base = Image.new("RGB", (6, 4), (10, 200, 30)).quantize(4)
    assert decode(_save(base, "PNG")).shape == (4, 6, 3)
    assert decode(_save(base, "PNG", transparency=0)).shape == (4, 6, 4)


def test_sixteen_bit_greyscale_is_scaled_exactly() -> None:
    arr = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    img = Image.fromarray(arr)
    px = decode(_save(img, "PNG"))
    assert px[:, :, 0].tolist() == [[0, 1, 255, 128]]


def test_exif_orientation_is_not_applied() -> None:
    arr = np.zeros((4, 8, 3), dtype=np.uint8)
    arr[0, 0] = 255
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    px = decode(_save(img, "JPEG", exif=exif.tobytes(), quality=100))
    assert px.shape == (4, 8, 3)


def test_truncated_jpeg_is_a_decode_error(demo_dir) -> None:  # type: ignore[no-untyped-def]
    data = (demo_dir / "rocket.jpg").read_bytes()
    with pytest.raises(DecodeError, match="truncated or corrupt"):
        decode(data[: len(data) // 2])


def test_not_an_image() -> None:
    with pytest.raises(DecodeError, match="not a JPEG, PNG or WebP"):
        decode(b"GIF89a" + b"\x00" * 40)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(DecodeError, match="pixels"):
        decode(png)
