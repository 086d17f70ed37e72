"""Decoded pixels are capped per worker: a decode never needs more than MAX_DECODE_BYTES.

Issue #15: a 384 KB 12000x11000 PNG cost 1.3 GB of RSS (Pillow's 4 bytes per pixel,
then ``np.asarray``'s chunk list and joined copy), while ``docs/security.md`` promised
512 MiB plus buffers. Now the cost is computed from the header and refused above the
bound, and the copy into numpy runs in bands, so what is accepted fits in it: checked
in a child process under ``RLIMIT_AS``.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import toolchain.codec.decode as decode_mod
from tests.diff_cases import pinned
from tests.hostile import pixel_decodes
from toolchain.codec.decode import MAX_DECODE_BYTES, decode, decode_cost
from toolchain.errors import DecodeError, ExitCode
from toolchain.run.generate import generate_benchmark


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def black_png(width: int, height: int, *, channels: int = 3) -> bytes:
    """A valid, tiny (well compressed) PNG of ``width`` x ``height`` black pixels."""
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    row = bytes(1 + width * channels)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_the_issues_png_is_refused_from_its_header(tmp_path: Path) -> None:
    data = black_png(12000, 11000)
    assert len(data) < 400_000  # the issue's 384 KB file
    with (
        pixel_decodes() as decodes,
        pytest.raises(DecodeError, match=r"12000x11000 pixels \(RGB\): decoding it needs") as e,
    ):
        decode(data)
    # Pillow decodes no pixel. (Our PNG reader inflates the image data once, 378 MiB, to
    # see its row filters before it hands the file on as not in its layout.)
    assert decodes in ([], ["inflate 396011000"])
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert e.value.hint and "downscale" in e.value.hint
    # Through the pipeline: the sample is named, nothing is written.
    original = tmp_path / "original"
    original.mkdir()
    (original / "huge.png").write_bytes(data)
    with pinned(), pytest.raises(DecodeError) as e:
        generate_benchmark(original, "identity", tmp_path / "out")
    assert e.value.sample == "huge.png"
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("RGB", "PNG"), ("RGBA", "PNG"), ("L", "PNG"), ("P", "PNG"), ("PT", "PNG"),
     ("LA", "PNG"), ("1", "PNG"), ("I;16", "PNG"), ("RGB", "JPEG"), ("CMYK", "JPEG"),
     ("RGBA", "WEBP")],
)  # fmt: skip
def test_band_decode_equals_a_whole_image_conversion(
    mode: str, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bands of 3 rows (an odd last band) give exactly the pixels of one whole conversion."""
    rng = np.random.default_rng(15)
    w, h = 37, 20
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    else:
        rgba = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8))
        img = rgba.convert("RGB").quantize(16) if mode in ("P", "PT") else rgba.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"transparency": 0} if mode == "PT" else {}))
    data = buf.getvalue()
    whole = decode(data)
    monkeypatch.setattr(decode_mod, "_BAND_BYTES", 3 * 4 * w)
    banded = decode(data)
    assert banded.shape == whole.shape and np.array_equal(banded, whole)
    # And the reference: Pillow's own whole-image conversion, as before the change.
    with Image.open(io.BytesIO(data)) as ref:
        ref.load()
        if mode in ("P", "PT"):
            expected = np.asarray(ref.convert("RGBA" if mode == "PT" else "RGB"))
        elif mode == "I;16":
            wide = np.asarray(ref).astype(np.int64)
            expected = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        else:
            target = {"1": "L", "LA": "RGBA", "CMYK": "RGB"}.get(ref.mode, ref.mode)
            expected = np.asarray(ref.convert(target))
    assert np.array_equal(whole.reshape(expected.shape), expected)


def test_the_cost_covers_every_accepted_mode() -> None:
    # Pillow keeps RGB as 4 bytes per pixel: RGB costs 4 + 3, RGBA 4 + 4, L 1 + 1.
    assert decode_cost(1, 1, "RGB", "PNG") == 7
    assert decode_cost(1, 1, "RGBA", "PNG") == 8
    assert decode_cost(1, 1, "L", "JPEG") == 2
    assert decode_cost(1, 1, "RGBA", "WEBP") > decode_cost(1, 1, "RGBA", "PNG")
    with pytest.raises(DecodeError, match="unsupported image mode"):
        decode_cost(1, 1, "F", "PNG")


_UNDER_LIMIT = """
import resource, sys
from tests.unit.test_hostile_decode_memory import black_png
from toolchain.codec.decode import MAX_DECODE_BYTES, decode, decode_cost
from toolchain.errors import DecodeError

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

side, channels = int(sys.argv[1]), int(sys.argv[2])
data = black_png(side, side, channels=channels)
slack = 64 << 20
# The address space now, plus the bound, plus slack for bands and the decoders' state.
limit = status("VmSize") + MAX_DECODE_BYTES + slack
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM, the peak RSS
before = status("VmRSS")
pixels = decode(data)
assert pixels.shape == (side, side, channels), pixels.shape
print(status("VmHWM") - before, decode_cost(side, side, {3: "RGB", 4: "RGBA", 1: "L"}[channels]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("channels", [3, 4])
def test_the_largest_accepted_image_decodes_under_the_bound(channels: int) -> None:
    """In a child whose address space may grow by MAX_DECODE_BYTES + 64 MiB only.

    Before the fix, an RGB image of this size needed 10 bytes per pixel (709 MiB for
    8625x8625): MemoryError, a traceback. Now 7 (508 MiB measured).
    """
    per_pixel = decode_cost(1, 1, "RGB" if channels == 3 else "RGBA", "PNG")
    side = int((MAX_DECODE_BYTES * 0.97 / per_pixel) ** 0.5)
    r = subprocess.run(
        [sys.executable, "-c", _UNDER_LIMIT, str(side), str(channels)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    grown, cost = map(int, r.stdout.split())
    assert cost <= MAX_DECODE_BYTES
    assert grown <= MAX_DECODE_BYTES + (32 << 20), f"peak RSS grew by {grown >> 20} MiB"
