"""report: deterministic HTML + PNG writer, heat map, text tables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests import compare_cases as cc
from toolchain.audit.compare import compare_benchmarks, compare_matrix
from toolchain.audit.report import comparison_lines, diff_heatmap, matrix_lines, write_report
from toolchain.codec.decode import decode
from toolchain.errors import OutputError
from toolchain.model.manifest import MANIFEST_NAME, load_manifest, write_manifest


@pytest.fixture(scope="module")
def drifted_pair(
    tmp_path_factory: pytest.TempPathFactory, small_original: Path
) -> tuple[Path, Path]:
    """Reference and a decoder-drifted twin (both made in this process)."""
    root = tmp_path_factory.mktemp("pair")
    mp = pytest.MonkeyPatch()
    ref = cc.in_process(small_original, "identity", root / "ref", mp)
    return ref, cc.decoder_drift(small_original, root / "ycbcr", mp)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_report_is_deterministic_and_complete(
    drifted_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    c = compare_benchmarks(*drifted_pair)
    index = write_report(c, tmp_path / "r1")
    write_report(compare_benchmarks(*drifted_pair), tmp_path / "r2")
    first = _tree(tmp_path / "r1")
    assert first == _tree(tmp_path / "r2")
    # two differing samples: A, B and the heat map of each
    assert sorted(first) == [
        "img/000-a.png", "img/000-b.png", "img/000-diff.png",
        "img/001-a.png", "img/001-b.png", "img/001-diff.png", "index.html",
    ]  # fmt: skip
    text = index.read_text()
    assert "retina.jpg" in text and "decoder drift" in text and "<script" not in text
    assert (
        'src="img/000-a.png"' in text
        and "http" not in text.replace('name="viewport"', "").split("<body>")[1]
    )  # no network reference in the body
    # rewriting over an old report is allowed and leaves no stale image
    write_report(compare_benchmarks(drifted_pair[0], drifted_pair[0]), tmp_path / "r1")
    assert sorted(_tree(tmp_path / "r1")) == ["index.html"]


def test_report_images_show_the_outputs(drifted_pair: tuple[Path, Path], tmp_path: Path) -> None:
    c = compare_benchmarks(*drifted_pair)
    write_report(c, tmp_path / "r")
    s = c.differing[0]
    assert s.a is not None
    a_out = decode((drifted_pair[0] / s.a.path).read_bytes())
    assert np.array_equal(decode((tmp_path / "r/img/000-a.png").read_bytes()), a_out)


def test_report_escapes_untrusted_text(drifted_pair: tuple[Path, Path], tmp_path: Path) -> None:
    ref, other = drifted_pair
    m = load_manifest(other / MANIFEST_NAME)
    evil = {**m.fingerprint, "numpy": "<img src=x onerror=alert(1)>"}
    write_manifest(dataclasses.replace(m, fingerprint=evil), tmp_path / "evil.json")
    write_report(compare_benchmarks(ref, tmp_path / "evil.json"), tmp_path / "r")
    text = (tmp_path / "r/index.html").read_text()
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_report_refuses_a_folder_that_is_not_a_report(
    drifted_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not part of a report"):
        write_report(compare_benchmarks(*drifted_pair), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


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


def test_text_tables(drifted_pair: tuple[Path, Path], tmp_path: Path) -> None:
    c = compare_benchmarks(*drifted_pair)
    lines = list(comparison_lines(c))
    assert any("retina.jpg" in ln and "decoder drift" in ln and "PSNR" in ln for ln in lines)
    assert lines[-1].startswith("does NOT reproduce: 6 identical, 2 pixels differ")
    m = compare_matrix(list(drifted_pair))
    table = list(matrix_lines(m))
    assert table[0].split()[:2] == ["environment", "reproduces"]
    assert table[1].startswith("ref (reference)") and "NO" in table[2]
    assert "decoder drift (2)" in table[2]
