"""The offline Debian base: ``docker/make-base.sh`` run when the engine lacks it, and the
root file system it makes packed as one deterministic layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from toolchain.container.config import (
    BASE_ENV,
    BASE_INPUTS_LABEL,
    BASE_LAYER_SIZE_LABEL,
    BASE_PACKAGES,
    SOURCE_DATE_EPOCH,
    VARIANTS,
    ImageRef,
    base_tag,
)
from toolchain.container.docker import (
    ContainerBackend,
    ImageInfo,
    LineSink,
    open_backend,
    print_err,
)
from toolchain.container.inputs import base_inputs, repo_root
from toolchain.container.layers import entries_from_tree, image_config, write_archive, write_layer
from toolchain.errors import ContainerError

__all__ = ["ensure_base", "load_base_rootfs", "make_base"]


def load_base_rootfs(
    rootfs: Path,
    *,
    tag: str,
    arch: str,
    epoch: int = SOURCE_DATE_EPOCH,
    inputs: str | None = None,
    backend: ContainerBackend | None = None,
) -> ImageRef:
    """Pack a debootstrapped root file system as one deterministic layer and load it as ``tag``.

    Called by ``docker/make-base.sh``. Unlike ``docker import``, which stamps
    the import time into the config, the config here is canonical, so the
    same packages give the same base image ID on any machine. ``inputs``
    (:func:`base_inputs`) is recorded as a label.
    """
    with (
        open_backend(backend) as engine,
        tempfile.TemporaryDirectory(prefix="benchmark-regen-base-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        layer = tmp / "layer.tar"
        diff_id = write_layer(entries_from_tree(rootfs, "", keep_owners=True), layer, mtime=epoch)
        labels = {BASE_LAYER_SIZE_LABEL: str(layer.stat().st_size)}
        if inputs is not None:
            labels[BASE_INPUTS_LABEL] = inputs
        runtime = {"Cmd": ["/bin/bash"], "Env": list(BASE_ENV), "Labels": labels}
        config = image_config(
            diff_ids=[diff_id],
            runtime=runtime,
            history=[f"debootstrap --variant=minbase --arch={arch} bookworm ({BASE_PACKAGES})"],
            epoch=epoch,
            architecture=arch,
            variant=VARIANTS.get(arch),
        )
        archive = tmp / "base.tar"
        image_id = write_archive(archive, config=config, layers=[(diff_id, layer)], tag=tag)
        engine.load(archive)
        engine.tag(image_id, tag)
        return ImageRef(id=image_id, tag=tag)


def make_base(
    arch: str,
    *,
    mirror: str | None = None,
    force: bool = False,
    update_lock: bool = False,
    project_dir: Path | None = None,
    stream: LineSink = print_err,
) -> None:
    """Run ``docker/make-base.sh`` for ``arch`` (debootstrap; needs root).

    The script checks the installed Debian packages against
    ``lockfiles/debian-base-ARCH.txt`` and names the tools a machine lacks;
    its message becomes the error's.
    """
    script = (project_dir or repo_root()) / "docker" / "make-base.sh"
    if shutil.which("bash") is None:
        raise ContainerError("bash is not installed, and docker/make-base.sh needs it")
    argv = ["bash", str(script), "--arch", arch]
    argv += ["--mirror", mirror] if mirror else []
    argv += ["--force"] if force else []
    argv += ["--update-lock"] if update_lock else []
    env = {**os.environ, "PYTHON": sys.executable}
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            stream(lines[-1])
        code = proc.wait()
    if code != 0:
        said = [ln.removeprefix("make-base.sh: ") for ln in lines[-12:]]
        raise ContainerError(
            f"making the {arch} base failed (docker/make-base.sh exit {code}):\n" + "\n".join(said),
            hint="the lines above say what to install or change",
        )


def ensure_base(
    arch: str,
    *,
    backend: ContainerBackend,
    mirror: str | None = None,
    stream: LineSink = print_err,
) -> ImageInfo:
    """The offline base for ``arch``, made first (``make-base.sh``) when the engine lacks it."""
    tag = base_tag(arch)
    info = backend.inspect(tag)
    if info is None or info.labels.get(BASE_INPUTS_LABEL) != base_inputs(arch):
        why = "is not in the engine" if info is None else "was made from other inputs"
        stream(f"{tag} {why}: making it (docker/make-base.sh)")
        make_base(arch, mirror=mirror, force=True, stream=stream)
        info = backend.inspect(tag)
        if info is None:
            raise ContainerError(f"docker/make-base.sh ran but {tag} is still not in the engine")
    return info
