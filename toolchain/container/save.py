"""Save the built images of several architectures as one byte-deterministic OCI image
layout that ``docker load`` reads too."""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from toolchain.container.config import ARCHES, DEFAULT_TAG, arch_tag, oci_platform
from toolchain.container.docker import ContainerBackend, ImageInfo, open_backend
from toolchain.container.layers import (
    Blob,
    OciImage,
    oci_index,
    oci_manifest,
    sha256_file,
    write_oci_archive,
)
from toolchain.errors import ContainerError

__all__ = ["save_images"]


def save_images(
    dest: Path,
    *,
    tag: str = DEFAULT_TAG,
    arches: Sequence[str] = ARCHES,
    backend: ContainerBackend | None = None,
) -> str:
    """Write the images of ``arches`` as one OCI image layout tarball; return the index digest.

    The images are read from the engine by their architecture tags (built by
    :func:`build_images`). Layers are stored uncompressed, so their digests
    are their diff IDs and the tarball is byte-deterministic. ``docker load``
    of the file loads each image as ``benchmark-regen:ARCH``.
    """
    with (
        open_backend(backend) as engine,
        tempfile.TemporaryDirectory(prefix="benchmark-regen-save-", dir=dest.parent) as tmp_name,
    ):
        tmp = Path(tmp_name)
        images, manifests = [], []
        for arch in arches:
            ref = arch_tag(tag, arch)
            info = engine.inspect(ref)
            if info is None:
                raise ContainerError(
                    f"{ref} is not in the engine at {engine.engine()}",
                    hint=f"build it with `benchmark-regen image build --arch {arch}`",
                )
            saved = tmp / f"{arch}.tar"
            engine.save(ref, saved)
            config, layers = _unpack_saved(saved, tmp / arch, info)
            saved.unlink()
            images.append(OciImage(config=config, layers=layers, tag=ref))
            blobs = [Blob(digest=d, size=p.stat().st_size) for d, p in layers]
            manifest = Blob.of(oci_manifest(config=Blob.of(config), layers=blobs))
            manifests.append((manifest, oci_platform(arch)))
        index = oci_index(manifests)
        partial = tmp / "out.tar"
        digest = write_oci_archive(partial, images=images, index=index, ref_name="latest")
        partial.replace(dest)
        return digest


def _unpack_saved(saved: Path, into: Path, info: ImageInfo) -> tuple[bytes, list[tuple[str, Path]]]:
    """The config and the layer tars of a ``docker save`` archive, checked against ``info``."""
    into.mkdir()
    with tarfile.open(saved) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        (entry,) = json.load(member)
        cfg = tar.extractfile(entry["Config"])
        assert cfg is not None
        config = cfg.read()
        layers = []
        for i, (name, diff_id) in enumerate(zip(entry["Layers"], info.diff_ids, strict=True)):
            src = tar.extractfile(name)
            assert src is not None
            path = into / f"{i}.tar"
            with src, path.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            if "sha256:" + sha256_file(path) != diff_id:
                raise ContainerError(f"layer {i} of the saved {info.id} is not {diff_id}")
            layers.append((diff_id, path))
    if Blob.of(config).digest != info.id:
        raise ContainerError(f"the saved config of {info.id} has another digest")
    return config, layers
