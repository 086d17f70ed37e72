"""adversarial 2.0 (exact int8 model) against 1.0 (float32 model): attack strength and speed.

On the demo photographs (scikit-image's, as the demo uses them), for each recipe:

* the surrogate's accuracy drop: the fraction of samples whose surrogate prediction
  flips after the attack (the clean prediction is the label, as the attack assumes);
* the mean margin ``max_{j != y} z_j - z_y`` before and after, in the model's own
  logit units, and normalised by the clean logits' range (max - min) per sample;
* throughput: samples per second of ``recipe.apply`` (decoding excluded), both
  recipes timed sample by sample in alternation in one run, and their ratio; per
  second of this process's CPU time (what a dedicated core gives; robust on a
  shared machine) and per second of wall time.

Run:  python benchmarks/bench_adversarial.py [--json]
The process re-executes itself pinned (one BLAS thread, fixed kernel), like
``benchmark-regen``. Times are from one run on a shared machine: read the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pin() -> None:
    from toolchain.run.determinism import pinned_environ, process_is_pinned

    if not process_is_pinned():
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], pinned_environ())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _pin()
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import tests.float_adversarial as v1
    import toolchain.recipes.adversarial as v2
    from toolchain.codec.decode import decode
    from toolchain.demo import demo_original
    from toolchain.recipes import load_recipe

    def v1_logits(px: np.ndarray) -> np.ndarray:
        rgb = px[:, :, :3] if px.shape[2] >= 3 else np.repeat(px[:, :, :1], 3, axis=2)
        ph, pw = px.shape[0] // v1.PATCH, px.shape[1] // v1.PATCH
        x = v1._patches(rgb.astype(np.float32), ph, pw) * np.float32(1 / 256) - np.float32(0.5)
        w1, w2 = v1.model_weights(v1.SEED)
        logits: np.ndarray = np.maximum(x @ w1, 0).sum(axis=0, dtype=np.float32) @ w2
        return logits.astype(np.float64)

    def v2_logits(px: np.ndarray) -> np.ndarray:
        return v2.surrogate_logits(px).astype(np.float64)

    def margin(z: np.ndarray, y: int) -> float:
        return float(np.delete(z, y).max() - z[y])

    recipes = {
        "1.0 float32": (v1.float_adversarial, v1_logits),
        "2.0 exact int8": (load_recipe("adversarial"), v2_logits),
    }
    original = demo_original()
    suffixes = (".png", ".jpg", ".jpeg", ".webp")
    names = sorted(
        (p.name for p in original.iterdir() if p.suffix.lower() in suffixes),
        key=lambda n: n.encode("utf-8"),
    )
    stats: dict[str, dict[str, list[float]]] = {
        k: {"cpu": [], "wall": [], "flip": [], "before": [], "after": [], "nb": [], "na": []}
        for k in recipes
    }
    for name in names:
        px = decode((original / name).read_bytes())
        for key, (recipe, logits) in recipes.items():
            c0, t0 = time.process_time(), time.perf_counter()
            out = recipe.apply(name, px)
            stats[key]["wall"].append(time.perf_counter() - t0)
            stats[key]["cpu"].append(time.process_time() - c0)
            z0, z1 = logits(px), logits(out)
            y = int(np.argmax(z0))
            spread = float(z0.max() - z0.min()) or 1.0
            s = stats[key]
            s["flip"].append(float(int(np.argmax(z1)) != y))
            s["before"].append(margin(z0, y))
            s["after"].append(margin(z1, y))
            s["nb"].append(margin(z0, y) / spread)
            s["na"].append(margin(z1, y) / spread)
    fig: dict[str, object] = {"samples": len(names), "numpy": np.__version__}
    for key, s in stats.items():
        fig[key] = {
            "accuracy_drop": round(sum(s["flip"]) / len(names), 3),
            "flipped": int(sum(s["flip"])),
            "mean_margin_before": float(f"{np.mean(s['before']):.4g}"),
            "mean_margin_after": float(f"{np.mean(s['after']):.4g}"),
            "mean_margin_over_logit_range_before": round(float(np.mean(s["nb"])), 3),
            "mean_margin_over_logit_range_after": round(float(np.mean(s["na"])), 3),
            "samples_per_cpu_s": round(len(names) / sum(s["cpu"]), 2),
            "samples_per_wall_s": round(len(names) / sum(s["wall"]), 2),
        }
    old, new = (fig[k] for k in recipes)
    assert isinstance(old, dict) and isinstance(new, dict)
    for clock in ("cpu", "wall"):
        ratio = new[f"samples_per_{clock}_s"] / old[f"samples_per_{clock}_s"]
        fig[f"throughput_ratio_new_over_old_{clock}"] = round(ratio, 2)
    if args.json:
        print(json.dumps(fig, indent=2, sort_keys=True))
        return 0
    print(f"{len(names)} demo photographs, numpy {np.__version__}, pinned (1 BLAS thread)")
    for key in recipes:
        f = fig[key]
        assert isinstance(f, dict)
        print(
            f"adversarial {key:<15} accuracy drop {f['accuracy_drop']:.0%} "
            f"({f['flipped']}/{len(names)}), mean margin {f['mean_margin_before']:.4g} -> "
            f"{f['mean_margin_after']:.4g} (/logit range {f['mean_margin_over_logit_range_before']}"
            f" -> {f['mean_margin_over_logit_range_after']}), {f['samples_per_cpu_s']} samples"
            f" per CPU second ({f['samples_per_wall_s']} per wall second)"
        )
    print(
        f"throughput new / old: {fig['throughput_ratio_new_over_old_cpu']}x per CPU second, "
        f"{fig['throughput_ratio_new_over_old_wall']}x per wall second"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
