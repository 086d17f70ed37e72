"""docker/make-base.sh: what it says when a machine lacks a tool, and the package lock check.

The script needs root and debootstrap before anything else; these tests run it
with a stub debootstrap and a fake binfmt_misc folder, so they need neither an
engine nor a network, and stop at the first missing piece.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "make-base.sh"
LOCK = ROOT / "lockfiles" / "debian-base-amd64.txt"
FOREIGN = "arm64" if os.uname().machine == "x86_64" else "amd64"


def _run(
    *args: str, stdin: str = "", path: str | None = None, binfmt: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    if binfmt is not None:
        env["BENCHMARK_REGEN_BINFMT_DIR"] = str(binfmt)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], input=stdin, capture_output=True, text=True, env=env,
        check=False,
    )  # fmt: skip


def _locked_lines() -> list[str]:
    return [ln for ln in LOCK.read_text().splitlines() if ln and not ln.startswith("#")]


def test_the_locked_packages_pass_the_check() -> None:
    proc = _run("--compare-lock", "--lock", str(LOCK), stdin="\n".join(_locked_lines()) + "\n")
    assert proc.returncode == 0, proc.stderr


def test_a_moved_mirror_is_named_per_package() -> None:
    lines = _locked_lines()
    moved = [ln.replace("=", "=9:", 1) if ln.startswith("libc6=") else ln for ln in lines]
    moved.append("newpkg=1.0 amd64")
    proc = _run("--compare-lock", "--lock", str(LOCK), stdin="\n".join(moved) + "\n")
    assert proc.returncode == 1
    libc6 = next(ln for ln in lines if ln.startswith("libc6=")).split("=", 1)[1].split()[0]
    assert f"libc6: locked {libc6}, the mirror has 9:{libc6}" in proc.stderr
    assert "newpkg: locked (none), the mirror has 1.0" in proc.stderr
    assert "--mirror" in proc.stderr and "--update-lock" in proc.stderr


def test_usage_errors_exit_2() -> None:
    assert _run("--arch", "riscv64").returncode == 2
    assert _run("--bogus").returncode == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="the root check comes first")
def test_missing_debootstrap_names_the_package(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "uname", "id", "dirname", "sed", "cat", "grep"):
        real = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        (bindir / tool).symlink_to(real)
    proc = _run("--arch", "amd64", path=str(bindir))
    assert proc.returncode == 4
    assert "apt-get install -y debootstrap" in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the root check comes first")
@pytest.mark.parametrize(
    ("files", "said"),
    [
        ({}, "binfmt_misc is not mounted"),
        ({"register": ""}, "apt-get install -y qemu-user-static binfmt-support"),
        ({"register": "", "qemu-aarch64": "enabled\nflags: OP\n"}, "without the F flag"),
    ],
)
def test_foreign_arch_without_binfmt_says_what_to_run(
    tmp_path: Path, files: dict[str, str], said: str
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "debootstrap").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "debootstrap").chmod(0o755)
    binfmt = tmp_path / "binfmt"
    binfmt.mkdir()
    for name, text in files.items():
        (binfmt / name).write_text(text)
    proc = _run("--arch", FOREIGN, path=f"{bindir}:{os.environ['PATH']}", binfmt=binfmt)
    assert proc.returncode == 4, proc.stderr
    assert said in proc.stderr
    assert "bash .ci/binfmt.sh" in proc.stderr
