"""The HTML report renders in a real browser (headless Chromium, from file://), and a
one-value change in a 6 MP photograph is visible on the screen."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import compare_cases as cc
from toolchain.audit.compare import compare_benchmarks, compare_matrix
from toolchain.audit.report import write_report

REQUIRE = os.environ.get("BENCHMARK_REGEN_REQUIRE_CHROMIUM") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None and not REQUIRE,
        reason="chromium is not installed (apt-get install chromium; "
        "BENCHMARK_REGEN_REQUIRE_CHROMIUM=1 makes this a failure)",
    ),
]


def _chromium(tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None, "BENCHMARK_REGEN_REQUIRE_CHROMIUM=1 but chromium is absent"
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, small_original: Path) -> Path:
    """A matrix report: reference, a decoder-drifted and an encoder-drifted environment."""
    root = tmp_path_factory.mktemp("chromium")
    mp = pytest.MonkeyPatch()
    ref = cc.in_process(small_original, "identity", root / "envs" / "ref", mp)
    dec = cc.decoder_drift(small_original, root / "envs" / "ycbcr", mp)
    enc = cc.encoder_drift(ref, root / "envs" / "zlib1")
    write_report(compare_matrix([ref, dec, enc]), root / "report")
    return root / "report" / "index.html"


def test_dom_has_the_table_and_loaded_images(report: Path, tmp_path: Path) -> None:
    # Script in the *loaded* page runs after the images; a report has no script of its
    # own (its policy forbids one), so this check goes into a copy that allows it.
    probe = report.with_name("probe.html")
    page = report.read_text()
    assert "default-src 'none'" in page
    probe.write_text(
        page.replace(
            "default-src 'none'", "default-src 'none'; script-src 'unsafe-inline'"
        ).replace(
            "</body>",
            "<script>window.onload = () => { document.body.dataset.loaded = "
            "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length; };"
            "</script></body>",
        )
    )
    try:
        dom = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    assert "compatibility matrix" in dom and "<table" in dom
    for label in ("ref", "ycbcr", "zlib1", "decoder drift", "encoder-only drift"):
        assert label in dom
    # two decoder-drifted samples, five inlined images each, all decoded by the browser
    assert dom.count("<img ") == dom.count('src="data:image/png;base64,') == 10
    assert 'data-loaded="10"' in dom


def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri())
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (2400, 1280)
    # text, table rules, pills and photographs: many distinct colours, not a blank page
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 1000
    # the red "does not reproduce" pill is there
    red = (img[:, :, 0] > 190) & (img[:, :, 1] < 60) & (img[:, :, 2] < 70)
    assert red.sum() > 200


def _isolated_white(img: np.ndarray, reach: int) -> np.ndarray:
    """Near-white pixels with dark pixels ``reach`` away on all four sides: a small bright
    mark inside a dark image (text is dark on white, so it does not count)."""
    white = np.all(img > 240, axis=2)
    dark = np.all(img < 90, axis=2)
    inner = np.zeros_like(white)
    h, w = white.shape
    core = white[reach : h - reach, reach : w - reach]
    around = (
        dark[: h - 2 * reach, reach : w - reach] & dark[2 * reach :, reach : w - reach]
        & dark[reach : h - reach, : w - 2 * reach] & dark[reach : h - reach, 2 * reach :]
    )  # fmt: skip
    inner[reach : h - reach, reach : w - reach] = core & around
    return inner


def test_a_one_value_change_in_six_megapixels_is_visible(tmp_path: Path, demo_dir: Path) -> None:
    """A real photograph upscaled to 3000x2000; its output with one value one level off."""
    original = cc.upscaled_original(demo_dir, tmp_path / "orig")
    ref = cc.in_process(original, "identity", tmp_path / "ref", pytest.MonkeyPatch())
    drifted = cc.one_value_changed(ref, tmp_path / "drifted", "coffee.png", at=(1234, 2345, 1))
    c = compare_benchmarks(ref, drifted)
    assert [s.stats.differing if s.stats else None for s in c.differing] == [1]
    index = write_report(c, tmp_path / "report")
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--window-size=1280,1600", f"--screenshot={shot}", index.as_uri())
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (1600, 1280)
    mark = _isolated_white(img, reach=12)
    # marks in two rows: the enlarged difference (a square, third column), then the whole
    # difference, small (right half; a highlight of the photograph may show on the left)
    ys, xs = np.nonzero(mark)
    assert len(ys), "the one-value change is not visible on the screen"
    split = np.flatnonzero(np.diff(ys) > 24)
    assert len(split) == 1, f"expected two rows of marks, found {len(split) + 1}"
    crop, small = (ys <= ys[split[0]]), (ys > ys[split[0]])
    height, width = np.ptp(ys[crop]) + 1, np.ptp(xs[crop]) + 1
    assert 6 <= height < 24 and 6 <= width < 24 and abs(height - width) <= 1
    assert xs[crop].min() > 1280 * 2 // 3 - 40 and (xs[small] > 1280 // 2).any()
