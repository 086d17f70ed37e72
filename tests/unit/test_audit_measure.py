"""measure: outputs read once and checked against their entries (folder and parquet, links,
FIFOs, v1 bytes), pixel statistics in bands, and the small views the report shows."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import toolchain.audit.measure as measure_mod
from tests import compare_cases as cc
from toolchain.audit.measure import (
    CROP_MAX,
    CROP_MIN,
    SMALL_SIDE,
    Found,
    Outputs,
    measure,
    pixel_stats,
    pixel_view,
)
from toolchain.codec.decode import decode
from toolchain.hf.parquet import BenchmarkRow
from toolchain.model.manifest import MANIFEST_NAME, load_manifest
from toolchain.run.generate import generate_benchmark


def _read_all(folder: Path, *, format: str = "folder") -> tuple[dict[str, object], list[str]]:
    m = load_manifest(folder / MANIFEST_NAME)
    with Outputs(folder, m, format=format) as outputs:
        found = {e.id: outputs.read(e) for e in m.entries}
        return found, outputs.finish()


def test_a_folder_read_as_written(identity_bench: Path) -> None:
    found, problems = _read_all(identity_bench)
    m = load_manifest(identity_bench / MANIFEST_NAME)
    assert problems == [] and len(found) == 8
    for e in m.entries:
        got = found[e.id]
        assert got.found is Found.MATCHES and got.digest == e.pixels and got.file == e.file
        assert np.array_equal(got.pixels, decode((identity_bench / e.path).read_bytes()))


def test_what_is_not_as_recorded(identity_bench: Path, tmp_path: Path) -> None:
    copy = cc.tampered(identity_bench, tmp_path / "t", "class_a/coins.png")
    (copy / "class_b/camera.png").unlink()
    (copy / "class_a/logo.png").unlink()
    (copy / "class_a/logo.png").symlink_to(identity_bench / "class_a/logo.png")
    (copy / "class_b/horse.png").unlink()
    os.mkfifo(copy / "class_b/horse.png")  # never opened blocking: refused
    (copy / "class_a/rocket.png").write_bytes(b"not a png")
    found, _ = _read_all(copy)
    got = {sid: (r.found, r.seen) for sid, r in found.items() if r.found is not Found.MATCHES}
    coins = found["class_a/coins.png"]
    assert got == {
        "class_a/coins.png": (Found.TAMPERED, f"pixels {coins.digest.short}"),
        "class_b/camera.png": (Found.MISSING, "missing"),
        "class_a/logo.png": (Found.REFUSED, "is a symlink: not followed"),
        "class_b/horse.png": (Found.REFUSED, "is not a regular file (a FIFO, device or folder)"),
        "class_a/rocket.jpg": got["class_a/rocket.jpg"],
    }
    assert got["class_a/rocket.jpg"][0] is Found.TAMPERED
    assert got["class_a/rocket.jpg"][1].startswith("undecodable: ")
    assert coins.pixels is not None and coins.recorded.startswith("pixels ")


def test_other_bytes_of_the_same_pixels(identity_bench: Path, tmp_path: Path) -> None:
    copy = cc.reencoded_in_place(identity_bench, tmp_path / "r", "class_b/horse.png")
    found, _ = _read_all(copy)
    horse = found["class_b/horse.png"]
    assert horse.found is Found.TAMPERED and horse.seen.endswith("(same pixels)")
    # a v1 manifest recorded Pillow's bytes: other bytes of the same pixels are expected
    m = load_manifest(copy / MANIFEST_NAME)
    v1 = dataclasses.replace(m, version=1)
    with Outputs(copy, v1) as outputs:
        entry = next(e for e in v1.entries if e.id == "class_b/horse.png")
        again = outputs.read(entry)
    assert again.found is Found.MATCHES and again.file != entry.file


@pytest.fixture(scope="module")
def parquet_bench(tmp_path_factory: pytest.TempPathFactory, small_original: Path) -> Path:
    out = tmp_path_factory.mktemp("parquet") / "bench"
    with cc.pinned_here(pytest.MonkeyPatch()):
        generate_benchmark(small_original, "identity", out, format="parquet")
    return out


def test_parquet_rows_streamed_in_id_order(parquet_bench: Path, tmp_path: Path) -> None:
    found, problems = _read_all(parquet_bench, format="parquet")
    assert problems == [] and {r.found for r in found.values()} == {Found.MATCHES}
    copy = Path(shutil.copytree(parquet_bench, tmp_path / "copy"))

    def relabel(rows: list[BenchmarkRow]) -> list[BenchmarkRow]:
        out = []
        for r in rows:
            if r.id == "class_a/coins.png":  # another id, the same place in id order
                r = dataclasses.replace(r, id="class_a/coins.png0")
            elif r.id == "class_b/camera.png":  # moved to the end of the shards
                r = dataclasses.replace(r, id="zz/camera.png")
            out.append(r)
        return sorted(out, key=lambda r: r.id.encode())

    cc.rewrite_parquet(copy, relabel)
    found, problems = _read_all(copy, format="parquet")
    coins, camera = found["class_a/coins.png"], found["class_b/camera.png"]
    assert coins.found is Found.TAMPERED and coins.seen.startswith("id 'class_a/coins.png0'")
    assert (camera.found, camera.seen) == (Found.MISSING, "not in the shards")
    assert problems == ["the row of 'class_b/camera.png' is out of id order"]


def test_pixel_stats_exact() -> None:
    a = np.zeros((2, 2, 1), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10
    s = pixel_stats(a, b)
    assert (s.values, s.differing, s.max_abs) == (4, 1, 10)
    assert s.psnr_db is not None and math.isclose(s.psnr_db, 10 * math.log10(255**2 * 4 / 100))
    assert pixel_stats(a, a).psnr_db is None
    assert "shapes differ" in pixel_stats(a, np.zeros((2, 3, 1), np.uint8)).note


def test_stats_in_bands_equal_stats_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (301, 97, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    whole, per_pixel = measure(a, b)
    monkeypatch.setattr(measure_mod, "_BAND_VALUES", 97 * 3 * 7)  # 43 bands of 7 rows
    banded, per_pixel_banded = measure(a, b)
    assert banded == whole and per_pixel is not None and per_pixel_banded is not None
    assert np.array_equal(per_pixel, per_pixel_banded)
    d = np.abs(a.astype(np.int64) - b)
    assert whole.differing == np.count_nonzero(d) and whole.max_abs == d.max()
    assert np.array_equal(per_pixel, d.max(axis=2))


def test_one_value_in_six_megapixels_is_found() -> None:
    a = np.random.default_rng(1).integers(0, 255, (2000, 3000, 3), dtype=np.uint8)
    b = a.copy()
    b[1234, 2345, 1] += 1
    v = pixel_view(a, b)
    assert v is not None and v.peak == 1 and (v.height, v.width) == (2000, 3000)
    assert v.changed == (1234, 2345, 1235, 2346)
    y0, x0, y1, x1 = v.window
    assert (y1 - y0, x1 - x0) == (CROP_MIN, CROP_MIN) and y0 <= 1234 < y1 and x0 <= 2345 < x1
    assert np.array_equal(v.crop_a, a[y0:y1, x0:x1]) and np.array_equal(v.crop_b, b[y0:y1, x0:x1])
    assert np.argwhere(v.crop_diff).tolist() == [[1234 - y0, 2345 - x0]]
    assert v.step == math.ceil(3000 / SMALL_SIDE) and max(v.small_a.shape[:2]) <= SMALL_SIDE
    # the small difference keeps the largest |d| of each block: the one change survives
    assert np.argwhere(v.small_diff).tolist() == [[1234 // v.step, 2345 // v.step]]
    assert pixel_view(a, a) is None


def test_a_large_change_is_cropped_around_its_peak() -> None:
    a = np.zeros((600, 800, 1), dtype=np.uint8)
    b = a.copy()
    b[100:500, 50:750] = 3  # larger than any crop
    b[420, 610] = 90  # the largest change
    v = pixel_view(a, b)
    assert v is not None and v.changed == (100, 50, 500, 750)
    y0, x0, y1, x1 = v.window
    assert (y1 - y0, x1 - x0) == (CROP_MAX, CROP_MAX) and y0 <= 420 < y1 and x0 <= 610 < x1
    # at an edge the crop is moved inside the image, never cut
    c = a.copy()
    c[0, 799] = 1
    v = pixel_view(a, c)
    assert v is not None and v.window == (0, 800 - CROP_MIN, CROP_MIN, 800)
