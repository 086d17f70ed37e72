"""The ``gaussian-noise`` recipe: a seeded half of the original with additive noise.

The noise is an Irwin-Hall(4) approximation of a Gaussian computed in integer
arithmetic: each value is the sum of four 16-bit lanes of one raw PCG64 word,
centred and scaled by ``sigma / 37837`` (the lanes' standard deviation is
37837.23) with round-half-up integer division. No libm call, SIMD path or
distribution algorithm that numpy may change (NEP 19) can alter a pixel.
Alpha channels are left untouched.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from toolchain.recipes import recipe

if TYPE_CHECKING:
    import numpy.typing as npt

_LANE_SD = 37837
_LANE_MEAN_X4 = 2 * 65535


def integer_gaussian(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: float
) -> npt.NDArray[np.int64]:
    """Integer noise with standard deviation ``sigma`` from raw generator output only."""
    count = int(np.prod(shape))
    raw = rng.bit_generator.random_raw(count).astype(np.uint64)
    mask = np.uint64(0xFFFF)
    total = np.zeros(count, dtype=np.int64)
    for shift in (0, 16, 32, 48):
        total += ((raw >> np.uint64(shift)) & mask).astype(np.int64)
    centred = total - _LANE_MEAN_X4
    q = Fraction(str(sigma))
    num, den = q.numerator, q.denominator * _LANE_SD
    return ((2 * centred * num + den) // (2 * den)).reshape(shape)


# sigma: 0 (no noise) to 255 grey levels (beyond that every value clips); a negative or
# absurd sigma is refused before any sample is read.
@recipe(
    name="gaussian-noise", version="1.0", seed=2024, select="1/2", bounds={"sigma": (0.0, 255.0)}
)
def gaussian_noise(
    pixels: npt.NDArray[np.uint8], rng: np.random.Generator, *, sigma: float = 8.0
) -> npt.NDArray[np.uint8]:
    """Add noise of standard deviation ``sigma`` grey levels to the colour channels."""
    channels = 3 if pixels.shape[2] == 4 else pixels.shape[2]
    colour = pixels[:, :, :channels].astype(np.int64)
    noisy = np.clip(colour + integer_gaussian(rng, colour.shape, sigma), 0, 255)
    out = pixels.copy()
    out[:, :, :channels] = noisy.astype(np.uint8)
    return out
