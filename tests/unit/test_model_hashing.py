from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from toolchain.model.hashing import (
    Digest,
    RootHasher,
    Sha256Stream,
    canonical_json,
    pixel_digest,
    pretty_json,
    root_digest,
    root_digest_v1,
    sha256_file,
    source_digest,
    source_salt,
)


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


def test_v1_root_digest_is_order_independent_but_id_sensitive() -> None:
    a, b = Digest.of(b"a"), Digest.of(b"b")
    assert root_digest_v1([("x", a), ("y", b)]) == root_digest_v1([("y", b), ("x", a)])
    assert root_digest_v1([("x", a), ("y", b)]) != root_digest_v1([("x", b), ("y", a)])
    expected = hashlib.sha256(
        b"benchmark-regen/root/v1\n" + b"x\x00" + a.hex.encode() + b"\n"
        + b"y\x00" + b.hex.encode() + b"\n"
    ).hexdigest()  # fmt: skip
    assert root_digest_v1([("y", b), ("x", a)]).hex == expected


def test_root_digest_commits_to_paths_and_columns() -> None:
    a, b = Digest.of(b"a"), Digest.of(b"b")
    schema = {"label": {"names": ["cat", "dog"], "type": "class_label"}}
    x = ("cat/x.jpg", "cat/x.png", a, {"label": 0})
    y = ("dog/y.jpg", "dog/y.png", b, {"label": 1})
    root = root_digest([x, y], schema)
    assert root == root_digest([y, x], schema)
    # A moved file, a changed label, renamed classes: each changes the root.
    assert root != root_digest([("cat/x.jpg", "dog/x.png", a, {"label": 0}), y], schema)
    assert root != root_digest([("cat/x.jpg", "cat/x.png", a, {"label": 1}), y], schema)
    renamed = {"label": {"names": ["dog", "cat"], "type": "class_label"}}
    assert root != root_digest([x, y], renamed)
    expected = hashlib.sha256(
        b"benchmark-regen/root/v2\n"
        b'columns {"label":{"names":["cat","dog"],"type":"class_label"}}\n'
        + b"cat/x.jpg\x00cat/x.png\x00" + a.hex.encode() + b'\x00{"label":0}\n'
        + b"dog/y.jpg\x00dog/y.png\x00" + b.hex.encode() + b'\x00{"label":1}\n'
    ).hexdigest()  # fmt: skip
    assert root.hex == expected


def test_source_digest_is_salted_per_benchmark() -> None:
    import numpy as np

    px = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    one, two = source_salt({"name": "a"}), source_salt({"name": "b"})
    assert source_digest(px, one) != source_digest(px, two) != pixel_digest(px)
    expected = hashlib.sha256(
        b"benchmark-regen/source/v2\n" + one + b"uint8 2x2x3\n" + px.tobytes()
    ).hexdigest()
    assert source_digest(px, one).hex == expected


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


def test_root_hasher_fed_in_order_is_root_digest() -> None:
    schema = {"label": {"type": "int"}}
    rows = [(f"c/{i}.jpg", f"c/{i}.png", Digest.of(bytes([i])), {"label": i}) for i in range(5)]
    hasher = RootHasher(schema)
    for row in rows:
        hasher.add(*row)
    assert hasher.digest() == root_digest(reversed(rows), schema)
    with pytest.raises(ValueError, match="comes before the previous one"):
        hasher.add(*rows[0])


def test_digest_from_raw_bytes() -> None:
    raw = hashlib.sha256(b"x").digest()
    assert Digest.from_bytes(raw) == Digest.of(b"x") == Digest.parse(str(Digest.from_bytes(raw)))
    with pytest.raises(ValueError, match="32 bytes"):
        Digest.from_bytes(raw[:31])


def test_sha256_file_of_a_path_a_descriptor_or_pieces(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # over two 1 MiB reads
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    expected = Digest.of(data)
    assert sha256_file(path) == sha256_file(str(path)) == expected
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, 10, os.SEEK_SET)
        assert sha256_file(fd) == Digest.of(data[10:])  # from where it stands
        os.fstat(fd)  # left open
    finally:
        os.close(fd)
    assert sha256_file([data[:5], b"", data[5:]]) == expected


def test_sha256_stream_hashes_pieces_on_their_way() -> None:
    stream = Sha256Stream()
    assert list(stream.passing([b"ab", b"c"])) == [b"ab", b"c"]
    assert stream.digest() == Digest.of(b"abc")


def test_pretty_and_canonical_json_are_the_documented_forms() -> None:
    doc = {"b": [1, {"\u00e9": True}], "a": None}
    assert canonical_json(doc) == b'{"a":null,"b":[1,{"\\u00e9":true}]}'
    assert pretty_json(doc) == (
        b'{\n  "a": null,\n  "b": [\n    1,\n    {\n      "\\u00e9": true\n    }\n  ]\n}\n'
    )
