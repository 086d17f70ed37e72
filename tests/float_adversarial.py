"""The ``adversarial`` recipe as it was in version 1.0: float32 GEMMs, *not* portable.

Kept for the tests, the arm64 check (``tests/arm64/portability.py``) and
``benchmarks/bench_adversarial.py``: a known non-portable recipe whose pixels
change with the BLAS kernel (``OPENBLAS_CORETYPE``, the CPU architecture). The
compare tests build their generator-drift case from it, since the built-in
``adversarial`` (version 2.0) is exact and no longer drifts. Load it as
``tests.float_adversarial:float_adversarial`` (or by file path).

The original docstring follows.

An L-infinity PGD attack on a small seeded numpy model.

The model is a patch network: every 16x16 RGB patch of the image (768 values)
goes through a dense layer of ``HIDDEN`` units and a ReLU; the activations are
summed over patches and mapped to 10 logits. Its weights derive from the
recipe seed (raw PCG64 output, exactly representable in float32). The attack
maximises the margin ``max_{j != y} z_j - z_y`` against the clean prediction
``y`` with ``steps`` signed-gradient steps of ``alpha`` grey levels inside an
``eps`` ball. Every step runs two float32 GEMMs through the BLAS: the sign of
a gradient near zero is where a different BLAS kernel or thread count shows
up as different pixels, which is why the guard pins them.

Pixel values stay integers in float32 (integer steps, integer clipping), so
the only floating-point rounding is in the model itself.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from toolchain import recipe

if TYPE_CHECKING:
    import numpy.typing as npt

SEED = 2024
PATCH = 16
HIDDEN = 256
CLASSES = 10
_MODEL_KEY = (0x6D6F64, 0x656C)  # spawn key of the model weights: "mod", "el"


def _uniform(
    bitgen: np.random.PCG64, shape: tuple[int, int], scale_log2: int
) -> npt.NDArray[np.float32]:
    """Uniform weights in [-2**-scale_log2, 2**-scale_log2) from 24-bit integers."""
    raw = bitgen.random_raw(shape[0] * shape[1]).astype(np.uint64) >> np.uint64(40)
    centred = raw.astype(np.int64) - (1 << 23)
    return np.ldexp(centred.astype(np.float32), -23 - scale_log2).reshape(shape)


@cache
def model_weights(seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The model's two weight matrices, a pure function of the seed."""
    bitgen = np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=_MODEL_KEY))
    w1 = _uniform(bitgen, (PATCH * PATCH * 3, HIDDEN), 5)
    w2 = _uniform(bitgen, (HIDDEN, CLASSES), 2)
    return w1, w2


def _patches(img: npt.NDArray[np.float32], ph: int, pw: int) -> npt.NDArray[np.float32]:
    crop = img[: ph * PATCH, : pw * PATCH, :]
    blocks = crop.reshape(ph, PATCH, pw, PATCH, 3).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(blocks.reshape(ph * pw, PATCH * PATCH * 3))


def _unpatch(grad: npt.NDArray[np.float32], ph: int, pw: int) -> npt.NDArray[np.float32]:
    blocks = grad.reshape(ph, pw, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(ph * PATCH, pw * PATCH, 3)


def _margin_gradient(
    x: npt.NDArray[np.float32],
    w1: npt.NDArray[np.float32],
    w2: npt.NDArray[np.float32],
    label: int | None,
) -> tuple[int, npt.NDArray[np.float32]]:
    """Forward and backward pass; returns the clean label and d(margin)/d(patches)."""
    pre = x @ w1
    hidden = np.maximum(pre, np.float32(0))
    logits = hidden.sum(axis=0, dtype=np.float32) @ w2
    y = int(np.argmax(logits)) if label is None else label
    rivals = logits.copy()
    rivals[y] = -np.inf
    j = int(np.argmax(rivals))
    d_hidden = (w2[:, j] - w2[:, y])[None, :] * (pre > 0)
    return y, (d_hidden @ w1.T).astype(np.float32)


@recipe(name="adversarial-float32", version="1.0", seed=SEED)
def float_adversarial(
    pixels: npt.NDArray[np.uint8],
    rng: np.random.Generator,
    *,
    eps: int = 8,
    alpha: int = 2,
    steps: int = 10,
) -> npt.NDArray[np.uint8]:
    """PGD with ``steps`` steps of ``alpha`` grey levels inside an ``eps`` L-inf ball."""
    h, w, c = pixels.shape
    ph, pw = h // PATCH, w // PATCH
    if ph == 0 or pw == 0:
        return pixels.copy()
    w1, w2 = model_weights(SEED)
    rgb = pixels[:, :, :3] if c >= 3 else np.repeat(pixels, 3, axis=2)
    clean = rgb.astype(np.float32)
    # A random start inside the ball, from raw generator bits (integers -eps..eps).
    start = (rng.bit_generator.random_raw(clean.size) % np.uint64(2 * eps + 1)).astype(np.int64)
    adv = np.clip(clean + (start - eps).reshape(clean.shape).astype(np.float32), 0, 255)
    lo, hi = np.maximum(clean - eps, 0), np.minimum(clean + eps, 255)
    label: int | None = None
    for _ in range(steps):
        x = _patches(adv, ph, pw) * np.float32(1 / 256) - np.float32(0.5)
        label, grad = _margin_gradient(x, w1, w2, label)
        full = np.zeros_like(clean)
        full[: ph * PATCH, : pw * PATCH, :] = _unpatch(grad, ph, pw)
        adv = np.clip(adv + np.float32(alpha) * np.sign(full), lo, hi)
    out_rgb = adv.astype(np.uint8)
    out = pixels.copy()
    if c >= 3:
        out[:, :, :3] = out_rgb
    else:
        # Greyscale: apply the mean of the three channels' steps, rounded half up.
        delta = out_rgb.astype(np.int64).sum(axis=2, keepdims=True) - 3 * pixels.astype(np.int64)
        out = np.clip(pixels.astype(np.int64) + (2 * delta + 3) // 6, 0, 255).astype(np.uint8)
    return out
