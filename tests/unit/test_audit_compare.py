"""compare: statuses and causes on real benchmarks (drifted, edited, tampered, both output
formats), the files measured on disk, the matrix."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

import toolchain.audit.verify as verify_mod
from tests import compare_cases as cc
from toolchain.audit.compare import (
    Cause,
    Difference,
    Status,
    compare_benchmarks,
    compare_matrix,
    open_side,
)
from toolchain.audit.compare import _labels as labels
from toolchain.audit.report import describe_cause, write_report
from toolchain.errors import ManifestError
from toolchain.hf.parquet import BenchmarkRow
from toolchain.model.manifest import MANIFEST_NAME, Manifest, load_manifest, write_manifest
from toolchain.run.generate import generate_benchmark

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / ".matrix"
PATCH = 40 * 60  # the pixels of the patch compare_cases inverts


@pytest.fixture(scope="module")
def parquet_bench(tmp_path_factory: pytest.TempPathFactory, small_original: Path) -> Path:
    """The identity benchmark of the small original as parquet shards (read-only)."""
    out = tmp_path_factory.mktemp("parquet") / "bench"
    with cc.pinned_here(pytest.MonkeyPatch()):
        generate_benchmark(small_original, "identity", out, format="parquet")
    return out


def test_identical_folders_compare_identical(identity_bench: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(identity_bench, copy)
    c = compare_benchmarks(identity_bench, copy)
    assert c.identical and c.reproduces and c.same_recipe
    assert c.counts()[Status.IDENTICAL] == 8 and c.differing == ()
    assert c.dominant_cause is None and c.fingerprint_diff == {}
    assert c.measured(c.a) and c.measured(c.b) and not c.trust_manifests


def test_every_file_is_read_and_decoded_once(
    identity_bench: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each output is decoded once per side, by compare; the report decodes nothing."""
    changed = cc.tampered(identity_bench, tmp_path / "t", "class_a/coins.png")
    calls: list[int] = []
    real = verify_mod.decode

    def counting(data: bytes) -> object:
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(verify_mod, "decode", counting)
    c = compare_benchmarks(identity_bench, changed)
    assert len(calls) == 16
    write_report(c, tmp_path / "report")
    assert len(calls) == 16


def test_one_altered_pixel_hash_names_that_sample(identity_bench: Path, tmp_path: Path) -> None:
    m = cc.altered_pixels(identity_bench, tmp_path / "m.json", "class_a/coins.png")
    c = compare_benchmarks(identity_bench / MANIFEST_NAME, m)
    assert not c.reproduces and not c.identical
    assert not c.measured(c.a) and not c.measured(c.b)  # bare manifests: nothing to read
    (s,) = c.differing
    assert s.id == "class_a/coins.png" and s.status is Status.PIXELS_DIFFER
    # same source pixels, same recipe, no library differs: generator drift, unexplained
    assert s.cause is Cause.GENERATOR and s.keys == ()
    assert s.stats is None  # manifests only: no pixels to measure
    assert describe_cause(s).startswith("generator drift (no recorded library differs; pixels: ")


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
    assert c.recipe_differences == (Difference(field="seed", a=str(m.recipe.seed), b="7"),)
    assert not c.reproduces and c.dominant_cause is Cause.RECIPE


def test_another_param_is_named_with_its_values(small_original: Path, tmp_path: Path) -> None:
    """``--param sigma=9``: every differing sample blames the parameter, never a library."""
    mp = pytest.MonkeyPatch()
    ref = cc.in_process(small_original, "gaussian-noise", tmp_path / "ref", mp)
    with cc.pinned_here(mp):
        generate_benchmark(small_original, "gaussian-noise", tmp_path / "s9", params={"sigma": 9.0})
    c = compare_benchmarks(ref, tmp_path / "s9")
    assert c.differing and not c.reproduces and c.dominant_cause is Cause.RECIPE
    sigma = c.recipe_differences[0]
    assert sigma.field == "params.sigma" and sigma.b == "9.0" and sigma.a != "9.0"
    for s in c.differing:
        assert s.status is Status.PIXELS_DIFFER and s.cause is Cause.RECIPE
        assert s.differences == c.recipe_differences
        assert describe_cause(s) == f"recipe or parameters differ (params.sigma: {sigma.a} -> 9.0)"
        assert s.stats is not None and s.stats.differing > 0  # measured on disk


def test_an_edited_original_is_named(small_original: Path, identity_bench: Path,
                                     tmp_path: Path) -> None:  # fmt: skip
    edited = cc.edited_original(small_original, tmp_path / "orig", "class_b/chelsea.png")
    other = cc.in_process(edited, "identity", tmp_path / "bench", pytest.MonkeyPatch())
    c = compare_benchmarks(identity_bench, other)
    (s,) = c.differing
    assert s.id == "class_b/chelsea.png" and s.status is Status.PIXELS_DIFFER
    assert s.cause is Cause.ORIGINAL and c.fingerprint_diff == {}
    assert (
        s.a
        and s.b
        and s.differences
        == (Difference(field="source commitment", a=s.a.source.short, b=s.b.source.short),)
    )
    # identity: the output is the original, so the edit is what differs
    assert s.stats is not None and s.stats.differing == PATCH * 3
    assert s.view is not None and s.view.changed == (20, 20, 60, 80)


def test_decoder_drift(small_original: Path, identity_bench: Path, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    drifted = cc.decoder_drift(small_original, tmp_path / "ycbcr", monkeypatch)
    c = compare_benchmarks(identity_bench, drifted)
    by_cause = {s.id: s.cause for s in c.differing}
    # exactly the two colour JPEGs decode differently; PNGs are untouched
    assert by_cause == {"class_b/retina.jpg": Cause.DECODER, "class_a/rocket.jpg": Cause.DECODER}
    (key,) = cc.YCBCR_BUILD
    for s in c.differing:
        assert s.status is Status.PIXELS_DIFFER and s.a and s.b
        assert s.a.source != s.b.source and s.keys == (key,)
        assert s.differences[0] == Difference(field=key, a=c.fingerprint_diff[key][0],
                                              b=cc.YCBCR_BUILD[key])  # fmt: skip
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
    haswell = c.a.manifest.fingerprint["blas.coretype"]
    for s in c.differing:
        assert s.status is Status.PIXELS_DIFFER
        assert s.cause is Cause.GENERATOR and s.keys == ("blas.coretype",)
        assert s.a and s.b and s.a.source == s.b.source
        assert s.stats is not None and 0 < s.stats.differing < s.stats.values
        assert describe_cause(s).startswith(
            f"generator drift (blas.coretype: {haswell} -> Sandybridge; pixels: "
        )
    assert c.fingerprint_diff == {"blas.coretype": (haswell, "Sandybridge")}
    assert c.dominant_cause is Cause.GENERATOR and not c.reproduces


def test_encoder_only_drift(identity_bench: Path, tmp_path: Path) -> None:
    """Every PNG re-encoded by another encoder and recorded so: same pixels, other bytes."""
    drifted = cc.encoder_drift(identity_bench, tmp_path / "level1")
    c = compare_benchmarks(identity_bench, drifted)
    assert c.reproduces and not c.identical  # pixels are the contract: still reproduces
    assert len(c.differing) == 8
    for s in c.differing:
        assert s.status is Status.FILE_DIFFERS and s.cause is Cause.ENCODER
        assert s.keys == ("pillow.zlib_ng",) and s.differences[-1].field == "file"
        assert s.stats is None  # the same pixels: nothing to measure
    assert c.dominant_cause is Cause.ENCODER


def test_encoder_drift_does_not_hide_pixel_drift(identity_bench: Path, tmp_path: Path) -> None:
    enc = cc.encoder_drift(identity_bench, tmp_path / "level1")
    both = cc.altered_pixels(enc, tmp_path / "both.json", "class_b/camera.png")
    c = compare_benchmarks(identity_bench / MANIFEST_NAME, both)
    assert c.cause_counts() == {Cause.GENERATOR: 1, Cause.ENCODER: 7}
    assert c.dominant_cause is Cause.GENERATOR


# -- what is on disk ---------------------------------------------------------------------


def test_a_tampered_output_is_never_identical(identity_bench: Path, tmp_path: Path) -> None:
    """One output edited after publication (a 60x40 patch inverted), the manifest kept."""
    victim = "class_a/coins.png"
    changed = cc.tampered(identity_bench, tmp_path / "t", victim)
    for a, b, tag in ((identity_bench, changed, "B"), (changed, identity_bench, "A")):
        c = compare_benchmarks(a, b)
        assert not c.identical and not c.reproduces
        (s,) = c.differing
        assert s.id == victim and s.status is Status.FILE_TAMPERED and s.cause is Cause.TAMPERED
        (d,) = s.differences
        assert d.field == f"{tag} {victim}" and d.a.startswith("manifest: pixels ")
        assert d.b.startswith("on disk: pixels ")
        # measured from the files: the patch, in the one channel of this greyscale photograph
        assert s.stats is not None and s.stats.differing == PATCH
        assert s.view is not None and s.view.changed == (20, 20, 60, 80)
    # --trust-manifests reads the manifests only, and says so
    fast = compare_benchmarks(identity_bench, changed, trust_manifests=True)
    assert fast.identical and fast.trust_manifests and not fast.measured(fast.b)
    assert json.loads(json.dumps(fast.to_json()))["trust_manifests"] is True


def test_deleted_and_linked_outputs(identity_bench: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(identity_bench, tmp_path / "copy"))
    (copy / "class_a/coins.png").unlink()
    # a link to a byte-identical file is still refused: benchmark-regen never writes one
    (copy / "class_b/camera.png").unlink()
    (copy / "class_b/camera.png").symlink_to(identity_bench / "class_b/camera.png")
    c = compare_benchmarks(identity_bench, copy)
    assert not c.identical and not c.reproduces
    got = {s.id: (s.status, s.cause, s.differences[-1].b) for s in c.differing}
    assert got == {
        "class_a/coins.png": (Status.FILE_MISSING, Cause.TAMPERED, "on disk: missing"),
        "class_b/camera.png": (Status.FILE_REFUSED, Cause.TAMPERED,
                               "on disk: is a symlink: not followed"),
    }  # fmt: skip
    # a folder on the way is a link: each of its samples is refused
    shutil.rmtree(copy / "class_a")
    os.symlink(identity_bench / "class_a", copy / "class_a")
    c = compare_benchmarks(identity_bench, copy)
    refused = [s for s in c.differing if s.status is Status.FILE_REFUSED]
    assert sorted(s.id for s in refused) == ["class_a/coins.png", "class_a/logo.png",
                                              "class_a/microaneurysms.png", "class_a/rocket.jpg",
                                              "class_b/camera.png"]  # fmt: skip
    assert "'class_a' is a symlink or a file, not a folder" in refused[0].differences[-1].b


def test_a_reencoded_output_is_tampered_bytes(identity_bench: Path, tmp_path: Path) -> None:
    """Same pixels, other bytes, manifest not updated: the file is not its manifest's."""
    changed = cc.reencoded_in_place(identity_bench, tmp_path / "r", "class_b/horse.png")
    c = compare_benchmarks(identity_bench, changed)
    (s,) = c.differing
    assert s.status is Status.FILE_TAMPERED and s.cause is Cause.TAMPERED
    assert s.differences[-1].b.endswith("(same pixels)") and s.stats is None
    assert not c.reproduces


# -- the parquet format ------------------------------------------------------------------


def test_parquet_against_folder_and_parquet(identity_bench: Path, parquet_bench: Path,
                                            tmp_path: Path) -> None:  # fmt: skip
    c = compare_benchmarks(identity_bench, parquet_bench)
    assert (c.a.format, c.b.format) == ("folder", "parquet")
    assert c.identical  # the same PNG bytes, in shards
    copy = Path(shutil.copytree(parquet_bench, tmp_path / "copy"))
    assert compare_benchmarks(parquet_bench, copy).identical


def test_parquet_drift_is_measured_from_the_rows(small_original: Path, parquet_bench: Path,
                                                 tmp_path: Path) -> None:  # fmt: skip
    edited = cc.edited_original(small_original, tmp_path / "orig", "class_b/chelsea.png")
    other = tmp_path / "edited"
    with cc.pinned_here(pytest.MonkeyPatch()):
        generate_benchmark(edited, "identity", other, format="parquet")
    c = compare_benchmarks(parquet_bench, other)
    (s,) = c.differing
    assert s.cause is Cause.ORIGINAL and s.stats is not None and s.stats.differing == PATCH * 3


def test_parquet_rows_tampered_deleted_and_stray(parquet_bench: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(parquet_bench, tmp_path / "copy"))

    def change(rows: list[BenchmarkRow]) -> list[BenchmarkRow]:
        by = {r.path: r for r in rows}
        by["class_a/coins.png"] = cc.tampered_row(by["class_a/coins.png"])
        del by["class_b/camera.png"]
        stray = dataclasses.replace(
            by["class_a/logo.png"], id="class_a/zz.png", path="class_a/zz.png"
        )
        twice = dataclasses.replace(by["class_a/logo.png"], id="class_a/logo.png2")
        by["class_a/zz.png"], by[twice.id] = stray, twice
        return sorted(by.values(), key=lambda r: r.id.encode())

    cc.rewrite_parquet(copy, change)
    c = compare_benchmarks(parquet_bench, copy)
    assert not c.identical and not c.reproduces
    got = {s.id: (s.status, s.differences[-1].b) for s in c.differing}
    assert got["class_b/camera.png"] == (Status.FILE_MISSING, "on disk: not in the shards")
    assert got["class_a/coins.png"][0] is Status.FILE_TAMPERED
    assert got["class_a/coins.png"][1].startswith("on disk: pixels ")
    assert len(got) == 2
    assert c.side_problems == (
        "B: a row of 'class_a/logo.png' appears twice",
        "B: a row of 'class_a/zz.png' is not in the manifest",
    )


def test_parquet_linked_shard_is_refused(parquet_bench: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(parquet_bench, tmp_path / "copy"))
    (shard,) = (copy / "data").glob("*.parquet")
    shard.unlink()
    shard.symlink_to(parquet_bench / "data" / shard.name)  # the very same bytes
    c = compare_benchmarks(parquet_bench, copy)
    assert {s.status for s in c.samples} == {Status.FILE_REFUSED} and not c.identical
    assert (
        c.samples[0].differences[-1].b == f"on disk: data/{shard.name} is a symlink: not followed"
    )


def test_open_side_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"without a manifest\.json"):
        open_side(tmp_path)


# -- the matrix --------------------------------------------------------------------------


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
    """Other decoder builds for real, where the matrix has them."""
    dirs = [MATRIX / "locked" / bench, *(MATRIX / c / bench for c in sorted(EXPECTED_MATRIX))]
    missing = [d for d in dirs if not (d / MANIFEST_NAME).is_file()]
    if missing:
        why = f"no version-matrix outputs ({missing[0]}): run `nox -s matrix` first"
        if os.environ.get("BENCHMARK_REGEN_REQUIRE_MATRIX") == "1":  # set by .ci/run
            pytest.fail(f"BENCHMARK_REGEN_REQUIRE_MATRIX=1 but {why}")
        pytest.skip(why)
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
                assert s.a.source != s.b.source and s.keys
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
    # compare does the same: a v1 manifest's other bytes are not tampering
    assert compare_benchmarks(old, new).reproduces
