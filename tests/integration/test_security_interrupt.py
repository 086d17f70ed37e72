"""Ctrl-C stops every command promptly, on a real terminal, for any --workers (issue #15);
SIGTERM and SIGHUP stop ``generate`` the same way, and kill -9 leaves no worker (issue #24).

Each command runs on its own pseudo-terminal (``tests/terminal.py``); Ctrl-C is the
byte ``^C`` written to the terminal, which its line discipline turns into SIGINT for
the foreground process group (the command and its workers), as a key press does. The
command must exit 130 with no traceback before it has run to the end, leave no worker
behind and nothing that looks finished, and a second run must finish the job:
``generate --resume`` with the root of an uninterrupted run, ``diff apply --resume`` (or
``--overwrite``) with the carried root, ``diff create`` with the very same bytes. (How soon
it stops is a measurement, for docs/security.md, not a test.) SIGTERM (``scancel``, ``timeout``,
``docker stop``) and SIGHUP are sent with ``kill``; they exit 143 and 129.

The originals are 24 noise photographs of 1024x1024 pixels, so every sample costs a
fraction of a second (the PNG encoder cannot compress noise) and the interrupt always
lands mid-run, after the first sample is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def _interrupt(
    term: Terminal, stop: Callable[[], None] | None = None, exit_code: int = ExitCode.INTERRUPTED
) -> None:
    """Wait for the first finished sample, then ``stop`` (press Ctrl-C unless told); the
    command must exit ``exit_code`` before it has done every sample, leaving no worker behind."""
    assert term.wait_for(lambda out: bool(_PROGRESS.search(out)), 240), term.text[-2000:]
    (stop or term.ctrl_c)()
    code = term.wait(HANG)
    assert code == exit_code, term.text[-2000:]
    assert "Traceback" not in term.text
    done, total = max((int(m[1]), int(m[2])) for m in _PROGRESS.finditer(term.output))
    assert done < total, f"ran to the end ({done}/{total}) before it exited {exit_code}"
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


@pytest.mark.parametrize(("workers", "finish"), [(1, "--overwrite"), (2, "--resume")])
def test_ctrl_c_stops_diff_apply_and_resume_or_overwrite_finishes_it(
    noise: tuple[Path, Path, Path], tmp_path: Path, workers: int, finish: str
) -> None:
    original, bench, diff = noise
    out = tmp_path / "out"
    args = ["diff", "apply", "--original", str(original), "--diff", str(diff), "--out", str(out),
            "--workers", str(workers)]  # fmt: skip
    with start(args) as term:
        _interrupt(term)
    assert "hint: run the same command again with --resume" in term.text
    assert not (out / "manifest.json").exists()
    r = _run(*args, finish, "--json")
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


@contextlib.contextmanager
def _not_ignored(*signums: int) -> Iterator[None]:
    """A command started in the block gets ``signums`` at their default, as from a login
    shell, even if this test run inherited them ignored (``nohup pytest``)."""
    old = {s: signal.signal(s, signal.SIG_DFL) for s in signums}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


@pytest.mark.parametrize(
    ("signum", "everyone"),
    [(signal.SIGTERM, True), (signal.SIGTERM, False), (signal.SIGHUP, False)],
    ids=["SIGTERM to every process (scancel)", "SIGTERM to the command (timeout)", "SIGHUP"],
)
def test_sigterm_and_sighup_stop_generate_like_ctrl_c_and_resume_gives_the_uninterrupted_root(
    noise: tuple[Path, Path, Path], tmp_path: Path, signum: signal.Signals, everyone: bool
) -> None:
    """Exit 128 + the signal (143, 129) with the resume hint, no traceback, no worker left."""
    original, bench, _ = noise
    out = tmp_path / "out"
    args = ["generate", "--recipe", "identity", "--original", str(original), "--out", str(out),
            "--workers", "2"]  # fmt: skip
    with _not_ignored(signal.SIGTERM, signal.SIGHUP):
        term = start(args)
    with term:
        send = os.killpg if everyone else os.kill
        _interrupt(term, lambda: send(term.pid, signum), exit_code=128 + signum)
    assert f"{signum.name}: interrupted after" in term.text
    assert "hint: run the same command again with --resume" in term.text
    assert not (out / "manifest.json").exists() and any(out.rglob("*.png"))
    r = _run(*args, "--resume", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["root"] == str(load_manifest(bench / "manifest.json").root)
    assert verify_benchmark(out).ok and not _temp_files(out)


def test_kill_9_of_the_command_leaves_no_worker_and_no_traceback(
    noise: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """kill -9 of the main process of a 2-worker run: its worker exits without a word.

    Not on a pty: there the command leads its session, and its death sends SIGHUP to the
    whole foreground group, which would hide what a worker does by itself (from a shell,
    under Slurm or in a container, the command leads no session). ``-q``: the command
    prints nothing, so whatever reaches stderr is the worker's.
    """
    original, _, _ = noise
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    argv = [sys.executable, "-m", "toolchain", "generate", "--recipe", "identity", "--original",
            str(original), "--out", str(out), "--workers", "2", "-q"]  # fmt: skip
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    ) as proc:
        try:
            deadline = time.monotonic() + 240
            while not any(out.rglob("*.png")) and time.monotonic() < deadline:
                assert proc.poll() is None, "the command ended before its first sample"
                time.sleep(0.01)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + HANG
        while live_in_group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not live_in_group(proc.pid)
        _, stderr = proc.communicate(timeout=HANG)  # every writer of the pipe is gone
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill"
    assert not (out / "manifest.json").exists()
    assert stderr == b"", stderr.decode(errors="replace")
