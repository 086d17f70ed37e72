"""Drift knowledge in one place: which fingerprint fields differ, and which can explain
which cause (decoder, generator, encoder-only drift: docs/compare.md)."""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = [
    "CAUSE_KEYS",
    "DECODER_KEYS",
    "Cause",
    "decoder_versions",
    "describe_differences",
    "differences_for",
    "explains",
    "fingerprint_differences",
]

ABSENT = "(absent)"


class Cause(enum.Enum):
    """Why a sample differs: the first step of the pipeline where two runs part, in this
    order, named from evidence (``docs/compare.md``)."""

    RECIPE = "recipe or parameters differ"
    SELECTION = "different sample selection"
    ORIGINAL = "original sample differs"
    DECODER = "decoder drift"
    GENERATOR = "generator drift"
    ENCODER = "encoder-only drift"
    TAMPERED = "output file tampered"


DECODER_KEYS: tuple[str, ...] = (
    "pillow",
    "pillow.jpg",
    "pillow.libjpeg_turbo",
    "pillow.webp",
    "pillow.zlib",
    "pillow.zlib_ng",
)
"""Fingerprint keys of the libraries that decode originals (JPEG, WebP, and PNG via zlib)."""

CAUSE_KEYS: Mapping[Cause, tuple[str, ...]] = {
    Cause.DECODER: DECODER_KEYS,
    Cause.GENERATOR: (
        "numpy",
        "numpy.",
        "blas.",
        "env.",
        "pinned",
        "platform.",
        "python",
        "toolchain",
    ),
    Cause.ENCODER: ("encoder.", "pillow", "pillow.zlib", "pillow.zlib_ng", "deflate"),
}
"""Fingerprint keys (exact, or prefixes ending in ``.``) that can explain each cause."""


def explains(key: str, cause: Cause) -> bool:
    """Can a difference in fingerprint field ``key`` explain ``cause``?"""
    return any(
        key.startswith(p) if p.endswith(".") else key == p for p in CAUSE_KEYS.get(cause, ())
    )


def fingerprint_differences(
    a: Mapping[str, str], b: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Fields whose values differ, sorted: ``key -> (value in a, value in b)``."""
    return {
        k: (a.get(k, ABSENT), b.get(k, ABSENT))
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    }


def differences_for(
    cause: Cause, a: Mapping[str, str], b: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """The :func:`fingerprint_differences` of ``a`` and ``b`` that can explain ``cause``."""
    return {k: v for k, v in fingerprint_differences(a, b).items() if explains(k, cause)}


def describe_differences(diff: Mapping[str, tuple[str, str]], *, limit: int = 6) -> str:
    """``numpy: '2.4.6' vs '1.26.4', …`` for messages (the first ``limit`` fields)."""
    shown = [f"{k}: {a!r} vs {b!r}" for k, (a, b) in list(diff.items())[:limit]]
    more = len(diff) - limit
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def decoder_versions(fp: Mapping[str, str]) -> str:
    """``pillow 11.0.0, pillow.libjpeg_turbo 3.0.4, ...`` from a runtime fingerprint."""
    return ", ".join(f"{k} {fp[k]}" for k in DECODER_KEYS if k in fp) or "unknown"
