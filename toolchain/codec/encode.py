"""Canonical encoding: a recipe's pixels, checked, to the canonical PNG (docs/png.md), and
:data:`ENCODER`, the identity every manifest records."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from toolchain.codec import png
from toolchain.errors import RecipeError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["ENCODER", "check_pixels", "encode_png"]

ENCODER: dict[str, str | int] = png.ENCODER.to_json()
"""The encoder's identity, recorded in every manifest: anything that can change a byte."""
_CHANNELS = (1, 3, 4)


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
    if pixels.ndim != 3 or pixels.shape[2] not in _CHANNELS or 0 in pixels.shape:
        raise RecipeError(
            f"recipe returned shape {pixels.shape}, expected (H, W, C) with C in 1, 3, 4",
            sample=sample,
        )
    return np.ascontiguousarray(pixels)


def encode_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """Encode canonical pixels as the canonical PNG (any memory layout, same bytes)."""
    return png.encode_png(pixels)
