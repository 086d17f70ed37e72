"""toolchain._internal.deps: the optional Hugging Face packages, imported on first use, or a clear
InputError saying how to install them."""

from __future__ import annotations

import sys

import pytest

from toolchain._internal.deps import HF_EXTRA_HINT, require
from toolchain.errors import InputError


def test_an_installed_module_is_returned() -> None:
    import pyarrow.parquet

    assert require("pyarrow.parquet") is pyarrow.parquet


@pytest.mark.parametrize("module", ["datasets", "pyarrow.parquet", "mlcroissant"])
def test_a_missing_package_is_named_with_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    top = module.split(".")[0]
    if module != top:
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, top, None)
    with pytest.raises(InputError) as e:
        require(module, purpose="Croissant files")
    assert e.value.message.startswith(f"Croissant files need the optional package {top!r}")
    assert e.value.hint == HF_EXTRA_HINT == "pip install 'benchmark-regen[hf]'"
    assert e.value.exit_code == 3 and e.value.__cause__ is None
