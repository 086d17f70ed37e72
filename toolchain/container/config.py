"""The image's fixed settings (architectures, tags, mount points, the run-key mount, runtime
config, labels) and the value objects of a built image."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass

from toolchain.container.layers import Blob
from toolchain.run.determinism import PINNED, openblas_coretype
from toolchain.run.runkey import KEY_FOLDER_NAME, STATE_VARIABLE

__all__ = [
    "ARCHES",
    "BASE_ENV",
    "BASE_IMAGE_DEBIAN",
    "BASE_INPUTS_LABEL",
    "BASE_LAYER_SIZE_LABEL",
    "BASE_PACKAGES",
    "CONTAINER_DIFF",
    "CONTAINER_ORIGINAL",
    "CONTAINER_OUT",
    "CONTAINER_STATE",
    "DEFAULT_TAG",
    "GROUP_LINE",
    "IMAGE_CMD",
    "IMAGE_ENTRYPOINT",
    "IMAGE_ENV",
    "IMAGE_UID",
    "IMAGE_USER",
    "IMAGE_WORKDIR",
    "KEY_MOUNT",
    "LAYERS",
    "MOUNTS_LABEL",
    "PASSWD_LINE",
    "SOURCE_DATE_EPOCH",
    "VARIANTS",
    "ImageBuild",
    "ImageRef",
    "KeyMount",
    "arch_tag",
    "base_tag",
    "host_arch",
    "image_env",
    "oci_platform",
]

DEFAULT_TAG = "benchmark-regen:latest"
ARCHES = ("amd64", "arm64")
"""The architectures of the published image (``lockfiles/image.lock`` holds both)."""
LAYERS = ("base", "dependencies", "project")
"""The image's layers, bottom to top, by rate of change."""


def host_arch() -> str:
    """This machine's architecture in Docker's spelling (``amd64``, ``arm64``)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def base_tag(arch: str) -> str:
    """The offline base made by ``docker/make-base.sh --arch ARCH`` (no registry needed)."""
    return f"benchmark-regen-base:bookworm-{arch}"


def arch_tag(tag: str, arch: str) -> str:
    """The per-architecture tag: ``benchmark-regen:latest`` → ``benchmark-regen:arm64``,
    ``benchmark-regen:test`` → ``benchmark-regen:test-arm64``."""
    repo, sep, name = tag.rpartition(":")
    if not sep or "/" in name:
        repo, name = tag, "latest"
    return f"{repo}:{arch}" if name == "latest" else f"{repo}:{name}-{arch}"


BASE_IMAGE_DEBIAN = base_tag(host_arch())
"""The offline base for this machine's architecture."""

CONTAINER_ORIGINAL = "/original"
CONTAINER_OUT = "/out"
CONTAINER_DIFF = "/diff"
CONTAINER_STATE = "/state"
"""XDG_STATE_HOME in a run's container: the run-key folder is below it."""


@dataclass(frozen=True, kw_only=True)
class KeyMount:
    """How a run in a container keeps its run keys (``run/runkey.py``) past the container:
    storage that outlives it is mounted at :attr:`target` (the key folder itself) or at
    :attr:`state_home` (where the run makes it), and :attr:`env` names the latter."""

    state_home: str

    @property
    def target(self) -> str:
        """The key folder in the container: ``/state/benchmark-regen``."""
        return f"{self.state_home}/{KEY_FOLDER_NAME}"

    @property
    def env(self) -> dict[str, str]:
        """``{"XDG_STATE_HOME": "/state"}``."""
        return {STATE_VARIABLE: self.state_home}


KEY_MOUNT = KeyMount(state_home=CONTAINER_STATE)
"""The one run-key mount: ``run_in_container``, the Slurm script and the Kubernetes Job."""

SOURCE_DATE_EPOCH = 1767225600
"""2026-01-01T00:00:00Z: every time written into the image, unless overridden."""

# The runtime config of the image. docker/Dockerfile declares the same values;
# tests/unit/test_container_config.py checks that the two agree.
IMAGE_UID = 10001
IMAGE_USER = f"{IMAGE_UID}:{IMAGE_UID}"
IMAGE_WORKDIR = "/work"
IMAGE_ENTRYPOINT = ("benchmark-regen",)
IMAGE_CMD = ("image", "about")
PASSWD_LINE = f"regen:x:{IMAGE_UID}:{IMAGE_UID}:benchmark-regen:/home/regen:/usr/sbin/nologin"
GROUP_LINE = f"regen:x:{IMAGE_UID}:"
IMAGE_ENV: Mapping[str, str] = {
    "PATH": "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/home/regen",
    # Belt and braces: the CLI re-executes itself pinned anyway, but a process
    # started in the image without it (a Dask worker, `python -c`) is pinned
    # too. The values come from the determinism guard, the one source of truth.
    **{name: setting.value for name, setting in PINNED.items() if setting.value},
    "PYTHONDONTWRITEBYTECODE": "1",
}


def image_env(arch: str) -> dict[str, str]:
    """:data:`IMAGE_ENV` for an image of architecture ``arch``: its own OpenBLAS kernel."""
    env = dict(IMAGE_ENV)
    coretype = openblas_coretype(arch)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    return env


MOUNTS_LABEL = f"{CONTAINER_ORIGINAL}:ro {CONTAINER_OUT}:rw {CONTAINER_DIFF}:ro"

BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
BASE_PACKAGES = "python3 python3-venv python3-pip ca-certificates"
BASE_LAYER_SIZE_LABEL = "io.benchmark-regen.base-layer-size"
"""The size of the base's one layer tar: the OCI manifest names it, the engine does not."""
BASE_INPUTS_LABEL = "io.benchmark-regen.base-inputs"
"""The digest of what made the base (make-base.sh, the package lock): a stale base is remade."""
VARIANTS: Mapping[str, str] = {"arm64": "v8"}
"""The OCI platform variant of each architecture that has one."""


def oci_platform(arch: str) -> dict[str, str]:
    """The OCI ``platform`` of an image of ``arch``: os, architecture and variant."""
    variant = VARIANTS.get(arch)
    return {
        "os": "linux",
        "architecture": arch,
        **({"variant": variant} if variant else {}),
    }


@dataclass(frozen=True, kw_only=True)
class ImageRef:
    """A built image: its content-derived ID and the tag pointing at it."""

    id: str
    tag: str

    def __str__(self) -> str:
        return f"{self.tag}@{self.id}"


@dataclass(frozen=True, kw_only=True)
class ImageBuild:
    """One architecture's image as built: what ``lockfiles/image.lock`` records.

    ``layers`` maps each of :data:`LAYERS` to its diff ID (``sha256:…``, the
    digest of the uncompressed layer tar); ``config`` is the image ID (the
    config's digest); ``manifest`` the OCI manifest's digest.
    """

    arch: str
    ref: ImageRef
    layers: Mapping[str, Blob]
    config: Blob
    manifest: Blob

    @property
    def platform(self) -> dict[str, str]:
        return oci_platform(self.arch)
