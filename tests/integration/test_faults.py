"""Faults: a full disk, a read-only --out, an original that vanishes mid-run.

Each gives a clear error with its documented exit code (OutputError 4,
SourceError 3), and no ``manifest.json``: nothing is ever marked complete, and
``verify`` never passes a partial output. The disk faults need a real small
file system: a tmpfs mounted here (root in CI and in the dev container); they
skip where ``mount`` is not allowed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_image
from toolchain.audit.verify import Problem, verify_benchmark
from toolchain.cli import cli
from toolchain.errors import ExitCode, ManifestError, OutputError
from toolchain.run.determinism import pinned_environ
from toolchain.run.generate import generate_benchmark


def _mount(target: Path, *opts: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(opts), "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system."""
    mnt = tmp_path / "small"
    _mount(mnt, "size=1m")
    try:
        yield mnt
    finally:
        _umount(mnt)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only file system (chmod does not stop root; a ro mount does)."""
    mnt = tmp_path / "ro"
    _mount(mnt, "size=1m")
    try:
        r = subprocess.run(
            ["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            pytest.skip(f"cannot remount read-only: {r.stderr.strip()}")
        yield mnt
    finally:
        _umount(mnt)


@pytest.fixture(scope="module")
def noisy_original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve 200x200 noise images: about 1.4 MiB of PNG output, more than the small disk."""
    root = tmp_path_factory.mktemp("noisy")
    for i in range(12):
        make_image(root / f"{i:02d}.png", size=(200, 200), seed=i)
    return root


def _no_manifest(out: Path) -> None:
    assert not (out / "manifest.json").exists()
    with pytest.raises(ManifestError, match="no manifest") as e:
        verify_benchmark(out)
    assert e.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize("workers", [1, 2])
def test_full_disk_while_writing_samples(
    small_disk: Path, noisy_original: Path, workers: int
) -> None:
    out = small_disk / "bench"
    with pytest.raises(OutputError, match="No space left on device") as e:
        generate_benchmark(noisy_original, "identity", out, workers=workers)
    assert e.value.exit_code == ExitCode.ENVIRONMENT
    assert e.value.sample is not None and e.value.hint and "free space" in e.value.hint
    _no_manifest(out)


def test_full_disk_cli_exit_code(small_disk: Path, noisy_original: Path) -> None:
    out = small_disk / "bench"
    r = CliRunner().invoke(
        cli, ["generate", "--recipe", "identity", "--original", str(noisy_original),
              "--out", str(out), "-q"],
    )  # fmt: skip
    assert r.exit_code == ExitCode.ENVIRONMENT, r.output
    assert "error: " in r.output and "No space left on device" in r.output
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
    _no_manifest(out)
    v = CliRunner().invoke(cli, ["verify", str(out), "-q"])
    assert v.exit_code == ExitCode.BAD_INPUT and "no manifest" in v.output


def test_disk_fills_up_just_before_the_manifest(small_disk: Path, tmp_path: Path) -> None:
    """Every sample is written, then the disk is full: still no manifest, a clear error."""
    orig = tmp_path / "orig"
    for i in range(3):
        make_image(orig / f"{i}.png", seed=i)
    out = small_disk / "bench"

    def fill(done: int, total: int) -> None:
        if done == total:
            fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                while os.write(fd, b"\0" * 4096):
                    pass
            except OSError:
                pass  # ENOSPC: the disk is full now
            finally:
                os.close(fd)

    with pytest.raises(OutputError, match="No space left on device") as e:
        generate_benchmark(orig, "identity", out, progress=fill)
    assert e.value.exit_code == ExitCode.ENVIRONMENT
    _no_manifest(out)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_read_only_out(read_only_dir: Path, small_original: Path) -> None:
    out = read_only_dir / "bench"
    with pytest.raises(OutputError, match="Read-only file system") as e:
        generate_benchmark(small_original, "identity", out)
    assert e.value.exit_code == ExitCode.ENVIRONMENT
    r = CliRunner().invoke(
        cli, ["generate", "--recipe", "identity", "--original", str(small_original),
              "--out", str(read_only_dir), "-q"],
    )  # fmt: skip
    assert r.exit_code == ExitCode.ENVIRONMENT, r.output
    assert "cannot write to --out" in r.output and "Traceback" not in r.output
    assert not (read_only_dir / "manifest.json").exists()


def test_read_only_signature_target(read_only_dir: Path, tmp_path: Path) -> None:
    from toolchain.audit.sign import generate_key

    with pytest.raises(OutputError, match="Read-only file system") as e:
        generate_key(read_only_dir / "k")
    assert e.value.exit_code == ExitCode.ENVIRONMENT


_VANISH = """
import json, sys
from pathlib import Path
from toolchain.errors import Error
from toolchain.run.generate import generate_benchmark

orig, out = Path(sys.argv[1]), Path(sys.argv[2])
victim = sorted(orig.iterdir())[-1]

def progress(done, total):
    if done == 1:
        victim.unlink()

try:
    generate_benchmark(orig, "identity", out, progress=progress, workers=1)
except Error as e:
    print(json.dumps({"cls": type(e).__name__, "code": int(e.exit_code),
                      "message": e.message, "sample": e.sample}))
else:
    print(json.dumps({"cls": None}))
"""


def test_original_vanishes_mid_run(tmp_path: Path) -> None:
    """Run pinned, in-process (workers=1), so the file goes between two reads for sure."""
    orig = tmp_path / "orig"
    for i in range(4):
        make_image(orig / f"{i}.png", seed=i)
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-c", _VANISH, str(orig), str(out)],
        capture_output=True,
        text=True,
        env={**pinned_environ(os.environ)},
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["cls"] == "SourceError"
    assert got["code"] == ExitCode.BAD_INPUT
    assert "vanished" in got["message"]
    assert got["sample"] == "3.png"
    _no_manifest(out)


def test_verify_never_passes_a_partial_output(tmp_path: Path, small_original: Path) -> None:
    out = tmp_path / "bench"
    generate_benchmark(small_original, "identity", out)
    assert verify_benchmark(out).ok
    # A truncated sample (a write cut short by a crash that bypassed the atomic rename).
    victim = sorted(out.rglob("*.png"))[0]
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    report = verify_benchmark(out)
    assert not report.ok and report.by_kind(Problem.UNDECODABLE)
    victim.write_bytes(good)
    # A leftover temp file of an interrupted write.
    (victim.parent / ".tmp-123-x.png").write_bytes(b"partial")
    report = verify_benchmark(out)
    assert not report.ok
    assert report.by_kind(Problem.EXTRA)[0].detail == "left over by an interrupted write"
    (victim.parent / ".tmp-123-x.png").unlink()
    # A missing sample.
    victim.unlink()
    r = CliRunner().invoke(cli, ["verify", str(out), "-q"])
    assert r.exit_code == ExitCode.CHECK_FAILED and "missing" in r.output
    shutil.rmtree(out)
