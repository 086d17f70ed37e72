"""Fixed costs for issue #26: what a user pays for a command before any real work.

Each command runs as a whole process, as a user types it (the ``benchmark-regen`` console
script beside this Python), on a one-sample original: a 128x128 crop of scikit-image's
astronaut. The commands are interleaved, one run of each in turn, ``--repeat`` times after
one warm-up round (it also writes the bytecode caches an installed package has); the figure
is the median wall time of each, and its ratio to the floor measured in the same rounds:
``python -c pass``, the interpreter's own start. ``PYTHONDONTWRITEBYTECODE`` is dropped, so
the runs read bytecode as an installed copy does.

Goals (#26): ``--version`` and ``--help`` <= 0.15 s; ``generate`` and ``diff apply`` of one
sample <= 0.30 s; ``verify`` of one sample <= 0.25 s.

Run:  python benchmarks/bench_fixed_costs.py [--repeat 9] [--json]
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

GOALS = {"--version": 0.15, "--help": 0.15, "generate": 0.30, "diff apply": 0.30, "verify": 0.25}


def _original(work: Path) -> Path:
    from PIL import Image
    from skimage import data

    folder = work / "original"
    folder.mkdir()
    Image.fromarray(data.astronaut()[:128, :128]).save(folder / "astronaut.png")
    return folder


def _commands(cli: str, work: Path, original: Path) -> dict[str, tuple[list[str], Path | None]]:
    """Each figure's command line, and the folder it writes (removed before each run)."""
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "--version": ([cli, "--version"], None),
        "--help": ([cli, "--help"], None),
        "generate": (
            [cli, "generate", "--recipe", "gaussian-noise", "--original", str(original),
             "--out", str(work / "gen"), "-q"],
            work / "gen",
        ),
        "diff apply": (
            [cli, "diff", "apply", "--original", str(original), "--diff",
             str(work / "d.bdiff"), "--out", str(work / "applied"), "-q"],
            work / "applied",
        ),
        "verify": ([cli, "verify", str(work / "bench")], None),
    }  # fmt: skip


def _time(argv: list[str], out: Path | None, env: dict[str, str]) -> float:
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode(errors='replace')}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cli = str(Path(sys.executable).parent / "benchmark-regen")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="bench-fixed-") as tmp:
        work = Path(tmp)
        original = _original(work)
        setup = [
            [cli, "generate", "--recipe", "gaussian-noise", "--original", str(original),
             "--out", str(work / "bench"), "-q"],
            [cli, "diff", "create", "--original", str(original), "--benchmark",
             str(work / "bench"), "--out", str(work / "d.bdiff")],
        ]  # fmt: skip
        for argv in setup:
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        commands = _commands(cli, work, original)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.repeat + 1):
            for name, (argv, out) in commands.items():
                took = _time(argv, out, env)
                if round_:  # the first round warms the caches
                    times[name].append(took)
    floor = statistics.median(times["python -c pass"])
    load = os.getloadavg()[0]
    rows = {
        name: {
            "median_s": round(statistics.median(t), 4),
            "min_s": round(min(t), 4),
            "over_floor": round(statistics.median(t) / floor, 2),
            "goal_s": GOALS.get(name),
        }
        for name, t in times.items()
    }
    if args.json:
        print(json.dumps({"load_average": load, "repeat": args.repeat, "rows": rows}, indent=2))
        return
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'/ floor':>8} {'goal s':>7}  met")
    for name, r in rows.items():
        goal = r["goal_s"]
        met = "" if goal is None else ("yes" if r["median_s"] <= goal else "NO")
        goal_text = "" if goal is None else f"{goal:.2f}"
        print(
            f"{name:<16} {r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['over_floor']:>8.1f} "
            f"{goal_text:>7}  {met}"
        )
    print(f"load average {load:.2f}, {args.repeat} rounds")


if __name__ == "__main__":
    main()
