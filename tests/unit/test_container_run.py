"""toolchain.container.run against FakeBackend: mounts, argv rewriting, confinement, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes import FakeBackend
from toolchain.container.docker import ImageInfo, Mount
from toolchain.container.run import run_in_container
from toolchain.errors import ContainerError, ExitCode

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


@pytest.mark.parametrize(
    ("case", "mounted"),
    [
        ("with an output", True),  # resume outlives the container
        ("without an output", False),  # nothing to resume
        ("unsafe folder", False),  # open to others: never used
    ],
)
def test_the_users_run_key_folder_is_mounted_with_an_output_when_it_is_safe(
    backend: FakeBackend, dirs: tuple[Path, Path, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, case: str, mounted: bool,
) -> None:  # fmt: skip
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    keys = tmp_path / "state" / "benchmark-regen"
    original, out, diff = dirs
    if case == "unsafe folder":
        keys.mkdir(parents=True)
        keys.chmod(0o755)
    where = {"diff": diff} if case == "without an output" else {"out": out}
    assert run_in_container(["generate"], original=original, backend=backend, **where) == 0
    (run,) = backend.runs
    state = [m for m in run.mounts if m.target.startswith("/state")]
    if mounted:
        assert state == [Mount(source=keys, target="/state/benchmark-regen", read_only=False)]
        assert (keys.stat().st_mode & 0o777) == 0o700
        assert run.env["XDG_STATE_HOME"] == "/state"
    else:
        assert state == [] and "XDG_STATE_HOME" not in run.env
