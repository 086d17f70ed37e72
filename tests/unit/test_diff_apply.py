"""diff create → apply: bit-exact round trips, wrong originals, moved originals, partial runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import toolchain
import toolchain.diff.apply as apply_mod
from tests.compare_cases import ycbcr_decode
from tests.diff_cases import build, demo_subset, missing_and_altered, pinned, tiny_original
from tests.hf_cases import hf_offline
from tests.hub_snapshots import COMMIT, hub_offline, pets
from toolchain.audit.verify import verify_benchmark
from toolchain.diff import create_diff, get_benchmark
from toolchain.diff.apply import COVERAGE_NAME, Status
from toolchain.diff.locate import Found
from toolchain.diff.reader import check_original
from toolchain.errors import ExitCode, InputError
from toolchain.model.manifest import MANIFEST_NAME, Manifest, load_manifest
from toolchain.model.original import OriginalRef
from toolchain.run.generate import generate_benchmark
from toolchain.source import SourceOptions

__all__ = ["hf_offline", "hub_offline", "pets"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("tiny")
    original = tiny_original(work / "original")
    bench, diff = build(original, "adversarial", work)
    return original, bench, diff


def _apply(original: Path, diff: Path, out: Path, **kw: object) -> apply_mod.ApplyResult:
    with pinned():
        return get_benchmark(original, diff, out, **kw)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["gaussian-noise", "adversarial"])
def test_round_trip_on_demo_photographs(recipe: str, demo_dir: Path, tmp_path: Path) -> None:
    original = demo_subset(demo_dir, tmp_path / "original")
    bench, diff = build(original, recipe, tmp_path)
    result = _apply(original, diff, tmp_path / "rebuilt")
    assert result.ok, [o.message for o in result.failures()]
    assert (
        load_manifest(tmp_path / "rebuilt" / MANIFEST_NAME).root
        == load_manifest(bench / MANIFEST_NAME).root
    )
    assert (tmp_path / "rebuilt" / MANIFEST_NAME).read_bytes() == (
        bench / MANIFEST_NAME
    ).read_bytes()
    for entry in result.manifest.entries:
        assert (tmp_path / "rebuilt" / entry.path).read_bytes() == (bench / entry.path).read_bytes()
    assert verify_benchmark(tmp_path / "rebuilt").ok


def test_public_api_round_trip(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, bench, diff = tiny
    with pinned():
        result = toolchain.get_benchmark(original, diff, tmp_path / "out", workers=1)
    assert result.ok and result.exit_code is ExitCode.OK
    assert result.manifest.root == load_manifest(bench / MANIFEST_NAME).root
    assert {o.found for o in result.outcomes} == {Found.BY_ID}


def test_key_on_pixels_survives_a_lossless_reencode(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    _, diff = build(original, "adversarial", tmp_path, key_on="pixels")
    # Re-save one PNG with other zlib settings: new file bytes, same pixels.
    from PIL import Image

    p = original / "a/one.png"
    before = p.read_bytes()
    with Image.open(p) as img:
        img.load()
        img.save(p, compress_level=1)
    assert p.read_bytes() != before
    result = _apply(original, diff, tmp_path / "out")
    assert result.ok, [o.message for o in result.failures()]


def test_one_changed_byte_fails_that_sample_alone(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, _, diff = tiny
    copy = Path(shutil.copytree(original, tmp_path / "original"))
    victim = copy / "b/three.png"
    data = bytearray(victim.read_bytes())
    data[-20] ^= 0x01  # inside the IEND/IDAT tail: still a file, different bytes
    victim.write_bytes(bytes(data))
    result = _apply(copy, diff, tmp_path / "out")
    assert not result.ok
    assert result.exit_code is ExitCode.CHECK_FAILED
    bad = result.failures()
    assert [o.id for o in bad] == ["b/three.png"]
    assert bad[0].status is Status.ORIGINAL_DIFFERS
    assert bad[0].message == (
        "sample b/three.png: your copy of the original differs from the one this benchmark "
        "was made from"
    )
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()  # nothing passes as valid


def test_reorganized_original_is_matched_by_content(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, bench, diff = tiny
    moved = tmp_path / "moved"
    for i, f in enumerate(sorted(p for p in original.rglob("*") if p.is_file())):
        dest = moved / f"folder{i % 2}" / f"renamed-{i}{f.suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    result = _apply(moved, diff, tmp_path / "out")
    assert result.ok, [o.message for o in result.failures()]
    assert {o.found for o in result.outcomes} == {Found.BY_CONTENT}
    assert (
        load_manifest(tmp_path / "out" / MANIFEST_NAME).root
        == load_manifest(bench / MANIFEST_NAME).root
    )
    assert verify_benchmark(tmp_path / "out").ok


def test_swapped_files_are_found_by_content(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, _, diff = tiny
    copy = Path(shutil.copytree(original, tmp_path / "original"))
    a, b = copy / "a/one.png", copy / "b/three.png"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    result = _apply(copy, diff, tmp_path / "out")
    assert result.ok
    found = {o.id: (o.found, o.source) for o in result.outcomes}
    assert found["a/one.png"] == (Found.BY_CONTENT, "b/three.png")
    assert found["b/three.png"] == (Found.BY_CONTENT, "a/one.png")


def test_partial_writes_the_rest_and_exits_5(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, _, diff = tiny
    copy = missing_and_altered(original, tmp_path)
    out = tmp_path / "out"
    result = _apply(copy, diff, out, partial=True)
    assert result.exit_code is ExitCode.PARTIAL
    assert {o.id for o in result.failures()} == {"five.jpg", "a/one.png"}
    coverage = json.loads((out / COVERAGE_NAME).read_text())
    assert coverage["written"] == 3
    assert {e["id"] for e in coverage["not_written"]} == {"five.jpg", "a/one.png"}
    written = {e.id for e in result.manifest.entries if (out / e.path).exists()}
    assert written == {"a/two.jpg", "b/three.png", "b/four.png"}
    report = verify_benchmark(out)
    assert report.partial and not report.ok  # a partial result never verifies
    assert {p.sample for p in report.problems} == {"five.jpg", "a/one.png"}


def test_decoder_drift_is_named(
    demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = demo_subset(demo_dir, tmp_path / "original", ["camera.png", "rocket.jpg"])
    _, diff = build(original, "identity", tmp_path)
    monkeypatch.setattr(apply_mod, "decode", ycbcr_decode)  # another JPEG colour conversion
    result = _apply(original, diff, tmp_path / "out")
    bad = result.failures()
    assert [o.id for o in bad] == ["rocket.jpg"]
    assert bad[0].status is Status.DECODER_DRIFT
    assert "decoder drift" in bad[0].message
    assert "pillow.libjpeg_turbo" in bad[0].message and "pinned container" in bad[0].message
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_an_exact_rebuild_does_not_hash_its_original(
    tiny: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original's commitment only tells decoder drift from damage, on a failure path:
    a sample whose rebuilt pixels and file match is exact, whatever its original hashes to."""
    original, _, diff = tiny
    hashed: list[object] = []
    real = Manifest.source_of

    def counting(self: Manifest, pixels: object) -> object:
        hashed.append(pixels)
        return real(self, pixels)  # type: ignore[arg-type]

    monkeypatch.setattr(Manifest, "source_of", counting)
    result = _apply(original, diff, tmp_path / "out")
    assert result.ok and len(result.outcomes) > 0
    assert hashed == []


def test_an_interrupted_apply_is_started_over_never_resumed(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, _, diff = tiny
    with pytest.raises(InputError, match="diff apply cannot resume an interrupted run") as e:
        get_benchmark(original, diff, tmp_path / "out", resume=True)
    assert "--overwrite" in (e.value.hint or "")
    assert not (tmp_path / "out").exists()


# -- the original's identity -------------------------------------------------------------


def test_the_wrong_split_is_refused_before_any_work(pets: Path, tmp_path: Path) -> None:
    validation = SourceOptions(split="validation")
    bench, diff = tmp_path / "bench", tmp_path / "pets.bdiff"
    with pinned():
        generate_benchmark(pets, "adversarial", bench, source_options=validation)
        create_diff(pets, bench, diff, source_options=validation)
    out = tmp_path / "out"
    with pytest.raises(InputError) as e:
        _apply(pets, diff, out, source_options=SourceOptions(split="train"))
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert e.value.message == (
        f"this diff was made from photo-lab/pets@{COMMIT[:7]} (config default, split "
        "validation); the original you gave is split 'train' (not 'validation')"
    )
    assert e.value.hint == "pass --split validation"
    assert not out.exists()  # nothing written, nothing that looks like a benchmark
    result = _apply(pets, diff, out, source_options=validation)
    assert result.ok, [o.message for o in result.failures()]
    # the carried manifest, which records the original, is written as it was made
    assert (out / MANIFEST_NAME).read_bytes() == (bench / MANIFEST_NAME).read_bytes()
    assert load_manifest(out / MANIFEST_NAME).provenance.original == OriginalRef(
        repo="photo-lab/pets", revision=COMMIT, config="default", split="validation"
    )


RECORDED = OriginalRef(repo="photo-lab/pets", revision=COMMIT, config="default", split="val")


@pytest.mark.parametrize(
    ("found", "message", "hint"),
    [
        (OriginalRef(split="val"), None, None),  # a local copy: its repo unknown
        (OriginalRef(repo="photo-lab/pets", revision="1" * 40, split="val"), None, None),
        (None, None, None),  # a folder: it names no split
        (
            OriginalRef(config="small", split="train"),
            "config 'small' (not 'default') and split 'train' (not 'val')",
            "pass --split val --config default",
        ),
        (
            OriginalRef(repo="other/pets", split="val"),
            "repo 'other/pets' (not 'photo-lab/pets')",
            f"use a copy of photo-lab/pets at commit {COMMIT}",
        ),
    ],
)
def test_split_config_and_repo_are_checked_where_both_are_known(
    found: OriginalRef | None, message: str | None, hint: str | None
) -> None:
    if message is None:
        check_original(RECORDED, found)
        check_original(None, found)  # a manifest that records none: nothing to check
        return
    with pytest.raises(InputError) as e:
        check_original(RECORDED, found)
    assert e.value.message.endswith(f"the original you gave is {message}")
    assert e.value.hint == hint
