"""How well the PNG writer's filter probe picks Up or Average, for variants of the probe.

The images are those of ``bench_speed.py``: its 1920x1080 JPEG originals (decoded), and
the benchmark pixels of the ``gaussian-noise`` and ``adversarial`` recipes on them. For
each set: file bytes / Pillow level 6 with Up on every image, with Average on every
image, and with the filter a probe (period, rows, level) picks per image: the rows ``y``
with ``y % period < rows`` filtered both ways, compressed by libdeflate at ``level``,
Average if strictly smaller (``toolchain.codec.png.choose_filter`` is the variant
128, 8, 2). The time column is the probe's time over the time of Up filtering plus
level-6 compression of the same images. Also: how many images the probe gets right
(the filter smaller at level 6); and, with ``--decode``, seconds to decode our files
of each set, Up and Average files apart, best of ``--repeat``: ``decode_png``, Pillow's
``Image.open(...).load()``, and ``np.asarray(Image.open(...))``.

Run:  python benchmarks/bench_probe.py [--sklearn PATH] [--probes 128:8:2,128:16:1]
      [--decode] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bench_png
import bench_speed
import deflate
import numpy as np
import numpy.typing as npt
from PIL import Image

from toolchain.codec import png
from toolchain.codec.decode import decode
from toolchain.model.manifest import MANIFEST_NAME, load_manifest
from toolchain.run.generate import generate_benchmark

Pixels = npt.NDArray[np.uint8]
DEFAULT_PROBES = "128:16:1,128:8:1,256:16:1,128:16:2,128:8:2,256:16:2,128:16:6"


def image_sets(sklearn: str | None, work: Path) -> dict[str, list[Pixels]]:
    original = work / "original"
    names = bench_speed.write_originals(original, sklearn)
    sets = {"clean originals": [decode((original / n).read_bytes()) for n in names]}
    for recipe in ("gaussian-noise", "adversarial"):
        generate_benchmark(original, recipe, work / recipe)
        m = load_manifest(work / recipe / MANIFEST_NAME)
        sets[recipe] = [decode((work / recipe / e.path).read_bytes()) for e in m.entries]
    return sets


def measure(images: list[Pixels], probes: list[tuple[int, int, int]]) -> dict[str, object]:
    container = 57  # signature, IHDR, IDAT and IEND framing of one file
    pillow6 = sum(len(bench_png.pillow_png(px, 6)) for px in images)
    sizes: dict[int, list[int]] = {png.UP: [], png.AVERAGE: []}
    up_time = 0.0
    for px in images:
        h, w, c = px.shape
        flat = px.reshape(h, w * c)
        for kind in (png.UP, png.AVERAGE):
            t0 = time.perf_counter()
            n = len(deflate.zlib_compress(png._filtered(flat, kind, c), png.DEFLATE_LEVEL))
            if kind == png.UP:
                up_time += time.perf_counter() - t0
            sizes[kind].append(n + container)
    best = [png.AVERAGE if a < u else png.UP for u, a in zip(*sizes.values(), strict=True)]
    out: dict[str, object] = {
        "images": len(images),
        "up": round(sum(sizes[png.UP]) / pillow6, 4),
        "average": round(sum(sizes[png.AVERAGE]) / pillow6, 4),
    }
    for period, rows, level in probes:
        t0 = time.perf_counter()
        picks = [
            png.choose_filter(
                px.reshape(px.shape[0], -1), px.shape[2], period=period, rows=rows, level=level
            )
            for px in images
        ]
        spent = time.perf_counter() - t0
        total = sum(sizes[k][i] for i, k in enumerate(picks))
        out[f"probe {period}, {rows}, level {level}"] = {
            "size": round(total / pillow6, 4),
            "right": sum(p == b for p, b in zip(picks, best, strict=True)),
            "average_picks": picks.count(png.AVERAGE),
            "time_vs_up6": round(spent / up_time, 3),
        }
    return out


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_decode(images: list[Pixels], repeat: int) -> dict[str, dict[str, float]]:
    files = [png.encode_png(px) for px in images]
    kinds = [png.choose_filter(px.reshape(px.shape[0], -1), px.shape[2]) for px in images]

    def pillow_load(data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as img:
            img.load()

    def pillow_array(data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as img:
            np.asarray(img)

    decoders: dict[str, Callable[[bytes], object]] = {
        "decode_png": png.decode_png,
        "open().load()": pillow_load,
        "np.asarray(open())": pillow_array,
    }
    out = {}
    for kind, label in ((png.UP, "up"), (png.AVERAGE, "average")):
        sel = [f for f, k in zip(files, kinds, strict=True) if k == kind]
        if sel:
            out[f"{len(sel)} {label} files"] = {
                name: round(best_of(lambda fn=fn, sel=sel: [fn(f) for f in sel], repeat), 3)
                for name, fn in decoders.items()
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sklearn", default=None, help="folder or wheel with china/flower.jpg")
    ap.add_argument("--probes", default=DEFAULT_PROBES, help="period:rows:level,...")
    ap.add_argument("--decode", action="store_true", help="also time decoding our files")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    probes = [tuple(int(v) for v in p.split(":")) for p in args.probes.split(",") if p]
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        sets = image_sets(args.sklearn, Path(tmp))
    for name, images in sets.items():
        r = measure(images, probes)  # type: ignore[arg-type]
        print(f"{name}: {r['images']} images; Up {r['up']:.4f}, Average {r['average']:.4f}")
        for label, v in r.items():
            if isinstance(v, dict):
                print(
                    f"  {label:24s} {v['size']:.4f}  right {v['right']}/{r['images']}  "
                    f"Average {v['average_picks']}  time/Up-6 {v['time_vs_up6']:.3f}"
                )
        if args.decode:
            for label, times in measure_decode(images, args.repeat).items():
                cells = ", ".join(f"{k} {v:.3f} s" for k, v in times.items())
                print(f"  decode {label}: {cells}")


if __name__ == "__main__":
    main()
