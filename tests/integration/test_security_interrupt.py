"""Ctrl-C stops every command promptly, on a real terminal, for any --workers (issue #15).

Each command runs on its own pseudo-terminal (``tests/terminal.py``); Ctrl-C is the
byte ``^C`` written to the terminal, which its line discipline turns into SIGINT for
the foreground process group (the command and its workers), as a key press does. The
command must exit 130 with no traceback before it has run to the end, leave no worker
behind and nothing that looks finished, and a second run must finish the job:
``generate --resume`` with the root of an uninterrupted run, ``diff apply --overwrite``
with the carried root, ``diff create`` with the very same bytes. (How soon it stops is a
measurement, for docs/security.md, not a test.)

The originals are 24 noise photographs of 1024x1024 pixels, so every sample costs a
fraction of a second (the PNG encoder cannot compress noise) and the interrupt always
lands mid-run, after the first sample is done.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.diff_cases import pinned
from tests.terminal import Terminal, live_in_group, start
from toolchain.audit.verify import verify_benchmark
from toolchain.diff import create_diff
from toolchain.errors import ExitCode
from toolchain.model.manifest import load_manifest
from toolchain.run.generate import generate_benchmark
from toolchain.run.outdir import open_out

pytestmark = pytest.mark.slow

HANG = 60
"""Seconds after which a command (or what it left) counts as hung: a guard, not a measure."""
_PROGRESS = re.compile(rb"\]\s+([1-9]\d*)/(\d+)")


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(original, its identity benchmark, that benchmark's .bdiff)."""
    work = tmp_path_factory.mktemp("interrupt")
    original = work / "original"
    for i in range(24):
        arr = np.random.default_rng(i).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
        (original / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(original / f"c{i % 3}" / f"{i:02d}.png", compress_level=1)
    with pinned():
        generate_benchmark(original, "identity", work / "bench")
        create_diff(original, work / "bench", work / "bench.bdiff")
    return original, work / "bench", work / "bench.bdiff"


def _interrupt(term: Terminal) -> None:
    """Wait for the first finished sample, press Ctrl-C; the command must exit 130 before
    it has done every sample, leaving no worker behind."""
    assert term.wait_for(lambda out: bool(_PROGRESS.search(out)), 240), term.text[-2000:]
    term.ctrl_c()
    code = term.wait(HANG)
    assert code == ExitCode.INTERRUPTED, term.text[-2000:]
    assert "Traceback" not in term.text
    done, total = max((int(m[1]), int(m[2])) for m in _PROGRESS.finditer(term.output))
    assert done < total, f"ran to the end ({done}/{total}) before it exited 130"
    # No worker outlives the command. (multiprocessing's resource tracker, not a worker,
    # leaves by itself when it sees the command's pipe close.)
    deadline = time.monotonic() + HANG
    while live_in_group(term.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not live_in_group(term.pid)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    return subprocess.run(
        [sys.executable, "-m", "toolchain", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_generate_and_resume_gives_the_uninterrupted_root(
    noise: tuple[Path, Path, Path], tmp_path: Path, workers: int
) -> None:
    original, bench, _ = noise
    out = tmp_path / "out"
    args = ["generate", "--recipe", "identity", "--original", str(original), "--out", str(out),
            "--workers", str(workers)]  # fmt: skip
    with start(args) as term:
        _interrupt(term)
    assert "--resume" in term.text
    assert not (out / "manifest.json").exists()
    assert any(out.rglob("*.png"))  # the finished samples are kept for --resume
    # --overwrite would also accept what is left, files a worker wrote but the run did not
    # journal before it stopped included (found by this test: they were "unknown files").
    copy = Path(shutil.copytree(out, tmp_path / "copy", symlinks=True))
    with open_out(copy, header={"kind": "another run"}, overwrite=True):
        assert not any(copy.rglob("*.png"))
    r = _run(*args, "--resume", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["root"] == str(load_manifest(bench / "manifest.json").root)
    assert verify_benchmark(out).ok
    assert not _temp_files(out) and not (out / ".benchmark-regen").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_diff_apply_and_overwrite_finishes_it(
    noise: tuple[Path, Path, Path], tmp_path: Path, workers: int
) -> None:
    original, bench, diff = noise
    out = tmp_path / "out"
    args = ["diff", "apply", "--original", str(original), "--diff", str(diff), "--out", str(out),
            "--workers", str(workers)]  # fmt: skip
    with start(args) as term:
        _interrupt(term)
    assert not (out / "manifest.json").exists()
    r = _run(*args, "--overwrite", "--json")
    assert r.returncode == 0, r.stderr
    assert (out / "manifest.json").read_bytes() == (bench / "manifest.json").read_bytes()
    assert verify_benchmark(out).ok and not _temp_files(out)


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_diff_create_and_leaves_nothing(
    noise: tuple[Path, Path, Path], tmp_path: Path, workers: int
) -> None:
    original, bench, diff = noise
    target = tmp_path / "again.bdiff"
    args = ["diff", "create", "--original", str(original), "--benchmark", str(bench),
            "--out", str(target), "--workers", str(workers)]  # fmt: skip
    with start(args) as term:
        _interrupt(term)
    assert not target.exists() and not _temp_files(tmp_path)
    r = _run(*args, "-q")
    assert r.returncode == 0, r.stderr
    assert target.read_bytes() == diff.read_bytes()
