"""toolchain.container.config: tags, the runtime config (which docker/Dockerfile repeats),
the run-key mount, and the value objects of a built image."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolchain.container import config
from toolchain.container.config import ImageBuild, ImageRef
from toolchain.container.layers import Blob
from toolchain.run import runkey

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "benchmark-regen:latest"


def test_image_ref_is_frozen_with_a_canonical_form() -> None:
    ref = ImageRef(id="sha256:" + "c" * 64, tag=IMAGE)
    assert str(ref) == f"{IMAGE}@sha256:{'c' * 64}"
    with pytest.raises(AttributeError):
        ref.id = "x"  # type: ignore[misc]


def test_the_key_mount_is_where_a_run_in_the_container_looks_for_its_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mount = config.KEY_MOUNT
    assert (mount.target, mount.env) == ("/state/benchmark-regen", {"XDG_STATE_HOME": "/state"})
    for name, value in mount.env.items():
        monkeypatch.setenv(name, value)
    assert runkey.key_folder() == Path(mount.target)
    with pytest.raises(AttributeError):
        mount.state_home = "/elsewhere"  # type: ignore[misc]


def test_arch_tags_and_host_arch() -> None:
    assert config.arch_tag("benchmark-regen:latest", "arm64") == "benchmark-regen:arm64"
    assert config.arch_tag("reg:5000/x", "amd64") == "reg:5000/x:amd64"
    assert config.base_tag(config.host_arch()) == config.BASE_IMAGE_DEBIAN


def test_arch_tag_keeps_a_named_tag() -> None:
    assert config.arch_tag("benchmark-regen:test", "arm64") == "benchmark-regen:test-arm64"
    assert config.arch_tag("benchmark-regen", "amd64") == "benchmark-regen:amd64"


def test_the_platform_of_a_build_names_the_arm64_variant() -> None:
    blob = Blob(digest="sha256:" + "1" * 64, size=1)
    build = ImageBuild(
        arch="arm64", ref=ImageRef(id=blob.digest, tag="t:arm64"),
        layers=dict.fromkeys(config.LAYERS, blob), config=blob, manifest=blob,
    )  # fmt: skip
    assert build.platform == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert config.oci_platform("amd64") == {"os": "linux", "architecture": "amd64"}


def test_about_prints_the_help_and_the_fingerprint() -> None:
    from toolchain.cli.main import cli

    result = CliRunner().invoke(cli, ["image", "about"])
    assert result.exit_code == 0, result.output
    assert "Regenerate image benchmarks bit for bit" in result.output
    assert "Runtime fingerprint" in result.output
    assert "numpy " in result.output and "platform.machine" in result.output


def test_the_image_runs_about_by_default() -> None:
    assert config.IMAGE_CMD == ("image", "about")


# --- the Dockerfile and the assembled image agree ------------------------------


def _dockerfile_runtime_stage() -> str:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    stage = text.split("# --- runtime stage")[1]
    return re.sub(r"\\\n\s*", " ", stage)  # join continuation lines


def test_dockerfile_declares_the_same_runtime_config() -> None:
    stage = _dockerfile_runtime_stage()
    env_line = next(ln for ln in stage.splitlines() if ln.startswith("ENV "))
    declared = dict(item.split("=", 1) for item in env_line[4:].split())
    assert declared == dict(config.IMAGE_ENV)
    assert f"USER {config.IMAGE_USER}" in stage
    assert f"WORKDIR {config.IMAGE_WORKDIR}" in stage
    assert f"ENTRYPOINT {json.dumps(list(config.IMAGE_ENTRYPOINT))}" in stage
    assert f"CMD {json.dumps(list(config.IMAGE_CMD))}" in stage
    assert config.PASSWD_LINE in stage and config.GROUP_LINE in stage
    assert config.MOUNTS_LABEL in stage


def test_env_pins_match_the_determinism_guard() -> None:
    from toolchain.run.determinism import PINNED

    for name, setting in PINNED.items():
        if name in config.IMAGE_ENV:
            assert config.IMAGE_ENV[name] == setting.value, name
