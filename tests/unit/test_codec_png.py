"""The canonical PNG writer and the fast reader of our own files (toolchain/codec/png.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import struct
import tracemalloc
import zlib

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from toolchain.codec import png
from toolchain.codec.decode import decode
from toolchain.codec.png import (
    AVERAGE,
    DEFLATE_LEVEL,
    ENCODER,
    PNG_SIGNATURE,
    UP,
    PngEncoder,
    PngError,
    choose_filter,
    decode_png,
    encode_png,
    filter_rows,
)

Pixels = npt.NDArray[np.uint8]


def formula(h: int, w: int, c: int) -> Pixels:
    """Pixels from a fixed integer formula: a smooth gradient plus a hashed texture."""
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    i = ((y * w + x) * c + ch).astype(np.uint64)
    texture = ((i * np.uint64(2654435761)) >> np.uint64(13)) & np.uint64(15)
    smooth = (3 * y + 5 * x + 85 * ch) % 256
    return ((smooth + texture.astype(np.int64)) % 256).astype(np.uint8)


def noisy(h: int, w: int, c: int) -> Pixels:
    """A gentle gradient (no wrap-around) plus hashed triangular noise in -15..15, clipped:
    the kind of image the probe gives Average."""
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    smooth = 30 + 97 * x // w + 61 * y // h + 40 * ch
    k = ((y * w + x) * c + ch).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    k ^= k >> np.uint64(31)
    k *= np.uint64(0xBF58476D1CE4E5B9)
    k ^= k >> np.uint64(29)
    fifteen = np.uint64(15)
    noise = (k & fifteen).astype(np.int64) + ((k >> np.uint64(8)) & fifteen).astype(np.int64) - 15
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def flat(pixels: Pixels) -> Pixels:
    h, w, c = pixels.shape
    return np.ascontiguousarray(pixels).reshape(h, w * c)


def encode_with(pixels: Pixels, kind: int) -> bytes:
    """encode_png with the probe's answer forced to ``kind`` (to test both filters on any shape)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(png, "choose_filter", lambda flat, bpp: kind)
        return encode_png(pixels)


def filters_of(data: bytes) -> set[int]:
    """The set of filter bytes of the rows of one of our files."""
    (_, _, w, h, _, colour) = struct.unpack_from(">I4sIIBB", data, len(PNG_SIGNATURE))
    pos, length = chunk_offsets(data)[b"IDAT"]
    raw = zlib.decompress(data[pos + 8 : pos + 8 + length])
    row = 1 + w * {0: 1, 2: 3, 6: 4}[colour]
    return {raw[y * row] for y in range(h)}


def pillow_pixels(data: bytes) -> Pixels:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        arr = np.asarray(img)
    return arr[:, :, None] if arr.ndim == 2 else arr


def chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I4s", len(payload), kind)
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def handmade_png(ihdr: bytes, raw: bytes, *, extra: bytes = b"") -> bytes:
    """A PNG assembled here with Python's zlib: IHDR, optional chunks, one IDAT, IEND."""
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", ihdr)
        + extra
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def chunk_offsets(data: bytes) -> dict[bytes, tuple[int, int]]:
    """Chunk type -> (offset of its length field, payload length), for our 3-chunk files."""
    out, pos = {}, len(PNG_SIGNATURE)
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        out[kind] = (pos, length)
        pos += 12 + length
    return out


SHAPES = [(1, 1), (1, 37), (41, 1), (13, 17), (7, 33), (3, 22001)]


# ------------------------------------------------------------ what we write


@pytest.mark.parametrize("kind", [UP, AVERAGE])
@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize(("h", "w"), SHAPES)
def test_pillow_reads_our_bytes_bit_exactly(h: int, w: int, c: int, kind: int) -> None:
    pixels = noisy(h, w, c)
    data = encode_with(pixels, kind)
    assert filters_of(data) == {kind}
    assert np.array_equal(pillow_pixels(data), pixels)
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == {1: "L", 3: "RGB", 4: "RGBA"}[c]
        assert img.info.get("interlace", 0) == 0


@pytest.mark.parametrize("kind", [UP, AVERAGE])
@pytest.mark.parametrize("c", [1, 3, 4])
def test_rows_over_64_kib(c: int, kind: int) -> None:
    w = 65536 // c + 5  # row bytes exceed 64 KiB for every C
    pixels = noisy(4, w, c)
    assert w * c > 65536
    data = encode_with(pixels, kind)
    assert np.array_equal(pillow_pixels(data), pixels)
    got = decode_png(data)
    assert got is not None and np.array_equal(got, pixels)


def test_layout_is_signature_ihdr_one_idat_iend() -> None:
    data = encode_png(formula(9, 11, 4))
    assert data.startswith(PNG_SIGNATURE)
    offsets = chunk_offsets(data)
    assert list(offsets) == [b"IHDR", b"IDAT", b"IEND"]
    pos, length = offsets[b"IHDR"]
    assert length == 13
    assert struct.unpack_from(">IIBBBBB", data, pos + 8) == (11, 9, 8, 6, 0, 0, 0)
    pos, length = offsets[b"IDAT"]
    raw = zlib.decompress(data[pos + 8 : pos + 8 + length])
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(9, 1 + 11 * 4)
    assert (rows[:, 0] == 2).all()  # Up on every row: the probe's choice for this image
    assert offsets[b"IEND"] == (len(data) - 12, 0)


def reference_filter(pixels: Pixels, kind: int) -> bytes:
    """PNG's filter types 2 and 3 byte by byte, as the specification words them."""
    h, w, c = pixels.shape
    raw = [bytes(r) for r in flat(pixels)]
    out = bytearray()
    for y in range(h):
        out.append(kind)
        for i in range(w * c):
            up = raw[y - 1][i] if y else 0
            left = raw[y][i - c] if i >= c else 0
            predicted = up if kind == UP else (left + up) // 2
            out.append((raw[y][i] - predicted) % 256)
    return bytes(out)


@pytest.mark.parametrize("kind", [UP, AVERAGE])
@pytest.mark.parametrize(
    "shape", [(1, 1, 1), (1, 1, 4), (3, 1, 3), (1, 5, 3), (4, 2, 4), (6, 7, 1)]
)
def test_filters_match_the_png_specification(shape: tuple[int, int, int], kind: int) -> None:
    rng = np.random.default_rng(sum(shape) + kind)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)  # extremes: (255 + 255) // 2 included
    pixels[0, 0] = 255
    c = shape[2]
    rows = flat(pixels)
    above = np.vstack([np.zeros_like(rows[:1]), rows[:-1]])
    assert filter_rows(rows, above, kind, c).tobytes() == reference_filter(pixels, kind)
    data = encode_with(pixels, kind)
    pos, length = chunk_offsets(data)[b"IDAT"]
    assert zlib.decompress(data[pos + 8 : pos + 8 + length]) == reference_filter(pixels, kind)


def test_filter_rows_refuses_other_filter_types() -> None:
    rows = np.zeros((2, 6), dtype=np.uint8)
    for kind in (0, 1, 4):
        with pytest.raises(ValueError, match=f"filter type {kind} is not written"):
            filter_rows(rows, rows, kind, 3)


# ------------------------------------------------------------ the filter rule


@pytest.fixture(scope="module")
def photo(demo_dir: object) -> Pixels:
    """scikit-image's rocket (640x427 RGB JPEG): a clean photograph that Up compresses
    better. (Many of the native-size sample photos are fine texture, which Average
    predicts better, and the probe says so: astronaut, coffee, chelsea.)"""
    from pathlib import Path

    return decode((Path(str(demo_dir)) / "rocket.jpg").read_bytes())


def with_noise(pixels: Pixels, sigma: float) -> Pixels:
    noise = np.random.default_rng(0).normal(0.0, sigma, pixels.shape)
    return np.clip(np.rint(pixels + noise), 0, 255).astype(np.uint8)


def test_the_rule_picks_up_on_a_clean_photo_and_average_on_a_noisy_one(photo: Pixels) -> None:
    assert photo.shape == (427, 640, 3)
    clean, rough = photo, with_noise(photo, 8.0)  # the gaussian-noise recipe's sigma
    assert choose_filter(flat(clean), 3) == UP
    assert choose_filter(flat(rough), 3) == AVERAGE
    for pixels, kind in ((clean, UP), (rough, AVERAGE)):
        data = encode_png(pixels)
        assert filters_of(data) == {kind}
        got = decode_png(data)
        assert got is not None and np.array_equal(got, pixels)
        assert np.array_equal(pillow_pixels(data), pixels)
        # the choice is the smaller file here too (the probe is a proxy, not a guarantee)
        other = encode_with(pixels, AVERAGE if kind == UP else UP)
        assert len(data) < len(other)


def test_the_rule_looks_only_at_the_probe_rows_and_the_rows_above_them(photo: Pixels) -> None:
    rough = with_noise(photo, 8.0)
    ys = np.arange(photo.shape[0])
    probe = ys % png.PROBE_PERIOD < png.PROBE_ROWS
    looked_at = probe | np.roll(probe, -1)  # a probe row, or the row above one
    noisy_probe, clean_probe = photo.copy(), rough.copy()
    noisy_probe[looked_at] = rough[looked_at]
    clean_probe[looked_at] = photo[looked_at]
    assert choose_filter(flat(noisy_probe), 3) == AVERAGE  # a clean photo, but not where it looks
    assert choose_filter(flat(clean_probe), 3) == UP
    assert (png.PROBE_PERIOD, png.PROBE_ROWS, png.PROBE_LEVEL) == (128, 8, 2)  # docs/png.md


def test_a_tie_is_up() -> None:
    for shape in [(1, 1, 1), (300, 40, 3)]:
        assert choose_filter(flat(np.zeros(shape, dtype=np.uint8)), shape[2]) == UP


# Golden SHA-256 of encode_png's bytes: they change only with ENCODER (the layout, the
# level or the deflate wheel). libdeflate's compressor has no run-time CPU dispatch, so
# they hold on x86-64 and aarch64 alike (docs/png.md, "Why the bytes do not depend on
# the CPU").
GOLDEN = {
    (1, 1, 1): "f8f2e12affa1b860e04f6def024470fbe8c51edd2e76624043024b0a22ed0847",
    (41, 1, 4): "93b4930fe199196e6688a59a02554bed54e9b4e631e2ec0b8920c05a6ae8c1cc",
    (64, 48, 3): "38b16722a547e807176559177246c15fbf57c510ded774f1a162608c0b2de4ca",
    (300, 200, 3): "043228f2d8d5b6003bec96f9b3235486964bec8a51ed84605eeb82e0ea158a36",
    (120, 333, 4): "b4e6ecf29291c38eedfca526730d17b50b3ac4bd9d6e89c8968db7c165660daa",
    (257, 129, 1): "0fa9455a948d222c6b3cb79e07f00fbeee95c3ad9de3f0e15086f4eb8e38b55a",
}
# Files the probe gives Average (layout 2); the Up files above are byte-identical to
# layout 1's. formula(1, 37, 3) is here: its one row's hashed texture is Average's case.
GOLDEN_AVERAGE = {
    (1, 37, 3): "4bc45c515aeb8edf7bcea8c5a0f40764e72e5648c7a5868c11a758e0a8f5e2c8",
    (2, 37, 3): "cc3991694bc44e72d0b9108fd8f8d94e9fd8c101ca80901057768ad569938210",
    (64, 48, 3): "782f8da0f6bdb51e26b295e359637c56311b8ebbcdd296b4bcf01a23d9bb5ddf",
    (200, 150, 4): "2e804fc6c27b1a4dfe6ca8f20c9aab0abe926b9f1492e506e52d4a3c36c06e37",
    (150, 133, 1): "18b8252c0821ed7a53efb71b497d952368ea6749139d0492a2e7fd983806ecf1",
}


@pytest.mark.parametrize("shape", list(GOLDEN))
def test_golden_bytes(shape: tuple[int, int, int]) -> None:
    assert ENCODER.deflate == "deflate 0.9.0", "the deflate wheel changed: update ENCODER/goldens"
    data = encode_png(formula(*shape))
    assert filters_of(data) == {UP}
    assert hashlib.sha256(data).hexdigest() == GOLDEN[shape]


@pytest.mark.parametrize("shape", list(GOLDEN_AVERAGE))
def test_golden_bytes_average(shape: tuple[int, int, int]) -> None:
    assert ENCODER.deflate == "deflate 0.9.0", "the deflate wheel changed: update ENCODER/goldens"
    data = encode_png(formula(*shape) if shape == (1, 37, 3) else noisy(*shape))
    assert filters_of(data) == {AVERAGE}
    assert hashlib.sha256(data).hexdigest() == GOLDEN_AVERAGE[shape]


@pytest.mark.parametrize("make", [formula, noisy])
def test_bytes_do_not_depend_on_memory_layout(make: object) -> None:
    pixels = make(23, 31, 3)  # type: ignore[operator]
    reference = encode_png(pixels)
    fortran = np.asfortranarray(pixels)
    flipped = np.ascontiguousarray(pixels[::-1, ::-1])[::-1, ::-1]
    padded = np.zeros((23, 40, 5), dtype=np.uint8)
    padded[:, :31, 1:4] = pixels
    for variant in (fortran, flipped, padded[:, :31, 1:4], pixels.copy()):
        assert np.array_equal(variant, pixels)
        assert encode_png(variant) == reference


def test_encode_refuses_what_is_not_canonical_pixels() -> None:
    with pytest.raises(TypeError, match="uint8"):
        encode_png(np.zeros((2, 2, 3), dtype=np.uint16))  # type: ignore[arg-type]
    for shape in [(2, 2), (2, 2, 2), (0, 2, 3), (2, 0, 1), (2, 2, 5)]:
        with pytest.raises(ValueError, match="shape"):
            encode_png(np.zeros(shape, dtype=np.uint8))


def test_encode_refuses_images_it_would_refuse_to_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "MAX_PIXELS", 100)
    encode_png(np.zeros((10, 10, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="over the limit of 100"):
        encode_png(np.zeros((10, 11, 1), dtype=np.uint8))


# ------------------------------------------------------------ the encoder identity


def test_encoder_identity() -> None:
    doc = ENCODER.to_json()
    assert list(doc) == sorted(doc)
    assert all(type(v) in (str, int) for v in doc.values())
    assert json.loads(json.dumps(doc)) == doc
    assert doc == {
        "chunking": "one-idat",
        "deflate": "deflate 0.9.0",
        "filter": "up-or-average",
        "layout": 2,
        "level": DEFLATE_LEVEL,
        "libdeflate": "1.25",
        "name": "benchmark-regen-png",
    }
    assert str(ENCODER).startswith(
        f"benchmark-regen-png/2 filter=up-or-average level={DEFLATE_LEVEL} "
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        ENCODER.level = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        PngEncoder("x", 1, "up", "one-idat", "deflate 0.9.0", "1.25", 1)  # type: ignore[misc]
    assert dataclasses.replace(ENCODER, level=1) != ENCODER


def test_every_encoder_field_is_in_the_json() -> None:
    names = {f.name for f in dataclasses.fields(PngEncoder)}
    assert names == set(ENCODER.to_json())


# ------------------------------------------------------------ what we read


@pytest.mark.parametrize("kind", [UP, AVERAGE])
@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize(("h", "w"), [*SHAPES, (300, 7), (2, 63), (2, 64), (1, 2), (2, 1)])
def test_decode_round_trips_our_files(h: int, w: int, c: int, kind: int) -> None:
    pixels = noisy(h, w, c)
    data = encode_with(pixels, kind)
    assert filters_of(data) == {kind}
    got = decode_png(data)
    assert got is not None
    assert got.dtype == np.uint8 and got.shape == (h, w, c) and got.flags.c_contiguous
    assert got.flags.writeable
    assert np.array_equal(got, pixels)


@pytest.mark.parametrize("c", [1, 3, 4])
def test_average_is_copied_out_of_pillow_in_bands(monkeypatch: pytest.MonkeyPatch, c: int) -> None:
    pixels = noisy(37, 11, c)
    data = encode_with(pixels, AVERAGE)
    for band_bytes in (1, 11 * c, 5 * 11 * c + 1, 10**9):  # 1 row, 1 row, 5 rows, all
        monkeypatch.setattr(png, "_BAND_BYTES", band_bytes)
        got = decode_png(data)
        assert got is not None and np.array_equal(got, pixels) and got.flags.writeable


def test_average_decode_holds_at_most_two_copies_of_the_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # numpy's and Python's buffers are traced (Pillow's image is not): the inflated rows
    # are dropped once their stored copy exists, that copy once Pillow has read it, and
    # the output is copied out of Pillow in bands (here a tenth of the image).
    pixels = noisy(600, 800, 3)
    data = encode_with(pixels, AVERAGE)
    size = 600 * (1 + 800 * 3)
    monkeypatch.setattr(png, "_BAND_BYTES", size // 10)
    tracemalloc.start()
    try:
        got = decode_png(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got is not None and np.array_equal(got, pixels)
    assert peak < 2.3 * size


def test_decode_accepts_bytes_bytearray_and_memoryview() -> None:
    pixels = formula(5, 6, 3)
    data = encode_png(pixels)
    for form in (data, bytearray(data), memoryview(data)):
        got = decode_png(form)
        assert got is not None and np.array_equal(got, pixels)


def test_decode_a_maximally_compressible_image() -> None:
    # All zeros: the highest compression ratio the encoder produces stays within the
    # reader's deflate bound (1032:1), so a real file is never refused as truncated.
    pixels = np.zeros((1500, 1500, 4), dtype=np.uint8)
    data = encode_png(pixels)
    got = decode_png(data)
    assert got is not None and not got.any() and got.shape == pixels.shape


def pillow_png(pixels: Pixels, **options: object) -> bytes:
    buf = io.BytesIO()
    arr = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    Image.fromarray(arr).save(buf, format="PNG", **options)
    return buf.getvalue()


@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_decode_returns_none_on_pillow_pngs(c: int, level: int) -> None:
    data = pillow_png(formula(20, 30, c), compress_level=level)
    assert decode_png(data) is None


def adam7(pixels: Pixels) -> bytes:
    """The raw (filter-0) scanlines of an Adam7-interlaced 8-bit image."""
    out = b""
    for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4)]:
        out += b"".join(b"\x00" + row.tobytes() for row in pixels[y0::dy, x0::dx])
    for x0, y0, dx, dy in [(0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
        out += b"".join(b"\x00" + row.tobytes() for row in pixels[y0::dy, x0::dx])
    return out


def test_decode_returns_none_on_interlaced_16_bit_and_palette_pngs() -> None:
    pixels = formula(9, 10, 3)
    interlaced = handmade_png(struct.pack(">IIBBBBB", 10, 9, 8, 2, 0, 0, 1), adam7(pixels))
    assert np.array_equal(pillow_pixels(interlaced), pixels)  # a real interlaced PNG
    assert decode_png(interlaced) is None

    wide = (formula(6, 7, 1)[:, :, 0].astype(">u2") * 257).tobytes()
    sixteen = handmade_png(
        struct.pack(">IIBBBBB", 7, 6, 16, 0, 0, 0, 0),
        b"".join(b"\x00" + wide[r * 14 : (r + 1) * 14] for r in range(6)),
    )
    with Image.open(io.BytesIO(sixteen)) as img:
        img.load()
        assert img.mode.startswith("I")
    assert decode_png(sixteen) is None

    palette = io.BytesIO()
    Image.fromarray(formula(8, 8, 3)).convert("P").save(palette, format="PNG")
    assert decode_png(palette.getvalue()) is None


def test_decode_returns_none_on_our_layout_with_other_filters() -> None:
    pixels = formula(6, 5, 3)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels.reshape(6, 15))  # None filter
    data = handmade_png(struct.pack(">IIBBBBB", 5, 6, 8, 2, 0, 0, 0), raw)
    assert np.array_equal(pillow_pixels(data), pixels)
    assert decode_png(data) is None


@pytest.mark.parametrize("first", [UP, AVERAGE])
def test_decode_returns_none_on_mixed_up_and_average_rows(first: int) -> None:
    pixels = noisy(6, 5, 3)
    rows = flat(pixels)
    above = np.vstack([np.zeros_like(rows[:1]), rows[:-1]])
    up, average = (filter_rows(rows, above, kind, 3) for kind in (UP, AVERAGE))
    mixed = np.where((np.arange(6) % 2 == 0)[:, None], *(up, average)[:: 1 if first == UP else -1])
    data = handmade_png(struct.pack(">IIBBBBB", 5, 6, 8, 2, 0, 0, 0), mixed.tobytes())
    assert np.array_equal(pillow_pixels(data), pixels)  # a valid PNG, not our layout
    assert decode_png(data) is None


def test_decode_returns_none_on_extra_chunks_several_idats_or_trailing_bytes() -> None:
    pixels = formula(4, 4, 3)
    ours = encode_png(pixels)
    iend = len(ours) - 12
    with_text = ours[:33] + chunk(b"tEXt", b"k\x00v") + ours[33:]
    assert np.array_equal(pillow_pixels(with_text), pixels)
    assert decode_png(with_text) is None
    assert decode_png(ours + b"\x00") is None
    pos, length = chunk_offsets(ours)[b"IDAT"]
    stream = ours[pos + 8 : pos + 8 + length]
    split = ours[:pos] + chunk(b"IDAT", stream[:5]) + chunk(b"IDAT", stream[5:]) + ours[iend:]
    assert np.array_equal(pillow_pixels(split), pixels)
    assert decode_png(split) is None


@pytest.mark.parametrize("data", [b"", b"\x89PN", b"GIF89a" + bytes(40), b"\xff\xd8\xff\xe0"])
def test_decode_returns_none_on_non_pngs(data: bytes) -> None:
    assert decode_png(data) is None


# ------------------------------------------------------------ damaged files


@pytest.mark.parametrize("filter_type", [UP, AVERAGE])
@pytest.mark.parametrize("kind", [b"IHDR", b"IDAT", b"IEND"])
def test_a_flipped_bit_in_each_chunk_is_a_crc_error_naming_it(
    kind: bytes, filter_type: int
) -> None:
    data = encode_with(noisy(16, 16, 3), filter_type)
    pos, length = chunk_offsets(data)[kind]
    # a bit of the payload (IEND has none), then a bit of the stored CRC
    targets = [pos + 8 + length // 2, pos + 8 + length + 3] if length else [pos + 8 + 1]
    for byte in targets:
        for bit in (0, 7):
            damaged = bytearray(data)
            damaged[byte] ^= 1 << bit
            with pytest.raises(
                PngError, match=f"chunk '{kind.decode()}' at byte {pos} has a bad CRC"
            ):
                decode_png(bytes(damaged))


@pytest.mark.parametrize("kind", [UP, AVERAGE])
def test_every_truncation_is_an_error(kind: int) -> None:
    data = encode_with(noisy(12, 9, 4), kind)
    for n in range(len(PNG_SIGNATURE)):
        assert decode_png(data[:n]) is None  # not even a PNG signature
    for n in range(len(PNG_SIGNATURE), len(data)):
        with pytest.raises(PngError, match="truncated"):
            decode_png(data[:n])


def test_a_short_image_stream_is_an_error() -> None:
    pixels = formula(10, 10, 3)
    rows = b"".join(b"\x02" + bytes(30) for _ in range(9))  # one row short, valid CRCs
    data = handmade_png(struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0), rows)
    with pytest.raises(PngError, match="inflates to 279 bytes, but a 10x10 image needs 310"):
        decode_png(data)
    too_long = handmade_png(struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0), rows * 2)
    with pytest.raises(PngError, match="not hold a valid zlib stream of 310 bytes"):
        decode_png(too_long)
    corrupt = bytearray(zlib.compress(rows + b"\x02" + bytes(30)))
    corrupt[len(corrupt) // 2] ^= 0xFF
    data = (
        PNG_SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", bytes(corrupt))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(PngError, match="chunk 'IDAT'"):
        decode_png(data)
    assert pixels.shape == (10, 10, 3)


def test_a_corrupt_average_stream_is_an_error() -> None:
    # Valid CRCs around damaged image data: the checks run before Pillow unfilters.
    ihdr = struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x03" + bytes(range(30)) for _ in range(10))
    assert decode_png(handmade_png(ihdr, rows)) is not None
    with pytest.raises(PngError, match="inflates to 279 bytes, but a 10x10 image needs 310"):
        decode_png(handmade_png(ihdr, rows[:-31]))
    with pytest.raises(PngError, match="not hold a valid zlib stream of 310 bytes"):
        decode_png(handmade_png(ihdr, rows + rows[:31]))
    stream = bytearray(zlib.compress(rows))
    stream[-1] ^= 0x01  # the Adler-32 trailer, which a decoder that stops early never reads
    data = (
        PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", bytes(stream)) + chunk(b"IEND", b"")
    )
    with pytest.raises(PngError, match="chunk 'IDAT' does not hold a valid zlib stream"):
        decode_png(data)


def test_zero_dimensions_are_an_error() -> None:
    for w, h in [(0, 5), (5, 0), (2**31, 1)]:
        data = handmade_png(struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0), b"\x02")
        with pytest.raises(PngError, match=f"IHDR declares {w}x{h} pixels"):
            decode_png(data)


@pytest.mark.parametrize(("w", "h"), [(2**31 - 1, 2**31 - 1), (100_000, 100_000), (11_000, 11_000)])
def test_absurd_dimensions_are_refused_with_small_memory(w: int, h: int) -> None:
    data = handmade_png(struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0), b"\x02" * 64)
    tracemalloc.start()
    try:
        with pytest.raises(PngError, match=r"refused before decoding|too few to inflate"):
            decode_png(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_the_pixel_limit_is_png_max_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode_png(formula(10, 11, 1))
    monkeypatch.setattr(png, "MAX_PIXELS", 109)
    with pytest.raises(PngError, match="11x10 = 110 pixels, over the limit of 109"):
        decode_png(data)
    monkeypatch.setattr(png, "MAX_PIXELS", 110)
    assert decode_png(data) is not None


def test_an_image_too_large_for_the_inflater_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "MAX_PIXELS", 2**40)  # above the real limit
    data = handmade_png(struct.pack(">IIBBBBB", 70_000, 70_000, 8, 6, 0, 0, 0), b"\x02")
    with pytest.raises(PngError, match="too large to decode"):
        decode_png(data)


def test_a_declared_chunk_length_beyond_the_file_allocates_nothing() -> None:
    data = bytearray(encode_png(formula(8, 8, 3)))
    pos, _ = chunk_offsets(bytes(data))[b"IDAT"]
    struct.pack_into(">I", data, pos, 2**31 - 1)
    tracemalloc.start()
    try:
        with pytest.raises(PngError, match="truncated: chunk 'IDAT'"):
            decode_png(bytes(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 16
    struct.pack_into(">I", data, pos, 2**31)
    with pytest.raises(PngError, match="over PNG's limit"):
        decode_png(bytes(data))


# ------------------------------------------------------------ the property


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 24), st.integers(1, 40), st.sampled_from([1, 3, 4])),
    )
)
def test_round_trip_property(pixels: Pixels) -> None:
    data = encode_png(pixels)
    assert filters_of(data) == {choose_filter(flat(pixels), pixels.shape[2])}
    for kind in (UP, AVERAGE):
        forced = encode_with(pixels, kind)
        got = decode_png(forced)
        assert got is not None and np.array_equal(got, pixels)
        assert np.array_equal(pillow_pixels(forced), pixels)
    assert encode_png(np.asfortranarray(pixels)) == data


def test_module_declares_its_public_names() -> None:
    for name in png.__all__:
        assert hasattr(png, name)
