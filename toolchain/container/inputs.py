"""The checkout the image is built from, and the digests of what goes into each layer
(the ``inputs`` of ``lockfiles/image.lock``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from toolchain.container.config import ARCHES
from toolchain.container.layers import sha256_file
from toolchain.errors import ContainerError

__all__ = ["base_inputs", "lock_inputs", "project_sources", "repo_root"]

# What goes into the project wheel, besides toolchain/ (its README is a fixed
# text: see wheelhouse.py).
_PROJECT_FILES = ("pyproject.toml", "LICENSE", "setup.cfg", "MANIFEST.in")


def repo_root() -> Path:
    """The checkout that holds docker/ and lockfiles/.

    The package's own parent when it is installed editable (nox); else the
    working directory or one of its parents: `pip install --no-deps .` puts
    the package in site-packages, away from the files the image is built from.
    """
    here = Path.cwd().resolve()
    for candidate in (Path(__file__).resolve().parents[2], here, *here.parents):
        if (candidate / "docker" / "make-base.sh").is_file() and (
            candidate / "lockfiles" / "requirements.txt"
        ).is_file():
            return candidate
    raise ContainerError(
        f"no benchmark-regen checkout (docker/make-base.sh, lockfiles/) in {here} or above",
        hint="run the image commands from a clone of the repository",
    )


def project_sources(project_dir: Path) -> list[Path]:
    """The files the project wheel is built from, sorted: toolchain/ and pyproject.toml."""
    files = [project_dir / name for name in _PROJECT_FILES if (project_dir / name).is_file()]
    for path in sorted((project_dir / "toolchain").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append(path)
    return files


def _tree_digest(root: Path, files: Sequence[Path]) -> str:
    """SHA-256 over (relative path, content digest) of ``files``: an input of a layer."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        h.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    return "sha256:" + h.hexdigest()


def lock_inputs(project_dir: Path | None = None) -> dict[str, str]:
    """The digests of what goes into each layer, recorded beside the layers' diff IDs.

    When a layer differs from the lock, these say whether its inputs changed
    (refresh the lock) or not (this machine built other bytes from the same
    inputs: a reproducibility bug).
    """
    root = project_dir or repo_root()
    docker, locks = root / "docker", root / "lockfiles"
    inputs = {
        "dependencies": _tree_digest(root, [locks / "requirements.txt", locks / "build.txt",
                                            docker / "install-venv.sh"]),
        "project": _tree_digest(root, project_sources(root)),
    }  # fmt: skip
    for arch in ARCHES:
        inputs[f"base-{arch}"] = base_inputs(arch, root)
    return inputs


def base_inputs(arch: str, project_dir: Path | None = None) -> str:
    """The digest of what makes the ``arch`` base: make-base.sh and its package lock."""
    root = project_dir or repo_root()
    files = [root / "docker" / "make-base.sh", root / "lockfiles" / f"debian-base-{arch}.txt"]
    return _tree_digest(root, [f for f in files if f.is_file()])
