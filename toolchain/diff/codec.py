"""The plaintext a payload seals, per sample: a mod-256 delta or the full target, packed
and zstd-compressed, or for a recipe entry the target's shape alone. Layout and choice of
method: ``docs/diff-format.md``, "Sealed payload"."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np
import zstandard

from toolchain.codec.png import MAX_PIXELS
from toolchain.diff.format import PayloadKind

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ZSTD_LEVEL",
    "PayloadError",
    "pack_payload",
    "recipe_payload",
    "recipe_shape",
    "residuals",
    "unpack_payload",
]

ZSTD_LEVEL = 19
_HEAD = struct.Struct("<BBHII")
_DELTA_INTERLEAVED, _DELTA_PLANAR, _FULL_INTERLEAVED, _FULL_PLANAR, _RECIPE = 1, 2, 3, 4, 5
_KIND = {
    _DELTA_INTERLEAVED: PayloadKind.DELTA,
    _DELTA_PLANAR: PayloadKind.DELTA,
    _FULL_INTERLEAVED: PayloadKind.FULL,
    _FULL_PLANAR: PayloadKind.FULL,
    _RECIPE: PayloadKind.RECIPE,
}
_PLANAR = frozenset({_DELTA_PLANAR, _FULL_PLANAR})


class PayloadError(ValueError):
    """A decrypted payload is malformed (cannot happen without a forged key)."""


_TRIAL_LEVEL = 3


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # Single-threaded, no checksum (the AEAD authenticates), no dictionary id:
    # the bytes depend only on the input and the zstd version.
    return zstandard.ZstdCompressor(
        level=level, threads=0, write_checksum=False, write_content_size=True, write_dict_id=False
    )


def residuals(
    original: npt.NDArray[np.uint8], target: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    """``(target - original) mod 256``, uint8 (wrap-around subtraction)."""
    return np.subtract(target, original, dtype=np.uint8)


def _encode(method: int, arr: npt.NDArray[np.uint8], cctx: zstandard.ZstdCompressor) -> bytes:
    h, w, c = arr.shape
    body = np.ascontiguousarray(arr.transpose(2, 0, 1) if method in _PLANAR else arr)
    return _HEAD.pack(method, c, 0, h, w) + cctx.compress(body.tobytes())


def pack_payload(
    original: npt.NDArray[np.uint8], target: npt.NDArray[np.uint8]
) -> tuple[PayloadKind, bytes]:
    """The smallest plaintext for ``target``: a delta when shapes agree, else the full target."""
    # Choosing at a fast level and compressing the winner once at a high one
    # costs a fraction of a point of size against trying every layout at 19.
    trial = _compressor(_TRIAL_LEVEL)
    candidates: list[tuple[int, npt.NDArray[np.uint8]]] = []
    if original.shape == target.shape:
        res = residuals(original, target)
        candidates += [(_DELTA_INTERLEAVED, res), (_DELTA_PLANAR, res)]
    candidates += [(_FULL_INTERLEAVED, target), (_FULL_PLANAR, target)]
    sizes = [len(_encode(m, arr, trial)) for m, arr in candidates]
    method, arr = candidates[sizes.index(min(sizes))]  # the first of equal sizes
    return _KIND[method], _encode(method, arr, _compressor(ZSTD_LEVEL))


def recipe_payload(target: npt.NDArray[np.uint8]) -> bytes:
    """A recipe entry's plaintext: its head alone, naming the target's shape (method 5)."""
    h, w, c = target.shape
    return _HEAD.pack(_RECIPE, c, 0, h, w)


def _head(kind: PayloadKind, plaintext: bytes) -> tuple[int, int, int, int]:
    """``(method, height, width, channels)``, checked against ``kind`` and the bounds."""
    if len(plaintext) < _HEAD.size:
        raise PayloadError("payload shorter than its header")
    method, c, reserved, h, w = _HEAD.unpack_from(plaintext)
    if _KIND.get(method) is not kind or reserved:
        raise PayloadError(f"payload method {method} does not match kind {kind.name}")
    if c not in (1, 3, 4) or not (h > 0 and w > 0 and h * w <= MAX_PIXELS):
        raise PayloadError(f"payload shape {h}x{w}x{c} is out of bounds")
    return method, h, w, c


def recipe_shape(plaintext: bytes) -> tuple[int, int, int]:
    """The target's ``(height, width, channels)`` a recipe entry's plaintext names."""
    _, h, w, c = _head(PayloadKind.RECIPE, plaintext)
    if len(plaintext) != _HEAD.size:
        raise PayloadError("a recipe entry's payload holds bytes after its header")
    return h, w, c


def unpack_payload(
    kind: PayloadKind, plaintext: bytes, original: npt.NDArray[np.uint8] | None
) -> npt.NDArray[np.uint8]:
    """Rebuild the target pixels of a delta or full entry. ``original``: a delta's only."""
    if kind is PayloadKind.RECIPE:
        raise PayloadError("a recipe entry holds no pixels: run its recipe")
    method, h, w, c = _head(kind, plaintext)
    size = h * w * c
    frame = plaintext[_HEAD.size :]
    try:
        declared = zstandard.frame_content_size(frame)
        if declared != size:
            raise PayloadError(f"zstd frame declares {declared} bytes, expected {size}")
        raw = zstandard.ZstdDecompressor().decompress(frame, max_output_size=size)
    except zstandard.ZstdError as e:
        raise PayloadError(f"zstd: {e}") from None
    if len(raw) != size:
        raise PayloadError("zstd frame decompressed to the wrong size")
    flat = np.frombuffer(raw, dtype=np.uint8)
    arr = flat.reshape(c, h, w).transpose(1, 2, 0) if method in _PLANAR else flat.reshape(h, w, c)
    if kind is PayloadKind.FULL:
        return np.ascontiguousarray(arr)
    if original is None or original.shape != (h, w, c):
        shape = None if original is None else original.shape
        raise PayloadError(f"delta of shape {(h, w, c)} does not fit the original {shape}")
    out = np.empty_like(original)
    np.add(original, arr, out=out, dtype=np.uint8)
    return out
