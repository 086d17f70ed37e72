"""Run every ``fuzz/atheris_*.py`` harness in turn, for a bounded time each, and print
executions and crashes per harness; exit 1 if any harness crashed or did not start.

Run: ``nox -s fuzz`` (``-- -max_total_time=S`` or ``-- -runs=N`` bounds each harness;
``-- atheris_journal.py`` runs only the harnesses named). libFuzzer stops a harness at its
first crash: the input is written to ``.nox/fuzz-artifacts/`` and its base64 is printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / ".nox" / "fuzz-artifacts"
SECONDS_DEFAULT = 60
PER_INPUT_SECONDS = 20
"""libFuzzer's -timeout: one input taking longer is a hang, reported as a crash."""


def _run(harness: Path, bounds: list[str]) -> tuple[int | None, str, float]:
    """Run one harness (its temp files in a folder removed after): its executions (None
    if it never fuzzed), its verdict, and the seconds it took."""
    prefix = ARTIFACTS / f"{harness.stem}-"
    args = [sys.executable, str(harness), *bounds, "-print_final_stats=1",
            f"-timeout={PER_INPUT_SECONDS}", f"-artifact_prefix={prefix}"]  # fmt: skip
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{harness.stem}-") as tmp:
        proc = subprocess.run(
            args, env={**os.environ, "TMPDIR": tmp}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", check=False,
        )  # fmt: skip
    took = time.monotonic() - start
    log = proc.stdout
    shown = [ln for ln in log.splitlines() if not ln.startswith("INFO: Instrumenting")]
    found = re.search(r"^stat::number_of_executed_units: (\d+)$", log, re.M)
    executions = int(found.group(1)) if found else None
    if proc.returncode == 0 and executions is not None:
        print("\n".join(shown[-3:]), flush=True)
        return executions, "ok", took
    # A crash, a hang, or a harness that never started: everything it said but the noise.
    print("\n".join(shown[-80:]), flush=True)
    verdict = "crashed" if executions is not None else f"did not start (exit {proc.returncode})"
    return executions, verdict, took


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")]
    bounds = [a for a in argv if a.startswith("-")]
    if not any(a.startswith(("-runs=", "-max_total_time=")) for a in bounds):
        bounds.append(f"-max_total_time={SECONDS_DEFAULT}")
    harnesses = sorted(HERE.glob("atheris_*.py"))
    if names:
        harnesses = [h for h in harnesses if h.name in names]
        if len(harnesses) != len(names):
            print(f"fuzz: no such harness among {names}", file=sys.stderr)
            return 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for harness in harnesses:
        print(f"fuzz: {harness.name} {' '.join(bounds)}", flush=True)
        rows.append((harness.name, *_run(harness, bounds)))
    width = max(len(r[0]) for r in rows)
    print(f"fuzz: {'harness':<{width}}  {'executions':>10}  {'crashes':>7}  {'seconds':>7}")
    for name, executions, verdict, took in rows:
        crashes = {"ok": "0", "crashed": "1"}.get(verdict, "-")
        count = "-" if executions is None else str(executions)
        note = "" if verdict == "ok" else f"  {verdict}"
        print(f"fuzz: {name:<{width}}  {count:>10}  {crashes:>7}  {took:>7.0f}{note}")
    failed = [r for r in rows if r[2] != "ok"]
    total = sum(r[1] or 0 for r in rows)
    print(f"fuzz: {len(rows)} harnesses, {total} executions, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
