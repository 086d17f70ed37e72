"""``diff audit``: how much a ``.bdiff`` says about the original.

Two measurements:

* **Sealed payloads look random** (needs only the diff): a chi-square test
  of each payload's byte histogram against the uniform distribution
  (255 degrees of freedom, p-value by the Wilson-Hilferty approximation), and
  of all payload bytes together. Under the null one payload in a hundred has
  p < 0.01; far more means structure leaks through the encryption.
* **What the plaintext delta alone reveals** (needs the original, so this is
  the publisher's view, or an attacker's should a key leak): the best
  zeroth-order reconstruction of the original from the delta, the
  conditional mean ``E[original | delta value, channel]`` fitted with the
  original itself (an oracle, so an upper bound for any per-value estimator),
  compared by PSNR with the best constant guess (the per-channel mean), and
  the Pearson correlation between delta and original. A PSNR gain near 0 dB
  and a correlation near 0 mean the delta carries little per-pixel
  information about the image; spatial estimators could do better, which is
  why the payloads are encrypted at all.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toolchain.decode import decode
from toolchain.diff.codec import residuals, unpack_payload
from toolchain.diff.format import PayloadKind, open_diff
from toolchain.diff.locate import unseal
from toolchain.errors import SourceError
from toolchain.source import open_source

__all__ = ["AuditReport", "SampleLeak", "audit_diff", "chi_square_uniform"]


def chi_square_uniform(counts: Sequence[int] | np.ndarray) -> tuple[float, float]:
    """``(statistic, p-value)`` of byte counts against a uniform distribution on 256 values."""
    obs = np.asarray(counts, dtype=np.float64)
    n = float(obs.sum())
    if n == 0:
        return 0.0, 1.0
    expected = n / obs.size
    stat = float(((obs - expected) ** 2).sum() / expected)
    k = obs.size - 1
    z = ((stat / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return stat, 0.5 * math.erfc(z / math.sqrt(2))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleLeak:
    id: str
    psnr_constant: float
    psnr_from_delta: float
    correlation: float

    def to_json(self) -> dict[str, object]:
        return {
            "correlation": round(self.correlation, 4),
            "id": self.id,
            "psnr_constant_db": round(self.psnr_constant, 2),
            "psnr_from_delta_db": round(self.psnr_from_delta, 2),
        }


def delta_leak(sample_id: str, original: np.ndarray, target: np.ndarray) -> SampleLeak:
    """How well the signed delta ``target - original`` predicts ``original`` (per-value oracle)."""
    delta = residuals(original, target).view(np.int8).astype(np.int64)
    orig = original.astype(np.float64)
    const = np.empty_like(orig)
    best = np.empty_like(orig)
    for ch in range(orig.shape[2]):
        o, d = orig[:, :, ch].ravel(), delta[:, :, ch].ravel() + 128
        const[:, :, ch] = o.mean()
        sums, counts = np.bincount(d, weights=o, minlength=256), np.bincount(d, minlength=256)
        best[:, :, ch] = (sums / np.maximum(counts, 1))[d].reshape(orig.shape[:2])
    o, d = orig.ravel(), delta.ravel().astype(np.float64)
    corr = 0.0 if o.std() == 0 or d.std() == 0 else float(np.corrcoef(o, d)[0, 1])
    return SampleLeak(
        id=sample_id,
        psnr_constant=_psnr(original, const),
        psnr_from_delta=_psnr(original, best),
        correlation=corr,
    )


@dataclass(frozen=True, kw_only=True)
class AuditReport:
    chi_square: float
    p_value: float
    payloads: int
    payloads_p_below_001: int
    min_p_value: float
    leaks: tuple[SampleLeak, ...]

    @property
    def mean_psnr_gain(self) -> float:
        gains = [s.psnr_from_delta - s.psnr_constant for s in self.leaks]
        return sum(gains) / len(gains) if gains else 0.0

    @property
    def max_psnr_gain(self) -> float:
        return max((s.psnr_from_delta - s.psnr_constant for s in self.leaks), default=0.0)

    @property
    def max_abs_correlation(self) -> float:
        return max((abs(s.correlation) for s in self.leaks), default=0.0)

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "sealed": {
                "chi_square": round(self.chi_square, 2),
                "p_value": round(self.p_value, 4),
                "payloads": self.payloads,
                "payloads_p_below_0.01": self.payloads_p_below_001,
                "min_p_value": round(self.min_p_value, 4),
                "degrees_of_freedom": 255,
            },
        }
        if self.leaks:
            doc["delta"] = {
                "max_abs_correlation": round(self.max_abs_correlation, 4),
                "max_psnr_gain_db": round(self.max_psnr_gain, 2),
                "mean_psnr_gain_db": round(self.mean_psnr_gain, 2),
                "samples": [s.to_json() for s in self.leaks],
            }
        return doc


def audit_diff(
    diff: str | os.PathLike[str], original: str | os.PathLike[str] | None = None
) -> AuditReport:
    """Measure the leakage of ``diff``; with ``original``, also of its plaintext deltas."""
    total = np.zeros(256, dtype=np.int64)
    ps: list[float] = []
    leaks: list[SampleLeak] = []
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(open_diff(diff))
        source = stack.enter_context(open_source(original)) if original is not None else None
        h = reader.header
        for i, sealed in reader.iter_sealed():
            counts = np.bincount(np.frombuffer(sealed, dtype=np.uint8), minlength=256)
            total += counts
            ps.append(chi_square_uniform(counts)[1])
            rec, entry = reader.records[i], reader.manifest.entries[i]
            if source is None or rec.kind is not PayloadKind.DELTA:
                continue
            try:
                data = source.read(entry.id)
            except SourceError:
                continue
            got = unseal(
                data,
                key_on=h.key_on,
                salt=h.benchmark_id,
                sample_id=entry.id,
                kind=rec.kind,
                sealed=sealed,
            )
            if got.plaintext is None:
                continue
            pixels = got.pixels if got.pixels is not None else decode(data)
            leaks.append(
                delta_leak(entry.id, pixels, unpack_payload(rec.kind, got.plaintext, pixels))
            )
    stat, p = chi_square_uniform(total)
    return AuditReport(
        chi_square=stat,
        p_value=p,
        payloads=len(ps),
        payloads_p_below_001=sum(q < 0.01 for q in ps),
        min_p_value=min(ps, default=1.0),
        leaks=tuple(leaks),
    )
