"""The canonical PNG writer, and a fast reader of the files it writes.

The byte layout is specified in ``docs/png.md``; in short::

    signature || IHDR(W, H, 8, colour type 0/2/6, 0, 0, 0) || IDAT(zlib stream) || IEND

with every row filtered by PNG filter type 2 (Up), the whole filtered image compressed
in one call by libdeflate (the PyPI ``deflate`` wheel pinned in the lockfile) at
:data:`DEFLATE_LEVEL`, wrapped as zlib, and stored in exactly one IDAT chunk. No
ancillary chunk is ever written. The bytes are a function of the pixels and of the
``deflate`` wheel's version only: never of Python's or Pillow's zlib, of the CPU
(libdeflate's compressor has no run-time CPU dispatch; see ``docs/png.md``), of the
input array's memory layout, or of anything else in the environment.

:func:`decode_png` reads files in exactly that layout with libdeflate and numpy, and
returns ``None`` for any other PNG so that the caller can fall back to Pillow.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import deflate
import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "DEFLATE_LEVEL",
    "ENCODER",
    "FILTER_TYPE",
    "PNG_SIGNATURE",
    "PngEncoder",
    "PngError",
    "decode_png",
    "encode_png",
]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
FILTER_TYPE: Final = 2
"""PNG filter type of every row: 2, Up (each byte minus the byte above it, mod 256)."""
DEFLATE_LEVEL: Final = 6
"""libdeflate compression level (1..12); chosen by ``benchmarks/bench_png.py``."""

_COLOUR_TYPES: Final = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)
_CHANNELS: Final = {v: k for k, v in _COLOUR_TYPES.items()}
_MAX_DIMENSION: Final = 2**31 - 1  # PNG's own limit on width and height
_MAX_DEFLATE_RATIO: Final = 1032  # no deflate stream expands by more than 1032:1
_MAX_CHUNK_LENGTH: Final = 2**31 - 1
# The libdeflate release bundled by each version of the ``deflate`` wheel, from the
# wheel's CHANGELOG and its git submodule (0.9.0 pins libdeflate commit c8c56a2, "v1.25").
_BUNDLED_LIBDEFLATE: Final = {"0.8.0": "1.23", "0.8.1": "1.24", "0.9.0": "1.25"}
# Rows at least this many bytes wide are unfiltered by a Python loop of numpy row
# additions (about 1 us per row); narrower images by numpy's column-wise cumsum.
_ROW_LOOP_MIN_BYTES: Final = 64


class PngError(ValueError):
    """A PNG file is corrupt, truncated or refused; the message names the chunk and the fix."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PngEncoder:
    """Everything that can change a byte of :func:`encode_png`'s output.

    ``compare`` tells encoder-only drift from other drift by comparing these fields.
    """

    name: str
    layout: int
    """Version of the byte layout in ``docs/png.md`` (chunks, filter rule, chunking)."""
    filter: str
    chunking: str
    deflate: str
    """The ``deflate`` wheel (libdeflate bindings) that compresses, and its version."""
    libdeflate: str
    """The libdeflate release that wheel bundles (the wheel does not expose it at run time)."""
    level: int

    def to_json(self) -> dict[str, str | int]:
        """The canonical JSON object: sorted keys, str and int values only."""
        return {
            "chunking": self.chunking,
            "deflate": self.deflate,
            "filter": self.filter,
            "layout": self.layout,
            "level": self.level,
            "libdeflate": self.libdeflate,
            "name": self.name,
        }

    def __str__(self) -> str:
        return (
            f"{self.name}/{self.layout} filter={self.filter} level={self.level} "
            f"chunking={self.chunking} deflate={self.deflate} libdeflate={self.libdeflate}"
        )


ENCODER: Final = PngEncoder(
    name="benchmark-regen-png",
    layout=1,
    filter="up",
    chunking="one-idat",
    deflate=f"deflate {deflate.__version__}",
    libdeflate=_BUNDLED_LIBDEFLATE.get(deflate.__version__, "unknown"),
    level=DEFLATE_LEVEL,
)


def _max_pixels() -> int:
    # Imported here, not at module level: toolchain.decode may import this module
    # to read our own files fast, and the limit has one owner (toolchain.decode).
    from toolchain.decode import MAX_PIXELS

    return MAX_PIXELS


def _chunk(kind: bytes, payload: bytes | bytearray) -> tuple[bytes, bytes | bytearray, bytes]:
    """A chunk as (length and type, data, CRC), for one join of the whole file."""
    crc = deflate.crc32(payload, deflate.crc32(kind))
    return struct.pack(">I4s", len(payload), kind), payload, struct.pack(">I", crc)


def _check_shape(pixels: object) -> tuple[int, int, int]:
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise TypeError(f"expected a numpy uint8 array, got {getattr(pixels, 'dtype', pixels)!r}")
    if pixels.ndim != 3 or pixels.shape[2] not in _COLOUR_TYPES or 0 in pixels.shape:
        raise ValueError(
            f"expected pixels of shape (H, W, C) with H, W >= 1 and C in 1, 3, 4, "
            f"got {pixels.shape}"
        )
    h, w, c = pixels.shape
    if h * w > _max_pixels():
        raise ValueError(f"{w}x{h} pixels is over the limit of {_max_pixels()}: not written")
    return h, w, c


def _filter_up(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The filtered image: (H, 1 + W*C) bytes, each row its filter byte (2) then Up residuals."""
    h, w, c = pixels.shape
    raw = np.empty((h, 1 + w * c), dtype=np.uint8)
    raw[:, 0] = FILTER_TYPE
    body = raw[:, 1:].reshape(h, w, c)  # a view: the last axis splits without a copy
    body[0] = pixels[0]
    np.subtract(pixels[1:], pixels[:-1], out=body[1:])  # uint8 arithmetic wraps mod 256
    return raw


def encode_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """Encode a ``uint8`` array of shape (H, W, C), C in {1, 3, 4}, as our canonical PNG.

    Any memory layout is accepted; the bytes depend only on the pixel values and on
    :data:`ENCODER`.
    """
    h, w, c = _check_shape(pixels)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, _COLOUR_TYPES[c], 0, 0, 0)
    stream = deflate.zlib_compress(_filter_up(pixels), DEFLATE_LEVEL)
    return b"".join(
        (PNG_SIGNATURE, *_chunk(b"IHDR", ihdr), *_chunk(b"IDAT", stream), *_chunk(b"IEND", b""))
    )


def _chunks(data: memoryview) -> tuple[list[tuple[bytes, memoryview]], int]:
    """Every chunk up to IEND as (type, payload), each CRC checked, and the count of
    bytes after IEND; raises :class:`PngError` on damage."""
    chunks: list[tuple[bytes, memoryview]] = []
    pos = len(PNG_SIGNATURE)
    while True:
        if len(data) - pos < 8:
            last = chunks[-1][0].decode("latin-1") if chunks else None
            after = f"after chunk {last!r}" if last else "after the signature"
            raise PngError(
                f"the PNG is truncated: it ends at byte {len(data)} {after}, "
                "before its IEND chunk; replace the file with a good copy"
            )
        length, kind = struct.unpack_from(">I4s", data, pos)
        name = kind.decode("latin-1")
        if length > _MAX_CHUNK_LENGTH:
            raise PngError(
                f"chunk {name!r} at byte {pos} declares {length} bytes, over PNG's limit of "
                f"2^31-1: the file is corrupt; replace it with a good copy"
            )
        end = pos + 8 + length + 4
        if end > len(data):
            raise PngError(
                f"the PNG is truncated: chunk {name!r} at byte {pos} declares {length} bytes "
                f"of data but only {max(len(data) - pos - 12, 0)} remain; replace the file "
                "with a good copy"
            )
        payload = data[pos + 8 : pos + 8 + length]
        (stored,) = struct.unpack_from(">I", data, pos + 8 + length)
        computed = deflate.crc32(payload, deflate.crc32(kind))
        if stored != computed:
            raise PngError(
                f"chunk {name!r} at byte {pos} has a bad CRC (stored {stored:08x}, computed "
                f"{computed:08x}): the file is corrupt; replace it with a good copy"
            )
        chunks.append((kind, payload))
        pos = end
        if kind == b"IEND":
            return chunks, len(data) - pos


def decode_png(data: bytes | bytearray | memoryview) -> npt.NDArray[np.uint8] | None:
    """Decode a PNG written by :func:`encode_png` to a ``uint8`` array (H, W, C).

    Returns ``None`` for a PNG (or anything) not in our canonical layout: other
    chunks, several IDAT chunks, interlace, other bit depths or colour types, other
    row filters, bytes after IEND. Raises :class:`PngError` for a bad chunk CRC
    (naming the chunk), a truncated file, an image over ``toolchain.decode.MAX_PIXELS``
    (before allocating anything for it), or image data that does not inflate to
    exactly the size the IHDR implies. Never allocates more than that size (plus
    the output array), whatever lengths the file declares.
    """
    view = memoryview(data).cast("B")
    if bytes(view[: len(PNG_SIGNATURE)]) != PNG_SIGNATURE:
        return None
    chunks, trailing = _chunks(view)
    kinds = [kind for kind, _ in chunks]
    if kinds[0] != b"IHDR" or len(chunks[0][1]) != 13:
        return None
    w, h, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if not (0 < w <= _MAX_DIMENSION and 0 < h <= _MAX_DIMENSION):
        raise PngError(f"IHDR declares {w}x{h} pixels: PNG needs 1..2^31-1; the file is corrupt")
    if w * h > _max_pixels():
        raise PngError(
            f"IHDR declares {w}x{h} = {w * h} pixels, over the limit of {_max_pixels()}: "
            "refused before decoding"
        )
    if (
        kinds != [b"IHDR", b"IDAT", b"IEND"]
        or trailing
        or (depth, compression, filtering, interlace) != (8, 0, 0, 0)
        or colour not in _CHANNELS
    ):
        return None
    c = _CHANNELS[colour]
    row = 1 + w * c
    size = h * row
    if size >= 2**32:  # the deflate wheel takes the output size as a C unsigned int
        raise PngError(f"IHDR declares {w}x{h} pixels: too large to decode; refused")
    stream = chunks[1][1]
    if size > _MAX_DEFLATE_RATIO * len(stream):
        raise PngError(
            f"chunk 'IDAT' holds {len(stream)} bytes, too few to inflate to the {size} bytes "
            f"a {w}x{h} image needs: the file is truncated or corrupt; replace it"
        )
    try:
        raw = deflate.zlib_decompress(stream, size)
    except deflate.DeflateError:
        raise PngError(
            f"chunk 'IDAT' does not hold a valid zlib stream of {size} bytes (a {w}x{h} "
            "image): the file is corrupt; replace it with a good copy"
        ) from None
    if len(raw) != size:
        raise PngError(
            f"chunk 'IDAT' inflates to {len(raw)} bytes, but a {w}x{h} image needs {size}: "
            "the image data is truncated; replace the file with a good copy"
        )
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(h, row)
    if not (rows[:, 0] == FILTER_TYPE).all():
        return None
    residuals = rows[:, 1:]
    out = np.empty((h, w * c), dtype=np.uint8)
    if w * c >= _ROW_LOOP_MIN_BYTES:
        out[0] = residuals[0]
        for y in range(1, h):
            np.add(out[y - 1], residuals[y], out=out[y])
    else:
        np.cumsum(residuals, axis=0, dtype=np.uint8, out=out)
    return out.reshape(h, w, c)
