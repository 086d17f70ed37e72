"""Scale-out figures for issue #6, as ratios measured in one run.

* throughput of `generate --recipe adversarial` at --workers 1 and 2 (goal >= 1.8x on 2 cores);
* peak RSS of `generate` and `diff apply` on N and 10*N synthetic samples (goal: ratio <= 1.2);
* the overhead of the Dask LocalCluster against the local pool, on the same run.

Run:  python benchmarks/bench_scale.py [--n 40] [--json]
Every command runs as a fresh `benchmark-regen` process (pinned by its own re-exec); peak RSS is
the largest resident set of any process of the run (`RUSAGE_CHILDREN`, measured per run in a
separate wrapper process so runs do not see each other's peaks).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CLI = [sys.executable, "-m", "toolchain"]
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def synthetic_original(root: Path, n: int, size: int = 256) -> Path:
    """``n`` smooth-plus-noise JPEGs in 10 class folders (deterministic)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        base = (xx * (i % 7 + 1) + yy * (i % 5 + 1)) % 256
        img = np.stack([base, (base + 85) % 256, (base + 170) % 256], axis=2)
        img = np.clip(img + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        dest = root / f"class{i % 10:02d}" / f"img{i:06d}.jpg"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(buf.getvalue())
    return root


def run(args: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one CLI run."""
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, *CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr}")
    return elapsed, int(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="N for the memory figure (10*N is also run)")
    ap.add_argument("--throughput-n", type=int, default=48, help="samples for the speed figures")
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    fig: dict[str, object] = {}
    try:
        speed_src = synthetic_original(tmp / "speed", opts.throughput_n, size=384)
        gen = ["generate", "--recipe", "adversarial", "--original", str(speed_src), "-q"]
        t1, _ = run([*gen, "--out", str(tmp / "w1"), "--workers", "1"])
        t2, _ = run([*gen, "--out", str(tmp / "w2"), "--workers", "2"])
        td, _ = run([*gen, "--out", str(tmp / "dask"), "--workers", "2", "--executor", "dask"])
        fig["throughput_samples"] = opts.throughput_n
        fig["generate_adversarial_workers1_s"] = round(t1, 2)
        fig["generate_adversarial_workers2_s"] = round(t2, 2)
        fig["speedup_workers2_over_1"] = round(t1 / t2, 2)
        fig["dask_localcluster_2_s"] = round(td, 2)
        fig["dask_overhead_vs_local_pool"] = round(td / t2, 2)

        for label, n in (("N", opts.n), ("10N", 10 * opts.n)):
            src = synthetic_original(tmp / f"mem{label}", n, size=128)
            bench = tmp / f"bench{label}"
            _, rss_gen = run(
                [
                    "generate",
                    "--recipe",
                    "gaussian-noise",
                    "--original",
                    str(src),
                    "--out",
                    str(bench),
                    "-q",
                ]
            )
            fig[f"generate_peak_rss_kib_{label}"] = rss_gen
            _, rss_ver = run(["verify", str(bench), "-q"])
            fig[f"verify_peak_rss_kib_{label}"] = rss_ver
            diff = tmp / f"d{label}.bdiff"
            try:
                run(
                    [
                        "diff",
                        "create",
                        "--original",
                        str(src),
                        "--benchmark",
                        str(bench),
                        "--out",
                        str(diff),
                    ]
                )
                _, rss_apply = run(
                    [
                        "diff",
                        "apply",
                        "--original",
                        str(src),
                        "--diff",
                        str(diff),
                        "--out",
                        str(tmp / f"applied{label}"),
                        "-q",
                    ]
                )
                fig[f"diff_apply_peak_rss_kib_{label}"] = rss_apply
            except SystemExit as e:  # the diff commands are optional for this figure
                fig[f"diff_apply_peak_rss_kib_{label}"] = f"unavailable: {str(e)[:80]}"
        for cmd in ("generate", "verify", "diff_apply"):
            a, b = fig.get(f"{cmd}_peak_rss_kib_N"), fig.get(f"{cmd}_peak_rss_kib_10N")
            if isinstance(a, int) and isinstance(b, int):
                fig[f"{cmd}_rss_ratio_10N_over_N"] = round(b / a, 3)
        fig["N"] = opts.n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if opts.json:
        print(json.dumps(fig, indent=2, sort_keys=True))
    else:
        for k, v in sorted(fig.items()):
            print(f"{k:<40} {v}")


if __name__ == "__main__":
    main()
