"""Shared fixtures: small real originals, their identity benchmark, the demo folder, CLI
runner, docker gate."""

from __future__ import annotations

import io
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.compare_cases import pinned_here
from toolchain.demo import demo_original
from toolchain.run.generate import generate_benchmark

REQUIRE_DOCKER = os.environ.get("BENCHMARK_REGEN_REQUIRE_DOCKER") == "1"

# A small, fast subset of the real demo photographs (both PNG and JPEG, L, RGB, RGBA).
SMALL_DEMO = (
    "camera.png",
    "coins.png",
    "horse.png",
    "logo.png",
    "retina.jpg",
    "rocket.jpg",
    "chelsea.png",
    "microaneurysms.png",
)


@pytest.fixture(scope="session", autouse=True)
def _run_keys_stay_in_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Resume keys (toolchain/run/runkey.py) go under a temporary XDG_STATE_HOME, never the
    home of whoever runs the tests; subprocesses inherit it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
        yield


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    return demo_original()


@pytest.fixture(scope="session")
def small_original(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Path:
    """Eight real photographs in a two-level tree, read-only for the tests."""
    root = tmp_path_factory.mktemp("small-original")
    for i, name in enumerate(SMALL_DEMO):
        sub = root / ("class_a" if i % 2 else "class_b")
        sub.mkdir(exist_ok=True)
        shutil.copy2(demo_dir / name, sub / name)
    return root


@pytest.fixture(scope="session")
def identity_bench(tmp_path_factory: pytest.TempPathFactory, small_original: Path) -> Path:
    """The identity benchmark of :func:`small_original` (8 samples), made in this process;
    read-only for the tests (copy it to change it)."""
    out = tmp_path_factory.mktemp("identity-bench") / "bench"
    with pinned_here(pytest.MonkeyPatch()):  # no worker pool to spawn
        generate_benchmark(small_original, "identity", out)
    return out


def make_image(
    path: Path,
    *,
    mode: str = "RGB",
    size: tuple[int, int] = (40, 32),
    seed: int = 0,
    fmt: str | None = None,
) -> bytes:
    """Write a small deterministic image and return its bytes."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}.get(mode, 3)
    arr = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    img = Image.fromarray(arr[:, :, 0] if channels == 1 else arr)
    if mode == "P":
        img = img.convert("RGB").quantize(16)
    buf = io.BytesIO()
    img.save(buf, format=fmt or {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP"}[path.suffix])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cwd_tmp(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def docker_engine_answers() -> bool:
    """Does an engine answer? Through the production backend, which closes every socket
    (the SDK alone leaks a half-made Unix socket when nothing listens)."""
    from toolchain.container.docker import DockerSDKBackend
    from toolchain.errors import ContainerError

    try:
        with DockerSDKBackend() as backend:
            backend.client  # noqa: B018 - connects and pings, or raises
    except ContainerError:
        return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    """The suite assumes a normal start: a shell without job control (``cmd &``, ``nohup``)
    starts it with SIGINT or SIGHUP ignored, which every process it runs would inherit,
    and the toolchain rightly leaves an ignored signal alone."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any("docker" in item.keywords for item in items) and not docker_engine_answers():
        if REQUIRE_DOCKER:
            return  # the tests run and fail loudly: CI promised an engine
        skip = pytest.mark.skip(reason="no Docker engine answers (set DOCKER_HOST, or run .ci/run)")
        for item in items:
            if "docker" in item.keywords:
                item.add_marker(skip)
