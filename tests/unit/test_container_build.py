"""toolchain.container.build against FakeBackend: the base is made when missing and refused when
of another architecture; ``image build --base-image`` prints the ID."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.fakes import FakeBackend
from toolchain.cli.image import image as image_group
from toolchain.container import base, build
from toolchain.container.config import BASE_INPUTS_LABEL, ImageRef, base_tag
from toolchain.container.docker import ImageInfo
from toolchain.container.inputs import base_inputs
from toolchain.errors import ContainerError, InputError


def _base(arch: str, diff_id: str, *, inputs: str | None = None) -> ImageInfo:
    labels = {} if inputs is None else {BASE_INPUTS_LABEL: inputs}
    return ImageInfo(
        id="sha256:" + "e" * 64, diff_ids=(diff_id,), env=(), labels=labels, architecture=arch,
        os="linux",
    )  # fmt: skip


def test_build_image_makes_the_missing_base_then_fails_if_it_is_still_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    monkeypatch.setattr(base, "make_base", lambda arch, **kw: made.append(arch))
    with pytest.raises(ContainerError) as exc:
        build.build_image(backend=FakeBackend(), arch="arm64", stream=lambda _: None)
    assert made == ["arm64"]
    assert "benchmark-regen-base:bookworm-arm64" in exc.value.diagnostics()


def test_a_base_of_the_wrong_architecture_is_refused() -> None:
    wrong = _base("amd64", "sha256:" + "1" * 64, inputs=base_inputs("arm64"))
    fake = FakeBackend(images={base_tag("arm64"): wrong})
    with pytest.raises(ContainerError, match="is a amd64 image, not arm64"):
        build.build_image(backend=fake, arch="arm64", stream=lambda _: None)


def test_an_unknown_architecture_is_bad_input() -> None:
    with pytest.raises(InputError, match="unknown architecture 'riscv64'"):
        build.build_images(["riscv64"], backend=FakeBackend(), stream=lambda _: None)


def test_image_build_cli_with_a_base_image_prints_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_build(**kw: object) -> ImageRef:
        seen.update(kw)
        return ImageRef(id="sha256:" + "d" * 64, tag=str(kw["tag"]))

    monkeypatch.setattr("toolchain.cli.image.build_image", fake_build)
    result = CliRunner().invoke(
        image_group, ["build", "--tag", "x:1", "--base-image", "b:1", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "id": "sha256:" + "d" * 64, "tag": "x:1", "ref": f"x:1@sha256:{'d' * 64}",
    }  # fmt: skip
    assert seen["method"] == "assemble" and seen["base_image"] == "b:1"
