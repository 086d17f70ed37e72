"""Recipe-entry figures for issue #27, measured in one run.

On two sets of real photographs: the 28 photographs of scikit-image's demo folder and
scikit-learn (``bench_png.native_originals``: PNG and JPEG, 64x64 to 2048x2048), and
``--crops N`` (default 1000) JPEG crops at ImageNet-val size, 500x375, quality 90
(``bench_scale.photo_original``):

* size: for ``gaussian-noise`` and ``adversarial``, the ``.bdiff`` made with ``--entries
  auto`` (recipe entries) and with ``--entries delta`` (what every diff was before), each
  over the benchmark's size (its folder: PNGs, manifest, metadata). Goals: gaussian-noise
  auto <= 0.01; adversarial auto <= delta.
* roots: ``diff apply`` of each auto diff gives the generated root, bit for bit.
* speed: ``diff apply`` of the gaussian-noise auto diff against ``generate`` of the same
  benchmark, whole ``benchmark-regen`` processes at ``--workers 1``, interleaved, median
  of ``--repeat`` pairs (goal <= 1.05).

Run:  python benchmarks/bench_recipe_entries.py [--crops 1000] [--repeat 5] [--json]
Each command runs as a fresh process of the console script beside this Python.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_png
import bench_scale

from toolchain.model.manifest import MANIFEST_NAME, load_manifest

RECIPES = ("gaussian-noise", "adversarial")
CLI = [str(Path(sys.executable).with_name("benchmark-regen"))]


def cli(*args: str | Path) -> float:
    """Run one command (quiet); its wall time in seconds. A failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr}")
    return took


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def photographs(root: Path) -> Path:
    for name, data in bench_png.native_originals(None).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def sizes(original: Path, work: Path) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for recipe in RECIPES:
        bench = work / f"{recipe}-bench"
        cli("generate", "--recipe", recipe, "--original", original, "--out", bench, "-q")
        root = str(load_manifest(bench / MANIFEST_NAME).root)
        row: dict[str, object] = {
            "samples": len(load_manifest(bench / MANIFEST_NAME).entries),
            "benchmark_bytes": folder_bytes(bench),
        }
        for entries in ("auto", "delta"):
            diff = work / f"{recipe}-{entries}.bdiff"
            cli("diff", "create", "--original", original, "--benchmark", bench,
                "--out", diff, "--entries", entries, "-q")  # fmt: skip
            row[f"{entries}_bytes"] = diff.stat().st_size
            row[f"{entries}_ratio"] = diff.stat().st_size / int(row["benchmark_bytes"])
        rebuilt = work / f"{recipe}-applied"
        cli("diff", "apply", "--original", original, "--diff", work / f"{recipe}-auto.bdiff",
            "--out", rebuilt, "-q")  # fmt: skip
        row["same_root"] = str(load_manifest(rebuilt / MANIFEST_NAME).root) == root
        shutil.rmtree(rebuilt)
        out[recipe] = row
    return out


def speed(original: Path, work: Path, repeat: int) -> dict[str, object]:
    """``diff apply`` (recipe entries) / ``generate``, adjacent pairs, fresh outputs."""
    diff = work / "gaussian-noise-auto.bdiff"
    ratios, gen, app = [], [], []
    for i in range(repeat + 1):  # the first pair warms the caches and is not counted
        g = cli("generate", "--recipe", "gaussian-noise", "--original", original,
                "--out", work / f"g{i}", "--workers", "1", "-q")  # fmt: skip
        a = cli("diff", "apply", "--original", original, "--diff", diff,
                "--out", work / f"a{i}", "--workers", "1", "-q")  # fmt: skip
        shutil.rmtree(work / f"g{i}")
        shutil.rmtree(work / f"a{i}")
        if i:
            gen.append(g)
            app.append(a)
            ratios.append(a / g)
    return {
        "generate_s": statistics.median(gen),
        "apply_s": statistics.median(app),
        "apply_over_generate": statistics.median(ratios),
        "ratios": [round(r, 3) for r in ratios],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=1000, help="ImageNet-val-size crops")
    ap.add_argument("--repeat", type=int, default=5, help="timed pairs (median)")
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    figures: dict[str, object] = {"load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-recipe-") as tmp:
        work = Path(tmp)
        crops = f"crops-{opts.crops}"
        sets = {
            "photographs": photographs(work / "originals" / "photographs"),
            crops: bench_scale.photo_original(
                work / "originals" / "crops", opts.crops, size=(500, 375)
            ),
        }
        for name, original in sets.items():
            (work / name).mkdir()
            figures[name] = {"size": sizes(original, work / name)}
        figures[crops]["speed"] = speed(sets[crops], work / crops, opts.repeat)  # type: ignore[index]
    figures["load_after"] = os.getloadavg()[0]
    if opts.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"load average {figures['load_before']:.2f} before, {figures['load_after']:.2f} after")
    for name in sets:
        fig = figures[name]
        assert isinstance(fig, dict)
        for recipe, row in fig["size"].items():
            print(
                f"{name:<12} {recipe:<15} {row['samples']:>5} samples, benchmark "
                f"{row['benchmark_bytes']:>11} B; auto {row['auto_bytes']:>9} B "
                f"({row['auto_ratio']:.5f}), delta {row['delta_bytes']:>10} B "
                f"({row['delta_ratio']:.4f}); same root: {row['same_root']}"
            )
        if "speed" in fig:
            s = fig["speed"]
            print(
                f"{name:<12} diff apply (recipe entries) {s['apply_s']:.2f} s / generate "
                f"{s['generate_s']:.2f} s = {s['apply_over_generate']:.3f} (pairs: {s['ratios']})"
            )


if __name__ == "__main__":
    main()
