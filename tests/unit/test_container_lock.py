"""toolchain.container.lock: the canonical lock text and its strict parser; the comparison of
a build with the lock, layer by layer; stale bases remade; ``image build --check``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fakes import FakeBackend
from toolchain.cli.image import image as image_group
from toolchain.container import lock as image_lock
from toolchain.container.config import (
    ARCHES,
    BASE_INPUTS_LABEL,
    LAYERS,
    ImageBuild,
    ImageRef,
    base_tag,
)
from toolchain.container.docker import ImageInfo
from toolchain.container.inputs import base_inputs
from toolchain.container.layers import Blob
from toolchain.container.lock import ImageLock, PlatformRecord, parse, render
from toolchain.errors import ExitCode, InputError

ROOT = Path(__file__).resolve().parents[2]


def _d(c: str) -> str:
    return "sha256:" + c * 64


def _record(c: str) -> PlatformRecord:
    return PlatformRecord(base=_d(c), dependencies=_d("2"), project=_d("3"), image_id=_d("4"),
                          manifest=_d("5"))  # fmt: skip


def test_render_is_canonical_sorted_and_round_trips() -> None:
    lock = ImageLock(
        index=_d("9"),
        inputs={"project": _d("a"), "base-amd64": _d("b")},
        platforms={"arm64": _record("1"), "amd64": _record("0")},
    )
    text = render(lock)
    again = render(ImageLock(index=lock.index, inputs=dict(reversed(lock.inputs.items())),
                             platforms=dict(reversed(lock.platforms.items()))))  # fmt: skip
    assert text == again and text.endswith("}\n")
    doc = json.loads(text)
    assert list(doc) == sorted(doc) and list(doc["platforms"]) == ["amd64", "arm64"]
    assert parse(text) == lock


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(schema=2),
        lambda d: d["platforms"]["amd64"].update(project="sha256:abc"),
        lambda d: d["platforms"]["amd64"].pop("manifest"),
        lambda d: d.update(index="md5:00"),
    ],
)
def test_a_damaged_lock_is_bad_input_with_a_hint(mutate: object) -> None:
    doc = json.loads(render(ImageLock(index=_d("9"), platforms={"amd64": _record("0")})))
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(InputError) as exc:
        parse(json.dumps(doc), source="image.lock")
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    assert "benchmark-regen image lock" in exc.value.diagnostics()


def test_not_json_is_bad_input() -> None:
    with pytest.raises(InputError, match="not JSON"):
        parse("{", source="image.lock")


def test_the_committed_lock_parses_and_holds_both_architectures() -> None:
    lock = parse((ROOT / "lockfiles" / "image.lock").read_text())
    assert set(lock.platforms) == {"amd64", "arm64"}
    assert lock.index is not None
    assert render(lock) == (ROOT / "lockfiles" / "image.lock").read_text()


# --- a build against the lock ----------------------------------------------------------


def _build(arch: str, **layers: str) -> ImageBuild:
    blobs = {name: Blob(digest=layers.get(name, _d("1")), size=10) for name in LAYERS}
    config = Blob(digest=layers.get("config", _d("c")), size=5)
    manifest = Blob(digest=_d("m"), size=7)
    return ImageBuild(
        arch=arch, ref=ImageRef(id=config.digest, tag=f"t:{arch}"), layers=blobs,
        config=config, manifest=manifest,
    )  # fmt: skip


def _lock_of(*builds: ImageBuild, inputs: dict[str, str]) -> ImageLock:
    return ImageLock(
        index=None, inputs=inputs, platforms={b.arch: PlatformRecord.of(b) for b in builds}
    )


INPUTS = {"base-amd64": _d("a"), "dependencies": _d("d"), "project": _d("p")}


def test_the_record_of_a_build_is_its_layers_config_and_manifest() -> None:
    build = _build("amd64", project=_d("9"))
    assert PlatformRecord.of(build) == PlatformRecord(
        base=_d("1"), dependencies=_d("1"), project=_d("9"), image_id=_d("c"), manifest=_d("m")
    )


def test_an_identical_build_passes_the_check() -> None:
    build = _build("amd64")
    assert image_lock.compare_with_lock([build], _lock_of(build, inputs=INPUTS), INPUTS) == ()


@pytest.mark.parametrize("layer", ["base", "dependencies", "project"])
def test_check_names_the_layer_and_whether_its_inputs_changed(layer: str) -> None:
    lock = _lock_of(_build("amd64"), inputs=INPUTS)
    built = _build("amd64", **{layer: _d("9")})
    key = "base-amd64" if layer == "base" else layer
    changed = {**INPUTS, key: _d("f")}
    (problem,) = image_lock.compare_with_lock([built], lock, changed)
    assert f"the {layer} layer differs" in problem and "changed since the lock" in problem
    assert "benchmark-regen image lock" in problem
    (problem,) = image_lock.compare_with_lock([built], lock, INPUTS)
    assert f"the {layer} layer differs" in problem and "reproducibility bug" in problem


def test_project_layer_message_names_toolchain() -> None:
    lock = _lock_of(_build("amd64"), inputs=INPUTS)
    (problem,) = image_lock.compare_with_lock(
        [_build("amd64", project=_d("9"))], lock, {**INPUTS, "project": _d("e")}
    )
    assert "toolchain/" in problem and "linux/amd64" in problem


def test_same_layers_other_config_is_named_as_config() -> None:
    lock = _lock_of(_build("arm64"), inputs=INPUTS)
    (problem,) = image_lock.compare_with_lock([_build("arm64", config=_d("8"))], lock, INPUTS)
    assert "every layer matches but the image config differs" in problem


def test_an_architecture_missing_from_the_lock_is_a_problem() -> None:
    lock = _lock_of(_build("amd64"), inputs=INPUTS)
    (problem,) = image_lock.compare_with_lock([_build("arm64")], lock, INPUTS)
    assert "linux/arm64: not in the lock" in problem


def _base(arch: str, diff_id: str, *, inputs: str | None = None) -> ImageInfo:
    labels = {} if inputs is None else {BASE_INPUTS_LABEL: inputs}
    return ImageInfo(
        id=_d("e"), diff_ids=(diff_id,), env=(), labels=labels, architecture=arch, os="linux",
    )  # fmt: skip


def test_stale_bases_are_remade(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, bool]] = []
    monkeypatch.setattr(
        image_lock, "make_base", lambda arch, force=False, **kw: made.append((arch, force))
    )
    locked = _build("amd64")
    lock = _lock_of(locked, _build("arm64", base=_d("7")), inputs=INPUTS)
    current = {arch: base_inputs(arch) for arch in ARCHES}
    fake = FakeBackend(
        images={
            base_tag("amd64"): _base("amd64", locked.layers["base"].digest,
                                     inputs=current["amd64"]),
            base_tag("arm64"): _base("arm64", _d("6"), inputs=current["arm64"]),
        }
    )  # fmt: skip

    def remade(**kw: object) -> list[tuple[str, bool]]:
        made.clear()
        image_lock._remake_bases(ARCHES, backend=fake, mirror=None,
                                 stream=lambda _: None, **kw)  # type: ignore[arg-type]  # fmt: skip
        return list(made)

    assert remade(lock=lock, fresh=False) == [("arm64", True)]  # not the locked base
    assert remade(lock=None, fresh=False) == []  # current inputs, no lock: kept
    assert remade(lock=None, fresh=True) == [("amd64", True), ("arm64", True)]
    fake.images[base_tag("amd64")] = _base("amd64", _d("1"), inputs=_d("0"))
    assert remade(lock=None, fresh=False) == [("amd64", True)]  # made from other inputs
    del fake.images[base_tag("arm64")]
    assert remade(lock=None, fresh=False) == [("amd64", True), ("arm64", True)]  # missing


def test_check_cli_exits_1_and_names_the_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    report = image_lock.CheckReport(
        builds=(_build("amd64"),), index=None,
        problems=("linux/amd64: the project layer differs (…): toolchain/ changed",),
    )  # fmt: skip
    seen: dict[str, object] = {}

    def fake_check(**kw: object) -> image_lock.CheckReport:
        seen.update(kw)
        return report

    monkeypatch.setattr("toolchain.cli.image.check_images", fake_check)
    result = CliRunner().invoke(image_group, ["build", "--check", "--arch", "amd64"])
    assert result.exit_code == ExitCode.CHECK_FAILED
    assert "the project layer differs" in result.output
    assert seen["arches"] == ("amd64",)
    ok = image_lock.CheckReport(builds=report.builds, index=None, problems=())
    monkeypatch.setattr("toolchain.cli.image.check_images", lambda **kw: ok)
    result = CliRunner().invoke(image_group, ["build", "--check", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True


def test_check_refuses_the_dockerfile_route() -> None:
    result = CliRunner().invoke(image_group, ["build", "--check", "--dockerfile"])
    assert result.exit_code == ExitCode.USAGE
