"""toolchain.codec.encode: what a recipe may return (check_pixels), and the canonical PNG: lossless,
metadata-free, a function of the pixels only."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from toolchain.codec.decode import decode
from toolchain.codec.encode import ENCODER, check_pixels, encode_png
from toolchain.errors import RecipeError


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([[1, 2]], "recipe returned list, expected a numpy uint8 array"),
        (np.zeros((4, 4, 3), dtype=np.float32), "dtype float32, expected uint8"),
        (np.zeros((4, 4, 3), dtype=np.int64), "dtype int64, expected uint8"),
        (np.zeros((4, 4), dtype=np.uint8), "shape (4, 4)"),
        (np.zeros((4, 4, 2), dtype=np.uint8), "shape (4, 4, 2)"),
        (np.zeros((4, 4, 5), dtype=np.uint8), "shape (4, 4, 5)"),
        (np.zeros((0, 4, 3), dtype=np.uint8), "shape (0, 4, 3)"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), "shape (2, 4, 4, 3)"),
    ],
)
def test_check_pixels_refuses_what_cannot_be_a_canonical_image(value: object, words: str) -> None:
    with pytest.raises(RecipeError) as e:
        check_pixels(value, sample="cat/a.png")
    assert words in e.value.message and e.value.sample == "cat/a.png"
    assert e.value.exit_code == 3


def test_a_float_result_is_told_how_to_round() -> None:
    with pytest.raises(RecipeError) as e:
        check_pixels(np.ones((2, 2, 1)))
    assert "np.clip(np.rint(x), 0, 255).astype(np.uint8)" in (e.value.hint or "")


def test_check_pixels_returns_a_contiguous_array_of_the_same_values() -> None:
    base = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    view = base[:, ::2]  # a strided view, as a recipe may return
    out = check_pixels(view)
    assert out.flags.c_contiguous and np.array_equal(out, view)


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_png_is_lossless_and_carries_no_metadata(channels: int, mode: str) -> None:
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 256, (17, 23, channels), dtype=np.uint8)
    data = encode_png(pixels)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert np.array_equal(decode(data), pixels)
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == mode and img.size == (23, 17)
        assert not {"exif", "icc_profile", "dpi", "gamma", "transparency"} & set(img.info)
    for chunk in (b"tIME", b"tEXt", b"zTXt", b"iTXt", b"pHYs", b"gAMA", b"iCCP", b"eXIf"):
        assert chunk not in data


def test_png_bytes_are_a_function_of_the_pixels() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    first = encode_png(pixels)
    assert encode_png(pixels.copy()) == first
    assert encode_png(np.asfortranarray(pixels)) == first  # memory layout does not matter
    other = pixels.copy()
    other[0, 0, 0] ^= 1
    assert encode_png(other) != first


def test_the_encoder_identity_is_recorded() -> None:
    assert ENCODER["name"] and ENCODER["level"] is not None
    assert all(isinstance(v, str | int) for v in ENCODER.values())
