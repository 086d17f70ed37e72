"""Canonical decoding: original file bytes → ``uint8`` array of shape (H, W, C), in bounded
memory. The rules: docs/determinism.md ("Canonical decoding")."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from toolchain.codec import png
from toolchain.errors import DecodeError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_DECODE_BYTES",
    "decode",
    "decode_cost",
    "decode_image",
]

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
MAX_DECODE_BYTES = 512 * 1024 * 1024
"""The most memory one decode may need (:func:`decode_cost`), per worker: 512 MiB.

An RGB PNG of 8192x8192 pixels needs 448 MiB (4 bytes per pixel in Pillow, 3 in
the output); a 12000x11000 one would need 881 MiB and is refused from its header."""
_BAND_BYTES = 4 * 1024 * 1024
"""Rows are converted and copied out in bands of about this many bytes."""
# Bytes per pixel of Pillow's own storage, by mode (everything else: 4).
_STORED = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# Decoders that hold whole frames besides the image while loading, in bytes per pixel:
# libwebp's RGBA canvas and its copy as bytes (measured: 9 for RGB, 8 for RGBA).
_FRAME = {"WEBP": 10}
_SIXTEEN = ("I;16", "I;16B", "I;16L", "I;16N", "I")

# Pillow's own bomb check warns at MAX_IMAGE_PIXELS and errors at twice that;
# we set it to our bound and also refuse explicitly below.
Image.MAX_IMAGE_PIXELS = png.MAX_PIXELS


def _target(mode: str) -> tuple[str | None, int]:
    """The Pillow mode a band is converted to (``None``: kept), and the output channels."""
    if mode in _SIXTEEN:
        return None, 1
    if mode in ("L", "1"):
        return ("L" if mode == "1" else None), 1
    if mode in ("RGB", "CMYK", "YCbCr", "LAB", "HSV"):
        return ("RGB" if mode != "RGB" else None), 3
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        return ("RGBA" if mode != "RGBA" else None), 4
    raise DecodeError(f"unsupported image mode {mode!r}")


def decode_cost(width: int, height: int, mode: str, fmt: str | None = None) -> int:
    """Bytes one decode of such an image holds at its peak: Pillow's image, the
    decoder's frame buffer, the output array (plus bands of about 4 MiB, not counted)."""
    channels = 4 if mode == "P" else _target(mode)[1]
    per_pixel = _STORED.get(mode, 4) + _FRAME.get(fmt or "", 0) + channels
    return width * height * per_pixel


def _sixteen_bit(band: Image.Image) -> npt.NDArray[np.uint8]:
    wide = np.asarray(band).astype(np.int64)
    if wide.min(initial=0) < 0 or wide.max(initial=0) > 65535:
        raise DecodeError("32-bit integer image with values outside 0..65535")
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)[:, :, None]


def _to_canonical(img: Image.Image) -> npt.NDArray[np.uint8]:
    """The canonical array, filled band by band (docs/determinism.md, "Canonical decoding")."""
    mode = img.mode
    if mode == "P":
        target: str | None = "RGBA" if "transparency" in img.info else "RGB"
        channels = 4 if target == "RGBA" else 3
    else:
        target, channels = _target(mode)
    width, height = img.size
    out = np.empty((height, width, channels), dtype=np.uint8)
    rows = max(1, _BAND_BYTES // (4 * width))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        whole = top == 0 and bottom == height
        band = img if whole else img.crop((0, top, width, bottom))
        if mode in _SIXTEEN:
            out[top:bottom] = _sixteen_bit(band)
            continue
        if target is not None:
            band = band.convert(target)
        out[top:bottom] = np.asarray(band, dtype=np.uint8).reshape(bottom - top, width, channels)
    return out


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png_chunks(data: bytes) -> None:
    """Every chunk up to IEND must fit in the file and carry its CRC (PNG spec, 5.3)."""
    at = len(_PNG_SIGNATURE)
    view = memoryview(data)
    while at + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        name = kind.decode("latin-1")
        end = at + 8 + length
        if end + 4 > len(data):
            raise DecodeError(
                f"truncated PNG: chunk {name!r} at offset {at} declares {length} bytes, "
                f"the file ends {end + 4 - len(data)} bytes too early",
                hint="the file is truncated: replace it with a good copy",
            )
        stored = int.from_bytes(view[end : end + 4], "big")
        computed = zlib.crc32(view[at + 4 : end])
        if stored != computed:
            raise DecodeError(
                f"corrupt PNG: chunk {name!r} at offset {at} has a bad CRC "
                f"(stored {stored:08x}, computed {computed:08x})",
                hint="the file was damaged (a bad download or disk): replace it with a good copy",
            )
        if kind == b"IEND":
            return
        at = end + 4


def decode_image(data: bytes) -> Image.Image:
    """Open and fully load an image, refusing bombs and unknown formats."""
    if data.startswith(_PNG_SIGNATURE):
        _check_png_chunks(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=sorted(ACCEPTED_FORMATS))
        except Image.DecompressionBombError as e:
            raise DecodeError(str(e), hint="absurd dimensions: refused before decoding") from None
        except Image.DecompressionBombWarning as e:
            raise DecodeError(str(e), hint="absurd dimensions: refused before decoding") from None
        except UnidentifiedImageError:
            raise DecodeError(
                "not a JPEG, PNG or WebP image (unidentified content)",
                hint="remove the file from the original, or replace it with a good copy",
            ) from None
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise DecodeError(
                f"cannot read the image header: {e}",
                hint="the file is truncated or corrupt: replace it with a good copy",
            ) from None
        w, h = img.size
        if w <= 0 or h <= 0 or w * h > png.MAX_PIXELS:
            raise DecodeError(
                f"image is {w}x{h} pixels, outside 1..{png.MAX_PIXELS} pixels",
                hint="absurd dimensions are refused before their pixels are decoded",
            )
        cost = decode_cost(w, h, img.mode, img.format)
        if cost > MAX_DECODE_BYTES:
            raise DecodeError(
                f"image is {w}x{h} pixels ({img.mode}): decoding it needs {cost >> 20} MiB, "
                f"over the {MAX_DECODE_BYTES >> 20} MiB a worker may spend on one image",
                hint="absurd dimensions are refused before their pixels are decoded; "
                "downscale the image in the original, or remove it",
            )
        try:
            img.seek(0)
            img.load()
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise DecodeError(
                f"cannot decode {img.format} data: {e}",
                hint="the file is truncated or corrupt: replace it with a good copy",
            ) from None
    return img


def decode(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode original file bytes to canonical pixels, shape (H, W, C), C in {1, 3, 4}.

    A PNG in the canonical layout we write (``docs/png.md``) is read by our own reader
    (libdeflate and numpy: no second decode through Pillow, and its every CRC checked);
    anything else by Pillow. Both give the same pixels for our files (tested).
    """
    if data[:8] == png.PNG_SIGNATURE:
        _check_png_chunks(data)  # one wording for a damaged PNG, whoever would decode it
        try:
            ours = png.decode_png(data)
        except png.PngError as e:
            text = str(e)
            hint = (
                "absurd dimensions are refused before their pixels are decoded"
                if "limit" in text or "dimension" in text
                else "the file is truncated or corrupt: replace it with a good copy"
            )
            raise DecodeError(f"broken PNG: {text}", hint=hint) from None
        if ours is not None:
            return ours
    return _to_canonical(decode_image(data))
