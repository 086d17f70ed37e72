from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolchain.audit.verify import Problem, verify_benchmark
from toolchain.errors import ManifestError
from toolchain.run.generate import generate_benchmark


@pytest.fixture(scope="module")
def bench(small_original: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "out"
    generate_benchmark(small_original, "gaussian-noise", out)
    return out


def _copy(bench: Path, tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "copy"
    shutil.copytree(bench, dest)
    return dest


def test_clean_benchmark_verifies(bench: Path) -> None:
    report = verify_benchmark(bench)
    assert report.ok and report.checked == 4 and not report.problems


def test_single_changed_pixel_is_caught(bench: Path, tmp_path: Path) -> None:
    out = _copy(bench, tmp_path)
    victim = sorted(out.rglob("*.png"))[0]
    arr = np.asarray(Image.open(victim)).copy()
    arr.flat[0] ^= 1
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    victim.write_bytes(buf.getvalue())
    report = verify_benchmark(out)
    assert not report.ok
    (bad,) = report.problems
    assert bad.problem is Problem.PIXELS_DIFFER and bad.path == victim.relative_to(out).as_posix()


def test_missing_and_extra_files_are_listed(bench: Path, tmp_path: Path) -> None:
    out = _copy(bench, tmp_path)
    victim = sorted(out.rglob("*.png"))[1]
    victim.unlink()
    (out / "stray.png").write_bytes(b"x")
    report = verify_benchmark(out)
    assert [p.problem for p in report.problems] == [Problem.MISSING, Problem.EXTRA]
    assert report.by_kind(Problem.EXTRA)[0].path == "stray.png"


def test_reencoded_file_is_file_differs_only(bench: Path, tmp_path: Path) -> None:
    out = _copy(bench, tmp_path)
    victim = sorted(out.rglob("*.png"))[2]
    img = Image.open(victim)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    victim.write_bytes(buf.getvalue())
    (p,) = verify_benchmark(out).problems
    assert p.problem is Problem.FILE_DIFFERS


def test_tampered_manifest_is_caught(bench: Path, tmp_path: Path) -> None:
    out = _copy(bench, tmp_path)
    doc = json.loads((out / "manifest.json").read_text())
    doc["entries"][0]["pixels"] = "sha256:" + "1" * 64
    (out / "manifest.json").write_text(json.dumps(doc))
    report = verify_benchmark(out)
    assert not report.ok and not report.root_consistent
    assert report.problems[0].problem is Problem.PIXELS_DIFFER


def test_no_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no manifest"):
        verify_benchmark(tmp_path)
