"""toolchain.container.wheelhouse: the locked requirement blocks, and the wheels the image
installs, built by the pinned setuptools and byte-identical every time.

The ``slow`` tests download setuptools (lockfiles/build.txt, hash-checked) and jsonpath-rw's
sdist (lockfiles/requirements.txt) from the package index, like `image build`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from toolchain.container import wheelhouse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wheelhouse._build_backend(ROOT, tmp_path_factory.mktemp("backend") / "b")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _generator(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/WHEEL"))
        return next(ln for ln in zf.read(name).decode().splitlines() if ln.startswith("Generator"))


@pytest.mark.slow
def test_project_wheel_ignores_readme_umask_and_checkout_path(
    backend: Path, tmp_path: Path
) -> None:
    pinned = (ROOT / "lockfiles" / "build.txt").read_text().split("==")[1].split()[0]
    first = wheelhouse._build_project_wheel(ROOT, tmp_path / "a", backend_dir=backend, epoch=0)
    other = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(ROOT / "toolchain", other / "toolchain")
    shutil.copy(ROOT / "pyproject.toml", other / "pyproject.toml")
    (other / "README.md").write_text("an edited README\n")
    old = os.umask(0o077)
    try:
        second = wheelhouse._build_project_wheel(
            other, tmp_path / "b", backend_dir=backend, epoch=0
        )
    finally:
        os.umask(old)
    assert _sha(first) == _sha(second)
    assert _generator(first) == f"Generator: setuptools ({pinned})"


@pytest.mark.slow
def test_project_sources_change_the_wheel(backend: Path, tmp_path: Path) -> None:
    other = tmp_path / "checkout"
    shutil.copytree(ROOT / "toolchain", other / "toolchain")
    shutil.copy(ROOT / "pyproject.toml", other / "pyproject.toml")
    first = wheelhouse._build_project_wheel(other, tmp_path / "a", backend_dir=backend, epoch=0)
    (other / "toolchain" / "py.typed").write_text("# changed\n")
    second = wheelhouse._build_project_wheel(other, tmp_path / "b", backend_dir=backend, epoch=0)
    assert _sha(first) != _sha(second)


@pytest.mark.slow
def test_sdist_only_package_is_built_twice_to_the_same_bytes(backend: Path, tmp_path: Path) -> None:
    blocks = wheelhouse._requirement_blocks((ROOT / "lockfiles" / "requirements.txt").read_text())
    sdists = [(n, b) for n, b in blocks if n in wheelhouse.SDIST_ONLY]
    assert sdists, "lockfiles/requirements.txt holds no sdist-only package any more"
    runs = []
    for name in ("one", "two"):
        dest = tmp_path / name
        dest.mkdir()
        (tmp_path / f"tmp-{name}").mkdir()
        built = wheelhouse._build_sdist_wheels(
            sdists, dest, backend_dir=backend, epoch=0, tmp=tmp_path / f"tmp-{name}"
        )
        runs.append({n: (_sha(w), line) for n, (w, line) in built.items()})
    assert runs[0] == runs[1]
    for sha, line in runs[0].values():
        assert f"--hash=sha256:{sha}" in line


def test_requirement_blocks_swap_the_sdist_for_the_built_wheel() -> None:
    text = (
        "jsonpath-rw==1.4.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via mlcroissant\n"
        "numpy==2.4.6 \\\n    --hash=sha256:" + "1" * 64 + "\n"
    )
    blocks = wheelhouse._requirement_blocks(text)
    assert [name for name, _ in blocks] == ["jsonpath-rw", "numpy"]
    assert "".join(b for _, b in blocks) == text
