"""toolchain.container.inputs: the checkout is found, and each layer's input digest follows
exactly the files that go into that layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolchain.container import inputs
from toolchain.errors import ContainerError

ROOT = Path(__file__).resolve().parents[2]


def test_lock_inputs_follow_the_files(tmp_path: Path) -> None:
    for rel in ("docker/make-base.sh", "docker/install-venv.sh", "lockfiles/requirements.txt",
                "lockfiles/build.txt", "lockfiles/debian-base-amd64.txt", "pyproject.toml",
                "toolchain/__init__.py", "README.md"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    first = inputs.lock_inputs(tmp_path)
    (tmp_path / "README.md").write_text("docs only")  # not an input of any layer
    (tmp_path / "toolchain" / "__pycache__").mkdir()
    (tmp_path / "toolchain" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert inputs.lock_inputs(tmp_path) == first
    (tmp_path / "toolchain" / "__init__.py").write_text("changed")
    second = inputs.lock_inputs(tmp_path)
    assert second["project"] != first["project"]
    assert {k: v for k, v in second.items() if k != "project"} == {
        k: v for k, v in first.items() if k != "project"
    }


def test_the_base_inputs_are_make_base_and_its_package_lock(tmp_path: Path) -> None:
    for rel in ("docker/make-base.sh", "lockfiles/debian-base-amd64.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    first = inputs.base_inputs("amd64", tmp_path)
    (tmp_path / "lockfiles" / "debian-base-arm64.txt").write_text("the other architecture")
    assert inputs.base_inputs("amd64", tmp_path) == first
    (tmp_path / "lockfiles" / "debian-base-amd64.txt").write_text("libc6=9 amd64\n")
    assert inputs.base_inputs("amd64", tmp_path) != first


def test_the_checkout_is_found_from_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`pip install --no-deps .` puts toolchain/ in site-packages: the files stay in the clone."""
    monkeypatch.setattr(inputs, "__file__", str(tmp_path / "site-packages" / "toolchain" / "c.py"))
    monkeypatch.chdir(ROOT / "toolchain")
    assert inputs.repo_root() == ROOT
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ContainerError, match="no benchmark-regen checkout"):
        inputs.repo_root()
