"""toolchain.container.base: the offline base, packed deterministically, made again when stale,
and make-base.sh's own words when it fails."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.fakes import FakeBackend
from toolchain.container import base
from toolchain.container.config import BASE_INPUTS_LABEL, BASE_LAYER_SIZE_LABEL, base_tag
from toolchain.container.docker import ImageInfo
from toolchain.container.inputs import base_inputs
from toolchain.errors import ContainerError, ExitCode


class _Loading(FakeBackend):
    """Keeps the bytes of every archive loaded (the caller deletes the file)."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[bytes] = []

    def load(self, archive: Path) -> None:
        super().load(archive)
        self.loaded.append(archive.read_bytes())


def _config(archive: bytes, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "archive.tar"
    path.write_bytes(archive)
    with tarfile.open(path) as tar:
        (entry,) = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        doc: dict[str, object] = json.load(tar.extractfile(entry["Config"]))  # type: ignore[arg-type]
    return doc


def test_the_base_is_packed_deterministically_with_its_labels(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "usr" / "bin").mkdir(parents=True)
    (rootfs / "usr" / "bin" / "python3").write_text("elf")
    engine = _Loading()
    first = base.load_base_rootfs(
        rootfs, tag="b:1", arch="arm64", inputs="sha256:0", backend=engine
    )
    again = base.load_base_rootfs(
        rootfs, tag="b:1", arch="arm64", inputs="sha256:0", backend=engine
    )
    assert first == again and engine.loaded[0] == engine.loaded[1]
    assert ("tag", (first.id, "b:1")) in engine.calls
    config = _config(engine.loaded[0], tmp_path)
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")
    labels = config["config"]["Labels"]  # type: ignore[index]
    assert labels[BASE_INPUTS_LABEL] == "sha256:0" and int(labels[BASE_LAYER_SIZE_LABEL]) > 0


def _info(arch: str, inputs: str) -> ImageInfo:
    return ImageInfo(
        id="sha256:" + "e" * 64, diff_ids=("sha256:" + "1" * 64,), env=(),
        labels={BASE_INPUTS_LABEL: inputs}, architecture=arch, os="linux",
    )  # fmt: skip


def test_ensure_base_keeps_a_current_base_and_remakes_a_stale_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    monkeypatch.setattr(base, "make_base", lambda arch, **kw: made.append(arch))
    current = _info("amd64", base_inputs("amd64"))
    fake = FakeBackend(images={base_tag("amd64"): current})
    assert base.ensure_base("amd64", backend=fake, stream=lambda _: None) == current
    assert made == []
    fake.images[base_tag("amd64")] = _info("amd64", "sha256:" + "0" * 64)
    lines: list[str] = []
    base.ensure_base("amd64", backend=fake, stream=lines.append)
    assert made == ["amd64"] and "was made from other inputs" in lines[0]


def test_make_base_failure_carries_the_scripts_words(tmp_path: Path) -> None:
    script = tmp_path / "docker" / "make-base.sh"
    script.parent.mkdir()
    script.write_text(
        "echo \"make-base.sh: debootstrap not found: install Debian's package "
        '(apt-get install -y debootstrap)" >&2; exit 4\n'
    )
    with pytest.raises(ContainerError) as exc:
        base.make_base("amd64", project_dir=tmp_path, stream=lambda _: None)
    text = exc.value.diagnostics()
    assert "apt-get install -y debootstrap" in text and "exit 4" in text
    assert exc.value.exit_code == ExitCode.ENVIRONMENT
