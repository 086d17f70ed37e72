"""Render a comparison or a compatibility matrix: as text lines, or as a self-contained,
deterministic HTML report folder (``docs/compare.md``)."""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain._internal.atomic import TMP_PREFIX, atomic_write
from toolchain.audit.compare import (
    Comparison,
    MatrixResult,
    SampleComparison,
    Side,
    Status,
    describe_cause,
    load_pixels,
)
from toolchain.errors import OutputError, os_error_text

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "INDEX_NAME",
    "MAX_FIGURES",
    "comparison_lines",
    "diff_heatmap",
    "matrix_lines",
    "write_report",
]

INDEX_NAME = "index.html"
IMG_DIR = "img"
MAX_FIGURES = 12
"""At most this many side-by-side figures per comparison (the table lists every sample)."""


# -- text --------------------------------------------------------------------------------


def _verdict(c: Comparison) -> str:
    if c.identical:
        return "identical"
    if c.reproduces:
        return "reproduces (pixels identical, file bytes differ)"
    return "does NOT reproduce"


def comparison_lines(c: Comparison) -> Iterator[str]:
    """The text report of ``compare A B``."""
    for tag, side in (("A", c.a), ("B", c.b)):
        yield f"{tag}  {side.label}  root {side.manifest.root}  {side.manifest.recipe}"
    if c.recipe_differences:
        yield "recipe differs: " + "; ".join(c.recipe_differences)
    else:
        yield "recipe: same"
    if c.fingerprint_diff:
        yield f"fingerprint: {len(c.fingerprint_diff)} keys differ"
        width = max(len(k) for k in c.fingerprint_diff)
        for k, (va, vb) in c.fingerprint_diff.items():
            yield f"  {k:<{width}}  {va} -> {vb}"
    else:
        yield "fingerprint: same"
    for s in c.differing:
        detail = f"  {s.stats}" if s.stats is not None else ""
        yield f"{s.status.value:>17}  {s.id}  {describe_cause(s)}{detail}"
    counts = c.counts()
    summary = ", ".join(f"{n} {st.value}" for st, n in counts.items() if n)
    yield f"{_verdict(c)}: {summary or 'no samples'}"


def _causes(c: Comparison) -> str:
    counts = c.cause_counts()
    if not counts:
        return "recipe changed" if not c.same_recipe else "-"
    dominant = c.dominant_cause
    ordered = sorted(counts.items(), key=lambda kv: kv[0] is not dominant)
    return ", ".join(f"{cause.value} ({n})" for cause, n in ordered)


def _versions(c: Comparison, *, limit: int | None = None) -> str:
    items = [f"{k} {va} -> {vb}" for k, (va, vb) in c.fingerprint_diff.items()]
    if limit is not None and len(items) > limit:
        items = [*items[:limit], f"(+{len(items) - limit} more)"]
    return "; ".join(items) or "-"


def matrix_lines(m: MatrixResult) -> Iterator[str]:
    """The compatibility table of ``compare --matrix``."""
    rows = [("environment", "reproduces", "identical", "cause", "differs from reference")]
    for r in m.rows:
        c = r.comparison
        label = f"{r.label} (reference)" if r.is_reference else r.label
        rows.append(
            (
                label,
                "yes" if c.reproduces else "NO",
                "yes" if c.identical else "no",
                _causes(c),
                "-" if r.is_reference else _versions(c),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        yield "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + (
            "  " + row[4]
        )
    yield f"reference root {m.reference.manifest.root} ({m.reference.label})"


# -- images ------------------------------------------------------------------------------


def _rgb(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    import numpy as np

    c = pixels.shape[2]
    if c == 1:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def diff_heatmap(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.uint8], int]:
    """An amplified difference heat map of two same-shape outputs, and the largest difference.

    Unchanged pixels show A's luminance at a quarter of its brightness; changed
    pixels run from dark red (the smallest difference) to white (the largest),
    so even a one-level change is visible. Integer arithmetic only.
    """
    import numpy as np

    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2).astype(np.int32)
    peak = int(d.max(initial=0))
    rgb = _rgb(a).astype(np.int32)
    grey = (299 * rgb[:, :, 0] + 587 * rgb[:, :, 1] + 114 * rgb[:, :, 2]) // 4000
    level = np.where(d > 0, 64 + (d * 191) // max(peak, 1), 0)
    hot = np.stack(
        [np.clip(3 * level, 0, 255), np.clip(3 * level - 255, 0, 255),
         np.clip(3 * level - 510, 0, 255)],
        axis=2,
    )  # fmt: skip
    out = np.where((d > 0)[:, :, None], hot, grey[:, :, None])
    return np.ascontiguousarray(out.astype(np.uint8)), peak


# -- HTML --------------------------------------------------------------------------------

_CSS = """
:root { --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --line:#d0d7de; --muted:#57606a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:#1f2328;
       margin: 0 auto; padding: 24px 32px 48px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.sub { color: var(--muted); margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600;
        font-size: 12px; color: #fff; white-space: nowrap; }
.pill.ok { background: var(--ok); } .pill.bad { background: var(--bad); }
.pill.warn { background: var(--warn); } .pill.ref { background: var(--muted); }
ul.keys { margin: 0; padding-left: 16px; } ul.keys li { overflow-wrap: anywhere; }
.figs { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 10px;
        margin: 6px 0 18px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px;
         background: #fafbfc; }
figure img { width: 100%; height: auto; display: block; image-rendering: pixelated;
             background: #fff; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
.note { color: var(--muted); }
"""


_LEGEND = (
    "identical: same pixels and same file bytes. reproduces: same pixels (the contract), "
    "other PNG bytes. Causes: decoder drift = the original decodes to other pixels; "
    "generator drift = same decoded input, other output (numpy, BLAS); encoder-only drift = "
    "same pixels, other PNG bytes (zlib)."
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pill(c: Comparison, *, reference: bool = False) -> str:
    if reference:
        return '<span class="pill ref">reference</span>'
    if c.identical:
        return '<span class="pill ok">identical</span>'
    if c.reproduces:
        return '<span class="pill warn">reproduces (bytes differ)</span>'
    return '<span class="pill bad">does not reproduce</span>'


def _keys_html(c: Comparison) -> str:
    if not c.fingerprint_diff:
        return "-"
    items = "".join(
        f"<li><code>{_e(k)}</code> {_e(va)} &rarr; <b>{_e(vb)}</b></li>"
        for k, (va, vb) in c.fingerprint_diff.items()
    )
    return f'<ul class="keys">{items}</ul>'


@dataclass
class _Images:
    """Writes the report's PNGs, numbered in report order."""

    folder: Path
    count: int = 0

    def write(self, pixels: npt.NDArray[np.uint8], role: str) -> str:
        from toolchain.codec.encode import encode_png

        name = f"{IMG_DIR}/{self.count:03d}-{role}.png"
        atomic_write(self.folder / name, encode_png(pixels))
        return name


def _figures(c: Comparison, images: _Images) -> Iterator[str]:
    shown = 0
    differing = [s for s in c.samples if s.status is Status.PIXELS_DIFFER]
    for s in differing:
        if shown == MAX_FIGURES:
            yield f'<p class="note">{len(differing) - shown} more differing samples not shown.</p>'
            return
        fig = _figure(c, s, images)
        if fig:
            shown += 1
            yield fig


def _figure(c: Comparison, s: SampleComparison, images: _Images) -> str:
    assert s.a is not None and s.b is not None
    pa, pb = load_pixels(c.a, s.a), load_pixels(c.b, s.b)
    if isinstance(pa, str) or isinstance(pb, str) or pa.shape != pb.shape:
        return ""
    heat, peak = diff_heatmap(pa, pb)
    name_a = images.write(pa, "a")
    name_b = images.write(pb, "b")
    name_d = images.write(heat, "diff")
    images.count += 1
    h, w = pa.shape[:2]

    def fig(src: str, caption: str) -> str:
        return (
            f'<figure><img src="{_e(src)}" width="{w}" height="{h}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )

    return (
        f"<h3><code>{_e(s.id)}</code> &mdash; {_e(describe_cause(s))}</h3>"
        f'<div class="figs">{fig(name_a, f"A: {c.a.label}")}{fig(name_b, f"B: {c.b.label}")}'
        f"{fig(name_d, f'difference (max |d| {peak}; any change is red or brighter)')}</div>"
    )


def _sample_table(c: Comparison) -> Iterator[str]:
    differing = c.differing
    counts = ", ".join(f"{n} {st.value}" for st, n in c.counts().items() if n)
    yield f'<p class="sub">{_e(counts or "no samples")}</p>'
    if not differing:
        return
    yield "<table><tr><th>sample</th><th>status</th><th>cause</th><th>pixels</th></tr>"
    for s in differing:
        stats = "" if s.stats is None else str(s.stats)
        yield (
            f"<tr><td><code>{_e(s.id)}</code></td><td>{_e(s.status.value)}</td>"
            f"<td>{_e(describe_cause(s))}</td><td>{_e(stats)}</td></tr>"
        )
    yield "</table>"


def _side_row(tag: str, side: Side) -> str:
    return (
        f"<tr><th>{tag}</th><td>{_e(side.label)}</td><td><code>{_e(side.manifest.root)}</code>"
        f"</td><td>{_e(side.manifest.recipe)}</td>"
        f'<td class="num">{len(side.manifest.entries)}</td></tr>'
    )


def _comparison_html(c: Comparison, images: _Images) -> Iterator[str]:
    yield "<h1>benchmark-regen compare</h1>"
    yield f'<p class="sub">{_pill(c)} {_e(_verdict(c))}</p>'
    yield "<table><tr><th></th><th>benchmark</th><th>root</th><th>recipe</th><th>samples</th></tr>"
    yield _side_row("A", c.a)
    yield _side_row("B", c.b)
    yield "</table>"
    if c.recipe_differences:
        items = "".join(f"<li>{_e(d)}</li>" for d in c.recipe_differences)
        yield f"<p><b>The recipes differ:</b></p><ul>{items}</ul>"
    yield "<h2>Runtime fingerprint</h2>"
    yield _keys_html(c) if c.fingerprint_diff else '<p class="note">identical</p>'
    yield "<h2>Samples</h2>"
    yield from _sample_table(c)
    yield from _figures(c, images)


def _matrix_html(m: MatrixResult, images: _Images) -> Iterator[str]:
    yield "<h1>benchmark-regen compatibility matrix</h1>"
    yield (
        f'<p class="sub">reference <b>{_e(m.reference.label)}</b>: root '
        f"<code>{_e(m.reference.manifest.root)}</code>, {_e(m.reference.manifest.recipe)}</p>"
    )
    yield (
        "<table><tr><th>environment</th><th>result</th><th>root</th><th>cause</th>"
        "<th>differs from the reference</th></tr>"
    )
    for r in m.rows:
        c = r.comparison
        yield (
            f"<tr><td><b>{_e(r.label)}</b></td><td>{_pill(c, reference=r.is_reference)}</td>"
            f"<td><code>{_e(c.b.manifest.root.short)}</code></td><td>{_e(_causes(c))}</td>"
            f"<td>{'-' if r.is_reference else _keys_html(c)}</td></tr>"
        )
    yield "</table>"
    yield f'<p class="note">{_e(_LEGEND)}</p>'
    for r in m.rows:
        if r.is_reference or r.comparison.identical:
            continue
        yield f"<h2>{_e(r.label)} against {_e(m.reference.label)}</h2>"
        yield from _sample_table(r.comparison)
        yield from _figures(r.comparison, images)


def _page(title: str, body: Sequence[str]) -> bytes:
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
    )
    return (head + "\n".join(body) + "\n</body></html>\n").encode("utf-8")


def _prepare(out: Path) -> None:
    """Make ``out`` an empty report folder; only an old report there may be replaced."""
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"--report {out} exists and is not a folder")
        for child in out.iterdir():
            old_report = child.name == INDEX_NAME or child.name.startswith(TMP_PREFIX)
            if not (old_report or (child.name == IMG_DIR and child.is_dir())):
                raise OutputError(
                    f"--report {out} holds {child.name!r}, which is not part of a report",
                    hint="choose an empty or new folder for the report",
                )
        (out / INDEX_NAME).unlink(missing_ok=True)
        if (out / IMG_DIR).is_dir():
            shutil.rmtree(out / IMG_DIR)
    out.mkdir(parents=True, exist_ok=True)


def write_report(result: Comparison | MatrixResult, out: str | os.PathLike[str]) -> Path:
    """Write the HTML report of ``result`` into folder ``out``; returns the index path."""
    folder = Path(out)
    try:
        _prepare(folder)
        images = _Images(folder)
        if isinstance(result, MatrixResult):
            body = list(_matrix_html(result, images))
            title = f"compatibility matrix: {result.reference.label}"
        else:
            body = list(_comparison_html(result, images))
            title = f"compare {result.a.label} / {result.b.label}"
        # The index goes last: a folder with an index.html is a complete report.
        atomic_write(folder / INDEX_NAME, _page(title, body))
    except OSError as e:
        raise OutputError(
            f"cannot write the report to {folder}: {os_error_text(e)}",
            hint="check free space and permissions",
        ) from None
    return folder / INDEX_NAME
