"""The leakage audit: sealed payloads look random; a telling delta is caught; membership
tests, guessable originals and a linear recipe's delta are reported (issue #15, item 9)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_image
from tests.diff_cases import build, demo_subset, pinned, tiny_original
from toolchain.diff import create_diff
from toolchain.diff.audit import (
    GUESSABLE_BITS,
    STRUCTURE_R2,
    audit_diff,
    chi_square_uniform,
    delta_leak,
)
from toolchain.diff.format import PayloadKind
from toolchain.diff.reader import open_diff
from toolchain.run.generate import generate_benchmark


def test_chi_square_separates_random_from_structured_bytes() -> None:
    rng = np.random.default_rng(7)
    uniform = np.bincount(rng.integers(0, 256, 200_000), minlength=256)
    skewed = np.bincount(np.minimum(rng.geometric(0.05, 200_000), 255), minlength=256)
    assert chi_square_uniform(uniform)[1] > 0.001
    assert chi_square_uniform(skewed)[1] < 1e-9


def test_delta_that_encodes_the_image_is_flagged() -> None:
    rng = np.random.default_rng(3)
    original = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    telling = (original // 32).astype(np.uint8)  # delta = a coarse copy of the image
    noise = rng.integers(0, 3, original.shape).astype(np.uint8)
    leak = delta_leak("x", original, (original + telling).astype(np.uint8))
    safe = delta_leak("y", original, (original + noise).astype(np.uint8))
    assert leak.psnr_from_delta - leak.psnr_constant > 10
    assert abs(leak.correlation) > 0.9
    assert safe.psnr_from_delta - safe.psnr_constant < 1


def test_audit_of_a_real_diff(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    _, diff = build(original, "adversarial", tmp_path)
    blind = audit_diff(diff)
    assert blind.payloads == 5 and not blind.leaks
    assert blind.p_value > 1e-6
    full = audit_diff(diff, original)
    with open_diff(diff) as reader:
        deltas = [r for r in reader.records if r.kind is PayloadKind.DELTA]
    assert len(full.leaks) == len(deltas) > 0
    assert full.to_json()["delta"]["samples"]  # type: ignore[index]


# -- issue #15, item 9: what an outsider learns --------------------------------------------

BOX_BLUR = '''"""A linear recipe: a k x k box blur in integer arithmetic (test-local)."""

import numpy as np

import toolchain


@toolchain.recipe(name="box-blur", version="1", seed=0, bounds={"size": (1, 31)})
def box_blur(pixels, rng, *, size: int = 3):
    k, pad = size, size // 2
    x = np.pad(pixels.astype(np.int64), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    c = np.pad(x.cumsum(0).cumsum(1), ((1, 0), (1, 0), (0, 0)))
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return ((2 * s + k * k) // (2 * k * k)).astype(np.uint8)
'''


def _benchmark(original: Path, recipe: str, work: Path, *, key_on: str = "file") -> Path:
    with pinned():
        generate_benchmark(original, recipe, work / "bench")
        create_diff(original, work / "bench", work / "x.bdiff", key_on=key_on, entries="delta")
    return work / "x.bdiff"


def test_a_box_blur_delta_rebuilds_the_photograph_and_is_flagged(
    demo_dir: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "blur.py"
    recipe.write_text(BOX_BLUR)
    original = demo_subset(demo_dir, tmp_path / "original", ("camera.png", "coins.png",
                                                              "chelsea.png"))  # fmt: skip
    diff = _benchmark(original, f"{recipe}:box_blur", tmp_path)
    report = audit_diff(diff, original)
    assert "delta-structure-leak" in report.flags
    assert len(report.leaks) == 3 and report.structure_leaks == report.leaks
    for leak in report.leaks:
        assert leak.linear_fit_r2 > 0.95, leak
        # The spatial attack beats both the constant guess and the per-value oracle.
        assert leak.psnr_rebuilt > leak.psnr_from_delta and leak.rebuilt_gain > 2, leak
    assert max(s.rebuilt_gain for s in report.leaks) > 6  # coins.png: 8.1 dB measured
    doc = report.to_json()
    assert doc["delta"]["structure"]["flagged"] == 3  # type: ignore[index]
    # The sealed bytes still look random: encryption is not what leaks here.
    assert report.payloads_p_below_001 <= 1 and "sealed-payloads-not-random" not in report.flags


def test_gaussian_noise_deltas_are_not_structure(demo_dir: Path) -> None:
    """The hardest photographs for the threshold: saturated ones, where clipped noise
    betrays 0 and 255 (horse.png, the chessboard: R^2 0.25-0.30 measured)."""
    from toolchain.codec.decode import decode
    from toolchain.recipes import load_recipe

    noise = load_recipe("gaussian-noise")
    for name in ("horse.png", "chessboard_GRAY.png", "camera.png", "logo.png", "phantom.png"):
        pixels = decode((demo_dir / name).read_bytes())
        leak = delta_leak(name, pixels, noise.apply(name, pixels))
        assert not leak.structure_leak and leak.linear_fit_r2 < 0.4, leak


@pytest.mark.slow
def test_the_gaussian_noise_demo_benchmark_is_not_flagged(demo_dir: Path, tmp_path: Path) -> None:
    diff = _benchmark(demo_dir, "gaussian-noise", tmp_path)
    report = audit_diff(diff, demo_dir)
    assert "delta-structure-leak" not in report.flags and report.leaks
    assert max(s.linear_fit_r2 for s in report.leaks) < STRUCTURE_R2
    assert "sealed-payloads-not-random" not in report.flags


def test_a_constant_colour_original_is_guessable(demo_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    original = demo_subset(demo_dir, tmp_path / "original", ("camera.png", "rocket.jpg"))
    Image.new("RGB", (96, 64), (12, 200, 77)).save(original / "flat.png")
    for key_on in ("file", "pixels"):
        diff = _benchmark(original, "identity", tmp_path / key_on, key_on=key_on)
        report = audit_diff(diff, original)
        flagged = {g.id: g for g in report.guessable}
        assert set(flagged) == {"flat.png"}, flagged
        assert flagged["flat.png"].constant and flagged["flat.png"].colours == 1
        assert "guessable-originals" in report.flags
        checkers = report.to_json()["guessable"]["checked_by"]  # type: ignore[index]
        assert any("source commitment" in c for c in checkers)
        assert any("AEAD tag" in c for c in checkers) is (key_on == "pixels")
    photos = [g for g in report.guesses if g.id != "flat.png"]
    assert photos and all(g.information_bits > 100 * GUESSABLE_BITS for g in photos)


def test_membership_is_testable_from_the_diff_alone(tmp_path: Path) -> None:
    """What the report says is true: a candidate image is tested against the manifest."""
    from toolchain.codec.decode import decode

    original = tiny_original(tmp_path / "original")
    _, diff = build(original, "gaussian-noise", tmp_path)
    report = audit_diff(diff)  # no original: the outsider's view
    assert "membership-testable" in report.flags
    member = report.to_json()["membership"]
    with open_diff(diff) as reader:
        m = reader.manifest
        assert member["entries"] == len(m.entries) > 0  # type: ignore[index]
        commitments = {e.source: e.id for e in m.entries}
    hits = {
        commitments.get(m.source_of(decode(p.read_bytes()))) for p in sorted(original.rglob("*.*"))
    }
    assert {e.id for e in m.entries} <= hits  # each used original is recognised, by id
    make_image(tmp_path / "stranger.png", seed=77)
    assert m.source_of(decode((tmp_path / "stranger.png").read_bytes())) not in commitments


def test_the_cli_reports_every_finding(demo_dir: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from toolchain.cli import cli

    recipe = tmp_path / "blur.py"
    recipe.write_text(BOX_BLUR)
    original = demo_subset(demo_dir, tmp_path / "original", ("coins.png",))
    _flat_png(original / "flat.png")
    diff = _benchmark(original, f"{recipe}:box_blur", tmp_path)
    r = CliRunner().invoke(cli, ["diff", "audit", "--diff", str(diff), "--original",
                                 str(original)])  # fmt: skip
    assert r.exit_code == 0, r.output
    said = [
        "membership: all 2 entries",
        "guessable originals: 1 of 2 carry at most 4096 bits or one colour (flat.png)",
        "plaintext deltas: 1 of 2 are mostly a linear function",  # flat.png's delta is 0
        "flags: membership-testable, guessable-originals, delta-structure-leak",
    ]
    for line in said:
        assert line in r.output, r.output
    r = CliRunner().invoke(cli, ["diff", "audit", "--diff", str(diff), "--json"])
    doc = json.loads(r.output)
    assert doc["flags"] == ["membership-testable"] and "guessable" not in doc


def _flat_png(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 48), (250, 250, 250)).save(path)
