"""The leakage audit: sealed payloads look random; a telling delta is caught."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.diff_cases import build, tiny_original
from toolchain.diff.audit import audit_diff, chi_square_uniform, delta_leak
from toolchain.diff.format import PayloadKind, open_diff


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
