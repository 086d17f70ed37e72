"""The wheelhouse the offline image build installs from: the locked wheels (hash-checked)
and the sdist-only packages and the project, built with the pinned build backend."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain.container.config import ARCHES, SOURCE_DATE_EPOCH, host_arch
from toolchain.container.inputs import project_sources, repo_root
from toolchain.container.layers import sha256_file
from toolchain.errors import ContainerError, InputError

__all__ = ["SDIST_ONLY", "Wheelhouse", "build_wheelhouse"]

_WHEEL_PLATFORMS = {
    "amd64": [*(f"manylinux_2_{m}_x86_64" for m in range(28, 16, -1)), "manylinux2014_x86_64"],
    "arm64": [*(f"manylinux_2_{m}_aarch64" for m in range(28, 16, -1)), "manylinux2014_aarch64"],
}

# README.md is replaced by a fixed text in the wheel: otherwise every edit of the
# README would change the project layer, and with it the committed image ID.
_WHEEL_README = (
    "# benchmark-regen\n\nReproducibility-locked regeneration of image benchmarks.\n"
    "See the project's README.md for its documentation.\n"
)
SDIST_ONLY = ("jsonpath-rw",)
"""Locked packages that publish no wheel: built from their hash-checked sdist (noxfile.py)."""


@dataclass(frozen=True, kw_only=True)
class Wheelhouse:
    """A folder of hash-checked wheels plus the requirements files that install them.

    ``requirements`` installs everything (the Dockerfile route);
    ``dependencies`` the locked wheels alone and ``project`` the project
    wheel alone (the two layers of the assembled image).
    """

    path: Path
    requirements: Path
    project_wheel: Path
    lockfile_sha256: str
    arch: str = "amd64"
    dependencies: Path | None = None
    project: Path | None = None


def _run_tool(argv: Sequence[str], *, what: str, env: Mapping[str, str] | None = None) -> None:
    # umask 022: files a build writes (and a wheel records) get the same modes
    # whatever the caller's umask.
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, env=env, check=False, umask=0o022
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ContainerError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def _requirement_blocks(text: str) -> list[tuple[str, str]]:
    """A hashed lockfile as (normalised name, block text) pairs, in file order."""
    blocks: list[tuple[str, str]] = []
    for line in text.splitlines(keepends=True):
        if line[:1].isalnum():
            name = line.split("==", 1)[0].split("[", 1)[0].strip().lower().replace("_", "-")
            blocks.append((name, line))
        elif blocks:
            blocks[-1] = (blocks[-1][0], blocks[-1][1] + line)
    return blocks


def _build_backend(project_dir: Path, dest: Path) -> Path:
    """The build backend of ``lockfiles/build.txt`` (hash-checked) in a private folder.

    Never the caller's environment: its setuptools may be too old (a fresh
    venv's 65.5 cannot build a PEP 639 ``license`` field), and the wheel bytes
    must not follow whatever happens to be installed.
    """
    lock = project_dir / "lockfiles" / "build.txt"
    if not lock.is_file():
        raise ContainerError(f"{lock} not found: the build backend is pinned there")
    _run_tool(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--require-hashes", "--only-binary", ":all:", "--target", str(dest),
         "-r", str(lock)],
        what="installing the pinned build backend (lockfiles/build.txt)",
    )  # fmt: skip
    return dest


def _backend_env(backend_dir: Path, epoch: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    return {**env, "PYTHONPATH": str(backend_dir), "SOURCE_DATE_EPOCH": str(epoch),
            "PYTHONHASHSEED": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # fmt: skip


def _check_generator(wheel: Path, backend_dir: Path) -> None:
    """The wheel was built by the pinned setuptools, not one that shadowed it."""
    pinned = next(backend_dir.glob("setuptools-*.dist-info")).name.removesuffix(".dist-info")
    pinned = pinned.split("-")[1]
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/WHEEL"))
        text = zf.read(name).decode()
    if f"Generator: setuptools ({pinned})" not in text:
        raise ContainerError(
            f"{wheel.name} was not built by the pinned setuptools {pinned}:\n{text}",
            hint="report this: the private build backend was shadowed",
        )


def _build_project_wheel(project_dir: Path, dest: Path, *, backend_dir: Path, epoch: int) -> Path:
    """The project's wheel, built by the pinned backend from a clean copy of its sources.

    SOURCE_DATE_EPOCH fixes the zip entry times; the copy holds no build/ or
    egg-info, and a fixed README (see ``_WHEEL_README``).
    """
    for old in dest.glob("benchmark_regen-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="benchmark-regen-src-") as tmp:
        src = Path(tmp) / "src"
        for path in project_sources(project_dir):
            target = src / path.relative_to(project_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            target.chmod(0o644)  # the wheel records modes: not the checkout's, nor the umask
        (src / "README.md").write_text(_WHEEL_README)
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--no-index", "-q", "-w", str(dest), str(src)]  # fmt: skip
        _run_tool(argv, what="building the project wheel", env=_backend_env(backend_dir, epoch))
    wheels = sorted(dest.glob("benchmark_regen-*.whl"))
    if len(wheels) != 1:
        raise ContainerError(f"building the project wheel left {len(wheels)} wheels in {dest}")
    _check_generator(wheels[0], backend_dir)
    return wheels[0]


def _build_sdist_wheels(
    blocks: Sequence[tuple[str, str]], dest: Path, *, backend_dir: Path, epoch: int, tmp: Path
) -> dict[str, tuple[Path, str]]:
    """Wheels for the locked sdist-only packages: {name: (wheel, requirement line)}."""
    built: dict[str, tuple[Path, str]] = {}
    for name, block in blocks:
        if name not in SDIST_ONLY:
            continue
        req = tmp / f"{name}.txt"
        req.write_text(block)
        out = tmp / f"{name}-wheel"
        _run_tool(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "--require-hashes", "--no-binary", name, "-r", str(req), "-w", str(out)],
            what=f"building {name} from its hash-checked sdist",
            env=_backend_env(backend_dir, epoch),
        )  # fmt: skip
        (wheel,) = sorted(out.glob("*.whl"))
        _check_generator(wheel, backend_dir)
        final = dest / wheel.name
        shutil.copyfile(wheel, final)
        spec = block.split("\\", 1)[0].strip()
        built[name] = (final, f"{spec} \\\n    --hash=sha256:{sha256_file(final)}\n")
    return built


def build_wheelhouse(
    *,
    dest: Path | None = None,
    lockfile: Path | None = None,
    project_dir: Path | None = None,
    epoch: int = SOURCE_DATE_EPOCH,
    arch: str | None = None,
) -> Wheelhouse:
    """Download the locked wheels (hash-checked) and build the others into ``dest``.

    The image build has no network, so everything it installs comes from
    here: the lockfile's wheels for ``arch`` (default: this machine's), its
    sdist-only packages (:data:`SDIST_ONLY`) and the project, both built with
    the build backend pinned in ``lockfiles/build.txt``. The requirements
    files carry the built wheels' hashes. Wheels already in ``dest`` with the
    right hash are not downloaded again.
    """
    project_dir = project_dir or repo_root()
    arch = arch or host_arch()
    lockfile = lockfile or project_dir / "lockfiles" / "requirements.txt"
    dest = dest or project_dir / "wheelhouse" / arch
    if not lockfile.is_file():
        raise ContainerError(f"lockfile {lockfile} not found", hint="run `nox -s lock`")
    if arch not in _WHEEL_PLATFORMS:
        raise InputError(f"no wheels for architecture {arch!r}: use one of {', '.join(ARCHES)}")
    dest.mkdir(parents=True, exist_ok=True)
    lock_text = lockfile.read_text()
    blocks = _requirement_blocks(lock_text)
    with tempfile.TemporaryDirectory(prefix="benchmark-regen-wheels-") as tmp_name:
        tmp = Path(tmp_name)
        binary = tmp / "binary.txt"
        binary.write_text("".join(b for n, b in blocks if n not in SDIST_ONLY))
        platforms = [a for p in _WHEEL_PLATFORMS[arch] for a in ("--platform", p)]
        pip = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
        target = ["--python-version", "3.11", "--implementation", "cp", *platforms]
        abis = ["--abi", "cp311", "--abi", "abi3", "--abi", "none"]
        locked = ["--require-hashes", "--only-binary", ":all:", "--no-deps", "-r", str(binary)]
        _run_tool([*pip, *target, *abis, *locked, "-d", str(dest)], what="downloading the wheels")
        backend_dir = _build_backend(project_dir, tmp / "backend")
        sdists = _build_sdist_wheels(blocks, dest, backend_dir=backend_dir, epoch=epoch, tmp=tmp)
        wheel = _build_project_wheel(project_dir, dest, backend_dir=backend_dir, epoch=epoch)
    dependencies_text = "".join(sdists[n][1] if n in sdists else b for n, b in blocks)
    version = wheel.name.split("-")[1]
    project_text = f"benchmark-regen=={version} \\\n    --hash=sha256:{sha256_file(wheel)}\n"
    dependencies = dest / "dependencies.txt"
    dependencies.write_text(dependencies_text)
    project = dest / "project.txt"
    project.write_text(project_text)
    requirements = dest / "requirements.txt"
    requirements.write_text(dependencies_text.rstrip("\n") + "\n" + project_text)
    return Wheelhouse(
        path=dest,
        requirements=requirements,
        project_wheel=wheel,
        lockfile_sha256=hashlib.sha256(lock_text.encode()).hexdigest(),
        arch=arch,
        dependencies=dependencies,
        project=project,
    )
