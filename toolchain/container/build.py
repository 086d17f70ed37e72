"""Build the image, for one architecture or several: assembled from the offline base
(reproducible), or by ``docker build`` on docker/Dockerfile."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from toolchain.container.assemble import assemble, image_labels
from toolchain.container.base import ensure_base
from toolchain.container.config import (
    ARCHES,
    DEFAULT_TAG,
    SOURCE_DATE_EPOCH,
    ImageBuild,
    ImageRef,
    arch_tag,
    base_tag,
    host_arch,
)
from toolchain.container.docker import (
    BuildRequest,
    ContainerBackend,
    LineSink,
    open_backend,
    print_err,
)
from toolchain.container.inputs import repo_root
from toolchain.container.wheelhouse import Wheelhouse, build_wheelhouse
from toolchain.errors import ContainerError, InputError

__all__ = ["build_image", "build_images"]


def _revision(project_dir: Path) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    except OSError:
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def _build_context(wheelhouse: Wheelhouse, project_dir: Path, tmp: Path) -> Path:
    """Dockerfile + install-venv.sh + the wheelhouse (wheels and requirements only)."""
    context = tmp / "context"
    (context / "wheelhouse").mkdir(parents=True)
    for name in ("Dockerfile", "install-venv.sh"):
        shutil.copy2(project_dir / "docker" / name, context / name)
    for item in sorted(wheelhouse.path.iterdir()):
        if item.suffix in (".whl", ".txt"):
            target = context / "wheelhouse" / item.name
            try:
                os.link(item, target)  # same file system: no 600 MB copy
            except OSError:
                shutil.copy2(item, target)
    return context


def build_image(
    *,
    tag: str = DEFAULT_TAG,
    base_image: str | None = None,
    method: Literal["assemble", "dockerfile"] = "assemble",
    backend: ContainerBackend | None = None,
    wheelhouse: Wheelhouse | None = None,
    project_dir: Path | None = None,
    no_cache: bool = False,
    epoch: int = SOURCE_DATE_EPOCH,
    stream: LineSink = print_err,
    arch: str | None = None,
    mirror: str | None = None,
) -> ImageRef:
    """Build the pinned image for ``arch`` (default: this machine's), tag it, return its ID.

    ``base_image`` defaults to the offline Debian base, made first when the
    engine lacks it, for ``assemble`` and to the Dockerfile's digest-pinned
    default for ``dockerfile``. See docker/README.md for the two methods;
    :func:`build_images` returns the layers too.
    """
    if method == "assemble":
        return _build_assembled(
            tag=tag, base_image=base_image, backend=backend, wheelhouse=wheelhouse,
            project_dir=project_dir, epoch=epoch, stream=stream, arch=arch or host_arch(),
            mirror=mirror,
        ).ref  # fmt: skip
    with open_backend(backend) as engine:
        project_dir = project_dir or repo_root()
        if base_image and engine.inspect(base_image) is None:
            raise ContainerError(
                f"base image {base_image} is not in the engine at {engine.engine()}",
                hint=f"pull it first (`docker pull {base_image}`)",
            )
        wheelhouse = wheelhouse or build_wheelhouse(project_dir=project_dir, epoch=epoch)
        build_args = {"REVISION": _revision(project_dir),
                      "LOCKFILE_SHA256": wheelhouse.lockfile_sha256}  # fmt: skip
        if base_image:
            build_args["BASE_IMAGE"] = base_image
        with tempfile.TemporaryDirectory(prefix="benchmark-regen-image-") as tmp_name:
            context = _build_context(wheelhouse, project_dir, Path(tmp_name))
            image_id = engine.build(
                BuildRequest(context=context, dockerfile="Dockerfile", tag=tag,
                             build_args=build_args, no_cache=no_cache),
                on_line=stream,
            )  # fmt: skip
        engine.tag(image_id, tag)
        return ImageRef(id=image_id, tag=tag)


def _build_assembled(
    *,
    tag: str,
    base_image: str | None,
    backend: ContainerBackend | None,
    wheelhouse: Wheelhouse | None,
    project_dir: Path | None,
    epoch: int,
    stream: LineSink,
    arch: str,
    mirror: str | None,
) -> ImageBuild:
    with open_backend(backend) as engine:
        project_dir = project_dir or repo_root()
        if base_image:
            base = engine.inspect(base_image)
            if base is None:
                raise ContainerError(
                    f"base image {base_image} is not in the engine at {engine.engine()}",
                    hint=f"pull it first (`docker pull {base_image}`)",
                )
        else:
            base_image = base_tag(arch)
            base = ensure_base(arch, backend=engine, mirror=mirror, stream=stream)
        if base.architecture != arch:
            raise ContainerError(f"{base_image} is a {base.architecture} image, not {arch}")
        compile_ref = base_image
        if arch != host_arch() and arch in ARCHES and host_arch() in ARCHES:
            ensure_base(host_arch(), backend=engine, mirror=mirror, stream=stream)
            compile_ref = base_tag(host_arch())
        if wheelhouse is None:
            stream(f"wheelhouse for {arch} (pip download --require-hashes, pinned setuptools)")
            wheelhouse = build_wheelhouse(project_dir=project_dir, epoch=epoch, arch=arch)
        if wheelhouse.dependencies is None or wheelhouse.project is None:
            raise ContainerError(f"{wheelhouse.path} holds no dependencies.txt / project.txt")
        if wheelhouse.arch != arch:
            raise ContainerError(f"the wheelhouse {wheelhouse.path} is for {wheelhouse.arch}")
        labels = image_labels(
            lockfile_sha256=wheelhouse.lockfile_sha256, base_ref=base_tag(arch), fingerprint=None
        )
        with tempfile.TemporaryDirectory(prefix="benchmark-regen-image-") as tmp_name:
            tmp = Path(tmp_name)
            context = _build_context(wheelhouse, project_dir, tmp)
            built = assemble(
                engine, arch=arch, base=base, base_ref=base_image, compile_ref=compile_ref,
                context=context, tag=tag, labels=labels, epoch=epoch, tmp=tmp, stream=stream,
            )  # fmt: skip
        engine.tag(built.ref.id, tag)
        if not tag.endswith(f":{arch}") and not tag.endswith(f"-{arch}"):
            engine.tag(built.ref.id, arch_tag(tag, arch))
        return built


def build_images(
    arches: Sequence[str] = (),
    *,
    tag: str = DEFAULT_TAG,
    backend: ContainerBackend | None = None,
    project_dir: Path | None = None,
    epoch: int = SOURCE_DATE_EPOCH,
    mirror: str | None = None,
    stream: LineSink = print_err,
) -> list[ImageBuild]:
    """Build the assembled image for each of ``arches`` (default: this machine's).

    This machine's image is tagged ``tag``; every image is also tagged with
    its architecture (``benchmark-regen:arm64``), which :func:`save_images` reads.
    """
    arches = tuple(dict.fromkeys(arches or (host_arch(),)))
    for arch in arches:
        if arch not in ARCHES:
            raise InputError(f"unknown architecture {arch!r}: use one of {', '.join(ARCHES)}")
    builds = []
    with open_backend(backend) as engine:
        for arch in arches:
            stream(f"--- linux/{arch}")
            own_tag = tag if arch == host_arch() else arch_tag(tag, arch)
            builds.append(
                _build_assembled(
                    tag=own_tag,
                    base_image=None,
                    backend=engine,
                    wheelhouse=None,
                    project_dir=project_dir,
                    epoch=epoch,
                    stream=stream,
                    arch=arch,
                    mirror=mirror,
                )
            )
    return builds
