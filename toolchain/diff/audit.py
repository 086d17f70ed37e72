"""``diff audit``: what an outsider learns from a diff (membership, sealed-byte randomness,
guessable originals, structure in the deltas), measured. Method, figures and thresholds:
``docs/diff-format.md``, "Leakage (``diff audit``)"."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import zstandard

from toolchain.codec.decode import decode
from toolchain.diff.codec import residuals, unpack_payload
from toolchain.diff.format import KeyOn, PayloadKind
from toolchain.diff.locate import unseal
from toolchain.diff.reader import open_diff
from toolchain.errors import SourceError
from toolchain.source import open_source

__all__ = [
    "FEW_COLOURS",
    "GUESSABLE_BITS",
    "STRUCTURE_R2",
    "AuditReport",
    "Guessability",
    "Membership",
    "SampleLeak",
    "audit_diff",
    "chi_square_uniform",
    "delta_leak",
    "guessability",
]

GUESSABLE_BITS = 4096
"""At most this many bits of information (zstd estimate) make an original guessable."""
FEW_COLOURS = 16
"""Reported (not flagged alone): a synthetic-looking image (phantom.png has 6)."""
STRUCTURE_R2 = 0.5
"""A delta is flagged when a linear filter of its original explains at least this share
of its variance (R^2)."""
_RADIUS = 4
"""The fitted filter is (2 * 4 + 1)^2 = 81 taps."""
_FIT_SAMPLES = 20_000
_WINDOW = 1024
"""The structure attack runs on the central 1024x1024 window (bounded time and memory)."""
_ZSTD_LEVEL = 9


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


# -- guessable originals ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Guessability:
    """How easy one original is to guess (``docs/diff-format.md``, "Leakage")."""

    id: str
    colours: int
    """Distinct pixel values (tuples of channels)."""
    information_bits: int
    """Upper estimate of the image's information beyond its shape (zstd)."""

    @property
    def constant(self) -> bool:
        return self.colours == 1

    @property
    def few_colours(self) -> bool:
        return self.colours <= FEW_COLOURS

    @property
    def guessable(self) -> bool:
        return self.constant or self.information_bits <= GUESSABLE_BITS

    def to_json(self) -> dict[str, object]:
        return {
            "colours": self.colours,
            "constant": self.constant,
            "few_colours": self.few_colours,
            "guessable": self.guessable,
            "id": self.id,
            "information_bits": self.information_bits,
        }


def guessability(sample_id: str, pixels: np.ndarray) -> Guessability:
    """Estimate how guessable an original's decoded pixels are."""
    flat = np.ascontiguousarray(pixels).reshape(-1, pixels.shape[2])
    colours = len(np.unique(flat.view(np.dtype((np.void, flat.shape[1])))))
    cctx = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    size = len(cctx.compress(flat.tobytes()))
    blank = len(cctx.compress(bytes(flat.size)))
    return Guessability(id=sample_id, colours=colours, information_bits=8 * max(0, size - blank))


# -- structure in the delta ------------------------------------------------------------------


def _window(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    top, left = max(0, (h - _WINDOW) // 2), max(0, (w - _WINDOW) // 2)
    return a[top : top + _WINDOW, left : left + _WINDOW]


def _rebuild(original: np.ndarray, delta: np.ndarray) -> tuple[float, np.ndarray]:
    """The linear attack: ``(R^2 of the fitted filter, the rebuilt original)``."""
    x = original.astype(np.float64)
    d = delta.astype(np.float64)
    h, w, c = x.shape
    mean = x.mean(axis=(0, 1))
    xc = x - mean
    span = range(-_RADIUS, _RADIUS + 1)
    offsets = [(dy, dx) for dy in span for dx in span]
    if h <= 2 * _RADIUS or w <= 2 * _RADIUS or not d.any():
        return 0.0, np.broadcast_to(mean, x.shape).copy()
    rng = np.random.default_rng(0)  # the audit is reproducible
    ys = rng.integers(_RADIUS, h - _RADIUS, _FIT_SAMPLES)
    xs = rng.integers(_RADIUS, w - _RADIUS, _FIT_SAMPLES)
    cs = rng.integers(0, c, _FIT_SAMPLES)
    design = np.stack([xc[ys + dy, xs + dx, cs] for dy, dx in offsets], axis=1)
    target = d[ys, xs, cs]
    # Least squares by the normal equations (81 x 81; a whisker of ridge for the strongly
    # correlated neighbours): lstsq's SVD of the 20000 x 81 design took 1 s per sample.
    gram = design.T @ design
    gram += np.eye(len(offsets)) * (1e-9 * float(np.trace(gram)) / len(offsets) + 1e-12)
    taps = np.linalg.solve(gram, design.T @ target)
    residual = target - design @ taps
    r2 = 0.0 if target.var() == 0 else max(0.0, 1.0 - float(residual.var() / target.var()))
    # d = x correlated with the taps = x convolved with the kernel k[-o] = taps[o].
    kernel = np.zeros((h, w))
    for (dy, dx), tap in zip(offsets, taps, strict=True):
        kernel[-dy % h, -dx % w] += tap
    response = np.fft.fft2(kernel)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    prior = 1.0 / np.maximum(fy**2 + fx**2, 1.0 / (h * w))
    prior *= prior.size / prior.sum()
    noise = max(float(residual.var()), 1e-6)
    rebuilt = np.empty_like(x)
    for ch in range(c):
        signal = max(float(xc[:, :, ch].var()), 1e-6) * prior
        spectrum = np.conj(response) * np.fft.fft2(d[:, :, ch])
        spectrum /= np.abs(response) ** 2 + noise / signal
        spectrum[0, 0] = 0.0
        rebuilt[:, :, ch] = np.real(np.fft.ifft2(spectrum)) + mean[ch]
    return r2, np.clip(rebuilt, 0, 255)


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleLeak:
    """What one plaintext delta says about its original."""

    id: str
    psnr_constant: float
    """PSNR of the best constant guess (the per-channel mean)."""
    psnr_from_delta: float
    """PSNR of the per-value oracle ``E[original | delta value, channel]``."""
    correlation: float
    linear_fit_r2: float = 0.0
    """Fraction of the delta's variance a 9x9 linear filter of the original explains."""
    psnr_rebuilt: float = 0.0
    """PSNR of the original rebuilt from the delta through that filter (the attack). Over
    1024x1024 pixels: the central window's gain over the constant guess, added to
    :attr:`psnr_constant`."""

    @property
    def structure_leak(self) -> bool:
        return self.linear_fit_r2 >= STRUCTURE_R2

    @property
    def rebuilt_gain(self) -> float:
        return self.psnr_rebuilt - self.psnr_constant

    def to_json(self) -> dict[str, object]:
        return {
            "correlation": round(self.correlation, 4),
            "id": self.id,
            "linear_fit_r2": round(self.linear_fit_r2, 4),
            "psnr_constant_db": round(self.psnr_constant, 2),
            "psnr_from_delta_db": round(self.psnr_from_delta, 2),
            "psnr_rebuilt_db": round(self.psnr_rebuilt, 2),
            "structure_leak": self.structure_leak,
        }


def delta_leak(sample_id: str, original: np.ndarray, target: np.ndarray) -> SampleLeak:
    """How well the signed delta ``target - original`` reveals ``original``."""
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
    window, window_delta = _window(original), _window(delta)
    r2, rebuilt = _rebuild(window, window_delta)
    window_const = np.broadcast_to(window.astype(np.float64).mean(axis=(0, 1)), window.shape)
    return SampleLeak(
        id=sample_id,
        psnr_constant=_psnr(original, const),
        psnr_from_delta=_psnr(original, best),
        correlation=corr,
        linear_fit_r2=r2,
        psnr_rebuilt=_psnr(window, rebuilt) - _psnr(window, window_const) + _psnr(original, const),
    )


# -- membership ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Membership:
    """What lets a holder of a candidate image test whether it is an original."""

    entries: int
    """Every entry is a membership test: its commitment, its pixel digest, its fingerprint."""
    key_on: KeyOn
    manifest_version: int
    duplicates: int
    """Entries whose source commitment equals another's: the same original, used twice."""

    def to_json(self) -> dict[str, object]:
        pixels = self.key_on is KeyOn.PIXELS
        salted = self.manifest_version >= 2
        return {
            "duplicate_originals": self.duplicates,
            "entries": self.entries,
            "fingerprints": self.entries,
            "key_on": str(self.key_on),
            "pixel_digests": self.entries,
            "source_commitments": self.entries,
            "source_commitments_salted": salted,
            "testable_by": [
                "the source commitment: decode the candidate and hash it "
                + (
                    "with the benchmark's salt (computed from the manifest's recipe)"
                    if salted
                    else "(unsalted, format v1: one hash tests every benchmark made from it)"
                ),
                "the pixel digest: run the public recipe on the candidate",
                "the locating fingerprint: from the candidate's "
                + ("decoded pixels" if pixels else "file bytes"),
            ],
        }


# -- recipe entries --------------------------------------------------------------------------

RECIPE_ENTRY_REVEALS = (
    "nothing about the original beyond the sample id, which the manifest already has: a "
    "recipe entry holds no pixels, only the target's shape, sealed, and every recipe entry's "
    "sealed payload has the same length"
)


@dataclass(frozen=True, kw_only=True)
class RecipeEntries:
    """The entries that name the manifest's recipe instead of carrying pixels."""

    count: int
    recipe: str

    def to_json(self) -> dict[str, object]:
        return {"count": self.count, "recipe": self.recipe, "reveals": RECIPE_ENTRY_REVEALS}


# -- the report ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AuditReport:
    chi_square: float
    p_value: float
    payloads: int
    payloads_p_below_001: int
    min_p_value: float
    leaks: tuple[SampleLeak, ...]
    membership: Membership | None = None
    guesses: tuple[Guessability, ...] = field(default=())
    recipe_entries: RecipeEntries | None = None
    """Set when the diff holds recipe entries: their payloads are too short for the
    per-payload test (they count in the test of all bytes together)."""

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

    @property
    def structure_leaks(self) -> tuple[SampleLeak, ...]:
        return tuple(s for s in self.leaks if s.structure_leak)

    @property
    def guessable(self) -> tuple[Guessability, ...]:
        return tuple(g for g in self.guesses if g.guessable)

    @property
    def flags(self) -> tuple[str, ...]:
        """What an outsider learns, in short: the findings that hold for this diff."""
        out = []
        if self.membership is not None and self.membership.entries:
            out.append("membership-testable")
        if self.payloads and self.payloads_p_below_001 > max(1, 0.05 * self.payloads):
            out.append("sealed-payloads-not-random")
        if self.guessable:
            out.append("guessable-originals")
        if self.structure_leaks:
            out.append("delta-structure-leak")
        return tuple(out)

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "flags": list(self.flags),
            "sealed": {
                "chi_square": round(self.chi_square, 2),
                "p_value": round(self.p_value, 4),
                "payloads": self.payloads,
                "payloads_p_below_0.01": self.payloads_p_below_001,
                "min_p_value": round(self.min_p_value, 4),
                "degrees_of_freedom": 255,
            },
        }
        if self.membership is not None:
            doc["membership"] = self.membership.to_json()
        if self.recipe_entries is not None:
            doc["recipe_entries"] = self.recipe_entries.to_json()
        if self.guesses:
            key_on = self.membership.key_on if self.membership else KeyOn.FILE
            checkers = ["the source commitment (any key_on)"]
            if key_on is KeyOn.PIXELS:
                checkers += ["the AEAD tag (key_on = pixels)", "the locating fingerprint"]
            doc["guessable"] = {
                "checked_by": checkers,
                "flagged": len(self.guessable),
                "samples": [g.to_json() for g in self.guesses],
                "threshold_bits": GUESSABLE_BITS,
            }
        if self.leaks:
            rebuilt = [s.rebuilt_gain for s in self.leaks]
            doc["delta"] = {
                "max_abs_correlation": round(self.max_abs_correlation, 4),
                "max_psnr_gain_db": round(self.max_psnr_gain, 2),
                "mean_psnr_gain_db": round(self.mean_psnr_gain, 2),
                "samples": [s.to_json() for s in self.leaks],
                "structure": {
                    "flagged": len(self.structure_leaks),
                    "max_linear_fit_r2": round(max(s.linear_fit_r2 for s in self.leaks), 4),
                    "max_rebuilt_gain_db": round(max(rebuilt), 2),
                    "mean_rebuilt_gain_db": round(sum(rebuilt) / len(rebuilt), 2),
                    "r2_threshold": STRUCTURE_R2,
                },
            }
        return doc


def audit_diff(
    diff: str | os.PathLike[str], original: str | os.PathLike[str] | None = None
) -> AuditReport:
    """Measure what ``diff`` reveals; with ``original``, also its originals and deltas."""
    total = np.zeros(256, dtype=np.int64)
    ps: list[float] = []
    leaks: list[SampleLeak] = []
    guesses: list[Guessability] = []
    recipes = 0
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(open_diff(diff))
        source = stack.enter_context(open_source(original)) if original is not None else None
        h = reader.header
        entries = reader.manifest.entries
        membership = Membership(
            entries=len(entries),
            key_on=h.key_on,
            manifest_version=reader.manifest.version,
            duplicates=len(entries) - len({e.source for e in entries}),
        )
        for i, sealed in reader.iter_sealed():
            rec, entry = reader.records[i], entries[i]
            counts = np.bincount(np.frombuffer(sealed, dtype=np.uint8), minlength=256)
            total += counts
            if rec.kind is PayloadKind.RECIPE:
                recipes += 1  # 28 bytes: too few for a test of its own
            else:
                ps.append(chi_square_uniform(counts)[1])
            if source is None:
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
                continue  # not this benchmark's original: nothing to say about it
            pixels = got.pixels if got.pixels is not None else decode(data)
            guesses.append(guessability(entry.id, pixels))
            if rec.kind is PayloadKind.DELTA:
                target = unpack_payload(rec.kind, got.plaintext, pixels)
                leaks.append(delta_leak(entry.id, pixels, target))
    stat, p = chi_square_uniform(total)
    return AuditReport(
        chi_square=stat,
        p_value=p,
        payloads=len(ps),
        payloads_p_below_001=sum(q < 0.01 for q in ps),
        min_p_value=min(ps, default=1.0),
        leaks=tuple(leaks),
        membership=membership,
        guesses=tuple(guesses),
        recipe_entries=RecipeEntries(count=recipes, recipe=str(reader.manifest.recipe))
        if recipes
        else None,
    )
