"""The HTML report renders in a real browser: headless Chromium, from file://."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import compare_cases as cc
from toolchain.audit.compare import compare_matrix
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
    # Script in the *loaded* page runs after the images; a report has no script of
    # its own, so this check is added to a copy next to it (same folder, same URLs).
    probe = report.with_name("probe.html")
    probe.write_text(
        report.read_text().replace(
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
    # two decoder-drifted samples, three images each, all decoded by the browser
    assert dom.count("<img ") == 6
    assert 'data-loaded="6"' in dom


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
