"""The ``adversarial`` recipe: an L-infinity PGD attack on a small seeded integer model.

Version 2.0 computes the same kind of attack as 1.0, but every number in it is
an integer computed exactly, so its pixels are the same on any CPU architecture
(x86-64, arm64), BLAS kernel, thread count or numpy version. Version 1.0 ran a
float32 model through the BLAS and gave other pixels on arm64 (OpenBLAS's ARMV8
kernel rounds its partial sums differently from the Haswell kernel).

The model
---------
A quantised patch network with int8 weights. Every 16x16 RGB patch of the image
is a vector ``x`` of 768 integers ``pixel - 128`` in [-128, 127]. A dense layer
of 256 units with weights ``W1`` in [-128, 127] and a ReLU gives
``h = max(x @ W1, 0)``; ``h`` is mean-pooled over the P patches (floor
division: ``s = (sum_p h_p) // P``) and mapped to 10 logits ``z = s @ W2`` with
weights ``W2`` in [-128, 127]. The weights are the top 8 bits of raw PCG64
words seeded by the recipe seed.

The attack maximises the margin ``max_{j != y} z_j - z_y`` against the clean
prediction ``y`` with ``steps`` signed-gradient steps of ``alpha`` grey levels
inside an ``eps`` ball around the original, from a random start in the ball.
Up to the positive factor 1/P, the gradient of the margin with respect to
patch ``p`` is the integer vector ``g_p = (d * [x_p @ W1 > 0]) @ W1.T`` with
``d = W2[:, j] - W2[:, y]``; only its sign is used (the floor of the pooling is
passed through as the identity, as for quantised networks).

Exactness bound: why the BLAS products are exact on any machine
---------------------------------------------------------------
The two large products, ``x @ W1`` (P x 768 by 768 x 256) and
``(d * mask) @ W1.T`` (P x 256 by 256 x 768), run through the BLAS as float32
GEMMs on integer-valued operands. Each output entry is a sum of n products
``a_k * b_k`` of integers, and *every* value a BLAS kernel can form on the way
(a product, a partial sum over any subset of the terms, in any order, with or
without fused multiply-adds, split over any number of threads, accumulated in
float32 or wider) is an integer of magnitude at most ``sum_k |a_k * b_k|``:

* forward:  ``768 * 128 * 128 = 12,582,912 < 2**24``;
* backward: ``256 * 255 * 128 =  8,355,840 < 2**23``.

Every integer of magnitude at most ``2**24`` is a float32, and IEEE 754
addition, multiplication and FMA return the exact result whenever it is
representable, so no operation rounds: the product is the exact integer
product whatever the kernel, blocking, summation order, FMA use or thread
count. (float64 would give the same bound against ``2**53`` with more
headroom, at a third of the speed here; float32 needs none: the bound is
exact, not an estimate.)

Everything whose size grows with the image is summed as integers, never in
float: the pooling sum ``sum_p h_p <= P * 2**24`` in int64, which cannot wrap
for up to ``MAX_PATCHES = 2**38`` patches (enforced; a 128 Mi-pixel image, the
decoder's limit, has 2**19). The logits ``|s @ W2| <= 256 * 2**24 * 128 =
2**39`` are an int64 product (numpy's integer matmul: no BLAS, exact).

Belt and braces: the last row of every GEMM (in the kernel's edge tile when P
is not a multiple of its height) is recomputed in int64 and compared, so a BLAS
that broke IEEE arithmetic raises :class:`~toolchain.errors.DeterminismError`
instead of silently giving other pixels.

Randomness comes only from raw PCG64 words (``bit_generator.random_raw``),
whose stream NEP 19 keeps stable; pixels stay integers throughout.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from toolchain.errors import DeterminismError
from toolchain.recipes import recipe

if TYPE_CHECKING:
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]
    Floats = npt.NDArray[np.float32]

__all__ = [
    "BACKWARD_BOUND",
    "FORWARD_BOUND",
    "MAX_PATCHES",
    "adversarial",
    "attack",
    "margin",
    "model_weights",
    "surrogate_logits",
]

SEED = 2024
PATCH = 16
HIDDEN = 256
CLASSES = 10
FEATURES = PATCH * PATCH * 3
WEIGHT_BITS = 8
"""Weights are integers in [-2**7, 2**7)."""
_W_MAX = 1 << (WEIGHT_BITS - 1)
_X_MAX = 128
"""Centred pixels ``pixel - 128`` lie in [-128, 127]."""
_MODEL_KEY = (0x6D6F64, 0x656C, 2)  # spawn key of the model weights: "mod", "el", version 2

FORWARD_BOUND = FEATURES * _X_MAX * _W_MAX
"""Largest magnitude of any partial sum of ``x @ W1``: 768 * 128 * 128 < 2**24."""
BACKWARD_BOUND = HIDDEN * (2 * _W_MAX - 1) * _W_MAX
"""Largest magnitude of any partial sum of ``(d * mask) @ W1.T``: 256 * 255 * 128 < 2**23."""
FLOAT32_EXACT = 1 << 24
"""Every integer of magnitude up to 2**24 is a float32."""
MAX_PATCHES = 1 << 38
"""Most patches an image may have: int64 sums over patches (<= P * 2**24) do not wrap."""

assert max(FORWARD_BOUND, BACKWARD_BOUND) <= FLOAT32_EXACT  # the float32 GEMMs are exact
assert MAX_PATCHES * FLOAT32_EXACT < 1 << 63  # int64 sums over patches do not wrap
assert HIDDEN * FLOAT32_EXACT * _W_MAX < 1 << 63  # int64 logits do not wrap


def _int_weights(bitgen: np.random.PCG64, shape: tuple[int, int]) -> Ints:
    """Integers in [-128, 128) from the top 8 bits of raw PCG64 words."""
    raw = bitgen.random_raw(shape[0] * shape[1]).astype(np.uint64) >> np.uint64(64 - WEIGHT_BITS)
    return (raw.astype(np.int64) - _W_MAX).reshape(shape)


@cache
def model_weights(seed: int) -> tuple[Ints, Ints]:
    """The model's integer weights ``W1`` (768 x 256) and ``W2`` (256 x 10), from the seed."""
    bitgen = np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=_MODEL_KEY))
    w1 = _int_weights(bitgen, (FEATURES, HIDDEN))
    w2 = _int_weights(bitgen, (HIDDEN, CLASSES))
    w1.setflags(write=False)
    w2.setflags(write=False)
    return w1, w2


@cache
def _gemm_operands(seed: int) -> tuple[Floats, Floats, Ints]:
    """``W1`` and ``W1.T`` as contiguous float32 (exact: |w| <= 128), and ``W1.T`` in int64."""
    w1, _ = model_weights(seed)
    w1t = np.ascontiguousarray(w1.T)
    w1f, w1tf = np.asarray(w1, dtype=np.float32), np.asarray(w1t, dtype=np.float32)
    for a in (w1f, w1tf, w1t):
        a.setflags(write=False)
    return w1f, w1tf, w1t


def exact_gemm(a: Floats, b: Floats, b_int: Ints) -> Floats:
    """``a @ b`` for integer-valued float32 operands, spot-checked against exact integers.

    The caller guarantees ``sum_k |a[i, k] * b[k, j]| <= 2**24`` (see the module
    docstring), so the BLAS product is exact. The last row (it falls in the
    kernel's edge tile when P is not a multiple of the tile height) is
    recomputed in int64; a difference raises :class:`DeterminismError`.
    """
    product = a @ b  # portable: exact integer GEMM, |partial sums| <= 2**24 (module docstring)
    expected = a[-1].astype(np.int64) @ b_int
    if not np.array_equal(product[-1].astype(np.int64), expected):
        raise DeterminismError(
            "the BLAS returned an inexact product of small integers: the adversarial "
            "recipe relies on IEEE 754 float32 arithmetic to be bit-exact",
            hint="run in the pinned container (benchmark-regen image build) and report this "
            "BLAS (`benchmark-regen env --json`) as a bug",
        )
    return product


def _patches(img: npt.NDArray[np.uint8], ph: int, pw: int) -> Floats:
    """The (P, 768) patch matrix of the image's grid of whole patches, centred: ``pixel - 128``."""
    crop = img[: ph * PATCH, : pw * PATCH, :]
    blocks = crop.reshape(ph, PATCH, pw, PATCH, 3).transpose(0, 2, 1, 3, 4)
    centred = blocks.reshape(ph * pw, FEATURES).astype(np.float32)
    centred -= np.float32(_X_MAX)
    return centred


def _unpatch(centred: Floats, ph: int, pw: int) -> npt.NDArray[np.uint8]:
    pixels = (centred + np.float32(_X_MAX)).astype(np.uint8)
    blocks = pixels.reshape(ph, pw, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(ph * PATCH, pw * PATCH, 3)


def _logits(pre: Floats, w2: Ints) -> Ints:
    """Mean-pooled ReLU features (sum in int64, floor division) times ``W2`` (in int64)."""
    pooled = np.maximum(pre, np.float32(0)).sum(axis=0, dtype=np.int64) // pre.shape[0]
    logits: Ints = pooled @ w2
    return logits


def _check_size(patches: int) -> None:
    if patches > MAX_PATCHES:
        raise DeterminismError(
            f"the image has {patches} patches of {PATCH}x{PATCH} pixels, more than the "
            f"{MAX_PATCHES} for which the adversarial recipe's sums are proven exact",
            hint="split the image into tiles before running the recipe",
        )


def _rgb(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The colour channels: RGB(A) -> RGB, greyscale -> three equal channels."""
    return pixels[:, :, :3] if pixels.shape[2] >= 3 else np.repeat(pixels[:, :, :1], 3, axis=2)


def surrogate_logits(pixels: npt.NDArray[np.uint8], *, seed: int = SEED) -> Ints:
    """The model's 10 integer logits for an image; all zero below one patch."""
    h, w, _ = pixels.shape
    ph, pw = h // PATCH, w // PATCH
    if ph == 0 or pw == 0:
        return np.zeros(CLASSES, dtype=np.int64)
    _check_size(ph * pw)
    w1f, _, _ = _gemm_operands(seed)
    w1, w2 = model_weights(seed)
    return _logits(exact_gemm(_patches(_rgb(pixels), ph, pw), w1f, w1), w2)


def margin(logits: Ints, label: int) -> int:
    """``max_{j != label} z_j - z_label``: positive once the prediction has left ``label``."""
    rivals = np.delete(logits, label)
    return int(rivals.max()) - int(logits[label])


def attack(
    rgb: npt.NDArray[np.uint8],
    start: Ints,
    *,
    eps: int,
    alpha: int,
    steps: int,
    seed: int = SEED,
) -> npt.NDArray[np.uint8]:
    """PGD on an (H, W, 3) image from the integer offsets ``start`` (same shape, in -eps..eps).

    Pixels outside the grid of whole patches keep their random start.
    """
    h, w, _ = rgb.shape
    ph, pw = h // PATCH, w // PATCH
    _check_size(ph * pw)
    w1, w2 = model_weights(seed)
    w1f, w1tf, w1t = _gemm_operands(seed)
    out: npt.NDArray[np.uint8] = np.clip(rgb.astype(np.int64) + start, 0, 255).astype(np.uint8)
    if ph == 0 or pw == 0:
        return out
    # The grid of whole patches, in patch layout: integers -128..127 held exactly in float32,
    # as are the steps and the bounds of the ball.
    clean = _patches(rgb, ph, pw)
    adv = _patches(out, ph, pw)
    lo = np.maximum(clean - np.float32(eps), np.float32(-_X_MAX))
    hi = np.minimum(clean + np.float32(eps), np.float32(_X_MAX - 1))
    label: int | None = None
    for _ in range(steps):
        pre = exact_gemm(adv, w1f, w1)
        logits = _logits(pre, w2)
        if label is None:
            label = int(np.argmax(logits))  # ties: the lowest class, exactly
        rivals = logits.copy()
        rivals[label] = np.iinfo(np.int64).min
        j = int(np.argmax(rivals))
        mask = (pre > 0).astype(np.float32)
        mask *= (w2[:, j] - w2[:, label]).astype(np.float32)
        grad = exact_gemm(mask, w1tf, w1t)
        step = np.sign(grad, out=grad)
        step *= np.float32(alpha)
        adv += step
        np.minimum(adv, hi, out=adv)
        np.maximum(adv, lo, out=adv)
    out[: ph * PATCH, : pw * PATCH, :] = _unpatch(adv, ph, pw)
    return out


@recipe(
    name="adversarial",
    version="2.0",
    seed=SEED,
    bounds={"eps": (0, 255), "alpha": (1, 255), "steps": (0, 1000)},
)
def adversarial(
    pixels: npt.NDArray[np.uint8],
    rng: np.random.Generator,
    *,
    eps: int = 8,
    alpha: int = 2,
    steps: int = 10,
) -> npt.NDArray[np.uint8]:
    """PGD with ``steps`` steps of ``alpha`` grey levels inside an ``eps`` L-inf ball."""
    h, w, c = pixels.shape
    if h < PATCH or w < PATCH:
        return pixels.copy()
    rgb = _rgb(pixels)
    # A random start inside the ball, from raw generator bits (integers -eps..eps).
    raw = rng.bit_generator.random_raw(rgb.size) % np.uint64(2 * eps + 1)
    start = (raw.astype(np.int64) - eps).reshape(rgb.shape)
    out_rgb = attack(rgb, start, eps=eps, alpha=alpha, steps=steps)
    out = pixels.copy()
    if c >= 3:
        out[:, :, :3] = out_rgb
    else:
        # Greyscale: apply the mean of the three channels' steps, rounded half up.
        delta = out_rgb.astype(np.int64).sum(axis=2, keepdims=True) - 3 * pixels.astype(np.int64)
        out = np.clip(pixels.astype(np.int64) + (2 * delta + 3) // 6, 0, 255).astype(np.uint8)
    return out
