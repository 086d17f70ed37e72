"""The canonical PNG writer, and a fast reader of the files it writes. The byte layout, the
filter probe, and why the bytes depend only on the pixels and the pinned ``deflate`` wheel:
docs/png.md."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import deflate
import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "AVERAGE",
    "DEFLATE_LEVEL",
    "ENCODER",
    "MAX_PIXELS",
    "PNG_SIGNATURE",
    "PROBE_LEVEL",
    "PROBE_PERIOD",
    "PROBE_ROWS",
    "UP",
    "PngEncoder",
    "PngError",
    "choose_filter",
    "decode_png",
    "encode_png",
    "filter_rows",
]

MAX_PIXELS = 128 * 1024 * 1024
"""Largest accepted image, in pixels (128 Mi): refused from its header above this."""

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
UP: Final = 2
"""PNG filter type 2, Up: each byte minus the byte above it, mod 256."""
AVERAGE: Final = 3
"""PNG filter type 3, Average: each byte minus floor((left + above) / 2), mod 256."""
DEFLATE_LEVEL: Final = 6
"""libdeflate compression level (1..12); chosen by ``benchmarks/bench_png.py``."""
PROBE_PERIOD: Final = 128
PROBE_ROWS: Final = 8
"""The probe rows: ``y`` with ``y % PROBE_PERIOD < PROBE_ROWS`` (1/16 of a tall image)."""
PROBE_LEVEL: Final = 2
"""libdeflate level that compresses the probe rows, once per filter."""

_COLOUR_TYPES: Final = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)
_CHANNELS: Final = {v: k for k, v in _COLOUR_TYPES.items()}
_MODES: Final = {1: "L", 3: "RGB", 4: "RGBA"}  # channels -> Pillow mode and raw mode
_MAX_DIMENSION: Final = 2**31 - 1  # PNG's own limit on width and height
_MAX_DEFLATE_RATIO: Final = 1032  # no deflate stream expands by more than 1032:1
_MAX_CHUNK_LENGTH: Final = 2**31 - 1
# The libdeflate release bundled by each version of the ``deflate`` wheel, from the
# wheel's CHANGELOG and its git submodule (0.9.0 pins libdeflate commit c8c56a2, "v1.25").
_BUNDLED_LIBDEFLATE: Final = {"0.8.0": "1.23", "0.8.1": "1.24", "0.9.0": "1.25"}
# Rows at least this many bytes wide are unfiltered by a Python loop of numpy row
# additions (about 1 us per row); narrower images by numpy's column-wise cumsum.
_ROW_LOOP_MIN_BYTES: Final = 64
_BAND_BYTES: Final = 4 << 20  # Pillow's Average output is copied out in bands of ~4 MiB


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
    layout=2,
    filter="up-or-average",
    chunking="one-idat",
    deflate=f"deflate {deflate.__version__}",
    libdeflate=_BUNDLED_LIBDEFLATE.get(deflate.__version__, "unknown"),
    level=DEFLATE_LEVEL,
)


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
    if h * w > MAX_PIXELS:
        raise ValueError(f"{w}x{h} pixels is over the limit of {MAX_PIXELS}: not written")
    return h, w, c


def filter_rows(
    rows: npt.NDArray[np.uint8], above: npt.NDArray[np.uint8], kind: int, bpp: int
) -> npt.NDArray[np.uint8]:
    """Filtered scanlines (k, 1 + n): each its filter byte ``kind`` then its residuals.

    ``rows`` are k raw rows of n bytes, ``above`` the raw row above each (zeros above
    row 0); ``bpp`` is the bytes per pixel. Residuals wrap mod 256 (uint8 arithmetic).
    """
    k, n = rows.shape
    out = np.empty((k, 1 + n), dtype=np.uint8)
    out[:, 0] = kind
    body = out[:, 1:]
    if kind == UP:
        np.subtract(rows, above, out=body)
    elif kind == AVERAGE:
        # floor((left + above) / 2) without a uint8 overflow: (a & b) + ((a ^ b) >> 1);
        # the first bpp bytes of a row have left = 0, so their prediction is above >> 1.
        np.subtract(rows[:, :bpp], above[:, :bpp] >> 1, out=body[:, :bpp])
        left, up = rows[:, :-bpp], above[:, bpp:]
        mean = np.bitwise_and(left, up)
        mean += np.bitwise_xor(left, up) >> 1
        np.subtract(rows[:, bpp:], mean, out=body[:, bpp:])
    else:
        raise ValueError(f"filter type {kind} is not written by this encoder (only 2 and 3)")
    return out


def _filtered(flat: npt.NDArray[np.uint8], kind: int, bpp: int) -> npt.NDArray[np.uint8]:
    """The whole filtered image (H, 1 + W*C) of the raw rows ``flat`` (H, W*C)."""
    h, n = flat.shape
    out = np.empty((h, 1 + n), dtype=np.uint8)
    out[:1] = filter_rows(flat[:1], np.zeros_like(flat[:1]), kind, bpp)
    out[1:] = filter_rows(flat[1:], flat[:-1], kind, bpp)
    return out


def choose_filter(
    flat: npt.NDArray[np.uint8],
    bpp: int,
    *,
    period: int = PROBE_PERIOD,
    rows: int = PROBE_ROWS,
    level: int = PROBE_LEVEL,
) -> int:
    """The filter of every row of the image whose raw rows are ``flat`` (H, W*C): the probe.

    The rows ``y % period < rows``, filtered both ways as in the file, each compressed at
    ``level``: Average if strictly shorter, else Up (docs/png.md, "Probe"). ``period``,
    ``rows`` and ``level`` exist for ``benchmarks/bench_probe.py``; the layout fixes them.
    """
    ys = np.arange(flat.shape[0])
    ys = ys[ys % period < rows]
    probed = flat[ys]
    above = np.zeros_like(probed)
    inner = ys > 0
    above[inner] = flat[ys[inner] - 1]
    up = len(deflate.zlib_compress(filter_rows(probed, above, UP, bpp), level))
    average = len(deflate.zlib_compress(filter_rows(probed, above, AVERAGE, bpp), level))
    return AVERAGE if average < up else UP


def encode_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """Encode a ``uint8`` array of shape (H, W, C), C in {1, 3, 4}, as our canonical PNG.

    Every row is filtered by :func:`choose_filter`'s filter (Up or Average). Any memory
    layout is accepted; the bytes depend only on the pixel values and on :data:`ENCODER`.
    """
    h, w, c = _check_shape(pixels)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, _COLOUR_TYPES[c], 0, 0, 0)
    flat = np.ascontiguousarray(pixels).reshape(h, w * c)
    stream = deflate.zlib_compress(_filtered(flat, choose_filter(flat, c), c), DEFLATE_LEVEL)
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

    Returns ``None`` for anything not in our canonical layout (the caller falls back to
    Pillow). Raises :class:`PngError` for a bad CRC, a truncated file, an image over
    ``MAX_PIXELS`` or data that does not inflate to exactly the size IHDR implies; never
    allocates in proportion to a length the file declares (docs/png.md, "What a reader
    must accept").
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
    if w * h > MAX_PIXELS:
        raise PngError(
            f"IHDR declares {w}x{h} = {w * h} pixels, over the limit of {MAX_PIXELS}: "
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
    filters = np.frombuffer(raw, dtype=np.uint8)[::row]  # each row's filter byte
    if (filters == AVERAGE).all():
        # Average is a recurrence along each row, which numpy cannot vectorise: Pillow's
        # C unfilter undoes it. Its "zip" decoder reads only zlib streams, so the checked
        # rows go to it as stored (level 0) deflate blocks, a copy rather than a second
        # inflate. Each buffer is dropped once the next exists (``filters`` is a view of
        # ``raw``), so no more than two copies of the image are alive at once.
        del filters
        stored = deflate.zlib_compress(raw, 0)
        del raw
        img = Image.frombytes(_MODES[c], (w, h), stored, "zip", _MODES[c])
        del stored
        return _to_array(img, h, w, c)
    if not (filters == UP).all():
        return None
    residuals = np.frombuffer(raw, dtype=np.uint8).reshape(h, row)[:, 1:]
    out = np.empty((h, w * c), dtype=np.uint8)
    if w * c >= _ROW_LOOP_MIN_BYTES:
        out[0] = residuals[0]
        for y in range(1, h):
            np.add(out[y - 1], residuals[y], out=out[y])
    else:
        np.cumsum(residuals, axis=0, dtype=np.uint8, out=out)
    return out.reshape(h, w, c)


def _to_array(img: Image.Image, h: int, w: int, c: int) -> npt.NDArray[np.uint8]:
    """Pillow's image as a new, writeable (H, W, C) array, copied band by band: ``np.asarray``
    of a whole image would hold two more copies of it (Pillow's ``tobytes`` joins chunks)."""
    out = np.empty((h, w, c), dtype=np.uint8)
    rows = max(1, _BAND_BYTES // (w * c))
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        band = img if top == 0 and bottom == h else img.crop((0, top, w, bottom))
        out[top:bottom] = np.asarray(band).reshape(bottom - top, w, c)
    return out
