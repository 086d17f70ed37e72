"""The floor of issue #26, goal 2: per sample, in process, decode the original, encode the
benchmark sample as PNG at zlib level 1 and SHA-256 the PNG (Pillow and hashlib alone),
best of 3 passes over a benchmark's samples.

Run:  python benchmarks/apply_floor.py ORIGINAL BENCHMARK
Compare with (`diff apply --workers 1` of N samples - of one sample) / N
(docs/performance.md, goal 2).
"""

import hashlib
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from toolchain.model.manifest import MANIFEST_NAME, load_manifest

if __name__ == "__main__":
    original, bench = Path(sys.argv[1]), Path(sys.argv[2])
    entries = load_manifest(bench / MANIFEST_NAME).entries
    pairs = [
        ((original / e.id).read_bytes(), np.asarray(Image.open(bench / e.path))) for e in entries
    ]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for data, target in pairs:
            np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            png = io.BytesIO()
            Image.fromarray(target).save(png, format="PNG", compress_level=1)
            hashlib.sha256(png.getvalue()).digest()
        best = min(best, time.perf_counter() - start)
    print(
        f"floor: {best:.3f} s for {len(pairs)} samples, {best / len(pairs) * 1000:.2f} ms a sample"
    )
