"""The adversarial recipe (v2): exact integer model, its bound, its attack, its BLAS invariance."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import toolchain.recipes.adversarial as adv
from toolchain.codec.decode import decode
from toolchain.errors import DeterminismError
from toolchain.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def _photo(demo_dir: Path, name: str) -> np.ndarray:
    return decode((demo_dir / name).read_bytes())


# -- the exactness argument --------------------------------------------------------------


def test_bounds_are_the_largest_possible_partial_sums() -> None:
    assert adv.FORWARD_BOUND == 768 * 128 * 128 == 12_582_912 <= 2**24
    assert adv.BACKWARD_BOUND == 256 * 255 * 128 == 8_355_840 <= 2**24
    w1, w2 = adv.model_weights(adv.SEED)
    # the weights really are int8 (so the bounds use the true extremes) and use both ends
    for w in (w1, w2):
        assert w.dtype == np.int64 and w.min() == -128 and w.max() == 127
    # the largest per-term magnitudes the recipe can feed the GEMMs
    assert int(np.abs(w2[:, :, None] - w2[:, None, :]).max()) <= 255


@pytest.mark.parametrize(
    ("a_range", "n", "bound"),
    [((-128, 127), 768, adv.FORWARD_BOUND), ((-255, 255), 256, adv.BACKWARD_BOUND)],
    ids=["forward", "backward"],
)
def test_float32_blas_product_of_extreme_integers_is_exact(
    a_range: tuple[int, int], n: int, bound: int
) -> None:
    """The exactness argument, run: the BLAS's float32 product equals the int64 product."""
    lo, hi = a_range
    rng = np.random.default_rng(n)
    rows, cols = 37, 300  # odd shapes: the kernels' edge tiles are exercised too
    worst = (np.full((rows, n), lo, dtype=np.int64), np.full((n, cols), -128, dtype=np.int64))
    mixed = (  # extreme values of both signs
        np.where(rng.integers(0, 2, (rows, n)) == 1, lo, hi),
        np.where(rng.integers(0, 2, (n, cols)) == 1, -128, 127),
    )
    assert int(np.abs(worst[0] @ worst[1]).max()) == bound  # the bound is attained
    for a, b in (worst, mixed):
        exact = a @ b  # int64: no BLAS
        got = a.astype(np.float32) @ b.astype(np.float32)
        assert got.dtype == np.float32
        assert np.array_equal(got.astype(np.int64), exact)


def test_the_comparison_detects_an_inexact_product() -> None:
    """Control: past 2**24 a single product already rounds, whatever the kernel."""
    a = np.full((1, 1), 4097, dtype=np.int64)  # 4097**2 = 2**24 + 2**13 + 1: 25 bits
    got = a.astype(np.float32) @ a.astype(np.float32)
    assert not np.array_equal(got.astype(np.int64), a @ a)


def test_exact_gemm_raises_on_an_inexact_product() -> None:
    a = np.full((5, 1), 4097, dtype=np.float32)
    b = np.full((1, 2), 4097, dtype=np.float32)
    with pytest.raises(DeterminismError, match="inexact product"):
        adv.exact_gemm(a, b, b.astype(np.int64))


def test_recipe_equals_a_pure_integer_model(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The BLAS path gives the pixels of the same model computed in int64 (no BLAS at all)."""
    recipe = load_recipe("adversarial").with_params({"steps": 3})
    # crops of real photographs (numpy's int64 matmul is slow): RGB, greyscale, RGBA, ragged
    images = {
        n: _photo(demo_dir, n)[:120, :150] for n in ("chelsea.png", "camera.png", "horse.png")
    }
    blas = {n: recipe.apply(n, px) for n, px in images.items()}

    def integer_gemm(a: np.ndarray, b: np.ndarray, b_int: np.ndarray) -> np.ndarray:
        assert np.array_equal(b.astype(np.int64), b_int)
        return (a.astype(np.int64) @ b_int).astype(np.float32)  # exact: < 2**24

    monkeypatch.setattr(adv, "exact_gemm", integer_gemm)
    for name, px in images.items():
        assert np.array_equal(recipe.apply(name, px), blas[name]), name


def test_size_limit_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adv, "MAX_PATCHES", 3)
    px = np.zeros((32, 32, 3), dtype=np.uint8)  # 4 patches
    with pytest.raises(DeterminismError, match="4 patches"):
        adv.surrogate_logits(px)
    with pytest.raises(DeterminismError, match="proven exact"):
        load_recipe("adversarial").apply("x.png", px)


def test_weights_are_a_portable_function_of_the_seed() -> None:
    """Raw PCG64 words only (NEP 19-stable): the same bytes on every machine and numpy."""
    w1, w2 = adv.model_weights(adv.SEED)
    digest = hashlib.sha256(w1.astype("<i8").tobytes() + w2.astype("<i8").tobytes()).hexdigest()
    assert digest == WEIGHTS_SHA256
    assert not w1.flags.writeable and not w2.flags.writeable


WEIGHTS_SHA256 = "270fa0b62a04021fe0ec77bb4786d7443fd751a725f23712825db55b1757fe20"


# -- the attack --------------------------------------------------------------------------


def test_attack_stays_in_the_ball_and_raises_the_margin(demo_dir: Path) -> None:
    recipe = load_recipe("adversarial")
    for name in ("chelsea.png", "coffee.png", "camera.png"):
        px = _photo(demo_dir, name)
        out = recipe.apply(name, px)
        assert out.dtype == np.uint8 and out.shape == px.shape
        diff = np.abs(out.astype(np.int64) - px)
        assert diff.max() <= 8 and diff.max() > 0
        before, after = adv.surrogate_logits(px), adv.surrogate_logits(out)
        label = int(np.argmax(before))
        assert adv.margin(before, label) < 0 < adv.margin(after, label), name
        assert int(np.argmax(after)) != label  # the surrogate's prediction flips


def test_alpha_channel_untouched_and_greyscale_stays_greyscale(demo_dir: Path) -> None:
    recipe = load_recipe("adversarial").with_params({"steps": 2})
    rgba = _photo(demo_dir, "horse.png")
    assert rgba.shape[2] == 4
    out = recipe.apply("horse.png", rgba)
    assert np.array_equal(out[:, :, 3], rgba[:, :, 3]) and not np.array_equal(out, rgba)
    grey = _photo(demo_dir, "camera.png")
    assert grey.shape[2] == 1
    out = recipe.apply("camera.png", grey)
    assert out.shape == grey.shape and np.abs(out.astype(int) - grey).max() <= 8


def test_small_and_ragged_images() -> None:
    recipe = load_recipe("adversarial")
    tiny = np.full((15, 40, 3), 100, dtype=np.uint8)
    assert np.array_equal(recipe.apply("t.png", tiny), tiny)  # under one patch: unchanged
    ragged = np.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    out = recipe.apply("r.png", ragged)
    d = out.astype(np.int64) - ragged
    assert np.abs(d).max() <= 8
    assert np.abs(d[32:, :, :]).max() > 0  # the border keeps its random start
    assert np.array_equal(out, recipe.apply("r.png", ragged))  # repeatable


# -- invariance under hostile BLAS settings, with its positive control -------------------

_PROBE = """
import hashlib, json, sys
import numpy as np
from toolchain.codec.decode import decode
from toolchain.recipes import load_recipe
sys.path.insert(0, {tests!r})
import float_adversarial as f32

recipe = load_recipe("adversarial").with_params({{"steps": 3}})
out = {{"v2": {{}}, "float32": {{}}}}
for path in {paths!r}:
    px = decode(open(path, "rb").read())
    out["v2"][path] = hashlib.sha256(recipe.apply(path, px).tobytes()).hexdigest()
    # the v1 model's first step on the same image: float32 GEMMs through the BLAS
    rgb = px[:, :, :3] if px.shape[2] >= 3 else np.repeat(px, 3, axis=2)
    ph, pw = px.shape[0] // 16, px.shape[1] // 16
    x = f32._patches(rgb.astype(np.float32), ph, pw) * np.float32(1 / 256) - np.float32(0.5)
    w1, w2 = f32.model_weights(f32.SEED)
    _, grad = f32._margin_gradient(x, w1, w2, None)
    out["float32"][path] = hashlib.sha256(grad.tobytes()).hexdigest()
print(json.dumps(out))
"""

_CORETYPES = {
    "x86_64": ("Haswell", "Prescott", "Sandybridge"),
    "aarch64": ("ARMV8", "NEOVERSEN1", "CORTEXA57"),
}


def _probe(paths: list[str], env: dict[str, str]) -> dict[str, dict[str, str]]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENBLAS", "OMP", "NPY_", "BENCHMARK_REGEN", "MKL"))
    }
    code = _PROBE.format(tests=str(ROOT / "tests"), paths=paths)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, dict[str, str]] = json.loads(proc.stdout)
    return result


@pytest.mark.slow
def test_output_ignores_blas_kernel_and_threads_while_float32_does_not(demo_dir: Path) -> None:
    coretypes = _CORETYPES.get(platform.machine().lower())
    if coretypes is None:
        pytest.skip(f"no OpenBLAS kernel list for {platform.machine()}")
    paths = [str(demo_dir / n) for n in ("chelsea.png", "camera.png")]
    settings = [
        {"OPENBLAS_CORETYPE": core, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        for core in coretypes
        for threads in ("1", "2")
    ]
    runs = [_probe(paths, env) for env in settings]
    # The exact recipe: the same pixels under every kernel and thread count.
    assert all(r["v2"] == runs[0]["v2"] for r in runs)
    # Positive control: the same settings change the float32 model's bits on this machine,
    # so the equality above is not an accident of settings that change nothing.
    assert _probe(paths, settings[0])["float32"] == runs[0]["float32"]  # repeatable
    changed = [s for s, r in zip(settings, runs, strict=True) if r["float32"] != runs[0]["float32"]]
    assert changed, "no setting changed the float32 GEMM: the invariance proves nothing here"
