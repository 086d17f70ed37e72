"""The linux/arm64 image under qemu-user-static: the same roots as the host, measured.

Runs the demo recipe and ``adversarial`` in the arm64 image (emulated on an
x86-64 machine: ~20x slower, so three small real photographs) and on the
host, and asserts that the roots are equal. No root is hard-coded: both sides
are computed here. ``adversarial`` keeps its default 10 steps: with 2, these
photographs happen to give the same pixels on both kernels (measured), so the
test could not see the drift it is there to catch; with 10, coins.png differs
today (57 of 116,352 values).

The image comes from .ci/run's ``image build --check`` when it ran
(BENCHMARK_REGEN_IMAGES_CHECKED=1), else it is built here (base included).
Needs binfmt_misc with qemu-aarch64 (``bash .ci/binfmt.sh``); without it the
tests skip, unless BENCHMARK_REGEN_REQUIRE_DOCKER=1 (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.integration.test_container import checked_image
from toolchain.container.build import build_images
from toolchain.container.config import ImageRef, host_arch
from toolchain.container.docker import DockerSDKBackend
from toolchain.container.run import run_in_container

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ARCH = "arm64"
TAG = "benchmark-regen:test"
PHOTOS = ("coins.png", "horse.png", "logo.png")  # small, L / RGBA / RGB; ~0.1 Mpx in all
BINFMT = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")


def _can_run_arm64() -> bool:
    return host_arch() == ARCH or (BINFMT.is_file() and "enabled" in BINFMT.read_text().split())


@pytest.fixture(scope="module")
def arm64_image() -> ImageRef:
    if not _can_run_arm64():
        if os.environ.get("BENCHMARK_REGEN_REQUIRE_DOCKER") == "1":
            pytest.fail("qemu-aarch64 is not registered: run bash .ci/binfmt.sh")
        pytest.skip("arm64 binaries cannot run here (bash .ci/binfmt.sh registers qemu-aarch64)")
    ref = checked_image(ARCH)
    if ref is None:
        (build,) = build_images([ARCH], tag=TAG)
        ref = build.ref
    return ref


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("arm64-original")
    for name in PHOTOS:
        shutil.copy2(demo_dir / name, root / name)
    return root


def _host_root(argv: Sequence[str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "toolchain", *argv, "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["root"])


def _arm64_root(image: ImageRef, argv: Sequence[str], original: Path, out: Path) -> str:
    lines: list[str] = []
    errors: list[str] = []
    code = run_in_container(
        [*argv, "--json"], image=image.id, original=original, out=out,
        stream=lines.append, stream_err=errors.append,
    )  # fmt: skip
    assert code == 0, "\n".join(errors[-20:])
    return str(json.loads("\n".join(lines))["root"])


def _argv(recipe: str, original: Path, out: Path) -> list[str]:
    return ["generate", "--recipe", recipe, "--original", str(original), "--out", str(out)]


def test_the_image_is_arm64_and_its_blas_probe_works(arm64_image: ImageRef) -> None:
    with DockerSDKBackend() as engine:
        info = engine.inspect(arm64_image.id)
    assert info is not None and info.architecture == ARCH
    lines: list[str] = []
    code = run_in_container(
        ["env", "--json"], image=arm64_image.id, stream=lines.append, stream_err=lambda _: None
    )
    assert code == 0
    fp = json.loads("\n".join(lines))
    assert fp["platform.machine"] == "aarch64"
    for key in ("blas.config", "blas.coretype", "blas.threads"):
        assert fp.get(key), key
    assert fp["blas.threads"] == "1"


def test_demo_recipe_root_equals_the_hosts(
    arm64_image: ImageRef, photos: Path, tmp_path: Path
) -> None:
    host = _host_root(_argv("gaussian-noise", photos, tmp_path / "host"))
    inside = _arm64_root(
        arm64_image, _argv("gaussian-noise", photos, tmp_path / "arm64"), photos, tmp_path / "arm64"
    )
    assert host.startswith("sha256:")
    assert inside == host


def test_adversarial_root_equals_the_hosts(
    arm64_image: ImageRef, photos: Path, tmp_path: Path
) -> None:
    host = _host_root(_argv("adversarial", photos, tmp_path / "host"))
    inside = _arm64_root(
        arm64_image, _argv("adversarial", photos, tmp_path / "arm64"), photos, tmp_path / "arm64"
    )
    assert host.startswith("sha256:")
    assert inside == host, f"arm64 {inside} != host {host}"
