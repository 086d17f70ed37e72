"""Render a comparison or a compatibility matrix: as text lines for a terminal, or as one
self-contained, deterministic HTML file with its images inlined (``docs/compare.md``)."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain._internal import safefs
from toolchain._internal.atomic import atomic_write
from toolchain.audit.compare import (
    MAX_FIGURES,
    Cause,
    Comparison,
    Difference,
    MatrixResult,
    SampleComparison,
    Side,
)
from toolchain.errors import OutputError, os_error_text

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from toolchain.audit.measure import PixelView

    Pixels = npt.NDArray[np.uint8]

__all__ = [
    "INDEX_NAME",
    "MAX_FIGURES",
    "comparison_lines",
    "describe_cause",
    "diff_heatmap",
    "matrix_lines",
    "shown",
    "write_report",
]

INDEX_NAME = "index.html"
MAX_ROWS = 500
"""Samples listed per comparison in the HTML table (``--json`` lists every one)."""
ZOOM_TO = 480
"""The crops are enlarged (nearest neighbour, a whole factor) to about this many pixels."""
_GENERATOR = '<meta name="generator" content="benchmark-regen compare report">'
"""How an earlier report is recognised (the only file ``write_report`` replaces)."""
_MAX_OLD_REPORT = 256 << 20
_BOX = (0, 200, 255)
"""The colour of the crop's outline in the small images."""


# -- text --------------------------------------------------------------------------------


def shown(text: object, limit: int = 40) -> str:
    """Untrusted text for a terminal: every unprintable character escaped (``\\x1b``), the
    middle elided past ``limit`` characters."""
    s = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text)
    )
    if len(s) <= limit:
        return s
    tail = (limit - 1) // 3
    return f"{s[: limit - 1 - tail]}…{s[len(s) - tail :]}"


def _difference(d: Difference, limit: int = 40) -> str:
    return f"{shown(d.field, limit)}: {shown(d.a, limit)} -> {shown(d.b, limit)}"


def describe_cause(sample: SampleComparison, *, items: int = 4) -> str:
    """``generator drift (blas.coretype: Haswell -> Sandybridge; pixels: 3f2a... -> 9c1e...)``:
    the cause and its evidence, shortened and escaped."""
    if sample.cause is None:
        return "-"
    parts = [_difference(d) for d in sample.differences[:items]]
    if len(sample.differences) > items:
        parts.append(f"+{len(sample.differences) - items} more")
    if sample.cause in (Cause.GENERATOR, Cause.ENCODER) and not sample.keys:
        parts.insert(0, "no recorded library differs")
    return f"{sample.cause.value} ({'; '.join(parts)})" if parts else sample.cause.value


def _verdict(c: Comparison) -> str:
    if c.identical:
        return "identical"
    if c.reproduces:
        return "reproduces (pixels identical, file bytes differ)"
    return "does NOT reproduce"


def _files(c: Comparison) -> str:
    if c.trust_manifests:
        return "files: not read (--trust-manifests): compared as the manifests record them"
    parts = []
    for tag, side in (("A", c.a), ("B", c.b)):
        if c.measured(side):
            parts.append(f"{tag} measured on disk ({side.format})")
        else:
            parts.append(f"{tag} is a manifest only (its files were not read)")
    return "files: " + ", ".join(parts)


def comparison_lines(c: Comparison) -> Iterator[str]:
    """The text report of ``compare A B``."""
    for tag, side in (("A", c.a), ("B", c.b)):
        yield (
            f"{tag}  {shown(side.label, 80)}  root {side.manifest.root}  "
            f"{shown(side.manifest.recipe, 80)}"
        )
    yield _files(c)
    if c.recipe_differences:
        yield "recipe differs: " + "; ".join(_difference(d) for d in c.recipe_differences)
    else:
        yield "recipe: same"
    if c.fingerprint_diff:
        yield f"fingerprint: {len(c.fingerprint_diff)} keys differ"
        width = min(max(len(k) for k in c.fingerprint_diff), 40)
        for k, (va, vb) in c.fingerprint_diff.items():
            yield f"  {shown(k):<{width}}  {shown(va)} -> {shown(vb)}"
    else:
        yield "fingerprint: same"
    for s in c.differing:
        detail = f"  {s.stats}" if s.stats is not None else ""
        yield f"{s.status.value:>20}  {shown(s.id, 80)}  {describe_cause(s)}{detail}"
    for problem in c.side_problems:
        yield f"{'shards':>20}  {shown(problem, 120)}"
    counts = ", ".join(f"{n} {st.value}" for st, n in c.counts().items() if n)
    yield f"{_verdict(c)}: {counts or 'no samples'}"


def _causes(c: Comparison) -> str:
    counts = c.cause_counts()
    if not counts:
        return Cause.RECIPE.value if not c.same_recipe else "-"
    dominant = c.dominant_cause
    ordered = sorted(counts.items(), key=lambda kv: kv[0] is not dominant)
    return ", ".join(f"{cause.value} ({n})" for cause, n in ordered)


def _versions(c: Comparison) -> str:
    items = [f"{shown(k)} {shown(va)} -> {shown(vb)}" for k, (va, vb) in c.fingerprint_diff.items()]
    return "; ".join(items) or "-"


def matrix_lines(m: MatrixResult) -> Iterator[str]:
    """The compatibility table of ``compare --matrix``."""
    rows = [("environment", "reproduces", "identical", "cause", "differs from reference")]
    for r in m.rows:
        c = r.comparison
        label = f"{shown(r.label, 60)} (reference)" if r.is_reference else shown(r.label, 60)
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
        cells = "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
        yield f"{cells}  {row[4]}"
    yield f"reference root {m.reference.manifest.root} ({shown(m.reference.label, 80)})"
    if m.trust_manifests:
        yield "files: not read (--trust-manifests): compared as the manifests record them"


# -- images ------------------------------------------------------------------------------


def _rgb(pixels: Pixels) -> Pixels:
    import numpy as np

    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def _heat(base: Pixels, d: Pixels, peak: int) -> Pixels:
    """``base``'s luminance at a quarter of its brightness where ``d`` is 0, else dark red
    (the smallest difference) to white (``peak``). Integer arithmetic only."""
    import numpy as np

    rgb = _rgb(base).astype(np.int32)
    grey = (299 * rgb[:, :, 0] + 587 * rgb[:, :, 1] + 114 * rgb[:, :, 2]) // 4000
    d32 = d.astype(np.int32)
    level = np.where(d32 > 0, 64 + (d32 * 191) // max(peak, 1), 0)
    hot = np.stack(
        [np.clip(3 * level, 0, 255), np.clip(3 * level - 255, 0, 255),
         np.clip(3 * level - 510, 0, 255)],
        axis=2,
    )  # fmt: skip
    out = np.where((d32 > 0)[:, :, None], hot, grey[:, :, None])
    return np.ascontiguousarray(out.astype(np.uint8))


def diff_heatmap(a: Pixels, b: Pixels) -> tuple[Pixels, int]:
    """An amplified difference heat map of two same-shape outputs, and the largest difference:
    even a one-level change is visible."""
    import numpy as np

    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)
    peak = int(d.max(initial=0))
    return _heat(a, d, peak), peak


def _zoom(pixels: Pixels, factor: int) -> Pixels:
    import numpy as np

    return np.ascontiguousarray(np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1))


def _outline(pixels: Pixels, box: tuple[int, int, int, int]) -> Pixels:
    """``pixels`` (RGB) with a two-pixel outline just outside ``box``."""
    import numpy as np

    out = pixels.copy()
    h, w = out.shape[:2]
    top, left, bottom, right = box
    colour = np.array(_BOX, dtype=np.uint8)
    y_lo, y_hi, x_lo, x_hi = (
        max(top - 2, 0),
        min(bottom + 2, h),
        max(left - 2, 0),
        min(right + 2, w),
    )
    for y in (top - 2, top - 1, bottom, bottom + 1):
        if 0 <= y < h:
            out[y, x_lo:x_hi] = colour
    for x in (left - 2, left - 1, right, right + 1):
        if 0 <= x < w:
            out[y_lo:y_hi, x] = colour
    return out


def _data_uri(pixels: Pixels) -> str:
    from toolchain.codec.encode import encode_png

    return "data:image/png;base64," + base64.b64encode(encode_png(pixels)).decode("ascii")


# -- HTML --------------------------------------------------------------------------------

_CSS = """
:root { --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --line:#d0d7de; --muted:#57606a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:#1f2328;
       margin: 0 auto; padding: 24px 32px 48px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; }
h3 { font-size: 15px; margin: 24px 0 4px; overflow-wrap: anywhere; }
p.sub { color: var(--muted); margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600;
        font-size: 12px; color: #fff; white-space: nowrap; }
.pill.ok { background: var(--ok); } .pill.bad { background: var(--bad); }
.pill.warn { background: var(--warn); } .pill.ref { background: var(--muted); }
ul.keys { margin: 0; padding-left: 16px; } ul.keys li { overflow-wrap: anywhere; }
.figs { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 10px;
        margin: 6px 0 10px; }
.figs.two { grid-template-columns: repeat(2, minmax(0, 1fr)); }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px;
         background: #fafbfc; }
figure img { width: 100%; height: auto; display: block; image-rendering: pixelated;
             background: #fff; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
.note { color: var(--muted); }
"""

_LEGEND = (
    "identical: same pixels and same file bytes. reproduces: same pixels (the contract), "
    "other PNG bytes. Causes, the first step where A and B part: recipe or parameters; "
    "the original sample (its source commitment); decoder drift (the original decodes to "
    "other pixels under another decoder); generator drift (same input, other output: numpy, "
    "BLAS); encoder-only drift (same pixels, other PNG bytes); output file tampered (a file "
    "does not match its own manifest)."
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


def _fig(src: str, width: int, height: int, caption: str) -> str:
    return (
        f'<figure><img src="{src}" width="{width}" height="{height}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _figure(c: Comparison, s: SampleComparison, v: PixelView) -> str:
    """One differing sample: the changed region of A, B and the difference, enlarged; then A
    and the difference whole, small, with the crop outlined."""
    y0, x0, y1, x1 = v.window
    zoom = max(1, ZOOM_TO // max(y1 - y0, x1 - x0))
    ch, cw = (y1 - y0) * zoom, (x1 - x0) * zoom
    top, left, bottom, right = v.changed
    small = (y0 // v.step, x0 // v.step, -(-y1 // v.step), -(-x1 // v.step))
    sa, sd = _rgb(v.small_a), _heat(v.small_a, v.small_diff, v.peak)
    sh, sw = sa.shape[:2]
    where = (
        f"changed: rows {top}-{bottom - 1}, columns {left}-{right - 1} of {v.width}x{v.height}; "
        f"shown: rows {y0}-{y1 - 1}, columns {x0}-{x1 - 1}, enlarged x{zoom}"
    )
    crops = (
        _fig(_data_uri(_zoom(_rgb(v.crop_a), zoom)), cw, ch, f"A: {c.a.label}"),
        _fig(_data_uri(_zoom(_rgb(v.crop_b), zoom)), cw, ch, f"B: {c.b.label}"),
        _fig(_data_uri(_zoom(_heat(v.crop_a, v.crop_diff, v.peak), zoom)), cw, ch,
             f"difference (max |d| {v.peak}; any change is red or brighter)"),
    )  # fmt: skip
    whole = (
        _fig(_data_uri(_outline(sa, small)), sw, sh, f"A whole ({v.width}x{v.height}, 1:{v.step})"),
        _fig(_data_uri(_outline(sd, small)), sw, sh,
             f"difference whole (each pixel: the largest |d| of its {v.step}x{v.step} block)"),
    )  # fmt: skip
    stats = f"; {s.stats}" if s.stats is not None else ""
    return (
        f"<h3><code>{_e(s.id)}</code> &mdash; {_e(describe_cause(s))}</h3>"
        f'<p class="sub">{_e(s.status.value)}{_e(stats)}<br>{_e(where)}</p>'
        f'<div class="figs">{"".join(crops)}</div><div class="figs two">{"".join(whole)}</div>'
    )


def _figures(c: Comparison) -> Iterator[str]:
    with_view = [s for s in c.samples if s.view is not None]
    for s in with_view:
        assert s.view is not None
        yield _figure(c, s, s.view)
    pixels_differ = sum(s.stats is not None and s.stats.differing > 0 for s in c.samples)
    if pixels_differ > len(with_view):
        yield (
            f'<p class="note">{pixels_differ - len(with_view)} more samples whose pixels '
            f"differ are not shown (at most {MAX_FIGURES} figures per comparison).</p>"
        )


def _sample_table(c: Comparison) -> Iterator[str]:
    differing = c.differing
    counts = ", ".join(f"{n} {st.value}" for st, n in c.counts().items() if n)
    yield f'<p class="sub">{_e(counts or "no samples")}</p>'
    if c.side_problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in c.side_problems)
        yield f"<p><b>The shards are not what the manifest lists:</b></p><ul>{items}</ul>"
    if not differing:
        return
    yield "<table><tr><th>sample</th><th>status</th><th>cause</th><th>pixels</th></tr>"
    for s in differing[:MAX_ROWS]:
        stats = "" if s.stats is None else str(s.stats)
        yield (
            f"<tr><td><code>{_e(s.id)}</code></td><td>{_e(s.status.value)}</td>"
            f"<td>{_e(describe_cause(s, items=8))}</td><td>{_e(stats)}</td></tr>"
        )
    yield "</table>"
    if len(differing) > MAX_ROWS:
        yield f'<p class="note">{len(differing) - MAX_ROWS} more samples: see --json.</p>'


def _side_row(tag: str, c: Comparison, side: Side) -> str:
    files = f"measured ({side.format})" if c.measured(side) else "manifest only"
    return (
        f"<tr><th>{tag}</th><td>{_e(side.label)}</td><td><code>{_e(side.manifest.root)}</code>"
        f"</td><td>{_e(side.manifest.recipe)}</td>"
        f'<td class="num">{len(side.manifest.entries)}</td><td>{_e(files)}</td></tr>'
    )


def _comparison_html(c: Comparison) -> Iterator[str]:
    yield "<h1>benchmark-regen compare</h1>"
    yield f'<p class="sub">{_pill(c)} {_e(_verdict(c))}. {_e(_files(c))}</p>'
    yield (
        "<table><tr><th></th><th>benchmark</th><th>root</th><th>recipe</th><th>samples</th>"
        "<th>files</th></tr>"
    )
    yield _side_row("A", c, c.a)
    yield _side_row("B", c, c.b)
    yield "</table>"
    if c.recipe_differences:
        items = "".join(
            f"<li><code>{_e(d.field)}</code> {_e(d.a)} &rarr; <b>{_e(d.b)}</b></li>"
            for d in c.recipe_differences
        )
        yield f"<p><b>The recipes differ:</b></p><ul>{items}</ul>"
    yield "<h2>Runtime fingerprint</h2>"
    yield _keys_html(c) if c.fingerprint_diff else '<p class="note">identical</p>'
    yield "<h2>Samples</h2>"
    yield from _sample_table(c)
    yield from _figures(c)
    yield f'<p class="note">{_e(_LEGEND)}</p>'


def _matrix_html(m: MatrixResult) -> Iterator[str]:
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
        if r.comparison.identical:
            continue
        yield f"<h2>{_e(r.label)} against {_e(m.reference.label)}</h2>"
        yield from _sample_table(r.comparison)
        yield from _figures(r.comparison)


def _page(title: str, body: Sequence[str]) -> bytes:
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"{_GENERATOR}\n"
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
    )
    return (head + "\n".join(body) + "\n</body></html>\n").encode("utf-8")


def _is_report(folder: Path) -> bool:
    try:
        head = safefs.read_file(folder, INDEX_NAME, limit=_MAX_OLD_REPORT)[:512]
    except OSError:  # a link, a FIFO, too large: not ours
        return False
    return head.startswith(b"<!DOCTYPE html>") and _GENERATOR.encode() in head


def _prepare(out: Path) -> None:
    """Write only into a folder made here, an empty one, or one that holds an earlier report
    (its ``index.html``, replaced; nothing is ever deleted)."""
    try:
        out.mkdir(parents=True)
        return
    except FileExistsError:
        pass
    if not out.is_dir():
        raise OutputError(f"--report {out} exists and is not a folder",
                          hint="name a new folder for the report")  # fmt: skip
    for child in sorted(os.listdir(out)):
        ours = child == INDEX_NAME and _is_report(out)
        if not ours and not child.startswith(safefs.TMP_PREFIX):
            raise OutputError(
                f"--report {out} holds {shown(child)!r}, which is not part of a report by "
                "benchmark-regen compare; nothing was written",
                hint="name a new or empty folder for the report",
            )


def write_report(result: Comparison | MatrixResult, out: str | os.PathLike[str]) -> Path:
    """Write the HTML report of ``result`` as ``out/index.html``, one file with its images
    inlined, byte-identical for the same result; returns its path."""
    folder = Path(out)
    try:
        _prepare(folder)
        if isinstance(result, MatrixResult):
            body = list(_matrix_html(result))
            title = f"compatibility matrix: {result.reference.label}"
        else:
            body = list(_comparison_html(result))
            title = f"compare {result.a.label} / {result.b.label}"
        atomic_write(folder / INDEX_NAME, _page(title, body))
    except OSError as e:
        raise OutputError(
            f"cannot write the report to {folder}: {os_error_text(e)}",
            hint="check free space and permissions",
        ) from None
    return folder / INDEX_NAME
