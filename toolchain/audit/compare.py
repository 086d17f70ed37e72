"""``compare``: which samples of two benchmarks differ and why, measured on the files on
disk (either output format) or, with ``trust_manifests``, read from the manifests alone;
writes nothing (``docs/compare.md``)."""

from __future__ import annotations

import contextlib
import enum
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toolchain.audit.measure import (
    Found,
    OnDisk,
    Outputs,
    PixelStats,
    PixelView,
    measure,
    pixel_view,
)
from toolchain.errors import ManifestError
from toolchain.model.drift import CAUSE_KEYS, Cause, explains, fingerprint_differences
from toolchain.model.hashing import Digest
from toolchain.model.manifest import MANIFEST_NAME, Manifest, ManifestEntry, load_manifest
from toolchain.run.outdir import benchmark_format

__all__ = [
    "MAX_FIGURES",
    "Cause",
    "Comparison",
    "Difference",
    "MatrixResult",
    "MatrixRow",
    "SampleComparison",
    "Side",
    "Status",
    "compare_benchmarks",
    "compare_matrix",
    "compare_sides",
    "open_side",
]

MAX_FIGURES = 12
"""Differing samples per comparison whose pixels are kept, small, for the report's figures."""


class Status(enum.Enum):
    """How one sample compares."""

    IDENTICAL = "identical"
    PIXELS_DIFFER = "pixels differ"
    FILE_DIFFERS = "file bytes differ"
    """Same pixels, different PNG bytes: the benchmark still reproduces."""
    MISSING_IN_A = "missing in A"
    MISSING_IN_B = "missing in B"
    LABELS_DIFFER = "path or columns differ"
    """Same pixels, other carried columns (a label): what a loader yields differs."""
    FILE_MISSING = "output file missing"
    """A manifest lists the sample, its file (or parquet row) is not there."""
    FILE_REFUSED = "output file refused"
    """The file is a symlink, not a regular file, too large, or unreadable."""
    FILE_TAMPERED = "output file tampered"
    """The file is there but does not match its own manifest entry (``verify`` fails)."""


_ON_DISK = {Found.MISSING: Status.FILE_MISSING, Found.REFUSED: Status.FILE_REFUSED,
            Found.TAMPERED: Status.FILE_TAMPERED}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One field that differs, with its value in A and in B. The values come from the
    manifests and files compared: untrusted text, to escape and shorten when shown."""

    field: str
    a: str
    b: str

    def to_json(self) -> dict[str, str]:
        return {"a": self.a, "b": self.b, "field": self.field}


@dataclass(frozen=True, kw_only=True)
class Side:
    """One side of a comparison: a manifest and, for a benchmark folder, its outputs."""

    label: str
    manifest: Manifest
    folder: Path | None
    """The benchmark folder, or ``None`` when only a manifest was given."""
    format: str | None = None
    """``folder`` or ``parquet`` (the benchmark's output format); ``None`` for a manifest."""

    def to_json(self) -> dict[str, object]:
        return {
            "folder": None if self.folder is None else str(self.folder),
            "format": self.format,
            "label": self.label,
            "recipe": str(self.manifest.recipe),
            "root": str(self.manifest.root),
            "samples": len(self.manifest.entries),
        }


def open_side(path: str | os.PathLike[str], *, label: str | None = None) -> Side:
    """A benchmark folder (``manifest.json`` plus outputs, either format) or a manifest file."""
    p = Path(path)
    if p.is_dir():
        if not (p / MANIFEST_NAME).is_file():
            raise ManifestError(
                f"{p} is a folder without a {MANIFEST_NAME}",
                hint="pass a benchmark folder written by `generate`, or a manifest file",
            )
        manifest = load_manifest(p / MANIFEST_NAME)
        return Side(label=label or p.name, manifest=manifest, folder=p, format=benchmark_format(p))
    return Side(label=label or p.name, manifest=load_manifest(p), folder=None)


@dataclass(frozen=True, kw_only=True)
class SampleComparison:
    """One sample id, compared across A and B."""

    id: str
    status: Status
    cause: Cause | None = None
    keys: tuple[str, ...] = ()
    """Fingerprint keys that differ and can explain ``cause``."""
    differences: tuple[Difference, ...] = ()
    """The evidence: what differs at the step ``cause`` names, and what is wrong on disk."""
    a: ManifestEntry | None = None
    b: ManifestEntry | None = None
    stats: PixelStats | None = None
    view: PixelView | None = field(default=None, compare=False, repr=False)
    """For the report: the first :data:`MAX_FIGURES` samples whose pixels differ."""

    def to_json(self) -> dict[str, object]:
        return {
            "a": None if self.a is None else self.a.to_json(),
            "b": None if self.b is None else self.b.to_json(),
            "cause": None if self.cause is None else self.cause.value,
            "differences": [d.to_json() for d in self.differences],
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
    recipe_differences: tuple[Difference, ...]
    """Recipe identity fields (``params.<name>`` each) that differ; empty when the same."""
    fingerprint_diff: Mapping[str, tuple[str, str]]
    """Fingerprint keys whose values differ: key -> (value in A, value in B)."""
    samples: tuple[SampleComparison, ...]
    trust_manifests: bool = False
    """Only the manifests were read: no output file was measured."""
    side_problems: tuple[str, ...] = ()
    """What is wrong with a side's shards as a whole (rows not in its manifest, twice, or
    out of order): what a loader yields is not what the manifest lists."""

    def measured(self, side: Side) -> bool:
        """Were ``side``'s output files read and checked against its manifest?"""
        return side.folder is not None and not self.trust_manifests

    @property
    def same_recipe(self) -> bool:
        return not self.recipe_differences

    @property
    def reproduces(self) -> bool:
        """Same recipe, every sample has the same pixels, path and columns in A and B, and
        every file read matches its manifest: the pixel contract (only PNG bytes may differ)."""
        return (
            self.same_recipe
            and not self.side_problems
            and all(s.status in (Status.IDENTICAL, Status.FILE_DIFFERS) for s in self.samples)
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
        return {cause: c[cause] for cause in Cause if c.get(cause)}

    @property
    def dominant_cause(self) -> Cause | None:
        """The most frequent cause among samples whose pixels differ, are missing or are
        not what their manifest says; encoder-only drift only when nothing else is found
        (it does not break the benchmark, so it must not hide a cause that does)."""
        causes = [s.cause for s in self.samples if s.cause is not None]
        pool: Counter[Cause] = Counter(c for c in causes if c is not Cause.ENCODER)
        pool = pool or Counter(causes)
        if not pool:
            return Cause.RECIPE if not self.same_recipe else None
        order = list(Cause)
        return max(order, key=lambda c: (pool.get(c, 0), -order.index(c)))

    @property
    def differing(self) -> tuple[SampleComparison, ...]:
        return tuple(s for s in self.samples if s.status is not Status.IDENTICAL)

    def to_json(self) -> dict[str, object]:
        dominant = self.dominant_cause
        return {
            "a": self.a.to_json() | {"measured": self.measured(self.a)},
            "b": self.b.to_json() | {"measured": self.measured(self.b)},
            "cause_counts": {c.value: n for c, n in self.cause_counts().items()},
            "counts": {s.value: n for s, n in self.counts().items()},
            "dominant_cause": None if dominant is None else dominant.value,
            "fingerprint_diff": {k: list(v) for k, v in sorted(self.fingerprint_diff.items())},
            "identical": self.identical,
            "recipe_differences": [d.to_json() for d in self.recipe_differences],
            "reproduces": self.reproduces,
            "samples": [s.to_json() for s in self.differing],
            "same_recipe": self.same_recipe,
            "side_problems": list(self.side_problems),
            "trust_manifests": self.trust_manifests,
        }


# -- classifying -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Context:
    """What both manifests say as a whole, worked out once for every sample."""

    recipe: tuple[Difference, ...]
    fingerprint: Mapping[str, tuple[str, str]]
    comparable: bool
    """Source commitments compare: one format version (v1 committed to plain pixels,
    v2 to salted ones) and, with the same recipe, the same salt."""
    original: tuple[Difference, ...]
    """The original's recorded identity (Hub repo, commit, config, split), where it differs."""
    listing: tuple[Difference, ...]
    """The number of samples the original held, where it differs."""

    @classmethod
    def of(cls, a: Manifest, b: Manifest) -> _Context:
        ra, rb = a.provenance.original, b.provenance.original
        original: tuple[Difference, ...] = ()
        if ra is not None and rb is not None:
            original = tuple(
                Difference(field=f"original {f}", a=getattr(ra, f), b=getattr(rb, f))
                for f in ra.differs_from(rb, revision=True)
            )
        na, nb = a.provenance.samples_in_original, b.provenance.samples_in_original
        listing = () if na == nb else (Difference(field="samples in the original", a=str(na),
                                                   b=str(nb)),)  # fmt: skip
        return cls(
            recipe=_recipe_differences(a, b),
            fingerprint=fingerprint_differences(_environment(a), _environment(b)),
            comparable=a.version == b.version,
            original=original,
            listing=listing,
        )

    def keys(self, cause: Cause) -> tuple[str, ...]:
        if cause not in CAUSE_KEYS:
            return ()
        return tuple(k for k in self.fingerprint if explains(k, cause))

    def values(self, keys: Sequence[str]) -> tuple[Difference, ...]:
        return tuple(
            Difference(field=k, a=self.fingerprint[k][0], b=self.fingerprint[k][1]) for k in keys
        )


def _recipe_differences(a: Manifest, b: Manifest) -> tuple[Difference, ...]:
    ja, jb = a.recipe.to_json(), b.recipe.to_json()
    out: list[Difference] = []
    for key in sorted(set(ja) | set(jb)):
        va, vb = ja.get(key), jb.get(key)
        if key == "params" and isinstance(va, dict) and isinstance(vb, dict):
            for p in sorted(set(va) | set(vb)):
                if va.get(p) != vb.get(p):
                    out.append(Difference(field=f"params.{p}", a=str(va.get(p, "(unset)")),
                                          b=str(vb.get(p, "(unset)"))))  # fmt: skip
        elif va != vb:
            out.append(Difference(field=key, a=str(va), b=str(vb)))
    return tuple(out)


def _environment(m: Manifest) -> dict[str, str]:
    """The fingerprint plus the encoder's identity (as ``encoder.<field>``): what made it."""
    env = dict(m.fingerprint)
    env.update({f"encoder.{k}": str(v) for k, v in m.encoder_identity.items()})
    return env


_Verdict = tuple[Cause | None, tuple[str, ...], tuple[Difference, ...]]


def _cause(a: ManifestEntry, b: ManifestEntry, fa: Digest, fb: Digest, ctx: _Context) -> _Verdict:
    """The first step where the two manifest entries part, in pipeline order, and why.

    ``fa``, ``fb``: the file digests to compare (those measured, for a v1 manifest).
    """
    same_pixels, same_file = a.pixels == b.pixels, fa == fb
    columns = tuple(
        Difference(field=f"columns.{k}", a=str(a.columns.get(k, "(unset)")),
                   b=str(b.columns.get(k, "(unset)")))
        for k in sorted(set(a.columns) | set(b.columns))
        if a.columns.get(k) != b.columns.get(k)
    )  # fmt: skip
    if same_pixels and same_file and not columns:
        return None, (), ()
    if ctx.recipe:
        return Cause.RECIPE, (), ctx.recipe
    source = ctx.comparable and a.source != b.source
    if source or columns:
        commitment = (Difference(field="source commitment", a=a.source.short, b=b.source.short),)
        evidence = columns + (commitment if source else ())
        keys = ctx.keys(Cause.DECODER)
        if ctx.original or columns or not keys:  # nothing that decodes it differs
            return Cause.ORIGINAL, (), ctx.original + evidence
        return Cause.DECODER, keys, ctx.values(keys) + evidence
    if not same_pixels:
        keys = ctx.keys(Cause.GENERATOR)
        pixels = Difference(field="pixels", a=a.pixels.short, b=b.pixels.short)
        return Cause.GENERATOR, keys, (*ctx.values(keys), pixels)
    keys = ctx.keys(Cause.ENCODER)
    return Cause.ENCODER, keys, (*ctx.values(keys), Difference(field="file", a=fa.short,
                                                                b=fb.short))  # fmt: skip


def _classify(
    a: ManifestEntry | None,
    b: ManifestEntry | None,
    ra: OnDisk | None,
    rb: OnDisk | None,
    ctx: _Context,
) -> tuple[Status, Cause | None, tuple[str, ...], tuple[Difference, ...]]:
    """Status, cause, the fingerprint keys that explain it, and the evidence, for one sample.
    ``ra``, ``rb``: the sample's files as read (``None``: not read)."""
    bad = [(tag, e, r) for tag, e, r in (("A", a, ra), ("B", b, rb))
           if e is not None and r is not None and r.found is not Found.MATCHES]  # fmt: skip
    on_disk = tuple(Difference(field=f"{tag} {e.path}", a=f"manifest: {r.recorded}",
                               b=f"on disk: {r.seen}") for tag, e, r in bad)  # fmt: skip
    if a is None or b is None:
        status = Status.MISSING_IN_A if a is None else Status.MISSING_IN_B
        if ctx.recipe:
            return status, Cause.RECIPE, (), ctx.recipe + on_disk
        return status, Cause.SELECTION, (), ctx.listing + on_disk
    # the file digests compared: those on disk where they may differ from the manifest (v1)
    fa = ra.file if ra is not None and ra.file is not None and not bad else a.file
    fb = rb.file if rb is not None and rb.file is not None and not bad else b.file
    cause, keys, evidence = _cause(a, b, fa, fb, ctx)
    if bad:
        return _ON_DISK[bad[0][2].found], cause or Cause.TAMPERED, keys, evidence + on_disk
    if cause is None:
        status = Status.IDENTICAL
    elif a.pixels != b.pixels:
        status = Status.PIXELS_DIFFER
    elif dict(a.columns) != dict(b.columns):
        status = Status.LABELS_DIFFER
    else:
        status = Status.FILE_DIFFERS
    return status, cause, keys, evidence


def _pairs(
    ea: Sequence[ManifestEntry], eb: Sequence[ManifestEntry]
) -> Iterator[tuple[str, ManifestEntry | None, ManifestEntry | None]]:
    """Both sides' entries by id, in id order (UTF-8 bytes, as manifests sort them)."""
    ia, ib = iter(ea), iter(eb)
    x, y = next(ia, None), next(ib, None)
    while x is not None or y is not None:
        kx = None if x is None else x.id.encode("utf-8")
        ky = None if y is None else y.id.encode("utf-8")
        if ky is None or (kx is not None and kx < ky):
            assert x is not None
            yield x.id, x, None
            x = next(ia, None)
        elif kx is None or ky < kx:
            assert y is not None
            yield y.id, None, y
            y = next(ib, None)
        else:
            assert x is not None and y is not None
            yield x.id, x, y
            x, y = next(ia, None), next(ib, None)


def _measured(ra: OnDisk, rb: OnDisk, *, view: bool) -> tuple[PixelStats | None, PixelView | None]:
    """Statistics (and, if asked, the report's view) of two outputs read from disk."""
    if ra.pixels is None or rb.pixels is None:
        return None, None
    stats, per_pixel = measure(ra.pixels, rb.pixels)
    return stats, pixel_view(ra.pixels, rb.pixels, per_pixel) if view else None


def compare_sides(
    a: Side, b: Side, *, trust_manifests: bool = False, figures: int = MAX_FIGURES
) -> Comparison:
    """Compare two opened sides. Each output file of a folder side is read once, checked
    against its manifest entry and, where the pixels differ, measured; with
    ``trust_manifests`` only the manifests are read. ``figures``: how many differing
    samples keep a :class:`PixelView` for the report."""
    ctx = _Context.of(a.manifest, b.manifest)
    samples: list[SampleComparison] = []
    shown = 0
    with contextlib.ExitStack() as stack:
        da, db = (
            None if side.folder is None or trust_manifests
            else stack.enter_context(Outputs(side.folder, side.manifest,
                                             format=side.format or "folder"))
            for side in (a, b)
        )  # fmt: skip
        for sid, x, y in _pairs(a.manifest.entries, b.manifest.entries):
            ra = None if da is None or x is None else da.read(x)
            rb = None if db is None or y is None else db.read(y)
            status, cause, keys, evidence = _classify(x, y, ra, rb, ctx)
            stats = view = None
            if ra is not None and rb is not None and ra.digest != rb.digest:
                stats, view = _measured(ra, rb, view=shown < figures)
                shown += view is not None
            samples.append(SampleComparison(id=sid, status=status, cause=cause, keys=keys,
                                            differences=evidence, a=x, b=y, stats=stats,
                                            view=view))  # fmt: skip
        problems = tuple(
            f"{tag}: {problem}" for tag, d in (("A", da), ("B", db)) if d for problem in d.finish()
        )
    return Comparison(a=a, b=b, recipe_differences=ctx.recipe, fingerprint_diff=ctx.fingerprint,
                      samples=tuple(samples), trust_manifests=trust_manifests,
                      side_problems=problems)  # fmt: skip


def compare_benchmarks(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    trust_manifests: bool = False,
    figures: int = MAX_FIGURES,
) -> Comparison:
    """Compare benchmark (folder of either format, or manifest) ``a`` with ``b``."""
    side_a, side_b = open_side(a, label=os.fspath(a)), open_side(b, label=os.fspath(b))
    return compare_sides(side_a, side_b, trust_manifests=trust_manifests, figures=figures)


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
            "measured": c.measured(c.b),
            "reproduces": c.reproduces,
            "root": str(c.b.manifest.root),
            "samples": [s.to_json() for s in c.differing],
            "side_problems": list(c.side_problems),
        }


@dataclass(frozen=True, kw_only=True)
class MatrixResult:
    """Every environment against the reference; the reference is the first row."""

    reference: Side
    rows: tuple[MatrixRow, ...] = field(default_factory=tuple)
    trust_manifests: bool = False

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
            "trust_manifests": self.trust_manifests,
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


def compare_matrix(
    paths: Sequence[str | os.PathLike[str]],
    *,
    reference: str | os.PathLike[str] | None = None,
    trust_manifests: bool = False,
    figures: int = MAX_FIGURES,
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
    sides = [open_side(p, label=lab) for p, lab in zip(all_paths, _labels(all_paths), strict=True)]
    rows = []
    for i, side in enumerate(sides):
        c = compare_sides(sides[0], side, trust_manifests=trust_manifests, figures=figures)
        rows.append(MatrixRow(comparison=c, is_reference=i == 0))
    return MatrixResult(reference=sides[0], rows=tuple(rows), trust_manifests=trust_manifests)
