"""toolchain.diff (the package): its names load their module on first use, so applying a
diff imports neither create, check, inspect nor audit (nor, for a ``.bdiff``, the dataset
form or the signature check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import toolchain.diff
from tests.diff_cases import build, tiny_original


def test_every_name_resolves_to_its_module() -> None:
    for name in toolchain.diff.__all__:
        value = getattr(toolchain.diff, name)
        assert value.__module__ == toolchain.diff._LAZY[name], name
    with pytest.raises(
        AttributeError, match=r"module 'toolchain\.diff' has no attribute 'nothing'"
    ):
        _ = toolchain.diff.nothing
    # dir() is the public names, not the submodules their loading bound on the package
    assert {n for n in dir(toolchain.diff) if not n.startswith("_")} == set(toolchain.diff.__all__)


def test_applying_imports_none_of_the_other_commands() -> None:
    code = (
        "import sys; from toolchain.diff import get_benchmark; "
        "print(sorted(m for m in ('create', 'check', 'inspect', 'audit') "
        "if f'toolchain.diff.{m}' in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_opening_a_bdiff_loads_neither_the_dataset_form_nor_the_signature_check(
    tmp_path: Path,
) -> None:
    """``diff apply`` of a ``.bdiff`` without ``--pubkey`` needs neither."""
    original = tiny_original(tmp_path / "original")
    _, diff = build(original, "adversarial", tmp_path)
    code = (
        "import sys; from toolchain.diff.reader import open_diff; "
        f"r = open_diff({str(diff)!r}); r.close(); "
        "print(sorted(m for m in ('toolchain.diff.dataset', 'toolchain.audit.sign') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
