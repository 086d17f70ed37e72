"""Hugging Face source figures for issue #10, measured in one run on scikit-image's photographs.

* streaming: peak RSS (``ru_maxrss``) of importing ``datasets``, listing and iterating
  (``iter_samples``) a Hub-layout parquet original of N rows, and of 10 N rows, each in a
  fresh process (goal: 10 N / N <= 1.10); and the growth of the resident set (``VmRSS``,
  sampled every 8 samples) while iterating, above its value after the listing;
* throughput: reading every sample of the N-row parquet original with ``iter_samples``
  against reading the same image bytes from a folder (``FolderSource``), warm page cache,
  best of ``--repeat`` (a ratio, parquet time / folder time).

The rows are the demo photographs cycled (row ids ``train/<i>``), in row groups of 100, as
``Dataset.to_parquet`` writes them.

* the whole pipeline: ``benchmark-regen generate --recipe gaussian-noise --workers 1`` on the
  N-row parquet original against the same image bytes as a folder (a ratio of wall times,
  best of ``--repeat``), and its peak RSS on the N-row and the 10N-row parquet original
  (goal: 10 N / N <= 1.10, the same rule as for folders).

Run:  python benchmarks/bench_hf.py [--n 200] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from toolchain.demo import demo_original
from toolchain.source import FolderSource, open_source

SUFFIXES = (".png", ".jpg", ".jpeg")


def photos() -> list[tuple[str, bytes]]:
    root = demo_original()
    return [
        (p.suffix.lower(), p.read_bytes())
        for p in sorted(root.iterdir())
        if p.suffix.lower() in SUFFIXES
    ]


def make_parquet(root: Path, n: int) -> Path:
    """``root/data/train-00000-of-00001.parquet`` with ``n`` rows (no paths: row ids)."""
    import datasets

    datasets.disable_progress_bars()
    base = photos()
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    one = datasets.Dataset.from_dict(
        {
            "image": [{"bytes": data, "path": None} for _, data in base],
            "label": list(range(len(base))),
        },
        features=features,
    )
    copies = -(-n // len(base))
    ds = datasets.concatenate_datasets([one] * copies).select(range(n))
    (root / "data").mkdir(parents=True)
    ds.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"), batch_size=100)
    return root


def make_folder(root: Path, n: int) -> Path:
    base = photos()
    for i in range(n):
        suffix, data = base[i % len(base)]
        (root / f"{i:06d}{suffix}").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{i:06d}{suffix}").write_bytes(data)
    return root


def vm_rss_kib() -> int:
    """The current resident set (not the high-water mark), from /proc."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(path: str) -> None:
    """Run in a fresh process: peak RSS, and the resident set sampled while reading."""
    import datasets  # noqa: F401 - the packages a real run has loaded
    import pyarrow  # noqa: F401

    total = 0
    with open_source(path) as src:
        ids = src.listing().ids
        base = vm_rss_kib()  # after imports and listing
        high = base
        for i, s in enumerate(src.iter_samples(ids)):
            total += len(s.data)
            if i % 8 == 0:
                high = max(high, vm_rss_kib())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "base_kib": base,
                "high_kib": high,
                "peak_kib": peak,
                "rows": len(ids),
                "bytes": total,
            }
        )
    )


def measure_rss(path: Path) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def read_all(source_path: Path, kind: str) -> float:
    src = FolderSource(source_path) if kind == "folder" else open_source(source_path)
    with src:
        start = time.perf_counter()
        ids = src.listing().ids
        total = sum(len(s.data) for s in src.iter_samples(ids))
        elapsed = time.perf_counter() - start
    assert total > 0
    return elapsed


_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def generate(original: Path, out: Path) -> tuple[float, int]:
    """Wall time and peak RSS (KiB, of any process of the run) of one ``generate``."""
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    env.update({"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    argv = [sys.executable, "-m", "toolchain", "generate", "--recipe", "gaussian-noise",
            "--original", str(original), "--out", str(out), "--overwrite", "-q"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"generate failed on {original}:\n{proc.stderr}")
    return elapsed, int(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-hf-") as tmp:
        work = Path(tmp)
        small = make_parquet(work / "small", args.n)
        large = make_parquet(work / "large", 10 * args.n)
        folder = make_folder(work / "folder", args.n)
        rss_small, rss_large = measure_rss(small), measure_rss(large)
        parquet_t = min(read_all(small, "parquet") for _ in range(args.repeat))
        folder_t = min(read_all(folder, "folder") for _ in range(args.repeat))
        runs = [
            (generate(small, work / "gp"), generate(folder, work / "gf"))
            for _ in range(args.repeat)
        ]  # interleaved, so both see the same load
        gen_parquet = min(p for (p, _), _f in runs)
        gen_folder = min(f for _p, (f, _) in runs)
        gen_rss_small = min(r for (_, r), _f in runs)
        gen_rss_large = generate(large, work / "gl")[1]
    growth = [r["high_kib"] - r["base_kib"] for r in (rss_small, rss_large)]
    result = {
        "n": args.n,
        "rss_small_kib": rss_small,
        "rss_large_kib": rss_large,
        "peak_rss_ratio_10n_over_n": round(rss_large["peak_kib"] / rss_small["peak_kib"], 3),
        "rss_growth_while_reading_kib": growth,
        "parquet_read_s": round(parquet_t, 4),
        "folder_read_s": round(folder_t, 4),
        "parquet_over_folder_time": round(parquet_t / folder_t, 3),
        "mib_read": round(rss_small["bytes"] / 2**20, 1),
        "generate_parquet_s": round(gen_parquet, 3),
        "generate_folder_s": round(gen_folder, 3),
        "generate_parquet_over_folder_time": round(gen_parquet / gen_folder, 3),
        "generate_peak_rss_kib": [gen_rss_small, gen_rss_large],
        "generate_peak_rss_ratio_10n_over_n": round(gen_rss_large / gen_rss_small, 3),
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return
    print(f"rows N={args.n} ({result['mib_read']} MiB of image bytes) and 10N={10 * args.n}")
    print(
        f"peak RSS  N: {rss_small['peak_kib'] / 1024:.1f} MiB   10N: "
        f"{rss_large['peak_kib'] / 1024:.1f} MiB   ratio 10N/N: "
        f"{result['peak_rss_ratio_10n_over_n']}"
    )
    print(
        f"resident set growth while reading (sampled)  N: {growth[0] / 1024:.1f} MiB   "
        f"10N: {growth[1] / 1024:.1f} MiB"
    )
    print(
        f"read all  parquet: {parquet_t:.3f} s   folder: {folder_t:.3f} s   "
        f"parquet/folder: {result['parquet_over_folder_time']}"
    )
    print(
        f"generate (gaussian-noise, 1 worker)  parquet: {gen_parquet:.2f} s   folder: "
        f"{gen_folder:.2f} s   parquet/folder: {result['generate_parquet_over_folder_time']}"
    )
    print(
        f"generate peak RSS  N: {gen_rss_small / 1024:.1f} MiB   10N: "
        f"{gen_rss_large / 1024:.1f} MiB   ratio: {result['generate_peak_rss_ratio_10n_over_n']}"
    )


if __name__ == "__main__":
    main()
