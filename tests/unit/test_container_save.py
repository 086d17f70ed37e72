"""toolchain.container.save against FakeBackend: the images of several architectures in one
byte-deterministic OCI layout, every layer checked against its diff ID."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.fakes import FakeBackend
from toolchain.container.docker import ImageInfo
from toolchain.container.layers import (
    Blob,
    LayerEntry,
    image_config,
    oci_index,
    oci_manifest,
    write_archive,
    write_layer,
)
from toolchain.container.save import save_images
from toolchain.errors import ContainerError


class _Saving(FakeBackend):
    """``save`` writes the ``docker save`` archive kept for the ref."""

    def __init__(self) -> None:
        super().__init__()
        self.archives: dict[str, bytes] = {}

    def save(self, ref: str, dest: Path) -> None:
        super().save(ref, dest)
        dest.write_bytes(self.archives[ref])


def _image(engine: _Saving, tmp_path: Path, arch: str, *, tag: str) -> tuple[bytes, Blob]:
    """An image of one layer in the engine under ``tag``; its config and layer blob."""
    layer = tmp_path / f"{arch}.tar"
    diff_id = write_layer(
        [LayerEntry(path="arch", kind="file", mode=0o644, data=arch.encode())], layer, mtime=0
    )
    config = image_config(diff_ids=[diff_id], runtime={}, history=["x"], epoch=0,
                          architecture=arch, variant="v8" if arch == "arm64" else None)  # fmt: skip
    archive = tmp_path / f"{arch}-saved.tar"
    image_id = write_archive(archive, config=config, layers=[(diff_id, layer)], tag=tag)
    engine.archives[tag] = archive.read_bytes()
    engine.images[tag] = ImageInfo(id=image_id, diff_ids=(diff_id,), env=(), labels={},
                                   architecture=arch, os="linux")  # fmt: skip
    return config, Blob(digest=diff_id, size=layer.stat().st_size)


def test_both_architectures_in_one_deterministic_layout(tmp_path: Path) -> None:
    engine = _Saving()
    made = {arch: _image(engine, tmp_path, arch, tag=f"r:{arch}") for arch in ("amd64", "arm64")}
    first = save_images(tmp_path / "one.tar", tag="r:latest", backend=engine)
    second = save_images(tmp_path / "two.tar", tag="r:latest", backend=engine)
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    platforms = [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
    ]
    manifests = [
        Blob.of(oci_manifest(config=Blob.of(config), layers=[layer]))
        for config, layer in made.values()
    ]
    assert (
        first == second == Blob.of(oci_index(list(zip(manifests, platforms, strict=True)))).digest
    )
    with tarfile.open(tmp_path / "one.tar") as tar:
        docker_manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert [m["RepoTags"] for m in docker_manifest] == [["r:amd64"], ["r:arm64"]]


def test_an_image_missing_from_the_engine_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ContainerError) as exc:
        save_images(tmp_path / "o.tar", arches=["arm64"], backend=_Saving())
    text = exc.value.diagnostics()
    assert "benchmark-regen:arm64 is not in the engine" in text
    assert "benchmark-regen image build --arch arm64" in text
    assert not (tmp_path / "o.tar").exists()


def test_a_layer_that_is_not_its_diff_id_is_refused(tmp_path: Path) -> None:
    engine = _Saving()
    _image(engine, tmp_path, "amd64", tag="r:amd64")
    info = engine.images["r:amd64"]
    engine.images["r:amd64"] = ImageInfo(id=info.id, diff_ids=("sha256:" + "0" * 64,), env=(),
                                         labels={}, architecture="amd64", os="linux")  # fmt: skip
    with pytest.raises(ContainerError, match="layer 0 of the saved"):
        save_images(tmp_path / "o.tar", tag="r:latest", arches=["amd64"], backend=engine)
    assert not (tmp_path / "o.tar").exists()
