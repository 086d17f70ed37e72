"""The stdlib-only decoder in docs/png.md reads our PNGs and prints their pixel hash."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolchain.codec import png
from toolchain.codec.png import AVERAGE, ENCODER, UP, encode_png
from toolchain.model.hashing import pixel_digest

DOC = Path(__file__).resolve().parents[2] / "docs" / "png.md"


def snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    (code,) = [b for b in blocks if "benchmark-regen/pixels/v1" in b]
    return code


def test_docs_decoder_uses_the_standard_library_only() -> None:
    imports = re.findall(r"^\s*(?:import|from)\s+([\w., ]+)", snippet(), flags=re.M)
    modules = {m.strip().split(".")[0] for line in imports for m in line.split(",")}
    assert modules == {"hashlib", "struct", "sys", "zlib"}


def idat_filter(data: bytes) -> int:
    """The filter byte of row 0 of one of our files (every row has the same)."""
    pos = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[pos - 4 : pos])
    return zlib.decompress(data[pos + 4 : pos + 4 + length])[0]


@pytest.mark.parametrize("kind", [UP, AVERAGE])
@pytest.mark.parametrize(
    ("h", "w", "c"), [(1, 1, 1), (3, 1, 4), (1, 2, 3), (37, 23, 3), (16, 70, 4), (5, 20000, 3)]
)
def test_docs_decoder_prints_the_pixel_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, h: int, w: int, c: int, kind: int
) -> None:
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    pixels = ((7 * y + 13 * x + 101 * ch + (x * y) % 11) % 256).astype(np.uint8)
    script, sample = tmp_path / "png_pixels.py", tmp_path / "sample.png"
    script.write_text(snippet(), encoding="utf-8")
    monkeypatch.setattr(png, "choose_filter", lambda flat, bpp: kind)
    sample.write_bytes(encode_png(pixels))
    assert idat_filter(sample.read_bytes()) == kind
    proc = subprocess.run(
        [sys.executable, str(script), str(sample)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(pixel_digest(pixels))


def test_docs_decoder_reads_a_file_the_probe_gives_average(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    y, x = np.meshgrid(np.arange(40), np.arange(60), indexing="ij")
    smooth = (40 + x + y)[:, :, None] + np.array([0, 30, 60])
    pixels = np.clip(smooth + rng.normal(0, 8, smooth.shape).round(), 0, 255).astype(np.uint8)
    script, sample = tmp_path / "png_pixels.py", tmp_path / "sample.png"
    script.write_text(snippet(), encoding="utf-8")
    sample.write_bytes(encode_png(pixels))
    assert idat_filter(sample.read_bytes()) == AVERAGE  # the probe's own choice
    proc = subprocess.run(
        [sys.executable, str(script), str(sample)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(pixel_digest(pixels))


def test_docs_decoder_refuses_other_pngs(tmp_path: Path) -> None:
    script, sample = tmp_path / "png_pixels.py", tmp_path / "sample.png"
    script.write_text(snippet(), encoding="utf-8")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, format="PNG")
    sample.write_bytes(buf.getvalue())
    proc = subprocess.run(
        [sys.executable, str(script), str(sample)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1 and "not a benchmark-regen PNG" in proc.stderr


def test_docs_state_the_encoder_identity() -> None:
    text = DOC.read_text(encoding="utf-8")
    compact = re.sub(r"\s+", " ", text)
    for key, value in ENCODER.to_json().items():
        assert f'"{key}": {value}' in compact or f'"{key}": "{value}"' in compact
    assert f"level **{ENCODER.level}**" in text
