"""``compare``: what differs between two benchmarks, and why, read from the three digests of
each manifest entry; writes nothing (``docs/compare.md``)."""

from __future__ import annotations

import enum
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain.errors import DecodeError, ManifestError, os_error_text
from toolchain.model.drift import CAUSE_KEYS, Cause, explains, fingerprint_differences
from toolchain.model.hashing import pixel_digest
from toolchain.model.manifest import MANIFEST_NAME, Manifest, ManifestEntry, load_manifest

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "CAUSE_KEYS",
    "Cause",
    "Comparison",
    "MatrixResult",
    "MatrixRow",
    "PixelStats",
    "SampleComparison",
    "Side",
    "Status",
    "compare_benchmarks",
    "compare_matrix",
    "compare_sides",
    "describe_cause",
    "load_pixels",
    "open_side",
]


class Status(enum.Enum):
    """How one sample compares."""

    IDENTICAL = "identical"
    PIXELS_DIFFER = "pixels differ"
    FILE_DIFFERS = "file bytes differ"
    """Same pixels, different PNG bytes: the benchmark still reproduces."""
    MISSING_IN_A = "missing in A"
    MISSING_IN_B = "missing in B"
    LABELS_DIFFER = "path or columns differ"
    """Same pixels, but stored at another path or with other carried columns (a label):
    what a loader yields differs, so the benchmark does not reproduce."""


# Severity order: when counts tie, the earlier cause is reported as dominant.
_CAUSE_ORDER = (Cause.RECIPE, Cause.DECODER, Cause.GENERATOR, Cause.ENCODER, Cause.SELECTION)


@dataclass(frozen=True, kw_only=True)
class Side:
    """One side of a comparison: a manifest and, for a folder, its pixels."""

    label: str
    manifest: Manifest
    folder: Path | None
    """The benchmark folder, or ``None`` when only a manifest was given."""

    def to_json(self) -> dict[str, object]:
        return {
            "folder": None if self.folder is None else str(self.folder),
            "label": self.label,
            "recipe": str(self.manifest.recipe),
            "root": str(self.manifest.root),
            "samples": len(self.manifest.entries),
        }


def open_side(path: str | os.PathLike[str], *, label: str | None = None) -> Side:
    """A benchmark folder (``manifest.json`` plus outputs) or a bare manifest file."""
    p = Path(path)
    if p.is_dir():
        if not (p / MANIFEST_NAME).is_file():
            raise ManifestError(
                f"{p} is a folder without a {MANIFEST_NAME}",
                hint="pass a benchmark folder written by `generate`, or a manifest file",
            )
        return Side(label=label or p.name, manifest=load_manifest(p / MANIFEST_NAME), folder=p)
    return Side(label=label or p.name, manifest=load_manifest(p), folder=None)


@dataclass(frozen=True, kw_only=True)
class PixelStats:
    """How much two outputs differ, from their decoded pixels."""

    values: int
    """Number of pixel values (H x W x C) compared."""
    differing: int
    max_abs: int
    psnr_db: float | None
    """PSNR in dB (peak 255); ``None`` when the outputs are equal or not comparable."""
    note: str = ""
    """Why the values could not be compared (shape differs, file missing), else empty."""

    @property
    def fraction(self) -> float:
        return self.differing / self.values if self.values else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "differing": self.differing,
            "fraction": self.fraction,
            "max_abs": self.max_abs,
            "note": self.note,
            "psnr_db": self.psnr_db,
            "values": self.values,
        }

    def __str__(self) -> str:
        if self.note:
            return self.note
        psnr = "inf" if self.psnr_db is None else f"{self.psnr_db:.1f}"
        return (
            f"{self.differing} of {self.values} values ({100 * self.fraction:.3f}%), "
            f"max |d| {self.max_abs}, PSNR {psnr} dB"
        )


@dataclass(frozen=True, kw_only=True)
class SampleComparison:
    """One sample id, compared across A and B."""

    id: str
    status: Status
    cause: Cause | None = None
    keys: tuple[str, ...] = ()
    """Fingerprint keys that differ and can explain ``cause``."""
    a: ManifestEntry | None = None
    b: ManifestEntry | None = None
    stats: PixelStats | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "a": None if self.a is None else self.a.to_json(),
            "b": None if self.b is None else self.b.to_json(),
            "cause": None if self.cause is None else self.cause.value,
            "id": self.id,
            "keys": list(self.keys),
            "stats": None if self.stats is None else self.stats.to_json(),
            "status": self.status.value,
        }


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """The result of comparing benchmark A with benchmark B."""

    a: Side
    b: Side
    recipe_differences: tuple[str, ...]
    """Recipe identity fields that differ, as ``field: A -> B``; empty when the same."""
    fingerprint_diff: Mapping[str, tuple[str, str]]
    """Fingerprint keys whose values differ: key -> (value in A, value in B)."""
    samples: tuple[SampleComparison, ...]

    @property
    def same_recipe(self) -> bool:
        return not self.recipe_differences

    @property
    def reproduces(self) -> bool:
        """Same recipe, and every sample has the same pixels, path and columns in A and B.

        That is the pixel contract (for two manifests of one format version, the same root
        hash); only the PNG bytes may differ (encoder-only drift).
        """
        return self.same_recipe and all(
            s.status in (Status.IDENTICAL, Status.FILE_DIFFERS) for s in self.samples
        )

    @property
    def identical(self) -> bool:
        """Reproduces, and every output file is byte-identical too."""
        return self.reproduces and all(s.status is Status.IDENTICAL for s in self.samples)

    def counts(self) -> dict[Status, int]:
        c = Counter(s.status for s in self.samples)
        return {st: c.get(st, 0) for st in Status}

    def cause_counts(self) -> dict[Cause, int]:
        c = Counter(s.cause for s in self.samples if s.cause is not None)
        return {cause: c[cause] for cause in _CAUSE_ORDER if c.get(cause)}

    @property
    def dominant_cause(self) -> Cause | None:
        """The most frequent cause among samples whose *pixels* differ or are missing.

        Encoder-only drift is dominant only when no pixel differs: it does not
        break the benchmark, so it must not hide a cause that does.
        """
        causes = [s.cause for s in self.samples if s.cause is not None]
        pool: Counter[Cause] = Counter(c for c in causes if c is not Cause.ENCODER)
        pool = pool or Counter(causes)
        if not pool:
            return Cause.RECIPE if not self.same_recipe else None
        return max(_CAUSE_ORDER, key=lambda c: (pool.get(c, 0), -_CAUSE_ORDER.index(c)))

    @property
    def differing(self) -> tuple[SampleComparison, ...]:
        return tuple(s for s in self.samples if s.status is not Status.IDENTICAL)

    def to_json(self) -> dict[str, object]:
        dominant = self.dominant_cause
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "cause_counts": {c.value: n for c, n in self.cause_counts().items()},
            "counts": {s.value: n for s, n in self.counts().items()},
            "dominant_cause": None if dominant is None else dominant.value,
            "fingerprint_diff": {k: list(v) for k, v in sorted(self.fingerprint_diff.items())},
            "identical": self.identical,
            "recipe_differences": list(self.recipe_differences),
            "reproduces": self.reproduces,
            "samples": [s.to_json() for s in self.differing],
            "same_recipe": self.same_recipe,
        }


# -- the steps ---------------------------------------------------------------------------


def _recipe_differences(a: Manifest, b: Manifest) -> tuple[str, ...]:
    ja, jb = a.recipe.to_json(), b.recipe.to_json()
    out: list[str] = []
    for key in sorted(set(ja) | set(jb)):
        va, vb = ja.get(key), jb.get(key)
        if key == "params" and isinstance(va, dict) and isinstance(vb, dict):
            for p in sorted(set(va) | set(vb)):
                if va.get(p) != vb.get(p):
                    out.append(f"params.{p}: {va.get(p, '(unset)')} -> {vb.get(p, '(unset)')}")
        elif va != vb:
            out.append(f"{key}: {va} -> {vb}")
    return tuple(out)


def _classify(
    a: ManifestEntry | None,
    b: ManifestEntry | None,
    *,
    same_recipe: bool,
    fp_keys: Sequence[str],
    sources_comparable: bool = True,
) -> tuple[Status, Cause | None, tuple[str, ...]]:
    """Status, cause and the fingerprint keys that explain it, for one sample."""
    if a is None or b is None:
        status = Status.MISSING_IN_A if a is None else Status.MISSING_IN_B
        return status, Cause.RECIPE if not same_recipe else Cause.SELECTION, ()
    if a.pixels == b.pixels:
        if a.path != b.path or dict(a.columns) != dict(b.columns):
            return Status.LABELS_DIFFER, None if same_recipe else Cause.RECIPE, ()
        if a.file == b.file:
            return Status.IDENTICAL, None, ()
        cause = Cause.ENCODER
        status = Status.FILE_DIFFERS
    elif sources_comparable and a.source != b.source:
        cause, status = Cause.DECODER, Status.PIXELS_DIFFER
    elif not same_recipe:
        return Status.PIXELS_DIFFER, Cause.RECIPE, ()
    else:
        cause, status = Cause.GENERATOR, Status.PIXELS_DIFFER
    return status, cause, tuple(k for k in fp_keys if explains(k, cause))


def load_pixels(side: Side, entry: ManifestEntry) -> npt.NDArray[np.uint8] | str:
    """The canonical pixels of one output of a folder side, or why they are unusable."""
    from toolchain.codec.decode import decode

    if side.folder is None:
        return "pixels not available: pass the benchmark folder, not its manifest"
    path = side.folder / entry.path
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"cannot read {entry.path} in {side.label}: {os_error_text(e)}"
    try:
        pixels = decode(data)
    except DecodeError as e:
        return f"cannot decode {entry.path} in {side.label}: {e.message}"
    if pixel_digest(pixels) != entry.pixels:
        return f"{entry.path} in {side.label} does not match its manifest (run verify)"
    return pixels


def pixel_stats(a: npt.NDArray[np.uint8] | str, b: npt.NDArray[np.uint8] | str) -> PixelStats:
    """Count, fraction, largest difference and PSNR between two outputs."""
    import numpy as np

    if isinstance(a, str) or isinstance(b, str):
        return PixelStats(values=0, differing=0, max_abs=0, psnr_db=None,
                          note=a if isinstance(a, str) else str(b))  # fmt: skip
    if a.shape != b.shape:
        return PixelStats(
            values=0, differing=0, max_abs=0, psnr_db=None,
            note=f"shapes differ: {'x'.join(map(str, a.shape))} vs {'x'.join(map(str, b.shape))}",
        )  # fmt: skip
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    differing = int(np.count_nonzero(diff))
    # Integer sum of squares: exact, so the PSNR does not depend on summation order.
    sse = int(np.sum(diff.astype(np.int64) ** 2))
    psnr = None if sse == 0 else 10 * math.log10(255**2 * diff.size / sse)
    return PixelStats(values=int(diff.size), differing=differing,
                      max_abs=int(diff.max(initial=0)), psnr_db=psnr)  # fmt: skip


def _environment(m: Manifest) -> dict[str, str]:
    """The fingerprint plus the encoder's identity (as ``encoder.<field>``): what made it."""
    env = dict(m.fingerprint)
    env.update({f"encoder.{k}": str(v) for k, v in m.encoder_identity.items()})
    return env


def compare_sides(a: Side, b: Side, *, pixels: bool = True) -> Comparison:
    """Compare two opened sides. With ``pixels``, differing outputs of folders are measured."""
    recipe_diff = _recipe_differences(a.manifest, b.manifest)
    fp_diff = fingerprint_differences(_environment(a.manifest), _environment(b.manifest))
    # Format v1 committed to plain source pixels, v2 to salted ones: not comparable.
    comparable = a.manifest.version == b.manifest.version
    ea, eb = a.manifest.by_id(), b.manifest.by_id()
    samples: list[SampleComparison] = []
    for sid in sorted(set(ea) | set(eb), key=lambda s: s.encode("utf-8")):
        x, y = ea.get(sid), eb.get(sid)
        status, cause, keys = _classify(
            x, y, same_recipe=not recipe_diff, fp_keys=list(fp_diff), sources_comparable=comparable
        )
        stats = None
        measurable = pixels and a.folder is not None and b.folder is not None
        if measurable and status is Status.PIXELS_DIFFER and x is not None and y is not None:
            stats = pixel_stats(load_pixels(a, x), load_pixels(b, y))
        samples.append(
            SampleComparison(id=sid, status=status, cause=cause, keys=keys, a=x, b=y, stats=stats)
        )
    return Comparison(
        a=a, b=b, recipe_differences=recipe_diff, fingerprint_diff=fp_diff, samples=tuple(samples)
    )


def compare_benchmarks(
    a: str | os.PathLike[str], b: str | os.PathLike[str], *, pixels: bool = True
) -> Comparison:
    """Compare benchmark (folder or manifest) ``a`` with ``b``."""
    side_a, side_b = open_side(a, label=os.fspath(a)), open_side(b, label=os.fspath(b))
    return compare_sides(side_a, side_b, pixels=pixels)


# -- the compatibility matrix ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MatrixRow:
    """One environment of the matrix, compared with the reference."""

    comparison: Comparison
    is_reference: bool = False

    @property
    def label(self) -> str:
        return self.comparison.b.label

    @property
    def versions(self) -> dict[str, tuple[str, str]]:
        """Fingerprint keys that differ from the reference: key -> (reference, this)."""
        return dict(self.comparison.fingerprint_diff)

    def to_json(self) -> dict[str, object]:
        c = self.comparison
        dominant = c.dominant_cause
        return {
            "cause_counts": {k.value: n for k, n in c.cause_counts().items()},
            "counts": {k.value: n for k, n in c.counts().items()},
            "dominant_cause": None if dominant is None else dominant.value,
            "fingerprint_diff": {k: list(v) for k, v in sorted(c.fingerprint_diff.items())},
            "identical": c.identical,
            "is_reference": self.is_reference,
            "label": self.label,
            "reproduces": c.reproduces,
            "root": str(c.b.manifest.root),
            "samples": [s.to_json() for s in c.differing],
        }


@dataclass(frozen=True, kw_only=True)
class MatrixResult:
    """Every environment against the reference; the reference is the first row."""

    reference: Side
    rows: tuple[MatrixRow, ...] = field(default_factory=tuple)

    @property
    def identical(self) -> bool:
        return all(r.comparison.identical for r in self.rows)

    @property
    def reproduces(self) -> bool:
        return all(r.comparison.reproduces for r in self.rows)

    def to_json(self) -> dict[str, object]:
        return {
            "identical": self.identical,
            "reference": self.reference.to_json(),
            "reproduces": self.reproduces,
            "rows": [r.to_json() for r in self.rows],
        }


def _labels(paths: Sequence[Path]) -> list[str]:
    """Short, distinct labels: the path parts left after dropping a shared prefix and suffix.

    ``.matrix/np126-pil10/demo`` and ``.matrix/locked/demo`` become ``np126-pil10``
    and ``locked``.
    """
    parts = [(p.parent if p.name == MANIFEST_NAME else p).resolve().parts for p in paths]
    if len(parts) < 2:
        return [q[-1] if q else str(p) for q, p in zip(parts, paths, strict=True)]
    pre = 0
    while all(len(q) > pre + 1 and q[pre] == parts[0][pre] for q in parts):
        pre += 1
    suf = 0
    while all(len(q) - suf - 1 > pre and q[-1 - suf] == parts[0][-1 - suf] for q in parts):
        suf += 1
    labels = ["/".join(q[pre : len(q) - suf]) for q in parts]
    if len(set(labels)) != len(labels):  # the same path twice: fall back to indices
        labels = [f"{i}:{lab}" for i, lab in enumerate(labels)]
    return labels


def _labelled(paths: Sequence[Path]) -> list[Side]:
    return [open_side(p, label=lab) for p, lab in zip(paths, _labels(paths), strict=True)]


def compare_matrix(
    paths: Sequence[str | os.PathLike[str]],
    *,
    reference: str | os.PathLike[str] | None = None,
    pixels: bool = True,
) -> MatrixResult:
    """Compare every environment's benchmark with the reference (default: the first)."""
    all_paths = [Path(p) for p in paths]
    if reference is not None:
        ref = Path(reference)
        all_paths = [ref, *(p for p in all_paths if p.resolve() != ref.resolve())]
    if len(all_paths) < 2:
        raise ManifestError(
            "a matrix needs at least two benchmarks",
            hint="pass one folder (or manifest) per environment; the first is the reference",
        )
    sides = _labelled(all_paths)
    ref_side = sides[0]
    rows = tuple(
        MatrixRow(comparison=compare_sides(ref_side, s, pixels=pixels), is_reference=i == 0)
        for i, s in enumerate(sides)
    )
    return MatrixResult(reference=ref_side, rows=rows)


def describe_cause(sample: SampleComparison) -> str:
    """``"generator drift (numpy, blas.vendor)"``: the cause and the keys that explain it."""
    if sample.cause is None:
        return "-"
    if sample.keys:
        return f"{sample.cause.value} ({', '.join(sample.keys)})"
    if sample.cause in (Cause.DECODER, Cause.GENERATOR, Cause.ENCODER):
        return f"{sample.cause.value} (no recorded library differs)"
    return str(sample.cause.value)
