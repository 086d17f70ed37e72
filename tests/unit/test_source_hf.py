"""toolchain.source.hf: the Hugging Face sources' names, each loaded on first use, so that
opening a folder of images loads none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import toolchain.source.hf as hf
from tests.diff_cases import tiny_original

SOURCES = ("base", "arrow", "parquet", "dataset", "features")


def test_each_name_comes_from_its_module() -> None:
    for name in hf.__all__:
        value = getattr(hf, name)
        owner = hf._LAZY[name]
        assert getattr(sys.modules[owner], name) is value, name
    with pytest.raises(AttributeError, match=r"'toolchain\.source\.hf' has no attribute 'nope'"):
        _ = hf.nope
    assert {n for n in dir(hf) if not n.startswith("_")} == set(hf.__all__)


def test_a_folder_original_loads_no_hugging_face_source(tmp_path: Path) -> None:
    """A folder is asked whether it is a dataset (``detect``), and a path is never a
    ``Dataset`` object: the sources' modules (and their ``features``) stay unloaded."""
    original = tiny_original(tmp_path / "original")
    code = (
        "import sys; from toolchain.source import open_source; "
        f"s = open_source({str(original)!r}); n = len(s.listing().ids); "
        f"print(n, sorted(m for m in {SOURCES!r} if f'toolchain.source.hf.{{m}}' in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    count, loaded = out.stdout.strip().split(" ", 1)
    assert int(count) > 0 and loaded == "[]"
