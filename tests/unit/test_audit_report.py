"""report: one deterministic, self-contained HTML file (images inlined, cropped, enlarged),
its size bound, the folder it may write to, heat map, terminal-safe text tables."""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from tests import compare_cases as cc
from toolchain.audit.compare import (
    Cause,
    Comparison,
    SampleComparison,
    Status,
    compare_benchmarks,
    compare_matrix,
    open_side,
)
from toolchain.audit.measure import pixel_view
from toolchain.audit.report import (
    ZOOM_TO,
    comparison_lines,
    diff_heatmap,
    matrix_lines,
    shown,
    write_report,
)
from toolchain.codec.decode import decode
from toolchain.errors import OutputError
from toolchain.model.manifest import MANIFEST_NAME, load_manifest, write_manifest

MB = 1 << 20


@pytest.fixture(scope="module")
def drifted_pair(
    tmp_path_factory: pytest.TempPathFactory, small_original: Path
) -> tuple[Path, Path]:
    """Reference and a decoder-drifted twin (both made in this process)."""
    root = tmp_path_factory.mktemp("pair")
    mp = pytest.MonkeyPatch()
    ref = cc.in_process(small_original, "identity", root / "ref", mp)
    return ref, cc.decoder_drift(small_original, root / "ycbcr", mp)


def _images(html: str) -> list[np.ndarray]:
    """The inlined images of a report, decoded, in page order."""
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return [decode(base64.b64decode(u)) for u in uris]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_report_is_one_deterministic_file(drifted_pair: tuple[Path, Path], tmp_path: Path) -> None:
    index = write_report(compare_benchmarks(*drifted_pair), tmp_path / "r1")
    write_report(compare_benchmarks(*drifted_pair), tmp_path / "r2")
    first = _tree(tmp_path / "r1")
    assert first == _tree(tmp_path / "r2") and sorted(first) == ["index.html"]
    text = index.read_text()
    assert "retina.jpg" in text and "decoder drift" in text and "<script" not in text
    # two differing samples, five images each (three crops, two small), all inlined
    assert len(_images(text)) == 10 and text.count("<img ") == 10
    body = text.split("<body>")[1]
    assert "http" not in body and 'src="img' not in body  # no network, no side files
    assert "default-src 'none'; img-src data:" in text  # nor anything the page could load


def test_report_images_show_the_outputs(drifted_pair: tuple[Path, Path], tmp_path: Path) -> None:
    c = compare_benchmarks(*drifted_pair)
    html = write_report(c, tmp_path / "r").read_text()
    s = next(s for s in c.samples if s.view is not None)
    assert s.a is not None and s.b is not None and s.view is not None
    y0, x0, y1, x1 = s.view.window
    zoom = max(1, ZOOM_TO // max(y1 - y0, x1 - x0))
    crop_a, crop_b, heat, small_a, _ = _images(html)[:5]
    for crop, bench, entry in ((crop_a, drifted_pair[0], s.a), (crop_b, drifted_pair[1], s.b)):
        out = decode((bench / entry.path).read_bytes())
        assert crop.shape == ((y1 - y0) * zoom, (x1 - x0) * zoom, 3)
        assert np.array_equal(crop[::zoom, ::zoom], out[y0:y1, x0:x1])  # nearest neighbour
    assert heat.shape == crop_a.shape and max(small_a.shape[:2]) <= 320


@pytest.fixture(scope="module")
def one_value(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Comparison:
    """A real photograph upscaled to 3000x2000, and its output with one value one level off."""
    root = tmp_path_factory.mktemp("six-mp")
    original = cc.upscaled_original(demo_dir, root / "orig")
    ref = cc.in_process(original, "identity", root / "ref", pytest.MonkeyPatch())
    drifted = cc.one_value_changed(ref, root / "drifted", "coffee.png", at=(1234, 2345, 1))
    return compare_benchmarks(ref, drifted)


def test_a_one_value_change_in_six_megapixels_shows(one_value: Comparison, tmp_path: Path) -> None:
    (s,) = one_value.differing
    assert s.stats is not None and (s.stats.values, s.stats.differing) == (18_000_000, 1)
    html = write_report(one_value, tmp_path / "r").read_text()
    assert len(html.encode()) < 2 * MB
    assert "changed: rows 1234-1234, columns 2345-2345 of 3000x2000" in html
    _, _, heat, small_a, small_heat = _images(html)
    # the enlarged difference: the one change is a white square (it is the largest, |d| 1)
    white = np.all(heat == 255, axis=2)
    zoom = ZOOM_TO // 48
    assert white.sum() == zoom * zoom and heat[~white].max() <= 63  # the rest: dark grey
    ys, xs = np.nonzero(white)
    assert ys.max() - ys.min() == xs.max() - xs.min() == zoom - 1
    # small, the whole image: the change still shows, inside the crop's outline
    step = 10
    assert small_heat.shape[:2] == small_a.shape[:2] == (200, 300)
    assert small_heat[1234 // step, 2345 // step].tolist() == [255, 255, 255]
    cyan = np.all(small_heat == (0, 200, 255), axis=2)
    assert cyan.any() and np.all(small_a[cyan] == (0, 200, 255))


def test_size_per_sample_stays_under_2_mb(identity_bench: Path, tmp_path: Path) -> None:
    """The worst case for a PNG, noise against other noise at 6 MP, in every image."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2000, 3000, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (2000, 3000, 3), dtype=np.uint8)
    side = open_side(identity_bench)
    samples = tuple(
        SampleComparison(id=f"noise-{i}.png", status=Status.PIXELS_DIFFER,
                         cause=Cause.GENERATOR, view=pixel_view(a, b))
        for i in range(2)
    )  # fmt: skip
    c = Comparison(a=side, b=side, recipe_differences=(), fingerprint_diff={}, samples=samples)
    size = write_report(c, tmp_path / "r").stat().st_size
    empty = Comparison(a=side, b=side, recipe_differences=(), fingerprint_diff={}, samples=())
    base = write_report(empty, tmp_path / "e").stat().st_size
    assert MB / 2 < (size - base) / 2 < 2 * MB  # large figures, yet under the bound


def test_report_escapes_untrusted_text(drifted_pair: tuple[Path, Path], tmp_path: Path) -> None:
    ref, other = drifted_pair
    m = load_manifest(other / MANIFEST_NAME)
    evil = {**m.fingerprint, "numpy": "<img src=x onerror=alert(1)>"}
    write_manifest(dataclasses.replace(m, fingerprint=evil), tmp_path / "evil.json")
    write_report(compare_benchmarks(ref, tmp_path / "evil.json"), tmp_path / "r")
    text = (tmp_path / "r/index.html").read_text()
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_report_writes_only_where_it_may(drifted_pair: tuple[Path, Path], tmp_path: Path) -> None:
    c = compare_benchmarks(*drifted_pair)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "index.html").write_text("<!DOCTYPE html><p>my own page</p>")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "img").mkdir()  # an earlier version's image folder: not ours to delete
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "index.html").symlink_to(tmp_path / "theirs" / "index.html")
    for folder, name in (("mine", "notes.txt"), ("theirs", "index.html"), ("old", "img"),
                         ("linked", "index.html")):  # fmt: skip
        with pytest.raises(OutputError, match=f"holds '{name}', which is not part of a report"):
            write_report(c, tmp_path / folder)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    assert "my own page" in (tmp_path / "theirs" / "index.html").read_text()
    assert (tmp_path / "old" / "img").is_dir()
    assert (tmp_path / "linked" / "index.html").is_symlink()
    with pytest.raises(OutputError, match="exists and is not a folder"):
        write_report(c, tmp_path / "mine" / "notes.txt")
    # a new folder, an empty one, and our own earlier report (replaced) are fine
    (tmp_path / "empty").mkdir()
    for folder in ("new/report", "empty", "new/report"):
        assert write_report(c, tmp_path / folder) == tmp_path / folder / "index.html"
    assert sorted(_tree(tmp_path / "new")) == ["report/index.html"]


def test_heatmap_marks_every_change() -> None:
    a = np.full((4, 4, 3), 200, dtype=np.uint8)
    b = a.copy()
    b[1, 2, 0] = 201  # the smallest change
    b[3, 3, :] = 0  # the largest
    heat, peak = diff_heatmap(a, b)
    assert peak == 200 and heat.shape == (4, 4, 3) and heat.dtype == np.uint8
    unchanged = heat[0, 0]
    assert unchanged[0] == unchanged[1] == unchanged[2] == 50  # a quarter of A's grey
    assert heat[1, 2, 0] >= 192 and heat[1, 2, 0] > heat[1, 2, 2]  # visible red
    assert heat[3, 3].tolist() == [255, 255, 255]  # the peak is white


def test_text_tables(drifted_pair: tuple[Path, Path]) -> None:
    c = compare_benchmarks(*drifted_pair)
    lines = list(comparison_lines(c))
    assert lines[2] == "files: A measured on disk (folder), B measured on disk (folder)"
    assert any("retina.jpg" in ln and "decoder drift (pillow.libjpeg_turbo: " in ln
               and "PSNR" in ln for ln in lines)  # fmt: skip
    assert lines[-1].startswith("does NOT reproduce: 6 identical, 2 pixels differ")
    m = compare_matrix(list(drifted_pair))
    table = list(matrix_lines(m))
    assert table[0].split()[:2] == ["environment", "reproduces"]
    assert table[1].startswith("ref (reference)") and "NO" in table[2]
    assert "decoder drift (2)" in table[2]
    fast = compare_benchmarks(*drifted_pair, trust_manifests=True)
    assert "files: not read (--trust-manifests)" in list(comparison_lines(fast))[2]


def test_terminal_text_is_escaped_and_shortened(
    drifted_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    assert shown("a\x1b[2Jb\u202e") == "a\\x1b[2Jb\\u202e"
    long = shown("x" * 30 + "y" * 30, 20)
    assert len(long) == 20 and long.startswith("x" * 13) and long.endswith("…" + "y" * 6)
    ref, other = drifted_pair
    m = load_manifest(other / MANIFEST_NAME)
    evil = {**m.fingerprint, "numpy": "\x1b]0;owned\x07" + "9" * 100}
    write_manifest(dataclasses.replace(m, fingerprint=evil), tmp_path / "evil.json")
    lines = list(comparison_lines(compare_benchmarks(ref, tmp_path / "evil.json")))
    assert not any("\x1b" in ln or "\x07" in ln for ln in lines)
    (numpy,) = [ln for ln in lines if ln.strip().startswith("numpy")]
    assert "\\x1b]0;owned\\x07" in numpy and "9" * 40 not in numpy
