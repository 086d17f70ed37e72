"""Scale-out figures for issues #6, #11 and #26 (goal 5), as ratios measured in one run.

Issue #6 (the default):

* throughput of `generate --recipe adversarial` at --workers 1 and 2 (goal >= 1.8x on 2 cores);
* peak RSS of `generate` and `diff apply` on N and 10*N synthetic samples (goal: ratio <= 1.2);
* the overhead of the Dask LocalCluster against the local pool, on the same run.

Issue #11 (``--photos N``, e.g. 10000): N JPEG originals (quality 90) cut from the colour
photographs of scikit-image and scikit-learn (``bench_png.COLOUR_PHOTOS``): sample i is a
crop of photograph i mod 11 at one of 160x120, 192x144, 224x168, 256x192, at an offset drawn
from ``numpy.random.default_rng(11)``, in 10 class folders (deterministic; the first M of N
are the M-sample original). On N and M (``--photos-small``, default N/10) samples:

* images per second of `generate --recipe gaussian-noise` (it selects half the samples),
  `generate --recipe adversarial` (``--steps`` sets its `--param steps`; default: the
  recipe's 10), `diff apply` (the adversarial benchmark's diff, made by `diff create
  --workers 2`, not timed in the figures) and `verify` (of the adversarial benchmark; verify
  has no --workers option), each command at --workers 1 and 2, adjacent, best of
  ``--repeat``; the 2-worker speed-up (goal >= 1.8x for generate and apply);
* the peer, at N: the two halves of each writing command (``--shard 0/2`` and ``1/2``) as
  two independent 1-worker commands side by side, best of ``--repeat``; its speed-up over
  1 worker is what this machine gives two independent processes (the ceiling for 2
  workers, unless ``--no-peer``);
* peak RSS at N over M samples of every command (goal <= 1.1);
* per run: CPU seconds (user+sys of the command and its workers; and of its own, collecting,
  process alone), the seconds its processes waited for a CPU (run queue,
  ``/proc/PID/schedstat``), and the share of the workers' life they sat blocked, waiting
  for work (sampled every 0.2 s); the CPU seconds the hypervisor gave other guests meanwhile
  (steal, ``/proc/stat``: on a shared virtual machine, time taken from every process); and
  the load average.

Each timed run writes a folder of its own, and all are kept until the script ends (no
timed run follows the removal of thousands of files, which costs ext4 system time for
minutes after; about 1.8 MB of free disk per original, checked first).

``--commands`` measures a subset (``apply`` and ``verify`` without ``adversarial`` make the
adversarial benchmark first, untimed, with --workers 2).

Issue #26, goal 5 (``--imagenet-val N``, e.g. 50000; ImageNet-val scale): N JPEG originals
(quality 90), every one 500x375 (``VAL_SIZE``), cut as ``--photos`` cuts them (photograph i
mod 9, or 11 with scikit-learn's; offsets from ``default_rng(11)``; 10 class folders; the
first M of N are the M-sample original) from the colour photographs, a photograph smaller
than 500x375 (chelsea, 451x300) upscaled first (Lanczos, aspect kept: ``_cover``). On M
(``--imagenet-val-small``, default N/10) and then N samples, for each input
(``--imagenet-val-inputs``: ``folder``, the default, and/or ``parquet``, the same JPEGs as a
Hub-layout parquet dataset written by ``datasets``, ``hub_parquet``) and each output format
(``--imagenet-val-formats``: ``folder`` and ``parquet``, the ``--format`` of `generate` and
`diff apply`), in this order, each at --workers 1 and 2 adjacent, best of ``--repeat``:

* `generate --recipe gaussian-noise` (it keeps half the samples);
* `verify` of that benchmark (no --workers option: once);
* `diff create` from that benchmark (a .bdiff either way);
* `diff apply` of that diff.

Reported per run: images per second (the samples of the benchmark made or read), wall and
CPU seconds (and the run-queue and steal seconds, as above), peak RSS, the disk its output
holds (allocated blocks); the 2-worker speed-up; peak RSS at N over M (goal <= 1.1); the
originals' disk, the most the run held at once, the load average, and the whole run's wall
time.

Disk: ``--imagenet-val`` refuses before it makes anything unless free space covers, at a
fixed 650 kB a sample (``_VAL_ORIGINAL + 2 * _VAL_OUTPUT + _VAL_DIFF``; 120 kB more with
parquet input, for the copy and its Arrow file, and 220 kB more with parquet output, whose
runs hold their samples twice at their peak, as PNG files and as shards; a tenth to spare
and 2 GB left to others: 38 GB at 50,000, 50 GB with parquet output), the originals, one
benchmark, one diff and the output being written;
after the M run it checks again at the bytes a sample measured there, before the N
originals are made. Unlike ``--photos``, it cannot keep every output at 50,000 (about
1 MB a sample per input and format): an output no later run reads (a benchmark once its
diff is made, an applied benchmark, an older diff, the M run's originals) is removed
before the next writing run, fewest files first, only when the free space would otherwise
fall short; each removal is listed in the figures (``removed_before_a_run``), since
removing 25,000 files costs ext4 system time in the runs of the next minutes (above).
A command that fails, or free space found short on the way, ends the run: the figures of
every run before it are still printed, ``failed`` says where it stopped, and the exit
status is not 0.

Run:  python benchmarks/bench_scale.py [--n 40] [--json]
      python benchmarks/bench_scale.py --photos 10000 [--photos-small 1000] [--steps K]
          [--sklearn PATH] [--repeat 1] [--commands gaussian-noise,adversarial,apply,verify]
          [--json]
      python benchmarks/bench_scale.py --imagenet-val 50000 [--imagenet-val-small 5000]
          [--imagenet-val-inputs folder,parquet] [--imagenet-val-formats folder,parquet]
          [--sklearn PATH] [--repeat 1] [--json]
``--sklearn``: a folder holding china.jpg and flower.jpg, or a scikit-learn wheel (default:
an installed scikit-learn, else scikit-image's photographs only).
Every command runs as a fresh `benchmark-regen` process (the console script beside this
Python, else ``python -m toolchain``; pinned by its own re-exec). Peak RSS is the largest
resident set of any process of the run: the command's and its reaped workers' (``wait4``).
"""

from __future__ import annotations

import argparse
import functools
import io
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

_SCRIPT = Path(sys.executable).with_name("benchmark-regen")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "toolchain"]
PHOTO_SIZES = ((160, 120), (192, 144), (224, 168), (256, 192))


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


def _cover(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``a`` itself if it holds a ``size`` (w, h) crop, else ``a`` upscaled (Lanczos, aspect
    kept) until it does: deterministic for one Pillow."""
    w, h = size
    if a.shape[1] >= w and a.shape[0] >= h:
        return a
    scale = max(w / a.shape[1], h / a.shape[0])
    new = (max(w, math.ceil(a.shape[1] * scale)), max(h, math.ceil(a.shape[0] * scale)))
    return np.asarray(Image.fromarray(a).resize(new, Image.Resampling.LANCZOS), dtype=np.uint8)


def photo_original(
    root: Path, n: int, sklearn: str | None = None, size: tuple[int, int] | None = None
) -> Path:
    """``n`` JPEG crops of the colour photographs in 10 class folders (deterministic).

    ``size`` (w, h): every crop that size, a photograph too small for it upscaled first
    (``_cover``); default: the four ``PHOTO_SIZES`` in turn."""
    import bench_png

    from toolchain.codec.decode import decode

    files = bench_png.native_originals(sklearn)
    photos = [decode(files[name]) for name in bench_png.COLOUR_PHOTOS if name in files]
    if size is not None:
        photos = [_cover(a, size) for a in photos]
    rng = np.random.default_rng(11)
    for i in range(n):
        a = photos[i % len(photos)]
        w, h = size or PHOTO_SIZES[(i // len(photos)) % len(PHOTO_SIZES)]
        y = int(rng.integers(0, a.shape[0] - h + 1))
        x = int(rng.integers(0, a.shape[1] - w + 1))
        buf = io.BytesIO()
        Image.fromarray(a[y : y + h, x : x + w]).save(buf, format="JPEG", quality=90)
        dest = root / f"class{i % 10:02d}" / f"img{i:06d}.jpg"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(buf.getvalue())
    return root


@dataclass(frozen=True)
class Measured:
    wall_s: float
    rss_kib: int
    """Largest resident set of the command or any of its (reaped) worker processes."""
    cpu_s: float
    """User + system time of the command and its reaped workers."""
    run_queue_s: float | None
    """Seconds the command's processes spent runnable but waiting for a CPU (schedstat)."""
    main_cpu_s: float | None
    """CPU seconds of the command's own process (with a pool: the collecting process)."""
    worker_blocked: float | None
    """Share of the pool workers' life spent blocked (neither running nor runnable)."""
    steal_s: float | None = None
    """CPU seconds the hypervisor gave other guests during the run, on all CPUs
    (``/proc/stat``'s steal): time the machine took from every process, ours included."""


# Runs one command and reports on it, as JSON on its last line of stdout. A separate small
# process, because a child's peak RSS starts at its parent's size when it is forked.
_WRAPPER = """
import json, os, subprocess, sys, time

def descendants(root):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out

schedstat = os.path.exists("/proc/self/schedstat")

def steal():
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None

stolen = steal()
seen = {}  # pid -> [first seen, last seen, cpu s, run-queue wait s, is a pool worker]
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
while True:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid:
        break
    now = time.perf_counter()
    for p in descendants(proc.pid) if schedstat else []:
        try:
            with open(f"/proc/{p}/schedstat") as f:
                cpu_ns, wait_ns = f.read().split()[:2]
            if p not in seen:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    # a pool worker: any process below the command but its resource
                    # tracker (spawned workers run spawn_main; forked ones, the command's
                    # own command line)
                    worker = p != proc.pid and b"resource_tracker" not in f.read()
                    seen[p] = [now, now, 0.0, 0.0, worker]
        except (OSError, ValueError):
            continue
        seen[p][1:4] = [now, int(cpu_ns) / 1e9, int(wait_ns) / 1e9]
    time.sleep(0.2)
wall = time.perf_counter() - t0
end = steal()
stolen = None if stolen is None or end is None else end - stolen
workers = [v for v in seen.values() if v[4]]
life = sum(v[1] - v[0] for v in workers)
blocked = sum(max(0.0, v[1] - v[0] - v[2] - v[3]) for v in workers)
print(json.dumps({
    "wall_s": wall,
    "rss_kib": usage.ru_maxrss,
    "cpu_s": usage.ru_utime + usage.ru_stime,
    "run_queue_s": sum(v[3] for v in seen.values()) if seen else None,
    "main_cpu_s": seen[proc.pid][2] if proc.pid in seen else None,
    "worker_blocked": blocked / life if life > 0 else None,
    "steal_s": stolen,
}))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(args: list[str], command: list[str] | None = None) -> Measured:
    """Run one CLI command (or ``command + args``, another program); its wall time, peak
    RSS, CPU, and scheduler figures."""
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *(CLI if command is None else command), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr}")
    return Measured(**json.loads(proc.stdout.strip().splitlines()[-1]))


def measure_pair(first: list[str], second: list[str]) -> float:
    """Wall time of two CLI commands run side by side (both must succeed)."""
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, *CLI, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in (first, second)
    ]
    for proc, args in zip(procs, (first, second), strict=True):
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(args)}\n{err}")
    return time.perf_counter() - t0


def run(args: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one CLI run."""
    m = measure(args)
    return m.wall_s, m.rss_kib


def _samples(bench: Path) -> int:
    return len(json.loads((bench / "manifest.json").read_text())["entries"])


def _out_to(args: list[str], folder: Path) -> list[str]:
    """``args`` with the value of ``--out`` replaced by ``folder/out``."""
    at = args.index("--out") + 1
    return [*args[:at], str(folder / "out"), *args[at + 1 :]]


_BYTES_PER_PHOTO = 1_800_000
"""Disk kept per original by a whole ``--photos`` run: every timed run's output (about
70 kB a sample; 9 writing runs of each command at N, with the peers), the originals,
the diff (reckoned from a 10,000-sample apply's 704 MB: about 18 GB at 10,000 + 1,000)."""


def photo_figures(opts: argparse.Namespace, tmp: Path) -> dict[str, object]:
    """The issue-#11 figures: see the module docstring."""
    small = opts.photos_small or opts.photos // 10
    need = _BYTES_PER_PHOTO * (opts.photos + small)
    free = shutil.disk_usage(tmp).free
    if free < need:
        raise SystemExit(
            f"--photos {opts.photos} keeps every timed run's output until the end: it needs "
            f"about {need / 1e9:.0f} GB free in {tmp.parent}, which has {free / 1e9:.0f} GB "
            "(set TMPDIR to a roomier folder, or ask for fewer --photos or --commands)"
        )
    steps = [] if opts.steps is None else ["--param", f"steps={opts.steps}"]
    commands = {
        "generate gaussian-noise": lambda src, out: [
            *("generate", "--recipe", "gaussian-noise", "--original", str(src)),
            *("--out", str(out / "noise"), "-q"),
        ],
        "generate adversarial": lambda src, out: [
            *("generate", "--recipe", "adversarial", *steps, "--original", str(src)),
            *("--out", str(out / "adv"), "-q"),
        ],
        "diff apply": lambda src, out: [
            *("diff", "apply", "--original", str(src), "--diff", str(out / "adv.bdiff")),
            *("--out", str(out / "applied"), "-q"),
        ],
        "verify": lambda src, out: ["verify", str(out / "adv"), "-q"],
    }
    chosen = [c for c in commands if c.split()[-1] in opts.commands.split(",")]
    writes = ("generate gaussian-noise", "generate adversarial", "diff apply")
    # Each timed run writes a new folder, and nothing is removed until the script ends:
    # ext4 skips the inodes freed in the last 60 to 300 s, reading each one's inode
    # table block, so removing the last run's 10,000 files put up to 14 s of system
    # time into the next run's 30 s (perf: ext4_create -> recently_deleted).
    numbers = itertools.count()
    last: dict[str, Path] = {}  # command -> the folder its latest timed run wrote

    def fresh(args: list[str]) -> list[str]:
        folder = tmp / "runs" / f"{next(numbers):03d}"
        folder.mkdir(parents=True)
        return _out_to(args, folder)

    runs: dict[str, dict[str, dict[str, object]]] = {}
    pairs: dict[str, float] = {}  # command -> best wall of its two halves side by side
    setup: dict[str, float] = {}
    loads = [round(os.getloadavg()[0], 1)]
    for n in (small, opts.photos):
        t0 = time.perf_counter()
        src = photo_original(tmp / f"photos{n}", n, opts.sklearn)
        setup[f"make {n} originals"] = round(time.perf_counter() - t0, 1)
        out = tmp / f"out{n}"
        out.mkdir()
        best: dict[str, Measured] = {}
        if "generate adversarial" not in chosen and {"diff apply", "verify"} & set(chosen):
            made = measure([*commands["generate adversarial"](src, out), "--workers", "2"])
            setup[f"generate adversarial --workers 2, {n} samples"] = round(made.wall_s, 1)
        for name in chosen:
            argv = commands[name]
            if name == "diff apply":
                create = measure(
                    [
                        *("diff", "create", "--original", str(src)),
                        *("--benchmark", str(out / "adv"), "--out", str(out / "adv.bdiff")),
                        *("--workers", "2", "-q"),
                    ]
                )
                setup[f"diff create --workers 2, {n} samples"] = round(create.wall_s, 1)
            worker_counts = (1,) if name == "verify" else (1, 2)
            for _ in range(opts.repeat):
                for w in worker_counts:
                    label = name if name == "verify" else f"{name} --workers {w}"
                    extra = [] if name == "verify" else ["--workers", str(w)]
                    args = [*argv(src, out), *extra]
                    if name in writes:
                        args = fresh(args)
                        last[name] = Path(args[args.index("--out") + 1])
                    m = measure(args)
                    if label not in best or m.wall_s < best[label].wall_s:
                        best[label] = m
                if name in writes and n == opts.photos and opts.peer:
                    # The peer: the two halves (--shard 0/2 and 1/2) as two independent
                    # 1-worker commands side by side, each into its own folder.
                    wall = measure_pair(
                        *(
                            [*fresh(argv(src, out)), "--workers", "1", "--shard", f"{i}/2"]
                            for i in (0, 1)
                        )
                    )
                    pairs[name] = min(wall, pairs.get(name, wall))
            if name == "generate adversarial":
                # what diff create, diff apply and verify read
                last[name] = last[name].rename(out / "adv")
            loads.append(round(os.getloadavg()[0], 1))
        samples = {name: _samples(last.get(name, out / "adv")) for name in chosen}
        runs[str(n)] = {}
        for label, m in best.items():
            k = next(c for c in commands if label.startswith(c))
            runs[str(n)][label] = {
                "samples": samples[k],
                "images_per_s": round(samples[k] / m.wall_s, 1),
                **{key: round(v, 3) if isinstance(v, float) else v for key, v in asdict(m).items()},
            }
    big, little = runs[str(opts.photos)], runs[str(small)]
    speedup = {
        name: round(big[f"{name} --workers 1"]["wall_s"] / big[f"{name} --workers 2"]["wall_s"], 2)  # type: ignore[operator]
        for name in chosen
        if name != "verify"
    }
    rss_ratio = {
        label: round(big[label]["rss_kib"] / little[label]["rss_kib"], 3)  # type: ignore[operator]
        for label in big
    }
    return {
        "photos": opts.photos,
        "photos_small": small,
        "crop_sizes": ["x".join(map(str, wh)) for wh in PHOTO_SIZES],
        "adversarial_steps": opts.steps if opts.steps is not None else "default (10)",
        "repeat": opts.repeat,
        "loadavg_1min": loads,
        "setup_s": setup,
        "runs": runs,
        "speedup_workers2_over_1": speedup,
        "speedup_two_halves_side_by_side_over_1": {
            name: round(big[f"{name} --workers 1"]["wall_s"] / wall, 2)  # type: ignore[operator]
            for name, wall in pairs.items()
        },
        "rss_ratio_big_over_small": rss_ratio,
    }


def print_photo_figures(fig: dict[str, object]) -> None:
    n, small = fig["photos"], fig["photos_small"]
    print(
        f"{n} and {small} JPEG crops ({', '.join(fig['crop_sizes'])}) of the colour photographs; "  # type: ignore[arg-type]
        f"adversarial steps {fig['adversarial_steps']}; best of {fig['repeat']}; "
        f"load average {fig['loadavg_1min']}"
    )
    head = (
        f"{'command':36s} {'N':>6s} {'samples':>7s} {'wall s':>8s} {'img/s':>7s} {'CPU s':>7s}"
        f" {'main s':>7s} {'runq s':>7s} {'w.idle':>6s} {'steal s':>7s} {'RSS MiB':>8s}"
    )
    print(head)
    for size, table in fig["runs"].items():  # type: ignore[attr-defined]
        for label, r in table.items():
            idle = r["worker_blocked"]
            runq, main, stolen = r["run_queue_s"], r["main_cpu_s"], r.get("steal_s")
            print(
                f"{label:36s} {size:>6s} {r['samples']:7d} {r['wall_s']:8.1f} "
                f"{r['images_per_s']:7.1f} {r['cpu_s']:7.1f} "
                f"{'-' if main is None else f'{main:.1f}':>7s} "
                f"{'-' if runq is None else f'{runq:.1f}':>7s} "
                f"{'-' if idle is None else f'{100 * idle:.1f}%':>6s} "
                f"{'-' if stolen is None else f'{stolen:.1f}':>7s} {r['rss_kib'] / 1024:8.1f}"
            )
    print(f"speed-up, --workers 2 over 1 at N={n}: {fig['speedup_workers2_over_1']}")
    if fig["speedup_two_halves_side_by_side_over_1"]:
        print(
            "the peer, two 1-worker halves (--shard 0/2, 1/2) side by side, over 1 worker: "
            f"{fig['speedup_two_halves_side_by_side_over_1']}"
        )
    print(f"peak RSS, N={n} over N={small}: {fig['rss_ratio_big_over_small']}")
    print(f"setup: {fig['setup_s']}")


VAL_SIZE = (500, 375)
"""ImageNet-val's typical image: 500x375 (``--imagenet-val`` crops, ``bench_peer``)."""
_SHARD_BYTES = 500_000_000
"""Image bytes per shard of a Hub-layout parquet copy: ``push_to_hub``'s default."""


def hub_parquet(root: Path, folder: Path, cache: Path, split: str = "validation") -> Path:
    """The JPEGs of a ``photo_original`` folder as a Hub-layout parquet original, written by
    ``datasets`` as it writes an image dataset: ``root/data/<split>-0000i-of-0000n.parquet``
    (shards of about 500 MB, as ``push_to_hub`` cuts them: one below that), in row groups as
    ``to_parquet`` chooses for images; an ``image`` column of {bytes, path} structs (path: the
    folder's sample id, so both originals give the same ids, the same half and the same labels)
    and a ``label`` ClassLabel of the class folders, rows in sample order. Streamed through an
    Arrow file in ``cache`` (removed after), so N is not bounded by memory."""
    import datasets

    datasets.disable_progress_bars()
    files = sorted(folder.glob("*/*.jpg"), key=lambda p: p.name)
    names = sorted({p.parent.name for p in files})
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=names)}
    )

    def rows(paths: list[str]) -> Iterator[dict[str, object]]:
        for path in map(Path, paths):
            sid = path.relative_to(folder).as_posix()
            yield {
                "image": {"bytes": path.read_bytes(), "path": sid},
                "label": names.index(path.parent.name),
            }

    ds = datasets.Dataset.from_generator(
        rows,
        features=features,
        gen_kwargs={"paths": [str(p) for p in files]},
        cache_dir=str(cache),
    )
    shards = max(1, math.ceil(ds.data.nbytes / _SHARD_BYTES))
    (root / "data").mkdir(parents=True)
    for i in range(shards):
        part = ds.shard(num_shards=shards, index=i, contiguous=True)
        part.to_parquet(str(root / "data" / f"{split}-{i:05d}-of-{shards:05d}.parquet"))
    del ds, part
    shutil.rmtree(cache, ignore_errors=True)
    return root


def disk_bytes(path: Path) -> tuple[int, int]:
    """Disk held (allocated blocks, bytes) by a file or a folder's files, and how many files."""
    if path.is_file():
        return path.stat().st_blocks * 512, 1
    held = files = 0
    for folder, _, names in os.walk(path):
        for name in names:
            held += os.lstat(os.path.join(folder, name)).st_blocks * 512
            files += 1
    return held, files


# Disk per original sample, with a margin, for the check before anything is made; measured
# at 600 crops of 500x375 (2026-12-07): the JPEG 53 kB; an output of its kept half (PNGs, in
# a folder or parquet) 207 kB; the diff 0.3 kB (recipe entries), but a diff of deltas holds
# about 145 kB (the noise; about 50 kB a kept 208x156 crop), so that is reckoned.
_VAL_ORIGINAL = 60_000
_VAL_OUTPUT = 220_000
_VAL_DIFF = 150_000
_VAL_RESERVE = 2_000_000_000
"""Free space left to the machine's other users at every moment."""
_PARQUET_STAGING = 2
"""A parquet-output run holds its samples twice at its peak: the PNG files the workers
write, and the shards they are packed into (measured 15 GB for a 9.7 GB benchmark). A
50,000-sample run that counted them once ran out of disk in its 1-worker `diff apply`."""


def _val_need(n: int, per: dict[str, float], parquet_input: bool, parquet_output: bool) -> int:
    """Disk ``n`` samples hold at once when every spent output is removed first: the
    originals (and their parquet copy, with its Arrow file while it is written), one
    benchmark (read by verify and diff create), one diff (read by apply) and the output
    being written (twice, for parquet output: :data:`_PARQUET_STAGING`), with a tenth to
    spare."""
    originals = per["original"] * (3 if parquet_input else 1)
    writing = _PARQUET_STAGING if parquet_output else 1
    return int(1.1 * n * (originals + (1 + writing) * per["output"] + per["diff"])) + _VAL_RESERVE


class _Outputs:
    """Everything a ``--imagenet-val`` run made: a spent folder (no later run reads it) is
    removed only when free space requires it, before a writing run, fewest files first."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.held: dict[Path, tuple[int, int]] = {}  # path -> (bytes, files)
        self.spent: list[Path] = []
        self.deleted: list[dict[str, object]] = []
        self.peak = 0

    def add(self, path: Path) -> int:
        self.held[path] = disk_bytes(path)
        self.peak = max(self.peak, sum(b for b, _ in self.held.values()))
        return self.held[path][0]

    def spend(self, path: Path) -> None:
        if path in self.held and path not in self.spent:
            self.spent.append(path)

    def reclaimable(self) -> int:
        return sum(self.held[p][0] for p in self.spent)

    def room(self, need: int, before: str) -> None:
        """At least ``need`` bytes free (plus the reserve), removing spent outputs if need be."""
        self.spent.sort(key=lambda p: self.held[p][1])
        while shutil.disk_usage(self.tmp).free < need + _VAL_RESERVE and self.spent:
            path = self.spent.pop(0)
            held, files = self.held.pop(path)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            self.deleted.append(
                {"removed": str(path.relative_to(self.tmp)), "bytes": held, "files": files}
                | {"before": before}
            )
        free = shutil.disk_usage(self.tmp).free
        if free < need + _VAL_RESERVE:
            raise SystemExit(
                f"{before}: needs about {need / 1e9:.1f} GB free (and "
                f"{_VAL_RESERVE / 1e9:.0f} GB kept for others) in {self.tmp}; it has "
                f"{free / 1e9:.1f} GB"
            )


def _timed(
    store: _Outputs,
    best: dict[str, tuple[Measured, int, int]],
    label: str,
    args: list[str],
    out: Path | None,
    counted: Path,
) -> None:
    """Run ``args``; keep it in ``best[label]`` (with the samples of ``counted`` and the disk
    its ``out`` holds) if it is the fastest run of ``label`` yet."""
    m = measure(args)
    held = store.add(out) if out is not None else 0
    if label not in best or m.wall_s < best[label][0].wall_s:
        best[label] = (m, _samples(counted), held)


def val_photographs(sklearn: str | None) -> list[str]:
    """The photographs the crops come from, each marked if it is upscaled first."""
    import bench_png

    from toolchain.codec.decode import decode

    files = bench_png.native_originals(sklearn)
    out = []
    for name in bench_png.COLOUR_PHOTOS:
        if name in files:
            a = decode(files[name])
            small = a.shape[1] < VAL_SIZE[0] or a.shape[0] < VAL_SIZE[1]
            out.append(f"{name} ({a.shape[1]}x{a.shape[0]}, upscaled)" if small else name)
    return out


def imagenet_val_figures(opts: argparse.Namespace, tmp: Path) -> dict[str, object]:
    """The issue-#26 goal-5 figures: see the module docstring."""
    started = time.perf_counter()
    big = opts.imagenet_val
    small = opts.imagenet_val_small or max(1, big // 10)
    inputs = opts.imagenet_val_inputs.split(",")
    formats = opts.imagenet_val_formats.split(",")
    if not set(inputs) <= {"folder", "parquet"} or not set(formats) <= {"folder", "parquet"}:
        raise SystemExit("--imagenet-val-inputs and --imagenet-val-formats: folder, parquet")
    per: dict[str, float] = {"original": _VAL_ORIGINAL, "output": _VAL_OUTPUT, "diff": _VAL_DIFF}
    need = _val_need(max(big, small), per, "parquet" in inputs, "parquet" in formats)
    free = free_at_start = shutil.disk_usage(tmp).free
    if free < need:
        raise SystemExit(
            f"--imagenet-val {big} needs about {need / 1e9:.0f} GB free in {tmp.parent} (at "
            f"{(need - _VAL_RESERVE) / max(big, small) / 1e3:.0f} kB a sample, removing spent "
            f"outputs as it goes), which has {free / 1e9:.0f} GB: set TMPDIR to a roomier "
            "folder, or ask for fewer samples"
        )
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    store = _Outputs(tmp)
    numbers = itertools.count()

    def fresh() -> Path:
        folder = tmp / "runs" / f"{next(numbers):03d}"
        folder.mkdir(parents=True)
        return folder

    runs: dict[str, dict[str, dict[str, object]]] = {}
    setup: dict[str, float] = {}
    sizes: dict[str, dict[str, int]] = {}
    measured: dict[str, float] = {}  # kind -> bytes per original sample, at M
    loads = [round(os.getloadavg()[0], 2)]
    failure: str | None = None
    for n in (small, big):
        best: dict[str, tuple[Measured, int, int]] = {}  # label -> (best run, samples, bytes)
        try:
            if n == big:
                # measured at M: refuse before making the N originals if they cannot fit
                need = _val_need(n, {**per, **measured}, "parquet" in inputs, "parquet" in formats)
                free = shutil.disk_usage(tmp).free + store.reclaimable()
                if free < need:
                    raise SystemExit(
                        f"--imagenet-val {big}: at the {small} samples' {measured} bytes a "
                        f"sample it needs about {need / 1e9:.0f} GB, and {tmp.parent} has "
                        f"{free / 1e9:.0f} GB (with what this run can remove)"
                    )
            rate = {k: measured.get(k, per[k]) for k in per}
            copies = 3 if "parquet" in inputs else 1
            store.room(int(1.1 * n * rate["original"] * copies), f"make {n} originals")
            t0 = time.perf_counter()
            folder = photo_original(tmp / f"val{n}", n, opts.sklearn, size=VAL_SIZE)
            setup[f"make {n} JPEG originals"] = round(time.perf_counter() - t0, 1)
            sizes[str(n)] = {"originals_bytes": store.add(folder)}
            originals = {"folder": folder}
            if "parquet" in inputs:
                t0 = time.perf_counter()
                originals["parquet"] = hub_parquet(tmp / f"val{n}-hub", folder, tmp / "hf-cache")
                setup[f"make the {n}-sample parquet copy"] = round(time.perf_counter() - t0, 1)
                sizes[str(n)]["parquet_copy_bytes"] = store.add(originals["parquet"])
            timed = functools.partial(_timed, store, best)

            for inp in inputs:
                src = str(originals[inp])
                for fmt in formats:
                    tag = f"[{inp}->{fmt}]"
                    writing = _PARQUET_STAGING if fmt == "parquet" else 1
                    bench: Path | None = None
                    for _ in range(opts.repeat):
                        for w in (1, 2):
                            label = f"generate {tag} --workers {w}"
                            store.room(int(1.1 * n * rate["output"] * writing), label)
                            out = fresh()
                            timed(
                                label,
                                [
                                    *("generate", "--recipe", "gaussian-noise", "--original", src),
                                    *("--format", fmt, "--out", str(out), "--workers", str(w)),
                                    "-q",
                                ],
                                out,
                                out,
                            )
                            if bench is not None:
                                store.spend(bench)
                            bench = out
                    assert bench is not None
                    for _ in range(opts.repeat):
                        timed(f"verify {tag}", ["verify", str(bench), "-q"], None, bench)
                    loads.append(round(os.getloadavg()[0], 2))
                    diff: Path | None = None
                    for _ in range(opts.repeat):
                        for w in (1, 2):
                            label = f"diff create {tag} --workers {w}"
                            store.room(int(1.1 * n * rate["diff"]), label)
                            out = fresh()
                            timed(
                                label,
                                [
                                    *(
                                        "diff",
                                        "create",
                                        "--original",
                                        src,
                                        "--benchmark",
                                        str(bench),
                                    ),
                                    *("--out", str(out / "d.bdiff"), "--workers", str(w), "-q"),
                                ],
                                out,
                                bench,
                            )
                            if diff is not None:
                                store.spend(diff.parent)
                            diff = out / "d.bdiff"
                    assert diff is not None
                    store.spend(bench)
                    for _ in range(opts.repeat):
                        for w in (1, 2):
                            label = f"diff apply {tag} --workers {w}"
                            store.room(int(1.1 * n * rate["output"] * writing), label)
                            out = fresh()
                            timed(
                                label,
                                [
                                    *("diff", "apply", "--original", src, "--diff", str(diff)),
                                    *(
                                        "--format",
                                        fmt,
                                        "--out",
                                        str(out),
                                        "--workers",
                                        str(w),
                                        "-q",
                                    ),
                                ],
                                out,
                                out,
                            )
                            store.spend(out)
                    store.spend(diff.parent)
                    loads.append(round(os.getloadavg()[0], 2))
            for path in originals.values():
                store.spend(path)
        except SystemExit as exc:  # a command failed, or the disk is short: keep what ran
            failure = f"at {n}: {exc}"
        runs[str(n)] = {
            label: {
                "samples": samples,
                "images_per_s": round(samples / m.wall_s, 1),
                "out_bytes": held,
                **{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(m).items()},
            }
            for label, (m, samples, held) in best.items()
        }
        if failure is not None:
            break
        if n == small:
            for kind, prefix in (("output", "generate"), ("diff", "diff create")):
                held = [r["out_bytes"] for k, r in runs[str(n)].items() if k.startswith(prefix)]
                measured[kind] = max(held) / n  # type: ignore[type-var, operator]
            measured["original"] = sizes[str(n)]["originals_bytes"] / n
    top, low = runs.get(str(big), {}), runs.get(str(small), {})
    return {
        "failed": failure,
        "imagenet_val": big,
        "imagenet_val_small": small,
        "crop": "x".join(map(str, VAL_SIZE)),
        "photographs": val_photographs(opts.sklearn),
        "inputs": inputs,
        "formats": formats,
        "repeat": opts.repeat,
        "loadavg_1min": loads,
        "setup_s": setup,
        "runs": runs,
        "speedup_workers2_over_1": {
            label[: -len(" --workers 1")]: round(r["wall_s"] / top[label[:-1] + "2"]["wall_s"], 2)  # type: ignore[operator]
            for label, r in top.items()
            if label.endswith("--workers 1") and label[:-1] + "2" in top
        },
        "rss_ratio_big_over_small": {
            label: round(top[label]["rss_kib"] / low[label]["rss_kib"], 3)  # type: ignore[operator]
            for label in top
            if label in low
        },
        "disk": {
            "free_at_start_bytes": free_at_start,
            "bytes_per_original_sample_at_small": {k: round(v) for k, v in measured.items()},
            "originals": sizes,
            "peak_held_bytes": store.peak,
            "removed_before_a_run": store.deleted,
        },
        "total_wall_s": round(time.perf_counter() - started, 1),
    }


def print_val_figures(fig: dict[str, object]) -> None:
    n, small = fig["imagenet_val"], fig["imagenet_val_small"]
    print(
        f"{n} and {small} JPEG crops (q90) at {fig['crop']} of {len(fig['photographs'])} "  # type: ignore[arg-type]
        f"photographs {fig['photographs']}; best of {fig['repeat']}; "
        f"load average {fig['loadavg_1min']}"
    )
    head = (
        f"{'command':44s} {'N':>6s} {'samples':>7s} {'wall s':>8s} {'img/s':>7s} {'CPU s':>7s}"
        f" {'runq s':>7s} {'steal s':>7s} {'RSS MiB':>8s} {'out MB':>8s}"
    )
    print(head)
    for size, table in fig["runs"].items():  # type: ignore[attr-defined]
        for label, r in table.items():
            runq, stolen = r["run_queue_s"], r.get("steal_s")
            print(
                f"{label:44s} {size:>6s} {r['samples']:7d} {r['wall_s']:8.1f} "
                f"{r['images_per_s']:7.1f} {r['cpu_s']:7.1f} "
                f"{'-' if runq is None else f'{runq:.1f}':>7s} "
                f"{'-' if stolen is None else f'{stolen:.1f}':>7s} {r['rss_kib'] / 1024:8.1f} "
                f"{r['out_bytes'] / 1e6:8.1f}"
            )
    print(f"speed-up, --workers 2 over 1 at N={n}: {fig['speedup_workers2_over_1']}")
    print(f"peak RSS, N={n} over N={small}: {fig['rss_ratio_big_over_small']}")
    disk = fig["disk"]
    print(
        f"disk: {disk['originals']}; at most {disk['peak_held_bytes'] / 1e9:.2f} GB held; "  # type: ignore[index]
        f"bytes a sample at {small}: {disk['bytes_per_original_sample_at_small']}; "  # type: ignore[index]
        f"removed before a run: {disk['removed_before_a_run'] or 'nothing'}"  # type: ignore[index]
    )
    print(f"setup: {fig['setup_s']}; total wall {fig['total_wall_s']} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="N for the memory figure (10*N is also run)")
    ap.add_argument("--throughput-n", type=int, default=48, help="samples for the speed figures")
    ap.add_argument("--photos", type=int, default=0, help="run the issue-#11 figures on N crops")
    ap.add_argument("--photos-small", type=int, default=0, help="the smaller run (default N/10)")
    ap.add_argument("--steps", type=int, default=None, help="adversarial --param steps")
    ap.add_argument("--sklearn", default=None, help="folder or wheel with china/flower.jpg")
    ap.add_argument(
        "--repeat", type=int, default=1, help="best of this many runs (--photos, --imagenet-val)"
    )
    ap.add_argument(
        "--no-peer",
        dest="peer",
        action="store_false",
        help="skip the peer (the two halves side by side) at N (--photos)",
    )
    ap.add_argument(
        "--commands",
        default="gaussian-noise,adversarial,apply,verify",
        help="which --photos commands to measure (comma-separated)",
    )
    ap.add_argument(
        "--imagenet-val", type=int, default=0, help="run the goal-5 figures on N 500x375 crops"
    )
    ap.add_argument("--imagenet-val-small", type=int, default=0, help="the smaller run (N/10)")
    ap.add_argument(
        "--imagenet-val-formats",
        default="folder,parquet",
        help="output formats to measure (--format of generate and diff apply)",
    )
    ap.add_argument(
        "--imagenet-val-inputs",
        default="folder",
        help="originals to read: folder, parquet (the Hub-layout copy), or both",
    )
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    if opts.imagenet_val:
        tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        try:
            val = imagenet_val_figures(opts, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if opts.json:
            print(json.dumps(val, indent=2, sort_keys=True))
        else:
            print_val_figures(val)
        if val["failed"]:  # what ran before the failure is printed above
            raise SystemExit(f"stopped {val['failed']}")
        return
    if opts.photos:
        tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        try:
            photos = photo_figures(opts, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if opts.json:
            print(json.dumps(photos, indent=2, sort_keys=True))
        else:
            print_photo_figures(photos)
        return
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
