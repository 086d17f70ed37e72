"""toolchain.run.fingerprint: everything that can change a pixel, as flat strings, with no host,
path or time in it, and a short digest that ignores field order."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys

import pytest

from tests.compare_cases import pinned_here
from toolchain.run.determinism import PINNED
from toolchain.run.fingerprint import fingerprint_digest, runtime_digest, runtime_fingerprint


def test_the_fields_that_explain_drift_are_present() -> None:
    fp = runtime_fingerprint()
    for key in ("python", "python.implementation", "platform.machine", "platform.system",
                "toolchain", "pinned", "numpy", "numpy.simd.baseline", "numpy.simd.in_use",
                "pillow", "pillow.zlib", "pillow.jpg", "zstandard", "env.umask"):  # fmt: skip
        assert key in fp, key
    assert {f"env.{name}" for name in PINNED} <= set(fp)
    assert fp["platform.machine"] == platform.machine()
    assert fp["pinned"] in ("true", "false")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fp.items())
    assert list(fp) == sorted(fp)


def test_the_versions_are_the_installed_distributions_read_without_importlib_metadata() -> None:
    """``toolchain`` and ``zstandard`` are the versions pip installed (what they were read
    as before), and a pinned start no longer imports ``importlib.metadata`` (some 20 ms)."""
    from importlib.metadata import version

    fp = runtime_fingerprint()
    assert fp["toolchain"] == version("benchmark-regen")
    assert fp["zstandard"] == version("zstandard")
    code = (
        "import sys; from toolchain.run.fingerprint import runtime_fingerprint; "
        "runtime_fingerprint(); print('importlib.metadata' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


def test_no_host_name_path_or_user_leaks_into_it() -> None:
    values = " ".join(runtime_fingerprint().values())
    for private in {socket.gethostname(), os.getcwd(), os.path.expanduser("~")} - {"", "/"}:
        assert private not in values


def test_it_is_computed_once_per_process() -> None:
    assert runtime_fingerprint() is runtime_fingerprint()
    assert runtime_digest() == fingerprint_digest(runtime_fingerprint())


def test_a_pinned_process_says_so_with_the_pinned_values() -> None:
    with pinned_here(pytest.MonkeyPatch()):
        fp = runtime_fingerprint()
        assert fp["pinned"] == "true"
        assert all(fp[f"env.{k}"] == s.value for k, s in PINNED.items())
        assert len(fp["env.umask"]) == 4 and int(fp["env.umask"], 8) >= 0


def test_the_digest_is_short_stable_and_ignores_order() -> None:
    fp = {"numpy": "2.4.6", "pillow": "12.0.0", "python": "3.11.7"}
    digest = fingerprint_digest(fp)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert fingerprint_digest(dict(reversed(list(fp.items())))) == digest
    assert fingerprint_digest({**fp, "numpy": "1.26.4"}) != digest
    assert fingerprint_digest({**fp, "extra": ""}) != digest
    # pinned here so that it cannot change silently: a stored digest must stay comparable
    assert fingerprint_digest({}) == "44136fa355b3678a"
