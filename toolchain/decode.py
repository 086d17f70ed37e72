"""Canonical decoding: original file bytes → ``uint8`` array of shape (H, W, C).

The rules (specified in ``docs/determinism.md``):

* Accepted formats, by content not by name: JPEG, PNG, WebP. For animated PNG
  and WebP only the first frame is used.
* Modes: ``L`` stays one channel; ``1`` becomes ``L`` (0/255); ``RGB`` stays;
  ``RGBA`` stays; ``LA`` and ``PA`` become ``RGBA``; ``P`` becomes ``RGBA`` when
  the palette has transparency, else ``RGB``; ``CMYK`` and ``YCbCr`` become ``RGB``
  with Pillow's fixed conversion.
* 16-bit greyscale (``I;16*``, ``I``) is scaled to 8 bits exactly as
  ``(v * 255 + 32767) // 65535`` in integer arithmetic. 16-bit-per-channel
  colour PNGs are reduced to 8 bits by Pillow's decoder (high byte).
* EXIF orientation is **not** applied, and ICC profiles are **not** applied:
  the pixels are the stored grid, as most training pipelines read them.
* JPEG is decoded by Pillow's bundled libjpeg-turbo with its defaults
  (accurate integer IDCT, fancy upsampling); the version is in the fingerprint.
* Images over :data:`MAX_PIXELS` are refused before their pixels are decoded.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from toolchain._internal import png
from toolchain.errors import DecodeError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["ACCEPTED_FORMATS", "MAX_PIXELS", "decode", "decode_image"]

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
MAX_PIXELS = 128 * 1024 * 1024
"""Largest accepted image, in pixels (128 Mi): 512 MiB as RGBA; larger is refused."""

# Pillow's own bomb check warns at MAX_IMAGE_PIXELS and errors at twice that;
# we set it to our bound and also refuse explicitly below.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _to_canonical(img: Image.Image) -> npt.NDArray[np.uint8]:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        wide = np.asarray(img).astype(np.int64)
        if wide.min(initial=0) < 0 or wide.max(initial=0) > 65535:
            raise DecodeError("32-bit integer image with values outside 0..65535")
        narrow = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return narrow[:, :, None]
    if mode == "1":
        img = img.convert("L")
    elif mode in ("LA", "PA", "La"):
        img = img.convert("RGBA")
    elif mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode == "RGBa":
        img = img.convert("RGBA")
    elif mode not in ("L", "RGB", "RGBA"):
        raise DecodeError(f"unsupported image mode {mode!r}")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr)


def decode_image(data: bytes) -> Image.Image:
    """Open and fully load an image, refusing bombs and unknown formats."""
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
        if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
            raise DecodeError(
                f"image is {w}x{h} pixels, outside 1..{MAX_PIXELS} pixels",
                hint="absurd dimensions are refused before their pixels are decoded",
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
