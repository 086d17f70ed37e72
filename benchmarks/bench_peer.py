"""Keep the lead (issue #26, goal 6): ours against the script a ``datasets`` user would write.

The original: N JPEG crops (quality 90) at 500x375 of the colour photographs
(``bench_scale.photo_original``, ``size=bench_scale.VAL_SIZE``), as a Hub-layout parquet
dataset written by ``datasets`` (``bench_scale.hub_parquet``):
``data/validation-00000-of-00001.parquet`` (more shards past 500 MB), an ``image`` column of
{bytes, path} structs and a ``label`` ClassLabel.

* ours: ``benchmark-regen generate --recipe gaussian-noise --original <that folder>
  --format parquet --workers W``;
* the peer (``PEER``, a script of its own): ``datasets.load_dataset(<that folder>,
  split="validation")``, the same number of rows as ours keeps (a seeded sample of the row
  indices, ``Dataset.select``), ``ds.map(add_noise, with_indices=True, num_proc=W)`` with the
  very integer Gaussian noise of our recipe (``toolchain/recipes/gaussian_noise.py``: sum
  of four 16-bit lanes of raw PCG64 output, sigma 8, written out here so the peer imports
  nothing of ours), ``ds.to_parquet``. Its cache is a new folder every run, so each run
  converts the parquet to Arrow as a user's first run does.

Each a whole process (``bench_scale.measure``: wall time, CPU seconds of the process and
its reaped workers, peak RSS of any of them), for W = 1 and 2, ours and the peer adjacent
in each of ``--repeat`` rounds, best of the rounds. Reported: ours / peer, of wall time and
of CPU seconds, at each W (below 1: ours is faster), and the load average.

Run:  python benchmarks/bench_peer.py [--n 160] [--workers 1,2] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import bench_scale

PEER = '''\
"""What a datasets user writes to add the gaussian-noise recipe's noise to N rows."""
import random
import sys
from fractions import Fraction

import datasets
import numpy as np
from PIL import Image

SEED, SIGMA = 2024, 8.0


def integer_gaussian(rng, shape, sigma):
    raw = rng.bit_generator.random_raw(int(np.prod(shape))).astype(np.uint64)
    total = np.zeros(raw.size, dtype=np.int64)
    for shift in (0, 16, 32, 48):
        total += ((raw >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64)
    q = Fraction(str(sigma))
    num, den = q.numerator, q.denominator * 37837
    return ((2 * (total - 2 * 65535) * num + den) // (2 * den)).reshape(shape)


def add_noise(example, idx):
    rng = np.random.Generator(np.random.PCG64([SEED, idx]))
    pixels = np.asarray(example["image"].convert("RGB"), dtype=np.int64)
    noisy = np.clip(pixels + integer_gaussian(rng, pixels.shape, SIGMA), 0, 255)
    example["image"] = Image.fromarray(noisy.astype(np.uint8))
    return example


original, out, num_proc, cache, keep = sys.argv[1:]
datasets.disable_progress_bars()
ds = datasets.load_dataset(original, split="validation", cache_dir=cache)
ds = ds.select(sorted(random.Random(SEED).sample(range(len(ds)), int(keep))))
ds = ds.map(add_noise, with_indices=True, num_proc=int(num_proc))
ds.to_parquet(f"{out}/data/validation-00000-of-00001.parquet")
'''


def _rows(out: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("data/*.parquet"))


def figures(
    n: int, workers: list[int], repeat: int, tmp: Path, sklearn: str | None
) -> dict[str, Any]:
    os.environ.update(
        {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp / "hf-home")}
    )
    t0 = time.perf_counter()
    crops = bench_scale.photo_original(tmp / "crops", n, sklearn, size=bench_scale.VAL_SIZE)
    original = bench_scale.hub_parquet(tmp / "hub", crops, tmp / "build-cache")
    setup_s = round(time.perf_counter() - t0, 1)
    peer = tmp / "peer.py"
    peer.write_text(PEER)
    runs = iter(range(10_000))
    best: dict[str, dict[int, bench_scale.Measured]] = {"ours": {}, "peer": {}}
    made: dict[str, dict[int, tuple[int, int]]] = {"ours": {}, "peer": {}}  # rows, bytes
    loads = [round(os.getloadavg()[0], 2)]
    for w in workers:
        for _ in range(repeat):
            out = tmp / "runs" / f"{next(runs):03d}-ours-{w}"
            m = bench_scale.measure(
                [
                    *("generate", "--recipe", "gaussian-noise", "--original", str(original)),
                    *("--format", "parquet", "--out", str(out), "--workers", str(w), "-q"),
                ]
            )
            kept = bench_scale._samples(out)
            made["ours"][w] = (_rows(out), bench_scale.disk_bytes(out / "data")[0])
            if w not in best["ours"] or m.wall_s < best["ours"][w].wall_s:
                best["ours"][w] = m
            out = tmp / "runs" / f"{next(runs):03d}-peer-{w}"
            cache = tmp / "runs" / f"{next(runs):03d}-peer-cache"
            m = bench_scale.measure(
                [str(peer), str(original), str(out), str(w), str(cache), str(kept)],
                command=[sys.executable],
            )
            made["peer"][w] = (_rows(out), bench_scale.disk_bytes(out / "data")[0])
            if w not in best["peer"] or m.wall_s < best["peer"][w].wall_s:
                best["peer"][w] = m
        loads.append(round(os.getloadavg()[0], 2))
    for w in workers:
        if made["ours"][w][0] != made["peer"][w][0]:
            raise SystemExit(f"--workers {w}: ours and the peer wrote different row counts")
    return {
        "n": n,
        "kept": made["ours"][workers[0]][0],
        "crop": "x".join(map(str, bench_scale.VAL_SIZE)),
        "repeat": repeat,
        "loadavg_1min": loads,
        "setup_s": setup_s,
        "runs": {
            who: {
                str(w): {
                    **{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(m).items()},
                    "images_per_s": round(made[who][w][0] / m.wall_s, 1),
                    "parquet_bytes": made[who][w][1],
                }
                for w, m in table.items()
            }
            for who, table in best.items()
        },
        "ours_over_peer_wall": {
            str(w): round(best["ours"][w].wall_s / best["peer"][w].wall_s, 3) for w in workers
        },
        "ours_over_peer_cpu": {
            str(w): round(best["ours"][w].cpu_s / best["peer"][w].cpu_s, 3) for w in workers
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=160, help="rows of the parquet original")
    ap.add_argument("--workers", default="1,2", help="W: --workers and num_proc (comma-separated)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many rounds")
    ap.add_argument("--sklearn", default=None, help="folder or wheel with china/flower.jpg")
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    try:
        workers = [int(w) for w in opts.workers.split(",")]
        fig = figures(opts.n, workers, opts.repeat, tmp, opts.sklearn)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if opts.json:
        print(json.dumps(fig, indent=2, sort_keys=True))
        return
    print(
        f"{fig['n']} JPEG crops at {fig['crop']} as Hub-layout parquet, {fig['kept']} kept; "
        f"best of {fig['repeat']}; load average {fig['loadavg_1min']}; setup {fig['setup_s']} s"
    )
    head = ("", "W", "wall s", "img/s", "CPU s", "RSS MiB", "MB out")
    print(" ".join(f"{h:>{w}s}" for h, w in zip(head, (6, 2, 8, 7, 7, 8, 7), strict=True)))
    for who, table in fig["runs"].items():
        for w, r in table.items():
            print(
                f"{who:6s} {w:>2s} {r['wall_s']:8.2f} {r['images_per_s']:7.1f} {r['cpu_s']:7.1f} "
                f"{r['rss_kib'] / 1024:8.1f} {r['parquet_bytes'] / 1e6:7.1f}"
            )
    print(f"ours / peer, wall time: {fig['ours_over_peer_wall']}; CPU: {fig['ours_over_peer_cpu']}")


if __name__ == "__main__":
    main()
