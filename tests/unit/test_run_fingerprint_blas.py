"""The OpenBLAS probe of toolchain.run.fingerprint: it finds the library numpy loaded here.

Skips only where numpy is genuinely built without OpenBLAS (its build
configuration says so); everywhere else an empty probe fails the test.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest

from toolchain.run import fingerprint


def _numpy_blas_name() -> str:
    with contextlib.suppress(Exception):
        cfg: Any = np.show_config(mode="dicts")
        return str(cfg["Build Dependencies"]["blas"]["name"])
    return ""


needs_openblas = pytest.mark.skipif(
    "openblas" not in _numpy_blas_name().lower(),
    reason=f"numpy is built with {_numpy_blas_name() or 'an unknown BLAS'}, not OpenBLAS",
)


@needs_openblas
def test_the_probe_finds_config_core_and_threads() -> None:
    info = fingerprint._openblas_info()
    assert set(info) == {"blas.config", "blas.coretype", "blas.threads"}, info
    assert info["blas.config"].startswith("OpenBLAS ")
    assert info["blas.coretype"] and info["blas.coretype"] in info["blas.config"]
    assert int(info["blas.threads"]) >= 1


@needs_openblas
def test_the_probe_needs_no_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under qemu-user in a chroot without /proc, /proc/self/maps reads empty."""
    monkeypatch.setattr(fingerprint, "_maps_libraries", lambda: [])
    info = fingerprint._openblas_info()
    assert info.get("blas.coretype") and info.get("blas.config"), info


def test_the_loader_lists_numpys_own_extension() -> None:
    core = getattr(np, "_core", None) or np.core
    umath = core._multiarray_umath.__file__
    loaded = fingerprint._loaded_libraries()
    assert any(path.endswith(umath.rsplit("/", 1)[-1]) for path in loaded), loaded[:5]


@needs_openblas
def test_the_fingerprint_carries_the_probe() -> None:
    fp = fingerprint.runtime_fingerprint()
    for key in ("blas.config", "blas.coretype", "blas.threads"):
        assert fp.get(key), key
