"""toolchain.recipes.identity: the benchmark is the canonically decoded original, every sample,
so any drift it shows is decoder or encoder drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.diff_cases import pinned, tiny_original
from toolchain.codec.decode import decode
from toolchain.recipes import load_recipe
from toolchain.recipes.identity import identity
from toolchain.run.generate import generate_benchmark


def test_the_pixels_come_back_unchanged() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    assert identity(pixels, rng) is pixels
    assert rng.bit_generator.state == state  # takes no randomness


def test_the_recipe_selects_every_sample_and_has_no_parameters() -> None:
    r = load_recipe("identity")
    ident = r.identity()
    assert (r.name, r.seed, dict(ident.params)) == ("identity", 0, {})
    assert ident.select == "all"


def test_a_benchmark_of_it_is_the_decoded_original(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "orig")
    with pinned():
        result = generate_benchmark(original, "identity", tmp_path / "out")
    assert len(result.manifest.entries) == 5
    for e in result.manifest.entries:
        out = decode((tmp_path / "out" / e.path).read_bytes())
        assert np.array_equal(out, decode((original / e.id).read_bytes())), e.id
