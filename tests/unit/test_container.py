"""toolchain.container against FakeBackend: mounts, argv rewriting, confinement, errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fakes import FakeBackend
from toolchain import container
from toolchain._internal.docker_backend import ImageInfo
from toolchain._internal.image_layout import (
    LayerEntry,
    entries_from_tree,
    image_config,
    write_archive,
    write_layer,
)
from toolchain.cli.image import image as image_group
from toolchain.container import ImageRef, run_in_container
from toolchain.errors import ContainerError, ExitCode

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "benchmark-regen:latest"


def _info(ref_id: str = "sha256:" + "a" * 64) -> ImageInfo:
    return ImageInfo(
        id=ref_id, diff_ids=("sha256:" + "1" * 64,), env=("PATH=/usr/bin", "LANG=C"),
        labels={}, architecture="amd64", os="linux",
    )  # fmt: skip


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(images={IMAGE: _info()})


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    original = tmp_path / "orig"
    (original / "sub").mkdir(parents=True)
    diff = tmp_path / "patch.bdiff"
    diff.write_bytes(b"x")
    return original, tmp_path / "out", diff


def test_mounts_are_confined_and_read_only_where_they_must_be(
    backend: FakeBackend, dirs: tuple[Path, Path, Path]
) -> None:
    original, out, diff = dirs
    code = run_in_container(
        ["diff", "apply", str(diff)], original=original, out=out, diff=diff, backend=backend
    )
    assert code == 0
    (run,) = backend.runs
    mounts = {m.target: m for m in run.mounts}
    assert mounts["/original"].read_only and mounts["/original"].source == original.resolve()
    assert mounts["/diff/patch.bdiff"].read_only  # a file is mounted inside /diff
    assert not mounts["/out"].read_only and out.is_dir()  # created for the caller
    assert run.network == "none"
    assert run.cap_drop == ("ALL",)
    assert run.user == f"{os.getuid()}:{os.getgid()}"
    assert run.image == IMAGE


def test_host_paths_in_argv_become_container_paths(
    backend: FakeBackend, dirs: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    original, out, _ = dirs
    monkeypatch.chdir(original.parent)
    argv = [
        "generate", "--recipe", "adversarial", "--original", str(original),
        f"--out={out}", "--param", "seed=3", str(original / "sub"), "orig/sub", "/etc/hosts",
    ]  # fmt: skip
    run_in_container(argv, original=original, out=out, backend=backend)
    assert backend.runs[0].argv == (
        "generate", "--recipe", "adversarial", "--original", "/original",
        "--out=/out", "--param", "seed=3", "/original/sub", "/original/sub", "/etc/hosts",
    )  # fmt: skip


@pytest.mark.parametrize("code", [0, 1, 3, 130])
def test_exit_code_of_the_container_is_returned(
    backend: FakeBackend, dirs: tuple[Path, Path, Path], code: int
) -> None:
    backend.exit_code = code
    original, out, _ = dirs
    assert run_in_container(["verify"], original=original, out=out, backend=backend) == code


def test_output_is_streamed_to_the_callback(
    backend: FakeBackend, dirs: tuple[Path, Path, Path]
) -> None:
    backend.run_output = ['{"root": "sha256:00"}']
    lines: list[str] = []
    run_in_container(["env", "--json"], out=dirs[1], backend=backend, stream=lines.append)
    assert lines == ['{"root": "sha256:00"}']


def test_missing_image_says_how_to_build_it(dirs: tuple[Path, Path, Path]) -> None:
    with pytest.raises(ContainerError) as exc:
        run_in_container(["env"], out=dirs[1], backend=FakeBackend())
    assert "benchmark-regen image build" in exc.value.diagnostics()
    assert exc.value.exit_code == ExitCode.ENVIRONMENT


def test_missing_original_is_refused_before_the_engine_is_asked(
    backend: FakeBackend, tmp_path: Path
) -> None:
    with pytest.raises(ContainerError, match="does not exist"):
        run_in_container(["generate"], original=tmp_path / "nope", backend=backend)
    assert backend.runs == []


def test_engine_errors_surface_as_container_errors(dirs: tuple[Path, Path, Path]) -> None:
    fake = FakeBackend(fail=ContainerError("no Docker engine answers at fake://", hint="start"))
    with pytest.raises(ContainerError, match="no Docker engine answers"):
        run_in_container(["env"], out=dirs[1], backend=fake)


def test_sdk_backend_without_engine_names_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    from toolchain._internal.docker_backend import DockerSDKBackend

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/benchmark-regen.sock")
    with pytest.raises(ContainerError) as exc:
        DockerSDKBackend().inspect(IMAGE)
    text = exc.value.diagnostics()
    assert "unix:///nonexistent/benchmark-regen.sock" in text and "dockerd.sh" in text


def test_image_ref_is_frozen_with_a_canonical_form() -> None:
    ref = ImageRef(id="sha256:" + "c" * 64, tag=IMAGE)
    assert str(ref) == f"{IMAGE}@sha256:{'c' * 64}"
    with pytest.raises(AttributeError):
        ref.id = "x"  # type: ignore[misc]


def test_build_image_refuses_a_missing_base_with_a_hint() -> None:
    with pytest.raises(ContainerError) as exc:
        container.build_image(backend=FakeBackend())
    assert "make-base.sh" in exc.value.diagnostics()


def test_image_build_cli_prints_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_build(**kw: object) -> ImageRef:
        seen.update(kw)
        return ImageRef(id="sha256:" + "d" * 64, tag=str(kw["tag"]))

    monkeypatch.setattr("toolchain.cli.image.build_image", fake_build)
    result = CliRunner().invoke(image_group, ["build", "--tag", "x:1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "id": "sha256:" + "d" * 64, "tag": "x:1", "ref": f"x:1@sha256:{'d' * 64}",
    }  # fmt: skip
    assert seen["method"] == "assemble"


# --- the deterministic layer and archive ---------------------------------------


def test_layer_is_byte_deterministic_and_normalised(tmp_path: Path) -> None:
    tree = tmp_path / "venv"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "tool").write_text("#!/opt/venv/bin/python\n")
    (tree / "bin" / "tool").chmod(0o755)
    (tree / "bin" / "python").symlink_to("/usr/bin/python3")
    entries = [LayerEntry(path="etc/passwd", kind="file", mode=0o644, data=b"root\n")]
    entries += entries_from_tree(tree, "opt/venv")
    first = write_layer(entries, tmp_path / "a.tar", mtime=1767225600)
    os.utime(tree / "bin" / "tool", (1, 1))  # host times must not matter
    second = write_layer(list(reversed(entries)), tmp_path / "b.tar", mtime=1767225600)
    assert (
        first == second == "sha256:" + hashlib.sha256((tmp_path / "a.tar").read_bytes()).hexdigest()
    )
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (1767225600, 0, 0, "", "")
    }
    python = next(m for m in members if m.name == "opt/venv/bin/python")
    assert python.issym() and python.linkname == "/usr/bin/python3"


def test_archive_id_is_the_config_digest(tmp_path: Path) -> None:
    layer = tmp_path / "l.tar"
    diff_id = write_layer([LayerEntry(path="x", kind="dir", mode=0o755)], layer, mtime=0)
    config = image_config(
        diff_ids=["sha256:" + "1" * 64, diff_id], runtime={"User": "10001:10001"},
        history=["base", "app"], epoch=0,
    )  # fmt: skip
    image_id = write_archive(
        tmp_path / "i.tar", config=config, tag="t:1",
        layers=[("sha256:" + "1" * 64, None), (diff_id, layer)],
    )  # fmt: skip
    assert image_id == "sha256:" + hashlib.sha256(config).hexdigest()
    with tarfile.open(tmp_path / "i.tar") as tar:
        manifest = json.load(io.BytesIO(tar.extractfile("manifest.json").read()))  # type: ignore[union-attr]
        names = tar.getnames()
    assert manifest[0]["RepoTags"] == ["t:1"]
    assert f"{diff_id[7:]}/layer.tar" in names and f"{'1' * 64}/layer.tar" not in names


# --- the Dockerfile and the assembled image agree ------------------------------


def _dockerfile_runtime_stage() -> str:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    stage = text.split("# --- runtime stage")[1]
    return re.sub(r"\\\n\s*", " ", stage)  # join continuation lines


def test_dockerfile_declares_the_same_runtime_config() -> None:
    stage = _dockerfile_runtime_stage()
    env_line = next(ln for ln in stage.splitlines() if ln.startswith("ENV "))
    declared = dict(item.split("=", 1) for item in env_line[4:].split())
    assert declared == dict(container.IMAGE_ENV)
    assert f"USER {container.IMAGE_USER}" in stage
    assert f"WORKDIR {container.IMAGE_WORKDIR}" in stage
    assert f"ENTRYPOINT {json.dumps(list(container.IMAGE_ENTRYPOINT))}" in stage
    assert f"CMD {json.dumps(list(container.IMAGE_CMD))}" in stage
    assert container.PASSWD_LINE in stage and container.GROUP_LINE in stage
    assert container.MOUNTS_LABEL in stage


def test_env_pins_match_the_determinism_guard() -> None:
    from toolchain.determinism import PINNED

    for name, setting in PINNED.items():
        if name in container.IMAGE_ENV:
            assert container.IMAGE_ENV[name] == setting.value, name
