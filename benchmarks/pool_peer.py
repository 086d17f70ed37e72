"""The peer of issue #26, goal 3: what one would write with ``multiprocessing.Pool`` to do
what ``generate --recipe gaussian-noise`` does per sample (decode, the recipe, PNG, hashes,
write), with none of ours around it (no pinning, listing, journal or manifest).

Run:  python benchmarks/pool_peer.py ORIGINAL OUT WORKERS
e.g.  against `benchmark-regen generate --recipe gaussian-noise --original ORIGINAL
      --out OUT2 --workers 2 --overwrite -q`, alternated (docs/performance.md, goal 3).
"""

import hashlib
import multiprocessing
import sys
from pathlib import Path

from toolchain.codec.decode import decode
from toolchain.codec.encode import encode_png
from toolchain.recipes import load_recipe

RECIPE = load_recipe("gaussian-noise")


def make(job: tuple[str, Path, Path]) -> str:
    sample_id, src, out = job
    pixels = RECIPE.run(sample_id, decode(src.read_bytes()))
    png = encode_png(pixels)
    (out / sample_id).with_suffix(".png").parent.mkdir(parents=True, exist_ok=True)
    (out / sample_id).with_suffix(".png").write_bytes(png)
    return hashlib.sha256(pixels.tobytes()).hexdigest() + hashlib.sha256(png).hexdigest()


if __name__ == "__main__":
    original, out, workers = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    ids = sorted(p.relative_to(original).as_posix() for p in original.rglob("*.jpg"))
    jobs = [(i, original / i, out) for i in RECIPE.choose(ids)]
    with multiprocessing.Pool(workers) as pool:
        digests = pool.map(make, jobs, chunksize=4)
    print(hashlib.sha256("".join(digests).encode()).hexdigest())
