"""The pinned image on a real engine: builds, confinement, and host == container root hashes.

The image is built once per session (the offline Debian base is made first
when the engine lacks it). Without an engine these tests skip, unless
BENCHMARK_REGEN_REQUIRE_DOCKER=1 (CI), where they fail (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from toolchain import container
from toolchain._internal.docker_backend import DockerSDKBackend
from toolchain.container import ImageRef, Wheelhouse

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TAG = "benchmark-regen:test"


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def base_image() -> str:
    with DockerSDKBackend() as engine:
        missing = engine.inspect(container.BASE_IMAGE_DEBIAN) is None
    if missing:
        subprocess.run(["bash", str(ROOT / "docker" / "make-base.sh")], check=True)
    return container.BASE_IMAGE_DEBIAN


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    return container.build_wheelhouse(dest=tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(scope="session")
def image(base_image: str, wheelhouse: Wheelhouse) -> ImageRef:
    return container.build_image(tag=TAG, base_image=base_image, wheelhouse=wheelhouse)


def _host_json(argv: Sequence[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "toolchain", *argv], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def _container_json(argv: Sequence[str], **mounts: Path) -> dict[str, object]:
    out: list[str] = []
    err: list[str] = []
    code = container.run_in_container(
        list(argv), image=TAG, stream=out.append, stream_err=err.append, **mounts
    )
    assert code == 0, "\n".join(err)
    doc: dict[str, object] = json.loads("\n".join(out))
    return doc


def test_env_json_prints_a_fingerprint(image: ImageRef) -> None:
    proc = _docker("run", "--rm", "--network", "none", TAG, "env", "--json")
    fp = json.loads(proc.stdout)
    assert fp["python"].startswith("3.11.")
    assert fp["numpy"] == "2.4.6"
    assert fp["env.OPENBLAS_NUM_THREADS"] == "1"


def test_image_is_labelled(image: ImageRef, wheelhouse: Wheelhouse) -> None:
    with DockerSDKBackend() as engine:
        info = engine.inspect(image.id)
    assert info is not None
    labels = info.labels
    assert labels["io.benchmark-regen.lockfile-sha256"] == wheelhouse.lockfile_sha256
    assert len(labels["io.benchmark-regen.fingerprint"]) == 16
    assert labels["org.opencontainers.image.revision"]


def test_runs_as_non_root_and_cannot_write_the_original(
    image: ImageRef, small_original: Path
) -> None:
    uid = _docker("run", "--rm", "--network", "none", "--entrypoint", "id", TAG, "-u")
    assert uid.stdout.strip() == "10001"
    # As the owner of the folder (root here), only the read-only mount stops the write.
    owner = f"{small_original.stat().st_uid}:{small_original.stat().st_gid}"
    for user in ("10001:10001", owner):
        write = _docker(
            "run", "--rm", "--network", "none", "--cap-drop", "ALL", "--user", user,
            "-v", f"{small_original}:/original:ro", "--entrypoint", "sh", TAG,
            "-c", "touch /original/intruder",
            check=False,
        )  # fmt: skip
        assert write.returncode != 0, user
    assert "Read-only file system" in write.stderr
    assert not (small_original / "intruder").exists()


def test_run_in_container_writes_as_the_caller(image: ImageRef, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = container.run_in_container(
        ["--version"], image=TAG, out=out, stream=lambda _: None, stream_err=lambda _: None
    )
    assert code == 0
    assert out.stat().st_uid == os.getuid()


def test_demo_root_hash_is_the_same_inside_and_outside(image: ImageRef, tmp_path: Path) -> None:
    host = _host_json(["demo", "--out", str(tmp_path / "host"), "--json"])
    inside = _container_json(
        ["demo", "--out", str(tmp_path / "cont"), "--json"], out=tmp_path / "cont"
    )
    assert str(host["root"]).startswith("sha256:")
    assert inside["root"] == host["root"]


def test_adversarial_root_hash_is_the_same_inside_and_outside(
    image: ImageRef, small_original: Path, tmp_path: Path
) -> None:
    def argv(out: Path) -> list[str]:
        return ["generate", "--recipe", "adversarial", "--original", str(small_original),
                "--out", str(out), "--json"]  # fmt: skip

    host = _host_json(argv(tmp_path / "host"))
    inside = _container_json(
        argv(tmp_path / "cont"), original=small_original, out=tmp_path / "cont"
    )
    assert str(host["root"]).startswith("sha256:")
    assert inside["root"] == host["root"]


def test_building_twice_gives_the_same_image_id(
    image: ImageRef, base_image: str, wheelhouse: Wheelhouse
) -> None:
    again = container.build_image(tag=f"{TAG}-again", base_image=base_image, wheelhouse=wheelhouse)
    assert again.id == image.id


def test_dockerfile_route_builds_with_the_offline_base(
    image: ImageRef, base_image: str, wheelhouse: Wheelhouse
) -> None:
    """docker/Dockerfile works too (its ID is not reproducible: classic builder times)."""
    ref = container.build_image(
        tag=f"{TAG}-dockerfile", base_image=base_image, wheelhouse=wheelhouse,
        method="dockerfile", stream=lambda _: None,
    )  # fmt: skip
    try:
        proc = _docker("run", "--rm", "--network", "none", ref.tag, "env", "--json")
        assert json.loads(proc.stdout)["numpy"] == "2.4.6"
        uid = _docker("run", "--rm", "--network", "none", "--entrypoint", "id", ref.tag, "-u")
        assert uid.stdout.strip() == "10001"
    finally:
        _docker("rmi", ref.tag, check=False)
