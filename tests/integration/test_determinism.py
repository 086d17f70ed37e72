"""The determinism guard, end to end in real subprocesses.

Includes the positive control: the harness must be able to see drift when a
setting is *not* pinned, or the invariance tests would prove nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolchain.demo import demo_original

# Manifest format v2 roots. Recorded under: numpy 2.4.6 (scipy-openblas 0.3.31, Haswell
# kernel, 1 thread, SIMD baseline X86_V2 only), Pillow 13.0.0 (libjpeg-turbo 3.2.0),
# CPython 3.11, x86_64.
# A library change that alters a pixel makes these fail loudly; see docs/determinism.md.
GOLDEN_DEMO_ROOT = "sha256:eb41cc756d8a5df560f6bc9a61cddb3406d18818de9445dc1f4387b662ae839e"
# adversarial 2.0 is exact integer arithmetic: this root holds on arm64 too
# (tests/arm64_portability.py), not only on the machine that recorded it.
GOLDEN_ADVERSARIAL_ROOT = "sha256:3cdc0f5b8294aed5d98b04e954fefa9a6402a807bb17e69cb59a0ebf1e3ff112"

CLI = [sys.executable, "-m", "toolchain"]
FLOAT_RECIPE = f"{Path(__file__).resolve().parents[1] / 'float_adversarial.py'}:float_adversarial"


def _run(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict[str, object]:
    full_env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    full_env.update(env or {})
    proc = subprocess.run(
        [*CLI, *args, "--json"], env=full_env, cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_golden_demo_root(tmp_path: Path) -> None:
    doc = _run(["demo", "--out", str(tmp_path / "demo"), "--workers", "2"])
    assert doc["verified"] is True
    assert doc["root"] == GOLDEN_DEMO_ROOT, "pixels changed: see the fingerprint in the manifest"


@pytest.mark.slow
def test_golden_adversarial_root(tmp_path: Path) -> None:
    doc = _run(
        [
            "generate",
            "--recipe",
            "adversarial",
            "--original",
            str(demo_original()),
            "--out",
            str(tmp_path / "adv"),
            "--workers",
            "2",
        ]
    )
    assert doc["root"] == GOLDEN_ADVERSARIAL_ROOT


def test_root_ignores_tz_locale_hashseed_home_checkout_path(
    tmp_path: Path, small_original: Path
) -> None:
    recipe_src = (
        "import random\nimport numpy as np\nimport toolchain\n"
        "@toolchain.recipe(name='env-sensitive', version='1', seed=3)\n"
        "def r(pixels, rng):\n"
        "    # set order depends on the hash seed unless it is pinned\n"
        "    words = {'alpha', 'beta', 'gamma', 'delta'}\n"
        "    salt = sum(i * (ord(s[0]) % 7) for i, s in enumerate(words))\n"
        "    noise = np.random.randint(0, 3, size=pixels.shape)\n"
        "    return np.clip(pixels.astype(int) + noise + salt % 5, 0, 255).astype(np.uint8)\n"
    )
    roots = []
    settings = [
        {"TZ": "UTC", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "1", "HOME": str(tmp_path / "h1")},
        {
            "TZ": "Asia/Kolkata",
            "LC_ALL": "de_DE.UTF-8",
            "PYTHONHASHSEED": "4242",
            "HOME": str(tmp_path / "h2"),
        },
    ]
    for i, env in enumerate(settings):
        checkout = tmp_path / f"checkout-{i}" / ("deep/" * i)
        checkout.mkdir(parents=True)
        (checkout / "recipe.py").write_text(recipe_src)
        orig = checkout / "orig"
        shutil.copytree(small_original, orig)
        doc = _run(
            ["generate", "--recipe", "recipe.py:r", "--original", "orig", "--out", "out"],
            env=env,
            cwd=checkout,
        )
        roots.append(doc["root"])
    assert roots[0] == roots[1]


_CONTROL = """
import hashlib, sys
import numpy as np
rng = np.random.default_rng(0)
a = rng.standard_normal((257, 513)).astype(np.float32)
b = rng.standard_normal((513, 129)).astype(np.float32)
x = rng.standard_normal(100_000).astype(np.float32)
gemm = hashlib.sha256((a @ b).tobytes()).hexdigest()
print(gemm, hashlib.sha256(np.sin(x).tobytes()).hexdigest())
"""


def _control(env: dict[str, str]) -> tuple[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENBLAS", "OMP", "NPY_", "BENCHMARK_REGEN"))
    }
    out = subprocess.run(
        [sys.executable, "-c", _CONTROL],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], out[1]


def test_positive_control_unpinned_settings_change_float_results() -> None:
    """Each knob the guard pins really changes a float result on this machine."""
    one = _control({"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Haswell"})
    assert (
        _control({"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Haswell"}) == one
    )  # repeatable
    two_threads = _control({"OPENBLAS_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell"})
    other_kernel = _control({"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Prescott"})
    assert two_threads[0] != one[0], "BLAS threads should change the GEMM bits"
    assert other_kernel[0] != one[0], "the BLAS kernel should change the GEMM bits"
    from toolchain.run.determinism import probe_simd_dispatch

    dispatched = probe_simd_dispatch()
    if not dispatched:
        pytest.skip("this CPU has no dispatched SIMD target above numpy's baseline")
    masked = _control(
        {
            "OPENBLAS_NUM_THREADS": "1",
            "OPENBLAS_CORETYPE": "Haswell",
            "NPY_DISABLE_CPU_FEATURES": " ".join(dispatched),
        }
    )
    assert masked[1] != one[1], "masking numpy's SIMD dispatch should change float32 sin"


def test_pinned_pipeline_ignores_the_same_knobs(tmp_path: Path, small_original: Path) -> None:
    """...while the guard keeps a BLAS-heavy float32 recipe's root hash fixed under them.

    The float32 recipe is adversarial 1.0 (tests/float_adversarial.py): the built-in
    adversarial 2.0 is exact and would pass without the guard.
    """
    hostile = {
        "OPENBLAS_NUM_THREADS": "2",
        "OMP_NUM_THREADS": "2",
        "OPENBLAS_CORETYPE": "Prescott",
        "NPY_DISABLE_CPU_FEATURES": "",
    }
    args = ["generate", "--recipe", FLOAT_RECIPE, "--param", "steps=2", "--original",
            str(small_original), "--out"]  # fmt: skip
    a = _run([*args, str(tmp_path / "a")])
    b = _run([*args, str(tmp_path / "b")], env=hostile)
    assert a["root"] == b["root"]
