"""Parquet originals against folders for issue #26, goal 4, measured as ratios in one run.

N JPEG crops (quality 90, 500x375 by default) of scikit-image's colour photographs, in 10
class folders, and the very same bytes as a Hub-layout parquet original
(``data/train-00000-of-00001.parquet``, written by ``datasets`` in row groups of 100 rows
as it writes images; each image's path is the folder's sample id and its class a
ClassLabel, so both runs choose the same samples and carry the same label; checked).

``benchmark-regen generate --recipe gaussian-noise --workers 1`` (it keeps half the
samples) runs on each as a whole process, from a small wrapper process (as ``bench_hf``'s:
a child's peak RSS would start at a large parent's), which reports the peak RSS of the
command and its reaped workers and their CPU seconds (user + system: on a shared machine,
steadier than wall time). One warm-up of each, then ``--repeat`` rounds alternating which
goes first; every run writes a new folder, all kept until the end. ``PYTHONDONTWRITEBYTECODE``
is dropped, so the runs read bytecode as an installed copy does.

Goal 4: parquet time / folder time <= 1.2, and parquet peak RSS - folder peak RSS <= what
``pyarrow`` itself costs, printed two ways: the peak RSS of ``python -c "import
pyarrow.parquet"``, and that less the peak RSS of ``python -c pass`` (both measured here,
the same way as the commands).

Run:  python benchmarks/bench_parquet_read.py [--n 160 --n 1000] [--repeat 5]
          [--size 500x375] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import bench_png
import bench_scale
import numpy as np
from PIL import Image

CLASSES = 10
KINDS = ("folder", "parquet")


def crops(n: int, size: tuple[int, int]) -> list[tuple[str, bytes]]:
    """``n`` (sample id, JPEG bytes): crops of the colour photographs large enough for
    ``size``, at offsets drawn from ``numpy.random.default_rng(11)`` (as ``bench_scale``)."""
    from toolchain.codec.decode import decode

    files = bench_png.native_originals(None)
    w, h = size
    photos = [decode(files[name]) for name in bench_png.COLOUR_PHOTOS if name in files]
    photos = [a for a in photos if a.shape[0] >= h and a.shape[1] >= w]
    rng = np.random.default_rng(11)
    out = []
    for i in range(n):
        a = photos[i % len(photos)]
        y = int(rng.integers(0, a.shape[0] - h + 1))
        x = int(rng.integers(0, a.shape[1] - w + 1))
        buf = io.BytesIO()
        Image.fromarray(a[y : y + h, x : x + w]).save(buf, format="JPEG", quality=90)
        out.append((f"class{i % CLASSES:02d}/img{i:06d}.jpg", buf.getvalue()))
    return out


def make_folder(root: Path, samples: list[tuple[str, bytes]]) -> Path:
    for sid, data in samples:
        (root / sid).parent.mkdir(parents=True, exist_ok=True)
        (root / sid).write_bytes(data)
    return root


def make_parquet(root: Path, samples: list[tuple[str, bytes]]) -> Path:
    """``root/data/train-00000-of-00001.parquet`` holding ``samples`` as ``datasets`` writes
    an image dataset (the ``huggingface`` schema metadata, row groups of 100)."""
    import datasets

    datasets.disable_progress_bars()
    names = [f"class{c:02d}" for c in range(CLASSES)]
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=names)}
    )
    ds = datasets.Dataset.from_dict(
        {
            "image": [{"bytes": data, "path": sid} for sid, data in samples],
            "label": [names.index(sid.split("/", 1)[0]) for sid, _ in samples],
        },
        features=features,
    )
    (root / "data").mkdir(parents=True)
    ds.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"), batch_size=100)
    return root


_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(u.ru_maxrss, u.ru_utime + u.ru_stime)\n"
    "sys.exit(rc)\n"
)


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    """User + system seconds of the command and its reaped workers."""
    rss_kib: int
    """The largest resident set of the command or any of its reaped workers."""


def run(argv: list[str]) -> Run:
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    env.update({"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr}")
    rss, cpu = proc.stdout.split()
    return Run(wall_s=wall, cpu_s=float(cpu), rss_kib=int(rss))


def generate(original: Path, out: Path) -> Run:
    return run(
        [*bench_scale.CLI, "generate", "--recipe", "gaussian-noise", "--workers", "1",
         "--original", str(original), "--out", str(out), "-q"]
    )  # fmt: skip


def python_rss(code: str) -> int:
    """Peak RSS (KiB) of ``python -c code``, measured as the commands are."""
    return run([sys.executable, "-c", code]).rss_kib


def _entries(bench: Path) -> list[object]:
    return json.loads((bench / "manifest.json").read_text())["entries"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Figures:
    n: int
    kept: int
    mib_of_jpeg: float
    loadavg_1min: list[float]
    """Before the warm-up and after each round."""
    runs: dict[str, list[Run]]

    def best(self, kind: str, what: str = "wall_s") -> float:
        return float(min(getattr(r, what) for r in self.runs[kind]))

    def median(self, kind: str, what: str = "wall_s") -> float:
        return float(statistics.median(getattr(r, what) for r in self.runs[kind]))

    def peak(self, kind: str) -> int:
        return max(r.rss_kib for r in self.runs[kind])

    def ratios(self) -> dict[str, float]:
        """parquet / folder: wall and CPU seconds, best and median."""
        return {
            f"{what}_{how}": round(f("parquet", what) / f("folder", what), 3)
            for what in ("wall_s", "cpu_s")
            for how, f in (("best", self.best), ("median", self.median))
        }


def measure(n: int, size: tuple[int, int], repeat: int, work: Path) -> Figures:
    samples = crops(n, size)
    originals = {
        "folder": make_folder(work / f"folder{n}", samples),
        "parquet": make_parquet(work / f"parquet{n}", samples),
    }
    runs: dict[str, list[Run]] = {k: [] for k in KINDS}
    loads = [round(os.getloadavg()[0], 2)]
    last: dict[str, Path] = {}
    for r in range(repeat + 1):  # round 0: the warm-up, not counted
        for kind in KINDS if r % 2 else reversed(KINDS):
            out = work / "runs" / f"{n}-{r}-{kind}"
            done = generate(originals[kind], out)
            last[kind] = out
            if r:
                runs[kind].append(done)
        loads.append(round(os.getloadavg()[0], 2))
    kept = _entries(last["folder"])
    if kept != _entries(last["parquet"]):
        raise SystemExit("the folder and the parquet runs made different samples")
    mib = round(sum(len(d) for _, d in samples) / 2**20, 1)
    return Figures(n=n, kept=len(kept), mib_of_jpeg=mib, loadavg_1min=loads, runs=runs)


def report(figs: list[Figures], floor: int, pyarrow: int, size: str, repeat: int) -> None:
    print(
        f"benchmark-regen generate --recipe gaussian-noise --workers 1; JPEG crops {size}; "
        f"{repeat} runs of each after a warm-up, interleaved"
    )
    print(
        f"allowance: peak RSS of `python -c 'import pyarrow.parquet'` {pyarrow / 1024:.1f} MiB, "
        f"less `python -c pass` {floor / 1024:.1f} MiB: {(pyarrow - floor) / 1024:.1f} MiB"
    )
    for f in figs:
        excess = f.peak("parquet") - f.peak("folder")
        r = f.ratios()
        print(f"N={f.n} ({f.mib_of_jpeg} MiB, {f.kept} kept), load average {f.loadavg_1min}")
        for what in ("wall_s", "cpu_s"):
            print(
                f"  {what[:-2]:4s} s  folder best {f.best('folder', what):.3f} median "
                f"{f.median('folder', what):.3f}   parquet best {f.best('parquet', what):.3f} "
                f"median {f.median('parquet', what):.3f}   parquet/folder best "
                f"{r[what + '_best']} median {r[what + '_median']}  (goal <= 1.2)"
            )
        print(
            f"  peak RSS MiB  folder {f.peak('folder') / 1024:.1f}  parquet "
            f"{f.peak('parquet') / 1024:.1f}  excess {excess / 1024:.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, action="append", help="crops in the original (repeatable)")
    ap.add_argument("--size", default="500x375", help="crop width x height")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each (after a warm-up)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    work = Path(tempfile.mkdtemp(prefix="bench-parquet-"))
    try:
        figs = [measure(n, (w, h), args.repeat, work) for n in args.n or [160]]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor, pyarrow = python_rss("pass"), python_rss("import pyarrow.parquet")
    if args.json:
        doc = {
            "size": args.size,
            "repeat": args.repeat,
            "python_pass_rss_kib": floor,
            "import_pyarrow_parquet_rss_kib": pyarrow,
            "figures": [
                {**asdict(f), "parquet_over_folder": f.ratios(),
                 "rss_excess_kib": f.peak("parquet") - f.peak("folder")}
                for f in figs
            ],
        }  # fmt: skip
        print(json.dumps(doc, indent=2, sort_keys=True))
        return
    report(figs, floor, pyarrow, args.size, args.repeat)


if __name__ == "__main__":
    main()
