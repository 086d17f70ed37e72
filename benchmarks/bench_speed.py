"""Speed against a floor for issue #11, on 1920x1080 real images, in one pinned process.

The originals are ``bench_png.hd_originals``: 21 deterministic 1920x1080 JPEGs (quality 90)
made from the colour photographs of scikit-image and scikit-learn (11 centre crops
upscaled with LANCZOS, 10 mosaics of native-resolution crops), written to a folder.
Every figure is a ratio of two times measured in this run, the compared commands
interleaved, each the best of ``--repeat``:

* ``diff apply`` (``get_benchmark``, recipe ``adversarial``) / the naive floor: read and
  decode each original, encode the benchmark's pixels as a PNG with Pillow at
  ``compress_level=1``, SHA-256 of the file (goal <= 1.0);
* ``generate --recipe gaussian-noise`` (``generate_benchmark``) / the same floor plus the
  recipe's transform on the decoded pixels, over the samples the recipe selects
  (goal <= 1.3);
* benchmark bytes / Pillow level 6 bytes of the same pixels (goal <= 1.02);
* ``verify`` (``verify_benchmark``) / Pillow PNG decode + SHA-256 of each file (goal <= 1.1).

The library runs with one worker: in this process, which the script re-executes once
with the pinned environment (as ``bench_diff.py`` does). The floors read their inputs
from the same files; pixels the floor only has to encode are decoded beforehand,
untimed. ``verify`` and its floor run in a fresh pinned child process each round, one
after the other, as ``benchmark-regen verify`` runs: a process that ran ``apply`` or
``generate`` fixed glibc's mmap threshold at 1 MiB (``toolchain/_internal/memory.py``, for
the workers' flat memory), which `verify` never does, and on some virtual machines the
page faults of its fresh multi-megabyte buffers then cost verify a fifth more than the
floor, whose decoded image lives in Pillow's own arena.

Run:  python benchmarks/bench_speed.py [--sklearn PATH] [--repeat 3] [--json]
      [--profile apply|generate|verify|create] [--bytes-detail]
``--sklearn`` as in ``bench_png.py`` (a folder holding china.jpg and flower.jpg, or a
scikit-learn wheel; default: an installed scikit-learn, else scikit-image's photos only).
``--profile NAME`` also runs that command once under cProfile and prints its top entries;
``--bytes-detail`` splits the size ratio into filter and deflate engine (``bytes_detail``).
"""

from __future__ import annotations

import os
import sys

from toolchain.run.determinism import pinned_environ, process_is_pinned

if __name__ == "__main__" and not process_is_pinned():
    os.execve(sys.executable, [sys.executable, *sys.argv], pinned_environ())

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import bench_png
import numpy as np
from PIL import Image

from toolchain.audit.verify import verify_benchmark
from toolchain.codec import png
from toolchain.codec.decode import decode
from toolchain.diff import create_diff, get_benchmark
from toolchain.model.manifest import MANIFEST_NAME, Manifest, load_manifest
from toolchain.recipes import load_recipe
from toolchain.run.generate import generate_benchmark

GOALS = {"apply": 1.0, "generate": 1.3, "bytes": 1.02, "verify": 1.1}


def write_originals(folder: Path, sklearn: str | None) -> list[str]:
    """The 1080p JPEG originals of ``bench_png``, written to ``folder``; their names."""
    native = {n: decode(b) for n, b in bench_png.native_originals(sklearn).items()}
    folder.mkdir(parents=True)
    files = bench_png.hd_originals(native)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(files)


def pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


# ---------------------------------------------------------------- the floors


def floor_encode(original: Path, m: Manifest, targets: list[np.ndarray]) -> None:
    """Decode each original, Pillow level-1 PNG of the benchmark's pixels, SHA-256 of it."""
    for e, target in zip(m.entries, targets, strict=True):
        decode((original / e.id).read_bytes())
        hashlib.sha256(bench_png.pillow_png(target, 1)).digest()


def floor_transform(original: Path, m: Manifest, recipe: str) -> None:
    """Decode each selected original, the recipe's transform, Pillow level-1 PNG, SHA-256."""
    rec = load_recipe(recipe)
    for e in m.entries:
        pixels = rec.apply(e.id, decode((original / e.id).read_bytes()))
        hashlib.sha256(bench_png.pillow_png(pixels, 1)).digest()


def floor_verify(bench: Path, m: Manifest) -> None:
    """Pillow decode of each benchmark file, SHA-256 of the file."""
    for e in m.entries:
        data = (bench / e.path).read_bytes()
        pillow_decode(data)
        hashlib.sha256(data).digest()


def bytes_detail(pixels: list[np.ndarray], pillow6: int) -> dict[str, float | int]:
    """Where the size ratio comes from: the filter, or the deflate engine.

    Total file bytes / Pillow level 6 for: the Up filter compressed by Python's zlib at
    level 6 (Pillow's engine and level, layout 1's filter); one fixed filter on every
    image with libdeflate 6 ("up" is layout 1); and, as a count, how many images our
    probe gives Average (layout 2 takes Up or Average per image). PNG container bytes
    included (57 per file).
    """
    container = 57 * len(pixels)
    up_zlib = sum(len(zlib.compress(bench_png.filtered(px, "up").tobytes(), 6)) for px in pixels)
    out = {"up, zlib 6": round((up_zlib + container) / pillow6, 4)}
    out["images the probe gives Average"] = sum(
        png.choose_filter(px.reshape(px.shape[0], -1), px.shape[2]) == png.AVERAGE for px in pixels
    )
    for kind in ("up", "sub", "avg", "paeth"):
        total = sum(len(bench_png.grid_png(px, kind, 6)) for px in pixels)
        out[f"{kind}, libdeflate 6"] = round(total / pillow6, 4)
    return out


# ---------------------------------------------------------------- the measurement


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def verify_in_child(benches: list[Path]) -> tuple[float, float]:
    """One ``verify`` of ``benches`` and one floor, timed in a fresh pinned process."""
    proc = subprocess.run(
        [sys.executable, __file__, "--verify-child", *map(str, benches)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"verify in a child process failed:\n{proc.stderr}")
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    return times["verify"], times["verify floor"]


def _verify_child(benches: list[Path]) -> None:
    manifests = [load_manifest(b / MANIFEST_NAME) for b in benches]
    t0 = time.perf_counter()
    assert all(verify_benchmark(b).ok for b in benches)
    t1 = time.perf_counter()
    for b, m in zip(benches, manifests, strict=True):
        floor_verify(b, m)
    t2 = time.perf_counter()
    print(json.dumps({"verify": t1 - t0, "verify floor": t2 - t1}))


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def profile(fn: Callable[[], object], top: int = 18) -> str:
    prof = cProfile.Profile()
    prof.runcall(fn)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    if sys.argv[1:2] == ["--verify-child"]:
        _verify_child([Path(p) for p in sys.argv[2:]])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sklearn", default=None, help="folder or wheel with china/flower.jpg")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", choices=("apply", "generate", "verify", "create"))
    ap.add_argument("--bytes-detail", action="store_true", help="split the size ratio")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        work = Path(tmp)
        original = work / "original"
        names = write_originals(original, args.sklearn)
        noise, adv, bdiff = work / "noise", work / "adversarial", work / "adv.bdiff"
        setup = {
            "generate adversarial": timed(lambda: generate_benchmark(original, "adversarial", adv)),
            "diff create": timed(lambda: create_diff(original, adv, bdiff)),
        }
        generate_benchmark(original, "gaussian-noise", noise)
        m_noise, m_adv = load_manifest(noise / MANIFEST_NAME), load_manifest(adv / MANIFEST_NAME)
        adv_pixels = [decode((adv / e.path).read_bytes()) for e in m_adv.entries]
        noise_pixels = [decode((noise / e.path).read_bytes()) for e in m_noise.entries]
        out = work / "out"

        def apply() -> None:
            result = get_benchmark(original, bdiff, fresh(out))
            assert result.ok and result.manifest.root == m_adv.root

        def generate() -> None:
            result = generate_benchmark(original, "gaussian-noise", fresh(out))
            assert result.root == m_noise.root

        def verify() -> None:
            assert verify_benchmark(noise).ok and verify_benchmark(adv).ok

        runs: dict[str, Callable[[], object]] = {
            "apply": apply,
            "apply floor": lambda: floor_encode(original, m_adv, adv_pixels),
            "generate": generate,
            "generate floor": lambda: floor_transform(original, m_noise, "gaussian-noise"),
        }
        best = dict.fromkeys([*runs, "verify", "verify floor"], float("inf"))
        load = [os.getloadavg()[0]]
        for _ in range(args.repeat):
            for name, fn in runs.items():
                best[name] = min(best[name], timed(fn))
            ours, floor = verify_in_child([noise, adv])
            best["verify"] = min(best["verify"], ours)
            best["verify floor"] = min(best["verify floor"], floor)
            load.append(os.getloadavg()[0])
        sizes = {}
        for label, bench, m, pixels in (
            ("gaussian-noise", noise, m_noise, noise_pixels),
            ("adversarial", adv, m_adv, adv_pixels),
        ):
            ours = sum((bench / e.path).stat().st_size for e in m.entries)
            pillow6 = sum(len(bench_png.pillow_png(px, 6)) for px in pixels)
            sizes[label] = {"ours": ours, "pillow6": pillow6, "ratio": round(ours / pillow6, 4)}
            if args.bytes_detail:
                sizes[label]["detail"] = bytes_detail(pixels, pillow6)
        total_ours = sum(s["ours"] for s in sizes.values())
        total_p6 = sum(s["pillow6"] for s in sizes.values())
        profiled = None
        if args.profile:
            target = {
                "apply": apply,
                "generate": generate,
                "verify": verify,
                "create": lambda: create_diff(original, adv, fresh(work / "d2") / "x.bdiff"),
            }[args.profile]
            profiled = profile(target)
    report: dict[str, object] = {
        "originals": {"count": len(names), "size": "1920x1080", "jpeg_quality": 90},
        "samples": {"adversarial": len(m_adv.entries), "gaussian-noise": len(m_noise.entries)},
        "repeat": args.repeat,
        "loadavg_1min": [round(x, 1) for x in load],
        "seconds": {k: round(v, 3) for k, v in best.items()},
        "setup_seconds": {k: round(v, 2) for k, v in setup.items()},
        "ratios": {
            "apply": round(best["apply"] / best["apply floor"], 3),
            "generate": round(best["generate"] / best["generate floor"], 3),
            "bytes": round(total_ours / total_p6, 4),
            "verify": round(best["verify"] / best["verify floor"], 3),
        },
        "bytes": {**sizes, "total": {"ours": total_ours, "pillow6": total_p6}},
        "goals": GOALS,
    }
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print_table(report)
    if profiled:
        print(
            f"\ncProfile of one {args.profile} (sorted by own time):\n{profiled}", file=sys.stderr
        )


def print_table(r: dict) -> None:
    s, ratios = r["seconds"], r["ratios"]
    print(
        f"{r['originals']['count']} originals of 1920x1080 (JPEG q90); samples: "
        f"adversarial {r['samples']['adversarial']}, "
        f"gaussian-noise {r['samples']['gaussian-noise']}; best of {r['repeat']}; "
        f"load average {r['loadavg_1min']}"
    )
    rows = [
        ("diff apply (adversarial) / floor", s["apply"], s["apply floor"], ratios["apply"]),
        ("generate gaussian-noise / floor", s["generate"], s["generate floor"], ratios["generate"]),
        ("verify (both) / floor", s["verify"], s["verify floor"], ratios["verify"]),
    ]
    print(f"{'figure':34s} {'ours s':>8s} {'floor s':>8s} {'ratio':>7s} {'goal':>6s}")
    for (label, a, b, q), goal in zip(rows, ("apply", "generate", "verify"), strict=True):
        print(f"{label:34s} {a:8.3f} {b:8.3f} {q:7.3f} {GOALS[goal]:6.2f}")
    for label, b in r["bytes"].items():
        ratio = b["ours"] / b["pillow6"]
        print(
            f"bytes {label:28s} {b['ours']:>12,d} / {b['pillow6']:>12,d} (Pillow 6) = {ratio:.4f}"
        )
        for variant, q in b.get("detail", {}).items():
            if isinstance(q, int):
                print(f"      {variant:28s}: {q} of {r['samples'][label]}")
            else:
                print(f"      {variant:28s} / Pillow 6 = {q:.4f}")
    print(f"setup (once): {r['setup_seconds']}")


if __name__ == "__main__":
    main()
