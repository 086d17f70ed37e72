"""Publish/get figures for issue #22, measured in one run on crops of scikit-image's photographs.

* first call: ``load_benchmark("org/bench")`` (fetch the publication and the recorded original
  from the Hub cache, apply the diff, verify, build and seal the cached Dataset) against
  ``diff apply`` + ``load_benchmark(folder)`` (apply, then verify and load the folder) on
  the same ``--n`` samples: a ratio of wall times, best of ``--repeat``;
* second call: ``load_benchmark("org/bench")`` again at ``--n-large`` samples (the seal is
  checked by ``stat``, nothing is applied or hashed but the manifest): seconds, best of
  ``--repeat``, and the same against a benchmark folder (verified on every call).

The original is ``--crop`` x ``--crop`` tiles cut from the demo photographs (each tile a PNG,
labelled by its photograph's parity), as parquet shards in the Hub layout, laid out as
``org/photos`` in a Hub cache made for the run, offline (``HF_HUB_OFFLINE=1``): nothing is
downloaded. The benchmark is gaussian-noise, which takes half of the tiles: ``2 N`` tiles
make ``N`` samples.

Run:  python benchmarks/bench_hub.py [--n 1000] [--n-large 10000] [--repeat 3] [--json]
The script re-executes itself once with the pinned environment, so the pipeline runs in this
process (one worker, no pool).
"""

from __future__ import annotations

import os
import sys

from toolchain.run.determinism import pinned_environ, process_is_pinned

if __name__ == "__main__" and not process_is_pinned():
    os.execve(sys.executable, [sys.executable, *sys.argv], pinned_environ())

import argparse
import hashlib
import io
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

COMMIT_ORIGINAL = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
COMMIT_BENCH = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"


def offline(work: Path) -> Path:
    """Every Hugging Face cache under ``work``, offline; set before the libraries load."""
    cache = work / "hf" / "hub"
    os.environ.update(
        HF_HOME=str(work / "hf"),
        HF_HUB_CACHE=str(cache),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
    )
    return cache


def tiles(n: int, crop: int) -> list[tuple[str, bytes, int]]:
    """``n`` PNG tiles cut from the demo photographs: (path, bytes, label)."""
    import numpy as np
    from PIL import Image

    from toolchain.codec.decode import decode
    from toolchain.demo import demo_original

    photos = [decode(p.read_bytes()) for p in sorted(demo_original().iterdir())
              if p.suffix.lower() in (".png", ".jpg")]  # fmt: skip
    out: list[tuple[str, bytes, int]] = []
    for i in range(n):
        px = photos[i % len(photos)]
        rows, cols = max(1, px.shape[0] // crop), max(1, px.shape[1] // crop)
        k = (i // len(photos)) % (rows * cols)
        y, x = (k // cols) * crop, (k % cols) * crop
        tile = np.ascontiguousarray(px[y : y + crop, x : x + crop])
        buf = io.BytesIO()
        Image.fromarray(tile[:, :, 0] if tile.shape[2] == 1 else tile).save(buf, format="PNG")
        label = i % len(photos) % 2
        out.append((f"{('even', 'odd')[label]}/tile-{i:06d}.png", buf.getvalue(), label))
    return out


def lay_out(cache: Path, repo: str, files: Path, commit: str) -> Path:
    """``files`` as ``repo`` at ``commit`` in the Hub cache, as huggingface_hub lays it out."""
    store = cache / ("datasets--" + repo.replace("/", "--"))
    snapshot = store / "snapshots" / commit
    for path in sorted(p for p in files.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = store / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / path.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (store / "refs").mkdir(parents=True, exist_ok=True)
    (store / "refs" / "main").write_text(commit)
    return snapshot


def world(work: Path, cache: Path, n: int, crop: int) -> tuple[Path, Path, Path]:
    """Original ``org/photos`` (``2 n`` tiles) and the publication ``org/bench`` of a
    gaussian-noise benchmark of it (``n`` samples: the recipe takes half), in the Hub cache;
    (original snapshot, benchmark, publication)."""
    import datasets

    from toolchain import generate_benchmark, publish
    from toolchain.source import SourceOptions

    made = tiles(2 * n, crop)
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": b, "path": p} for p, b, _ in made], "label": [x for *_, x in made]},
        features=datasets.Features(
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=["even", "odd"])}
        ),
    )
    staging = work / "staging"
    (staging / "data").mkdir(parents=True)
    ds.to_parquet(str(staging / "data" / "validation-00000-of-00001.parquet"), batch_size=100)
    snapshot = lay_out(cache, "org/photos", staging, COMMIT_ORIGINAL)
    options = SourceOptions(split="validation")
    bench, pub = work / "bench", work / "pub"
    generate_benchmark(snapshot, "gaussian-noise", bench, source_options=options)
    publish(bench, snapshot, pub, name="org/bench", source_options=options)
    lay_out(cache, "org/bench", pub, COMMIT_BENCH)
    return snapshot, bench, pub


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def first_call(work: Path, snapshot: Path, pub: Path, repeat: int) -> tuple[float, float]:
    """Best time of a first ``load_benchmark("org/bench")``, and of apply + load(folder)."""
    from toolchain import get_benchmark, load_benchmark
    from toolchain.source import SourceOptions

    ours, base = [], []
    for i in range(repeat):  # interleaved, so both see the same load
        out, hf, entry = work / f"applied{i}", work / f"hf{i}", work / f"c{i}"
        ours.append(timed(lambda entry=entry: load_benchmark("org/bench", cache_dir=entry)))

        def apply_then_load(out: Path = out, hf: Path = hf) -> None:
            result = get_benchmark(
                snapshot, pub / "diff", out, source_options=SourceOptions(split="validation")
            )
            assert result.ok
            load_benchmark(out, cache_dir=hf)

        base.append(timed(apply_then_load))
    return min(ours), min(base)


def second_call(work: Path, bench: Path, repeat: int) -> tuple[float, float]:
    """Best time of a repeated ``load_benchmark("org/bench")`` (sealed cache), and of a
    repeated ``load_benchmark(folder)`` (verified each time)."""
    from toolchain import load_benchmark

    cache = work / "cache-large"
    load_benchmark("org/bench", cache_dir=cache)  # the first call: applies and seals
    (entry,) = cache.iterdir()
    seal = (entry / "seal.json").stat().st_ino
    again = min(timed(lambda: load_benchmark("org/bench", cache_dir=cache)) for _ in range(repeat))
    assert (entry / "seal.json").stat().st_ino == seal, "the second call rebuilt the entry"
    load_benchmark(bench, cache_dir=work / "hf-large")
    folder = min(
        timed(lambda: load_benchmark(bench, cache_dir=work / "hf-large")) for _ in range(repeat)
    )
    return again, folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--n-large", type=int, default=10000)
    ap.add_argument("--crop", type=int, default=48)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        work = Path(tmp)
        cache = offline(work)
        import datasets  # imported before any timing: its import is not what is measured

        datasets.disable_progress_bars()
        snapshot, _, pub = world(work / "small", cache, args.n, args.crop)
        ours, base = first_call(work / "small", snapshot, pub, args.repeat)
        shutil.rmtree(cache)
        _, bench_large, _ = world(work / "large", cache, args.n_large, args.crop)
        again, folder = second_call(work / "large", bench_large, args.repeat)
    result = {
        "n": args.n,
        "n_large": args.n_large,
        "crop": args.crop,
        "first_load_s": round(ours, 3),
        "apply_then_load_folder_s": round(base, 3),
        "first_over_apply_then_load": round(ours / base, 3),
        "second_load_s": round(again, 4),
        "load_folder_again_s": round(folder, 4),
        "second_over_load_folder_again": round(again / folder, 4),
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return
    print(f"{args.n} samples ({args.crop}x{args.crop} tiles), best of {args.repeat}:")
    print(
        f"  first load_benchmark('org/bench'): {ours:.2f} s   diff apply + "
        f"load_benchmark(folder): {base:.2f} s   ratio: {result['first_over_apply_then_load']}"
    )
    print(f"{args.n_large} samples, best of {args.repeat}:")
    print(
        f"  second load_benchmark('org/bench'): {again:.4f} s   load_benchmark(folder) "
        f"again: {folder:.4f} s   ratio: {result['second_over_load_folder_again']}"
    )


if __name__ == "__main__":
    main()
