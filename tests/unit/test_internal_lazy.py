"""toolchain._internal.lazy: a package's names load their module on first use, and ``dir()``
lists the public names only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from toolchain._internal.lazy import lazy_attributes


@pytest.fixture
def owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module no one has imported yet, on ``sys.path`` for this test only."""
    (tmp_path / "lazy_owner_module.py").write_text("VALUE = 42\nOTHER = 'not public'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_owner_module", raising=False)
    return "lazy_owner_module"


def test_a_name_loads_its_module_on_first_use(owner: str) -> None:
    namespace: dict[str, Any] = {"__name__": "pkg", "__all__": ["VALUE"]}
    getattr_, _ = lazy_attributes(namespace, {"VALUE": owner})
    assert owner not in sys.modules  # building the hooks imports nothing
    assert getattr_("VALUE") == 42
    assert owner in sys.modules


@pytest.mark.parametrize("name", ["OTHER", "nope", "_private"])
def test_a_name_not_in_the_map_is_an_attribute_error(owner: str, name: str) -> None:
    getattr_, _ = lazy_attributes({"__name__": "pkg", "__all__": []}, {"VALUE": owner})
    with pytest.raises(AttributeError, match=f"module 'pkg' has no attribute '{name}'"):
        getattr_(name)
    assert owner not in sys.modules


def test_dir_is_the_public_api_and_the_dunders(owner: str) -> None:
    namespace: dict[str, Any] = {"__name__": "pkg", "__all__": ["VALUE", "errors"]}
    _, dir_ = lazy_attributes(namespace, {"VALUE": owner})
    namespace["errors"] = object()
    namespace["submodule"] = object()  # what `import pkg.submodule` binds on a package
    namespace["_helper"] = object()
    assert dir_() == ["VALUE", "__all__", "__name__", "errors"]


def test_the_helper_adds_no_import_cost() -> None:
    """Only the standard library and the package root (``toolchain``, its errors and its
    version, which every import of a submodule loads anyway)."""
    code = (
        "import sys; before = set(sys.modules); import toolchain._internal.lazy; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    ours = {
        "toolchain",
        "toolchain._internal",
        "toolchain._internal.lazy",
        "toolchain._internal.release",
        "toolchain.errors",
    }
    others = set(out.stdout.split()) - ours
    assert {m.split(".")[0].lstrip("_") for m in others} <= sys.stdlib_module_names, others
