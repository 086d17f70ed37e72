"""toolchain._internal.release: the version the package says is the one pip installed, and
the one pyproject.toml declares."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import toolchain
from toolchain._internal.release import VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_the_installed_and_declared_one() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert VERSION == declared == version("benchmark-regen") == toolchain.__version__
