from __future__ import annotations

import hashlib

import numpy as np
import pytest

from toolchain.hashing import Digest, pixel_digest, root_digest


def test_pixel_digest_matches_the_documented_formula() -> None:
    px = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    expected = hashlib.sha256(
        b"benchmark-regen/pixels/v1\nuint8 2x3x4\n" + px.tobytes()
    ).hexdigest()
    assert pixel_digest(px).hex == expected


def test_pixel_digest_sees_shape_and_single_bit() -> None:
    px = np.zeros((4, 6, 1), dtype=np.uint8)
    assert pixel_digest(px) != pixel_digest(px.reshape(6, 4, 1))
    flipped = px.copy()
    flipped[3, 5, 0] ^= 1
    assert pixel_digest(px) != pixel_digest(flipped)


def test_pixel_digest_of_non_contiguous_view_equals_copy() -> None:
    px = np.arange(60, dtype=np.uint8).reshape(5, 4, 3)
    view = px[:, ::-1, :]
    assert pixel_digest(view) == pixel_digest(np.ascontiguousarray(view))


def test_root_digest_is_order_independent_but_id_sensitive() -> None:
    a, b = Digest.of(b"a"), Digest.of(b"b")
    assert root_digest([("x", a), ("y", b)]) == root_digest([("y", b), ("x", a)])
    assert root_digest([("x", a), ("y", b)]) != root_digest([("x", b), ("y", a)])
    expected = hashlib.sha256(
        b"benchmark-regen/root/v1\n"
        + b"x\x00"
        + a.hex.encode()
        + b"\n"
        + b"y\x00"
        + b.hex.encode()
        + b"\n"
    ).hexdigest()
    assert root_digest([("y", b), ("x", a)]).hex == expected


@pytest.mark.parametrize(
    "bad", ["", "sha256:", "sha256:XYZ", "md5:" + "0" * 64, "sha256:" + "A" * 64]
)
def test_digest_parse_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        Digest.parse(bad)


def test_digest_round_trip() -> None:
    d = Digest.of(b"hello")
    assert Digest.parse(str(d)) == d
    assert str(d).startswith("sha256:") and d.short == d.hex[:12]
