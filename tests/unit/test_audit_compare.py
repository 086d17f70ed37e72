"""compare: statuses, causes (on real drifted benchmarks), pixel statistics, the matrix."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests import compare_cases as cc
from toolchain.audit.compare import (
    Cause,
    Status,
    compare_benchmarks,
    compare_matrix,
    describe_cause,
    load_pixels,
    open_side,
    pixel_stats,
)
from toolchain.audit.compare import _labels as labels
from toolchain.errors import ManifestError
from toolchain.model.manifest import MANIFEST_NAME, Manifest, load_manifest, write_manifest
from toolchain.run.generate import generate_benchmark

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / ".matrix"


@pytest.fixture(scope="module")
def identity_bench(tmp_path_factory: pytest.TempPathFactory, small_original: Path) -> Path:
    out = tmp_path_factory.mktemp("bench") / "identity"
    generate_benchmark(small_original, "identity", out)
    return out


def test_identical_folders_compare_identical(identity_bench: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(identity_bench, copy)
    c = compare_benchmarks(identity_bench, copy)
    assert c.identical and c.reproduces and c.same_recipe
    assert c.counts()[Status.IDENTICAL] == 8 and c.differing == ()
    assert c.dominant_cause is None and c.fingerprint_diff == {}


def test_one_altered_pixel_hash_names_that_sample(identity_bench: Path, tmp_path: Path) -> None:
    m = cc.altered_pixels(identity_bench, tmp_path / "m.json", "class_a/coins.png")
    c = compare_benchmarks(identity_bench / MANIFEST_NAME, m)
    assert not c.reproduces and not c.identical
    (s,) = c.differing
    assert s.id == "class_a/coins.png" and s.status is Status.PIXELS_DIFFER
    # same source pixels, same recipe, no library differs: generator drift, unexplained
    assert s.cause is Cause.GENERATOR and s.keys == ()
    assert s.stats is None  # manifests only: no pixels to measure
    assert "no recorded library differs" in describe_cause(s)


def test_missing_samples_and_recipe_change(identity_bench: Path, tmp_path: Path) -> None:
    m = load_manifest(identity_bench / MANIFEST_NAME)
    fewer = Manifest.build(recipe=m.recipe, entries=m.entries[1:], fingerprint=m.fingerprint,
                           provenance=m.provenance, columns=m.columns,
                           encoder=m.encoder)  # fmt: skip
    write_manifest(fewer, tmp_path / "fewer.json")
    c = compare_benchmarks(identity_bench, tmp_path / "fewer.json")
    (s,) = c.differing
    assert s.status is Status.MISSING_IN_B and s.cause is Cause.SELECTION
    c = compare_benchmarks(tmp_path / "fewer.json", identity_bench)
    assert c.differing[0].status is Status.MISSING_IN_A

    other = dataclasses.replace(m, recipe=dataclasses.replace(m.recipe, seed=7))
    write_manifest(other, tmp_path / "seed.json")
    c = compare_benchmarks(identity_bench, tmp_path / "seed.json")
    assert c.recipe_differences == ("seed: 2024 -> 7",) or c.recipe_differences[0].startswith(
        "seed: "
    )
    assert not c.reproduces and c.dominant_cause is Cause.RECIPE


def test_decoder_drift(small_original: Path, identity_bench: Path, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    drifted = cc.decoder_drift(small_original, tmp_path / "ycbcr", monkeypatch)
    c = compare_benchmarks(identity_bench, drifted)
    by_cause = {s.id: s.cause for s in c.differing}
    # exactly the two colour JPEGs decode differently; PNGs are untouched
    assert by_cause == {"class_b/retina.jpg": Cause.DECODER, "class_a/rocket.jpg": Cause.DECODER}
    for s in c.differing:
        assert s.status is Status.PIXELS_DIFFER and s.a and s.b
        assert s.a.source != s.b.source
        assert s.stats is not None and s.stats.differing > 0 and s.stats.max_abs >= 1
        assert s.stats.psnr_db is not None and 30 < s.stats.psnr_db < 100
    assert c.dominant_cause is Cause.DECODER and not c.reproduces


@pytest.mark.slow
def test_generator_drift(demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = tmp_path / "orig"
    original.mkdir()
    for name in cc.GENERATOR_SAMPLES:
        shutil.copy2(demo_dir / name, original / name)
    ref = cc.in_process(original, cc.FLOAT_RECIPE, tmp_path / "ref", monkeypatch)
    drifted = cc.generator_drift(original, tmp_path / "f64", monkeypatch)
    c = compare_benchmarks(ref, drifted)
    # How many samples a kernel change moves depends on the CPU (one on AVX2
    # machines, two on AVX-512 ones): assert the classification of every one.
    assert c.differing, "the constructed kernel change must move at least one sample"
    for s in c.differing:
        assert s.status is Status.PIXELS_DIFFER
        assert s.cause is Cause.GENERATOR and s.keys == ("blas.coretype",)
        assert s.a and s.b and s.a.source == s.b.source
        assert s.stats is not None and 0 < s.stats.differing < s.stats.values
        assert describe_cause(s) == "generator drift (blas.coretype)"
    assert c.fingerprint_diff == {"blas.coretype": (c.a.manifest.fingerprint["blas.coretype"],
                                                    "Sandybridge")}  # fmt: skip
    assert c.dominant_cause is Cause.GENERATOR and not c.reproduces


def test_encoder_only_drift(identity_bench: Path, tmp_path: Path) -> None:
    drifted = cc.encoder_drift(identity_bench, tmp_path / "level1")
    c = compare_benchmarks(identity_bench, drifted)
    assert c.reproduces and not c.identical  # pixels are the contract: still reproduces
    assert len(c.differing) == 8
    for s in c.differing:
        assert s.status is Status.FILE_DIFFERS and s.cause is Cause.ENCODER
        assert s.keys == ("pillow.zlib_ng",)
    assert c.dominant_cause is Cause.ENCODER


def test_encoder_drift_does_not_hide_pixel_drift(identity_bench: Path, tmp_path: Path) -> None:
    enc = cc.encoder_drift(identity_bench, tmp_path / "level1")
    both = cc.altered_pixels(enc, tmp_path / "both.json", "class_b/camera.png")
    c = compare_benchmarks(identity_bench / MANIFEST_NAME, both)
    assert c.cause_counts() == {Cause.GENERATOR: 1, Cause.ENCODER: 7}
    assert c.dominant_cause is Cause.GENERATOR


def test_pixel_stats_exact() -> None:
    a = np.zeros((2, 2, 1), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10
    s = pixel_stats(a, b)
    assert (s.values, s.differing, s.max_abs) == (4, 1, 10)
    assert s.psnr_db is not None and math.isclose(s.psnr_db, 10 * math.log10(255**2 * 4 / 100))
    assert pixel_stats(a, a).psnr_db is None
    assert "shapes differ" in pixel_stats(a, np.zeros((2, 3, 1), np.uint8)).note


def test_tampered_output_is_not_measured(identity_bench: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(identity_bench, copy)
    entry = load_manifest(copy / MANIFEST_NAME).entries[0]
    shutil.copy(copy / load_manifest(copy / MANIFEST_NAME).entries[1].path, copy / entry.path)
    got = load_pixels(open_side(copy), entry)
    assert isinstance(got, str) and "does not match its manifest" in got


def test_open_side_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"without a manifest\.json"):
        open_side(tmp_path)


def test_labels_drop_shared_prefix_and_suffix(tmp_path: Path) -> None:
    paths = [tmp_path / "m" / c / "demo" for c in ("locked", "np126-pil10")]
    assert labels(paths) == ["locked", "np126-pil10"]
    assert labels([paths[0], paths[0] / MANIFEST_NAME]) == ["0:demo", "1:demo"]


def test_matrix_reference_first(identity_bench: Path, tmp_path: Path) -> None:
    enc = cc.encoder_drift(identity_bench, tmp_path / "enc")
    m = compare_matrix([enc, identity_bench], reference=identity_bench)
    assert [r.is_reference for r in m.rows] == [True, False]
    assert m.rows[0].comparison.identical and m.rows[1].comparison.reproduces
    assert m.rows[1].versions == {
        "pillow.zlib_ng": (
            load_manifest(identity_bench / MANIFEST_NAME).fingerprint["pillow.zlib_ng"],
            "absent",
        )
    }
    assert m.reproduces and not m.identical
    json.dumps(m.to_json())  # serialisable
    with pytest.raises(ManifestError, match="at least two"):
        compare_matrix([identity_bench])


# -- the real version matrix (made by `nox -s matrix`) -----------------------------------

# What `nox -s matrix` found on x86_64 (see docs/compare.md): every combination
# reproduces the reference bit for bit, file bytes included. manylinux Pillow
# wheels deflate with the system libz (not a bundled zlib-ng), and with
# OPENBLAS_CORETYPE pinned OpenBLAS 0.3.23 and 0.3.31 run the same sgemm kernel.
EXPECTED_MATRIX = {
    "np126-pil10": "identical",
    "np126-pil11": "identical",
    "np2-pil10": "identical",
    "np2-pil12": "identical",
}


@pytest.mark.slow
@pytest.mark.parametrize("bench", ["demo", "adversarial"])
def test_real_matrix(bench: str) -> None:
    dirs = [MATRIX / "locked" / bench, *(MATRIX / c / bench for c in sorted(EXPECTED_MATRIX))]
    missing = [d for d in dirs if not (d / MANIFEST_NAME).is_file()]
    if missing:
        pytest.skip(f"no version-matrix outputs ({missing[0]}): run `nox -s matrix` first")
    m = compare_matrix(dirs)
    for row in m.rows[1:]:
        c = row.comparison
        got = "identical" if c.identical else (c.dominant_cause.value if c.dominant_cause else "?")
        assert got == EXPECTED_MATRIX[row.label], (row.label, c.cause_counts())
        # whatever the outcome, the classification must agree with the digests
        for s in c.differing:
            assert s.a and s.b
            if s.cause is Cause.ENCODER:
                assert s.a.pixels == s.b.pixels
            elif s.cause is Cause.DECODER:
                assert s.a.source != s.b.source
        # the libraries really differ: the matrix is not five copies of one environment
        assert {"pillow"} <= set(c.fingerprint_diff)


def _as_v1_benchmark(src: Path, dest: Path) -> Path:
    """The same benchmark as benchmark-regen 0.1 made it: Pillow level-6 PNGs, a v1 manifest."""
    import io

    from PIL import Image

    from toolchain.codec.decode import decode
    from toolchain.model.hashing import file_digest

    m = load_manifest(src / MANIFEST_NAME)
    entries = []
    for e in m.entries:
        px = decode((src / e.path).read_bytes())
        buf = io.BytesIO()
        Image.fromarray(px[:, :, 0] if px.shape[2] == 1 else px).save(
            buf, format="PNG", compress_level=6
        )
        (dest / e.path).parent.mkdir(parents=True, exist_ok=True)
        (dest / e.path).write_bytes(buf.getvalue())
        # identity: the decoded original is the output, so v1's source_pixels is its pixels
        entries.append(
            dataclasses.replace(e, file=file_digest(buf.getvalue()), source=e.pixels, columns={})
        )
    v1 = Manifest.build(recipe=m.recipe, entries=entries, fingerprint=m.fingerprint,
                        provenance=m.provenance, version=1)  # fmt: skip
    write_manifest(v1, dest / MANIFEST_NAME)
    return dest


def test_old_encoder_vs_new_encoder_is_encoder_only_drift(demo_dir: Path, tmp_path: Path) -> None:
    """A benchmark of format v1 (Pillow's PNG bytes) against the same one made now."""
    from toolchain.audit.verify import verify_benchmark

    flat = tmp_path / "flat"  # no class folders: v1 carried no labels
    flat.mkdir()
    for name in ("camera.png", "coins.png", "rocket.jpg"):
        shutil.copy2(demo_dir / name, flat / name)
    new = tmp_path / "new"
    generate_benchmark(flat, "identity", new)
    old = _as_v1_benchmark(new, tmp_path / "old")
    assert load_manifest(old / MANIFEST_NAME).version == 1
    report = verify_benchmark(old)  # old manifests still verify, on their pixels
    assert report.ok and report.notes and "format v1" in report.notes[0]
    c = compare_benchmarks(old, new)
    assert c.reproduces and not c.identical
    assert {s.status for s in c.differing} == {Status.FILE_DIFFERS}
    assert {s.cause for s in c.differing} == {Cause.ENCODER}
    assert all(any(k.startswith("encoder.") for k in s.keys) for s in c.differing)
    assert c.dominant_cause is Cause.ENCODER
    # The old manifest against files written by this version's encoder: pixels verify, and
    # the other PNG bytes are reported, not counted as a failure.
    shutil.copy2(old / MANIFEST_NAME, new / MANIFEST_NAME)
    for name in ("README.md", "croissant.json", "metadata.jsonl"):
        (new / name).unlink()
    again = verify_benchmark(new)
    assert again.ok and len(again.problems) == 3
    assert all(p.problem.value == "file-differs" for p in again.problems)
