"""The pinned image on a real engine: builds, confinement, and host == container root hashes.

The image is built once per session (the offline Debian base is made first
when the engine lacks it), or taken from the engine when .ci/run has just
built and checked it (BENCHMARK_REGEN_IMAGES_CHECKED=1, set after
`image build --check` passed). Without an engine these tests skip, unless
BENCHMARK_REGEN_REQUIRE_DOCKER=1 (CI), where they fail (tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from toolchain.container.base import ensure_base
from toolchain.container.build import build_image, build_images
from toolchain.container.config import (
    BASE_IMAGE_DEBIAN,
    DEFAULT_TAG,
    LAYERS,
    ImageRef,
    arch_tag,
    host_arch,
)
from toolchain.container.docker import DockerSDKBackend
from toolchain.container.run import run_in_container
from toolchain.container.save import save_images
from toolchain.container.wheelhouse import Wheelhouse, build_wheelhouse

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TAG = "benchmark-regen:test"


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def base_image() -> str:
    with DockerSDKBackend() as engine:
        ensure_base(host_arch(), backend=engine)
    return BASE_IMAGE_DEBIAN


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    return build_wheelhouse(dest=tmp_path_factory.mktemp("wheelhouse"))


def checked_image(arch: str) -> ImageRef | None:
    """The image .ci/run built and checked against the lock just before the tests, if any."""
    if os.environ.get("BENCHMARK_REGEN_IMAGES_CHECKED") != "1":
        return None
    with DockerSDKBackend() as engine:
        info = engine.inspect(arch_tag(DEFAULT_TAG, arch))
    return None if info is None else ImageRef(id=info.id, tag=info.id)


@pytest.fixture(scope="session")
def image(base_image: str) -> ImageRef:
    ref = checked_image(host_arch())
    if ref is None:
        (build,) = build_images([host_arch()], tag=TAG)
        ref = build.ref
    with DockerSDKBackend() as engine:
        engine.tag(ref.id, TAG)
    return ImageRef(id=ref.id, tag=TAG)


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
    code = run_in_container(
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


def test_image_is_labelled_without_the_revision(image: ImageRef) -> None:
    with DockerSDKBackend() as engine:
        info = engine.inspect(image.id)
    assert info is not None
    labels = info.labels
    lock = (ROOT / "lockfiles" / "requirements.txt").read_bytes()
    assert labels["io.benchmark-regen.lockfile-sha256"] == hashlib.sha256(lock).hexdigest()
    assert len(labels["io.benchmark-regen.fingerprint"]) == 16
    # A committed image ID cannot hold the commit that builds it.
    assert "org.opencontainers.image.revision" not in labels
    assert [len(info.diff_ids), info.architecture] == [3, host_arch()]


def test_running_the_image_without_arguments_prints_help_and_fingerprint(
    image: ImageRef,
) -> None:
    proc = _docker("run", "--rm", "--network", "none", TAG)
    assert "Regenerate image benchmarks bit for bit" in proc.stdout
    assert "Runtime fingerprint" in proc.stdout and "env.OPENBLAS_NUM_THREADS" in proc.stdout


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
    code = run_in_container(
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


@pytest.mark.skipif(
    os.environ.get("BENCHMARK_REGEN_IMAGES_CHECKED") == "1",
    reason="image build --check has just rebuilt the image and proved it against the lock",
)
def test_building_again_gives_the_same_layers_and_image_id(image: ImageRef) -> None:
    (again,) = build_images([host_arch()], tag=f"{TAG}-again")
    with DockerSDKBackend() as engine:
        info = engine.inspect(image.id)
    assert info is not None
    assert [again.layers[name].digest for name in LAYERS] == list(info.diff_ids)
    assert again.ref.id == image.id


def test_saved_layout_loads_back_with_the_same_id(image: ImageRef, tmp_path: Path) -> None:
    arch = host_arch()
    with DockerSDKBackend() as engine:
        engine.tag(image.id, arch_tag(f"{TAG}-save", arch))
    digest = save_images(tmp_path / "oci.tar", tag=f"{TAG}-save", arches=[arch])
    assert digest.startswith("sha256:")
    _docker("rmi", arch_tag(f"{TAG}-save", arch))
    load = _docker("load", "-i", str(tmp_path / "oci.tar"))
    assert arch_tag(f"{TAG}-save", arch) in load.stdout
    inspect = _docker("image", "inspect", "--format", "{{.Id}}", arch_tag(f"{TAG}-save", arch))
    assert inspect.stdout.strip() == image.id


def test_dockerfile_route_builds_with_the_offline_base(
    image: ImageRef, base_image: str, wheelhouse: Wheelhouse
) -> None:
    """docker/Dockerfile works too (its ID is not reproducible: classic builder times)."""
    ref = build_image(
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
