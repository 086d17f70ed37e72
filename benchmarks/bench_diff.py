"""Diff-path figures for issue #3, measured in one run on scikit-image's demo photographs.

* size: the .bdiff against the zeroth-order entropy of the delta (goal <= 1.10), and against
  ``xdelta3 -e -9 -s orig target`` and ``zstd --patch-from=orig target`` on the same
  original-file -> benchmark-file pairs (goal for adversarial: <= half of either);
* speed: ``diff apply`` time / floor, where floor = read + decode the originals, encode the
  outputs as PNG and hash them (pixels and file), measured in the same run on the same images
  (goal <= 1.15); and ``generate`` time for adversarial / ``diff apply`` time.

Run:  python benchmarks/bench_diff.py [--repeat 3] [--json]
The script re-executes itself once with the pinned environment, so the pipeline runs in this
process (one worker, no pool) for both the floor and the real commands.
"""

from __future__ import annotations

import os
import sys

from toolchain.run.determinism import pinned_environ, process_is_pinned

if __name__ == "__main__" and not process_is_pinned():
    os.execve(sys.executable, [sys.executable, *sys.argv], pinned_environ())

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from toolchain.codec.decode import decode
from toolchain.codec.encode import encode_png
from toolchain.demo import demo_original
from toolchain.diff import create_diff, get_benchmark
from toolchain.model.hashing import file_digest, pixel_digest
from toolchain.model.manifest import MANIFEST_NAME, load_manifest
from toolchain.run.generate import generate_benchmark
from toolchain.source import open_source

RECIPES = ("gaussian-noise", "adversarial")


def entropy_bytes(original: Path, bench: Path) -> tuple[float, float]:
    """Sum over samples of n * H0(delta) / 8, per sample and pooled, in bytes."""
    m = load_manifest(bench / MANIFEST_NAME)
    per_sample = 0.0
    pooled = np.zeros(511, dtype=np.int64)
    for e in m.entries:
        o = decode((original / e.id).read_bytes()).astype(np.int16)
        t = decode((bench / e.path).read_bytes()).astype(np.int16)
        counts = np.bincount((t - o).ravel() + 255, minlength=511)
        pooled += counts
        p = counts[counts > 0] / counts.sum()
        per_sample += float(-(p * np.log2(p)).sum()) * counts.sum() / 8
    p = pooled[pooled > 0] / pooled.sum()
    return per_sample, float(-(p * np.log2(p)).sum()) * pooled.sum() / 8


def external_sizes(original: Path, bench: Path, work: Path) -> dict[str, int]:
    """Total patch size of xdelta3 and zstd --patch-from over original-file -> benchmark-file."""
    m = load_manifest(bench / MANIFEST_NAME)
    tools: dict[str, Callable[[Path, Path, Path], list[str]]] = {
        "xdelta3 -e -9": lambda s, t, o: [
            "xdelta3",
            "-e",
            "-9",
            "-f",
            "-s",
            str(s),
            str(t),
            str(o),
        ],
        "zstd --patch-from": lambda s, t, o: [
            "zstd",
            "-q",
            "-f",
            f"--patch-from={s}",
            str(t),
            "-o",
            str(o),
        ],
        "zstd -19 --patch-from": lambda s, t, o: [
            "zstd",
            "-q",
            "-f",
            "-19",
            f"--patch-from={s}",
            str(t),
            "-o",
            str(o),
        ],
    }
    sizes = dict.fromkeys(tools, 0)
    patch = work / "patch.bin"
    for e in m.entries:
        for name, argv in tools.items():
            subprocess.run(
                argv(original / e.id, bench / e.path, patch), check=True, stderr=subprocess.DEVNULL
            )
            sizes[name] += patch.stat().st_size
    return sizes


def floor_seconds(original: Path, bench: Path) -> float:
    """Read + decode originals, encode target pixels as PNG, hash pixels and file."""
    m = load_manifest(bench / MANIFEST_NAME)
    targets = [decode((bench / e.path).read_bytes()) for e in m.entries]  # not timed
    source = open_source(original)
    t0 = time.perf_counter()
    for e, target in zip(m.entries, targets, strict=True):
        decode(source.read(e.id))
        png = encode_png(target)
        pixel_digest(target)
        file_digest(png)
    return time.perf_counter() - t0


def best_of(repeat: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeat))


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    original = demo_original()
    report: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
        work = Path(tmp)
        for recipe in RECIPES:
            bench, bdiff = work / recipe, work / f"{recipe}.bdiff"
            gen = timed(lambda r=recipe, b=bench: generate_benchmark(original, r, b))
            create = timed(lambda b=bench, d=bdiff: create_diff(original, b, d))
            per_sample, pooled = entropy_bytes(original, bench)
            ext = external_sizes(original, bench, work)
            size = bdiff.stat().st_size

            def apply_once(b: Path = bdiff, r: str = recipe, g: Path = bench) -> float:
                out = work / f"{r}-out"
                shutil.rmtree(out, ignore_errors=True)
                t = timed(lambda: get_benchmark(original, b, out))
                assert (
                    load_manifest(out / MANIFEST_NAME).root == load_manifest(g / MANIFEST_NAME).root
                )
                return t

            apply_s = best_of(args.repeat, apply_once)
            floor_s = best_of(args.repeat, lambda b=bench: floor_seconds(original, b))
            report[recipe] = {
                "samples": len(load_manifest(bench / MANIFEST_NAME).entries),
                "bdiff_bytes": size,
                "entropy_bytes_per_sample": round(per_sample),
                "entropy_bytes_pooled": round(pooled),
                "size_over_entropy": round(size / per_sample, 3),
                "size_over_pooled_entropy": round(size / pooled, 3),
                "external_bytes": ext,
                "size_over_external": {k: round(size / v, 3) for k, v in ext.items()},
                "generate_s": round(gen, 3),
                "create_s": round(create, 3),
                "apply_s": round(apply_s, 3),
                "floor_s": round(floor_s, 3),
                "apply_over_floor": round(apply_s / floor_s, 3),
                "generate_over_apply": round(gen / apply_s, 2),
            }
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    for recipe, r in report.items():
        print(f"{recipe}: {r['samples']} samples")
        print(
            f"  .bdiff {r['bdiff_bytes']} B; zeroth-order entropy of the delta "
            f"{r['entropy_bytes_per_sample']} B (per sample) -> ratio {r['size_over_entropy']}"
            f" (pooled: {r['size_over_pooled_entropy']})"
        )
        for k, v in r["external_bytes"].items():  # type: ignore[attr-defined]
            print(f"  {k}: {v} B -> .bdiff is {r['size_over_external'][k]} of it")  # type: ignore[index]
        print(
            f"  apply {r['apply_s']} s, floor {r['floor_s']} s -> {r['apply_over_floor']}; "
            f"generate {r['generate_s']} s -> generate/apply {r['generate_over_apply']}; "
            f"create {r['create_s']} s"
        )


if __name__ == "__main__":
    main()
