"""Hostile ``.bdiff`` containers: DiffFormatError only; zstd bombs refused; signature sidecar."""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from PIL import Image

from tests.hostile import HOSTILE, mutations, peak_allocation, typed
from toolchain.diff.reader import open_diff
from toolchain.errors import DiffFormatError, ExitCode, SignatureError

fmt = pytest.importorskip("toolchain.diff.format")
codec = pytest.importorskip("toolchain.diff.codec")


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    from toolchain.diff.create import create_diff
    from toolchain.run.generate import generate_benchmark

    work = tmp_path_factory.mktemp("bdiff")
    rng = np.random.default_rng(0)
    for i in range(3):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(buf, "PNG")
        (work / "orig").mkdir(exist_ok=True)
        (work / "orig" / f"{i}.png").write_bytes(buf.getvalue())
    generate_benchmark(work / "orig", "identity", work / "bench")
    create_diff(work / "orig", work / "bench", work / "b.bdiff")
    return work, (work / "b.bdiff").read_bytes()


def _open_all(path: Path) -> object:
    def run() -> object:
        with open_diff(path) as reader:
            for _ in reader.iter_sealed():
                pass
        return reader

    return typed(run, DiffFormatError)


def test_seed_container_opens(seed: tuple[Path, bytes]) -> None:
    work, _ = seed
    assert not isinstance(_open_all(work / "b.bdiff"), DiffFormatError)


def test_mutated_containers(
    seed: tuple[Path, bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, data = seed
    target = tmp_path_factory.mktemp("m") / "x.bdiff"

    @HOSTILE
    @given(mutations(data))
    def prop(mutated: bytes) -> None:
        target.write_bytes(mutated)
        result = _open_all(target)
        if mutated != data:
            # The header digest and per-payload digests catch every change we make.
            assert isinstance(result, DiffFormatError)

    prop()


@pytest.mark.parametrize("field", ["entry_count", "manifest_length", "file_length"])
def test_huge_declared_lengths_allocate_nothing(
    seed: tuple[Path, bytes], tmp_path: Path, field: str
) -> None:
    _, data = seed
    offsets = {"entry_count": 16, "manifest_length": 20, "file_length": 24}
    raw = bytearray(data)
    at = offsets[field]
    if field == "file_length":
        struct.pack_into("<Q", raw, at, 2**62)
    else:
        struct.pack_into("<I", raw, at, 2**32 - 1)
    p = tmp_path / "x.bdiff"
    p.write_bytes(bytes(raw))
    with pytest.raises(DiffFormatError) as e:
        open_diff(p)
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert peak_allocation(lambda: open_diff(p).close()) < 16 * 1024 * 1024


def test_zstd_frame_declaring_a_huge_size_is_refused() -> None:
    import zstandard

    head = struct.Struct("<BBHII")
    kind = next(iter(fmt.PayloadKind))
    method = next(m for m, k in codec._KIND.items() if k is kind)
    frame = zstandard.ZstdCompressor().compress(b"\0" * 64)
    # A header claiming 16384x16384x4 (1 GiB > MAX_PIXELS) and one claiming a size the
    # frame does not declare.
    for h, w, c in [(16384, 16384, 4), (8, 8, 3)]:
        payload = head.pack(method, c, 0, h, w) + frame
        with pytest.raises(codec.PayloadError, match=r"out of bounds|declares"):
            codec.unpack_payload(kind, payload, np.zeros((h, w, c), np.uint8) if h == 8 else None)
    # A frame that declares no content size at all.
    cobj = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    streamed = cobj.compress(b"\0" * 192) + cobj.flush()
    with pytest.raises(codec.PayloadError, match="declares"):
        codec.unpack_payload(kind, head.pack(method, 3, 0, 8, 8) + streamed, None)


def test_container_signature_sidecar(seed: tuple[Path, bytes], tmp_path: Path) -> None:
    from toolchain.audit.sign import generate_key, sign_manifest
    from toolchain.diff.reader import check_container_signature

    work, _ = seed
    box = tmp_path / "b.bdiff"
    shutil.copy(work / "b.bdiff", box)
    pair = generate_key(tmp_path / "k")
    other = generate_key(tmp_path / "o")
    with pytest.raises(SignatureError, match="no signature at") as e:
        check_container_signature(box, pair.public)
    assert e.value.exit_code == ExitCode.BAD_INPUT
    sign_manifest(work / "bench" / "manifest.json", pair.private, out=tmp_path / "b.bdiff.sig")
    assert check_container_signature(box, pair.public).keyid == pair.keyid
    with pytest.raises(SignatureError, match="another key"):
        check_container_signature(box, other.public)
