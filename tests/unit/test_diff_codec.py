"""Payload packing: exact round trips, the smallest representation, bounded unpacking."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolchain.diff.codec import (
    PayloadError,
    pack_payload,
    recipe_payload,
    recipe_shape,
    unpack_payload,
)
from toolchain.diff.format import PayloadKind


@st.composite
def pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    c = draw(st.sampled_from([1, 3, 4]))
    seed = draw(st.integers(0, 2**32 - 1))
    spread = draw(st.sampled_from([0, 1, 8, 255]))
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    delta = rng.integers(-spread, spread + 1, (h, w, c))
    target = np.clip(original.astype(np.int64) + delta, 0, 255).astype(np.uint8)
    return original, target


@settings(max_examples=80, deadline=None)
@given(pairs())
def test_round_trip_is_exact(pair: tuple[np.ndarray, np.ndarray]) -> None:
    original, target = pair
    kind, plaintext = pack_payload(original, target)
    rebuilt = unpack_payload(kind, plaintext, original if kind is PayloadKind.DELTA else None)
    assert rebuilt.dtype == np.uint8 and rebuilt.shape == target.shape
    assert np.array_equal(rebuilt, target)


def test_small_noise_is_a_delta_and_a_new_shape_is_full() -> None:
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    target = np.clip(original.astype(np.int64) + rng.integers(-2, 3, original.shape), 0, 255)
    kind, _ = pack_payload(original, target.astype(np.uint8))
    assert kind is PayloadKind.DELTA
    cropped = np.ascontiguousarray(original[:32])
    kind, plaintext = pack_payload(original, cropped)
    assert kind is PayloadKind.FULL
    assert np.array_equal(unpack_payload(kind, plaintext, None), cropped)


def test_a_flat_target_is_stored_full_when_smaller() -> None:
    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    target = np.zeros_like(original)  # the delta is as random as the original
    kind, _ = pack_payload(original, target)
    assert kind is PayloadKind.FULL


def test_unpacking_checks_bounds_before_allocating() -> None:
    header = bytes([2, 3, 0, 0]) + (1 << 20).to_bytes(4, "little") * 2  # 1 Mi x 1 Mi
    with pytest.raises(PayloadError, match="out of bounds"):
        unpack_payload(
            PayloadKind.DELTA, header + b"\x28\xb5\x2f\xfd", np.zeros((1, 1, 3), np.uint8)
        )
    with pytest.raises(PayloadError, match="does not match kind"):
        unpack_payload(PayloadKind.FULL, header, None)
    ok_kind, plaintext = pack_payload(np.zeros((4, 4, 1), np.uint8), np.ones((4, 4, 1), np.uint8))
    with pytest.raises(PayloadError, match="does not fit"):
        unpack_payload(ok_kind, plaintext, np.zeros((4, 5, 1), np.uint8))


# -- recipe entries: the target's shape alone ---------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (32, 40, 3), (20, 33, 4)])
def test_a_recipe_entry_holds_the_targets_shape_alone(shape: tuple[int, int, int]) -> None:
    plaintext = recipe_payload(np.zeros(shape, np.uint8))
    h, w, c = shape
    assert plaintext == struct.pack("<BBHII", 5, c, 0, h, w)  # method 5, nothing after
    assert recipe_shape(plaintext) == shape


def _head(method: int, c: int, h: int, w: int, reserved: int = 0) -> bytes:
    return struct.pack("<BBHII", method, c, reserved, h, w)


_RGB = np.zeros((4, 5, 3), np.uint8)


@pytest.mark.parametrize(
    ("plaintext", "words"),
    [
        (recipe_payload(_RGB) + b"\x00", "holds bytes after its header"),
        (recipe_payload(_RGB)[:-1], "shorter than its header"),
        (pack_payload(_RGB, _RGB)[1], "method 1 does not match kind RECIPE"),
        (pack_payload(_RGB, _RGB[:2])[1], "method 3 does not match kind RECIPE"),
        (_head(5, 3, 4, 5, reserved=1), "method 5 does not match kind RECIPE"),
        (_head(5, 2, 4, 5), "shape 4x5x2 is out of bounds"),
        (_head(5, 3, 0, 5), "shape 0x5x3 is out of bounds"),
        (_head(5, 1, 1 << 20, 1 << 20), "is out of bounds"),
    ],
    ids=["trailing", "short", "delta", "full", "reserved", "channels", "empty", "huge"],
)
def test_recipe_shape_refuses_anything_but_a_recipe_head(plaintext: bytes, words: str) -> None:
    with pytest.raises(PayloadError, match=words):
        recipe_shape(plaintext)


def test_a_recipe_entry_is_never_unpacked_as_pixels() -> None:
    plaintext = recipe_payload(_RGB)
    with pytest.raises(PayloadError, match="a recipe entry holds no pixels: run its recipe"):
        unpack_payload(PayloadKind.RECIPE, plaintext, _RGB)
    for kind in (PayloadKind.DELTA, PayloadKind.FULL):  # nor its head taken for theirs
        with pytest.raises(PayloadError, match=f"method 5 does not match kind {kind.name}"):
            unpack_payload(kind, plaintext, _RGB)
