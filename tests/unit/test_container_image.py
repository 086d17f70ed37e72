"""toolchain.container.image against FakeBackend: mounts, argv rewriting, confinement, errors."""

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
from toolchain.cli.image import image as image_group
from toolchain.container import image as container
from toolchain.container import lock as image_lock
from toolchain.container.docker import ImageInfo
from toolchain.container.image import ImageRef, run_in_container
from toolchain.container.layers import (
    Blob,
    LayerEntry,
    entries_from_tree,
    image_config,
    write_archive,
    write_layer,
)
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
    from toolchain.container.docker import DockerSDKBackend

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


def test_build_image_makes_the_missing_base_then_fails_if_it_is_still_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    monkeypatch.setattr(container, "make_base", lambda arch, **kw: made.append(arch))
    with pytest.raises(ContainerError) as exc:
        container.build_image(backend=FakeBackend(), arch="arm64", stream=lambda _: None)
    assert made == ["arm64"]
    assert "benchmark-regen-base:bookworm-arm64" in exc.value.diagnostics()


def test_make_base_failure_carries_the_scripts_words(tmp_path: Path) -> None:
    script = tmp_path / "docker" / "make-base.sh"
    script.parent.mkdir()
    script.write_text(
        "echo \"make-base.sh: debootstrap not found: install Debian's package "
        '(apt-get install -y debootstrap)" >&2; exit 4\n'
    )
    with pytest.raises(ContainerError) as exc:
        container.make_base("amd64", project_dir=tmp_path, stream=lambda _: None)
    text = exc.value.diagnostics()
    assert "apt-get install -y debootstrap" in text and "exit 4" in text
    assert exc.value.exit_code == ExitCode.ENVIRONMENT


def _base(arch: str, diff_id: str, *, inputs: str | None = None) -> ImageInfo:
    labels = {} if inputs is None else {container.BASE_INPUTS_LABEL: inputs}
    return ImageInfo(
        id=_digest("e"), diff_ids=(diff_id,), env=(), labels=labels, architecture=arch,
        os="linux",
    )  # fmt: skip


def test_a_base_of_the_wrong_architecture_is_refused() -> None:
    wrong = _base("amd64", _digest("1"), inputs=container.base_inputs("arm64"))
    fake = FakeBackend(images={container.base_tag("arm64"): wrong})
    with pytest.raises(ContainerError, match="is a amd64 image, not arm64"):
        container.build_image(backend=fake, arch="arm64", stream=lambda _: None)


def test_arch_tags_and_host_arch() -> None:
    assert container.arch_tag("benchmark-regen:latest", "arm64") == "benchmark-regen:arm64"
    assert container.arch_tag("reg:5000/x", "amd64") == "reg:5000/x:amd64"
    assert container.base_tag(container.host_arch()) == container.BASE_IMAGE_DEBIAN


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


def _digest(c: str) -> str:
    return "sha256:" + c * 64


def _build(arch: str, **layers: str) -> container.ImageBuild:
    blobs = {
        name: Blob(digest=layers.get(name, _digest("1")), size=10) for name in container.LAYERS
    }
    config = Blob(digest=layers.get("config", _digest("c")), size=5)
    manifest = Blob(digest=_digest("m"), size=7)
    return container.ImageBuild(
        arch=arch, ref=ImageRef(id=config.digest, tag=f"t:{arch}"), layers=blobs,
        config=config, manifest=manifest,
    )  # fmt: skip


def _lock_of(*builds: container.ImageBuild, inputs: dict[str, str]) -> image_lock.ImageLock:
    return image_lock.ImageLock(
        index=None, inputs=inputs, platforms={b.arch: b.record() for b in builds}
    )


INPUTS = {"base-amd64": _digest("a"), "dependencies": _digest("d"), "project": _digest("p")}


def test_an_identical_build_passes_the_check() -> None:
    build = _build("amd64")
    assert container.compare_with_lock([build], _lock_of(build, inputs=INPUTS), INPUTS) == ()


@pytest.mark.parametrize("layer", ["base", "dependencies", "project"])
def test_check_names_the_layer_and_whether_its_inputs_changed(layer: str) -> None:
    lock = _lock_of(_build("amd64"), inputs=INPUTS)
    built = _build("amd64", **{layer: _digest("9")})
    key = "base-amd64" if layer == "base" else layer
    changed = {**INPUTS, key: _digest("f")}
    (problem,) = container.compare_with_lock([built], lock, changed)
    assert f"the {layer} layer differs" in problem and "changed since the lock" in problem
    assert "benchmark-regen image lock" in problem
    (problem,) = container.compare_with_lock([built], lock, INPUTS)
    assert f"the {layer} layer differs" in problem and "reproducibility bug" in problem


def test_project_layer_message_names_toolchain() -> None:
    lock = _lock_of(_build("amd64"), inputs=INPUTS)
    (problem,) = container.compare_with_lock(
        [_build("amd64", project=_digest("9"))], lock, {**INPUTS, "project": _digest("e")}
    )
    assert "toolchain/" in problem and "linux/amd64" in problem


def test_same_layers_other_config_is_named_as_config() -> None:
    lock = _lock_of(_build("arm64"), inputs=INPUTS)
    (problem,) = container.compare_with_lock([_build("arm64", config=_digest("8"))], lock, INPUTS)
    assert "every layer matches but the image config differs" in problem


def test_an_architecture_missing_from_the_lock_is_a_problem() -> None:
    lock = _lock_of(_build("amd64"), inputs=INPUTS)
    (problem,) = container.compare_with_lock([_build("arm64")], lock, INPUTS)
    assert "linux/arm64: not in the lock" in problem


def test_lock_inputs_follow_the_files(tmp_path: Path) -> None:
    for rel in ("docker/make-base.sh", "docker/install-venv.sh", "lockfiles/requirements.txt",
                "lockfiles/build.txt", "lockfiles/debian-base-amd64.txt", "pyproject.toml",
                "toolchain/__init__.py", "README.md"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    first = container.lock_inputs(tmp_path)
    (tmp_path / "README.md").write_text("docs only")  # not an input of any layer
    (tmp_path / "toolchain" / "__pycache__").mkdir()
    (tmp_path / "toolchain" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert container.lock_inputs(tmp_path) == first
    (tmp_path / "toolchain" / "__init__.py").write_text("changed")
    second = container.lock_inputs(tmp_path)
    assert second["project"] != first["project"]
    assert {k: v for k, v in second.items() if k != "project"} == {
        k: v for k, v in first.items() if k != "project"
    }


def test_check_cli_exits_1_and_names_the_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    report = container.CheckReport(
        builds=(_build("amd64"),), index=None,
        problems=("linux/amd64: the project layer differs (…): toolchain/ changed",),
    )  # fmt: skip
    seen: dict[str, object] = {}

    def fake_check(**kw: object) -> container.CheckReport:
        seen.update(kw)
        return report

    monkeypatch.setattr("toolchain.cli.image.check_images", fake_check)
    result = CliRunner().invoke(image_group, ["build", "--check", "--arch", "amd64"])
    assert result.exit_code == ExitCode.CHECK_FAILED
    assert "the project layer differs" in result.output
    assert seen["arches"] == ("amd64",)
    ok = container.CheckReport(builds=report.builds, index=None, problems=())
    monkeypatch.setattr("toolchain.cli.image.check_images", lambda **kw: ok)
    result = CliRunner().invoke(image_group, ["build", "--check", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True


def test_check_refuses_the_dockerfile_route() -> None:
    result = CliRunner().invoke(image_group, ["build", "--check", "--dockerfile"])
    assert result.exit_code == ExitCode.USAGE


def test_about_prints_the_help_and_the_fingerprint() -> None:
    from toolchain.cli.main import cli

    result = CliRunner().invoke(cli, ["image", "about"])
    assert result.exit_code == 0, result.output
    assert "Regenerate image benchmarks bit for bit" in result.output
    assert "Runtime fingerprint" in result.output
    assert "numpy " in result.output and "platform.machine" in result.output


def test_the_image_runs_about_by_default() -> None:
    assert container.IMAGE_CMD == ("image", "about")


def test_requirement_blocks_swap_the_sdist_for_the_built_wheel() -> None:
    text = (
        "jsonpath-rw==1.4.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via mlcroissant\n"
        "numpy==2.4.6 \\\n    --hash=sha256:" + "1" * 64 + "\n"
    )
    blocks = container._requirement_blocks(text)
    assert [name for name, _ in blocks] == ["jsonpath-rw", "numpy"]
    assert "".join(b for _, b in blocks) == text


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
    from toolchain.run.determinism import PINNED

    for name, setting in PINNED.items():
        if name in container.IMAGE_ENV:
            assert container.IMAGE_ENV[name] == setting.value, name


def test_stale_bases_are_remade(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, bool]] = []
    monkeypatch.setattr(
        container, "make_base", lambda arch, force=False, **kw: made.append((arch, force))
    )
    locked = _build("amd64")
    lock = _lock_of(locked, _build("arm64", base=_digest("7")), inputs=INPUTS)
    current = {arch: container.base_inputs(arch) for arch in container.ARCHES}
    fake = FakeBackend(
        images={
            container.base_tag("amd64"): _base("amd64", locked.layers["base"].digest,
                                              inputs=current["amd64"]),
            container.base_tag("arm64"): _base("arm64", _digest("6"), inputs=current["arm64"]),
        }
    )  # fmt: skip

    def remade(**kw: object) -> list[tuple[str, bool]]:
        made.clear()
        container._remake_bases(container.ARCHES, backend=fake, mirror=None,
                                stream=lambda _: None, **kw)  # type: ignore[arg-type]  # fmt: skip
        return list(made)

    assert remade(lock=lock, fresh=False) == [("arm64", True)]  # not the locked base
    assert remade(lock=None, fresh=False) == []  # current inputs, no lock: kept
    assert remade(lock=None, fresh=True) == [("amd64", True), ("arm64", True)]
    fake.images[container.base_tag("amd64")] = _base("amd64", _digest("1"), inputs=_digest("0"))
    assert remade(lock=None, fresh=False) == [("amd64", True)]  # made from other inputs
    del fake.images[container.base_tag("arm64")]
    assert remade(lock=None, fresh=False) == [("amd64", True), ("arm64", True)]  # missing


def test_arch_tag_keeps_a_named_tag() -> None:
    assert container.arch_tag("benchmark-regen:test", "arm64") == "benchmark-regen:test-arm64"
    assert container.arch_tag("benchmark-regen", "amd64") == "benchmark-regen:amd64"


def test_the_checkout_is_found_from_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`pip install --no-deps .` puts toolchain/ in site-packages: the files stay in the clone."""
    monkeypatch.setattr(
        container, "__file__", str(tmp_path / "site-packages" / "toolchain" / "c.py")
    )
    monkeypatch.chdir(ROOT / "toolchain")
    assert container._repo_root() == ROOT
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ContainerError, match="no benchmark-regen checkout"):
        container._repo_root()
