"""toolchain.recipes.gaussian_noise: integer noise of the requested spread from raw generator
words only, added to the colour channels and never to alpha."""

from __future__ import annotations

import numpy as np
import pytest

from toolchain.recipes import load_recipe
from toolchain.recipes.gaussian_noise import gaussian_noise, integer_gaussian


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def test_integer_gaussian_has_the_requested_spread() -> None:
    rng = np.random.Generator(np.random.PCG64(0))
    noise = integer_gaussian(rng, (200_000,), 8.0)
    assert abs(float(noise.std()) - 8.0) < 0.1
    assert abs(float(noise.mean())) < 0.1
    assert noise.dtype == np.int64


@pytest.mark.parametrize("sigma", [0.5, 2.0, 8.0, 25.0, 60.0])
def test_mean_and_spread_on_a_fixed_seed(sigma: float) -> None:
    noise = integer_gaussian(_rng(2024), (100_000,), sigma)
    assert noise.dtype == np.int64 and noise.shape == (100_000,)
    # 5 standard errors of the mean and of the sd; the rounding to integers adds 1/12
    se = sigma / np.sqrt(100_000)
    assert abs(float(noise.mean())) < 5 * se + 0.01
    expected_sd = np.sqrt(sigma**2 + 1 / 12)
    assert abs(float(noise.std()) - expected_sd) < 5 * expected_sd / np.sqrt(2 * 100_000)
    assert abs(int(noise.max())) <= np.ceil(2 * 65535 * sigma / 37837)  # Irwin-Hall is bounded


def test_zero_sigma_is_no_noise_and_the_shape_is_kept() -> None:
    assert not integer_gaussian(_rng(), (3, 4, 2), 0.0).any()
    assert integer_gaussian(_rng(), (3, 4, 2), 8.0).shape == (3, 4, 2)


def test_the_noise_uses_one_raw_word_per_value_and_nothing_else() -> None:
    """Reproducible from (seed, count) alone: no libm, no distribution algorithm."""
    a, b = _rng(7), _rng(7)
    assert np.array_equal(integer_gaussian(a, (1000,), 8.0), integer_gaussian(b, (1000,), 8.0))
    fresh = _rng(7)
    integer_gaussian(fresh, (10,), 8.0)
    manual = _rng(7)
    manual.bit_generator.random_raw(10)
    assert fresh.bit_generator.state == manual.bit_generator.state


def test_known_answer() -> None:
    """Pinned values: a numpy or Python change that alters the noise must be noticed here."""
    assert integer_gaussian(_rng(0), (8,), 8.0).tolist() == KNOWN


KNOWN = [13, 5, -7, -11, -3, 0, 4, 8]


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_colour_channels_get_integral_noise_and_alpha_is_untouched(channels: int) -> None:
    rng = _rng(1)
    pixels = rng.integers(0, 256, (40, 30, channels), dtype=np.uint8)
    pixels[:3, :3, :] = (0, 255, 128, 77)[:channels]  # clipped at both ends too
    out = gaussian_noise(pixels, _rng(5), sigma=6.0)
    assert out.dtype == np.uint8 and out.shape == pixels.shape
    colour = min(channels, 3)
    delta = out[:, :, :colour].astype(int) - pixels[:, :, :colour].astype(int)
    inside = (pixels[:, :, :colour] > 40) & (pixels[:, :, :colour] < 215)
    assert 4.5 < float(delta[inside].std()) < 7.5 and abs(float(delta[inside].mean())) < 0.5
    if channels == 4:
        assert np.array_equal(out[:, :, 3], pixels[:, :, 3])
    assert np.array_equal(pixels[:3, :3, 0], np.zeros((3, 3)))  # the input is not modified


def test_the_recipe_is_registered_with_its_defaults() -> None:
    r = load_recipe("gaussian-noise")
    ident = r.identity()
    assert (r.name, r.seed, ident.select, dict(ident.params)) == (
        "gaussian-noise", 2024, "fraction:1/2", {"sigma": "8.0"},
    )  # fmt: skip
