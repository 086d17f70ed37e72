"""Canonical encoding: pixels → PNG bytes, and the atomic write of an output file.

One lossless PNG per sample, written by Pillow with a fixed zlib level and no
ancillary chunks (no tIME, tEXt, iCCP, pHYs, gAMA): the bytes depend only on
the pixels and on the zlib build recorded in the fingerprint.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from toolchain.errors import RecipeError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["ENCODER", "PNG_COMPRESS_LEVEL", "check_pixels", "encode_png"]

PNG_COMPRESS_LEVEL = 6


def _identity() -> dict[str, str | int]:
    import PIL
    from PIL import features

    return {
        "level": PNG_COMPRESS_LEVEL,
        "name": "pillow-png",
        "pillow": PIL.__version__,
        "zlib": str(features.version("zlib") or "absent"),
    }


ENCODER: dict[str, str | int] = _identity()
"""The encoder's identity, recorded in every manifest: anything that can change a byte."""
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def check_pixels(pixels: object, *, sample: str | None = None) -> npt.NDArray[np.uint8]:
    """Validate what a recipe returned: a ``uint8`` array of shape (H, W, C), C in {1,3,4}."""
    if not isinstance(pixels, np.ndarray):
        raise RecipeError(
            f"recipe returned {type(pixels).__name__}, expected a numpy uint8 array",
            sample=sample,
            hint="return np.ndarray with dtype uint8 and shape (H, W, C)",
        )
    if pixels.dtype != np.uint8:
        raise RecipeError(
            f"recipe returned dtype {pixels.dtype}, expected uint8",
            sample=sample,
            hint="round and clip explicitly, e.g. np.clip(np.rint(x), 0, 255).astype(np.uint8)",
        )
    if pixels.ndim != 3 or pixels.shape[2] not in _MODES or 0 in pixels.shape:
        raise RecipeError(
            f"recipe returned shape {pixels.shape}, expected (H, W, C) with C in 1, 3, 4",
            sample=sample,
        )
    return np.ascontiguousarray(pixels)


def encode_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """Encode canonical pixels as a PNG with fixed settings and no metadata."""
    arr = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    img = Image.fromarray(arr)  # mode follows from the shape: L, RGB or RGBA
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    return buf.getvalue()
