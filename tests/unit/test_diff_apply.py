"""diff create → apply: bit-exact round trips, wrong originals, moved originals, partial runs."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import toolchain
import toolchain.diff.apply as apply_mod
import toolchain.diff.create as create_mod
from tests.compare_cases import ycbcr_decode
from tests.diff_cases import build, demo_subset, missing_and_altered, pinned, tiny_original
from tests.hf_cases import hf_offline
from tests.hub_snapshots import COMMIT, hub_offline, pets
from toolchain.audit.verify import verify_benchmark
from toolchain.diff import check_diff, create_diff, get_benchmark
from toolchain.diff.apply import COVERAGE_NAME, Status
from toolchain.diff.format import KeyOn, PayloadKind
from toolchain.diff.locate import Found
from toolchain.diff.reader import check_original, open_diff
from toolchain.errors import ExitCode, InputError, Interrupted, OutputError, RecipeError
from toolchain.model.manifest import MANIFEST_NAME, Manifest, load_manifest
from toolchain.model.original import OriginalRef
from toolchain.recipes.shipped import ShippedRecipe
from toolchain.run.generate import generate_benchmark
from toolchain.source import SourceOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

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


@pytest.mark.parametrize(
    ("entries", "kind"),
    [("delta", PayloadKind.DELTA), ("auto", PayloadKind.RECIPE)],
    ids=["deltas", "recipe entries"],
)
def test_decoder_drift_is_named(
    demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: str, kind: PayloadKind
) -> None:
    """A recipe entry whose recipe gives other pixels because its original decodes to other
    pixels is decoder drift, as a delta's is: never generator drift."""
    original = demo_subset(demo_dir, tmp_path / "original", ["camera.png", "rocket.jpg"])
    _, diff = build(original, "identity", tmp_path, entries=entries)
    with open_diff(diff) as reader:
        assert [r.kind for r in reader.records] == [kind, kind]
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


def _interrupted_apply(
    original: Path, diff: Path, out: Path, after: int, *, workers: int = 1
) -> None:
    """``diff apply`` into ``out``, stopped by Ctrl-C once ``after`` samples are done."""

    def ctrl_c(done: int, total: int) -> None:
        if done >= after:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as e:
        _apply(original, diff, out, progress=ctrl_c, workers=workers)
    assert e.value.hint == "run the same command again with --resume to finish the rest"
    assert not (out / MANIFEST_NAME).exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_apply_resumes_to_the_carried_manifest(
    tiny: tuple[Path, Path, Path], tmp_path: Path, workers: int
) -> None:
    original, bench, diff = tiny
    out = tmp_path / "out"
    _interrupted_apply(original, diff, out, after=2, workers=workers)
    result = _apply(original, diff, out, resume=True, workers=workers)
    assert result.ok, [o.message for o in result.failures()]
    counts = result.found_counts()
    assert counts["finished-before-resume"] >= 2
    assert counts["finished-before-resume"] + counts["found-by-id"] == len(result.outcomes)
    assert (out / MANIFEST_NAME).read_bytes() == (bench / MANIFEST_NAME).read_bytes()
    assert verify_benchmark(out).ok


def test_a_resumed_apply_makes_again_a_finished_file_changed_since(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, bench, diff = tiny
    out = tmp_path / "out"
    _interrupted_apply(original, diff, out, after=2)
    finished = sorted(out.rglob("*.png"))
    assert len(finished) >= 2
    flipped = bytearray(finished[0].read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    finished[0].write_bytes(bytes(flipped))  # one bit
    result = _apply(original, diff, out, resume=True)
    assert result.ok, [o.message for o in result.failures()]
    assert result.found_counts()["finished-before-resume"] == len(finished) - 1
    assert verify_benchmark(out).ok
    assert (out / MANIFEST_NAME).read_bytes() == (bench / MANIFEST_NAME).read_bytes()


def test_a_resume_of_another_diffs_apply_is_refused(
    tiny: tuple[Path, Path, Path], recipe_entries: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, _, diff = tiny
    out = tmp_path / "out"
    _interrupted_apply(original, diff, out, after=1)
    with pytest.raises(OutputError, match="is a different run") as e:
        _apply(recipe_entries[0], recipe_entries[2], out, resume=True)
    assert "--overwrite" in (e.value.hint or "")


# -- recipe entries (issue #27) ------------------------------------------------------------


@pytest.fixture(scope="module")
def recipe_entries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(an original, its identity benchmark, a .bdiff of recipe entries only)."""
    work = tmp_path_factory.mktemp("recipe-entries")
    original = tiny_original(work / "original")
    bench, diff = build(original, "identity", work, entries="auto")
    with open_diff(diff) as reader:
        assert {r.kind for r in reader.records} == {PayloadKind.RECIPE}
    return original, bench, diff


DRIFTS = "b/three.png"
"""An L image of 40x32 pixels (:func:`tiny_original`)."""


@pytest.mark.parametrize(
    ("change", "partial", "detail"),
    [
        ("one pixel", False, ""),
        ("one pixel", True, ""),
        ("one row less", False, ": shape 31x40x1, the publisher's 32x40x1"),
    ],
    ids=["one pixel", "one pixel, partial", "one row less"],
)
def test_generator_drift_fails_that_sample_alone(
    recipe_entries: tuple[Path, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    partial: bool,
    detail: str,
) -> None:
    """The shipped recipe, run here, makes other pixels for one sample: that sample alone
    is generator drift; with ``partial`` the others are written."""
    original, bench, diff = recipe_entries
    real = ShippedRecipe.run

    def drifting(
        self: ShippedRecipe, sample_id: str, pixels: npt.NDArray[np.uint8]
    ) -> npt.NDArray[np.uint8]:
        made = real(self, sample_id, pixels)
        if sample_id != DRIFTS:
            return made
        if change == "one row less":
            return made[1:]
        made = made.copy()
        made[0, 0, :1] += 1
        return made

    monkeypatch.setattr(ShippedRecipe, "run", drifting)
    out = tmp_path / "out"
    result = _apply(original, diff, out, partial=partial)
    bad = result.failures()
    assert [(o.id, o.status) for o in bad] == [(DRIFTS, Status.GENERATOR_DRIFT)]
    assert bad[0].message == (
        f"sample {DRIFTS}: generator drift: the recipe entry's recipe gives other pixels here "
        "than the publisher's run (no generator field of the fingerprints differs)"
        f"{detail}; {apply_mod.GENERATOR_HINT}"
    )
    manifest = load_manifest(bench / MANIFEST_NAME)
    assert not (out / next(e.path for e in manifest.entries if e.id == DRIFTS)).exists()
    if not partial:
        assert result.exit_code is ExitCode.CHECK_FAILED
        assert not (out / MANIFEST_NAME).exists()
        return
    assert result.exit_code is ExitCode.PARTIAL
    coverage = json.loads((out / COVERAGE_NAME).read_text())
    assert [e["id"] for e in coverage["not_written"]] == [DRIFTS]
    for e in manifest.entries:
        if e.id != DRIFTS:
            assert (out / e.path).read_bytes() == (bench / e.path).read_bytes(), e.id


def test_generator_drift_names_the_generator_fields_that_differ(
    recipe_entries: tuple[Path, Path, Path],
) -> None:
    """Of the fingerprints' differences, those that can explain other pixels from the same
    recipe: numpy and the BLAS, not the decoder (whose drift is told apart first)."""
    entry = load_manifest(recipe_entries[1] / MANIFEST_NAME).entries[0]
    publisher = {"numpy": "2.4.6", "blas.core": "haswell", "pillow": "11.0", "python": "3.11.9"}
    local = {**publisher, "numpy": "2.0.0", "blas.core": "armv8", "pillow": "12.0"}
    message = apply_mod._describe(
        entry, apply_mod._Done(status=Status.GENERATOR_DRIFT), publisher, local, KeyOn.FILE
    )
    assert message == (
        f"sample {entry.id}: generator drift: the recipe entry's recipe gives other pixels here "
        "than the publisher's run (differs: blas.core: 'haswell' vs 'armv8', numpy: '2.4.6' vs "
        f"'2.0.0'); {apply_mod.GENERATOR_HINT}"
    )


VERSION_9_9 = '''"""The shipped gaussian-noise, as a version no release ships (test-local)."""

import toolchain
from toolchain.recipes.gaussian_noise import gaussian_noise as shipped


@toolchain.recipe(
    name="gaussian-noise", version="9.9", seed=2024, select="1/2", bounds={"sigma": (0.0, 255.0)}
)
def noise(pixels, rng, *, sigma: float = 8.0):
    return shipped.fn(pixels, rng, sigma=sigma)
'''


def test_recipe_entries_of_a_version_not_shipped_are_refused_before_any_original_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = tiny_original(tmp_path / "original")
    (tmp_path / "v99.py").write_text(VERSION_9_9)

    def as_if_shipped(manifest: Manifest) -> ShippedRecipe:
        return ShippedRecipe(identity=dataclasses.replace(manifest.recipe, version="1.0"))

    with monkeypatch.context() as m:  # a release that shipped 9.9 made the diff
        m.setattr(create_mod, "shipped_recipe_of", as_if_shipped)
        _, diff = build(
            original, f"{tmp_path / 'v99.py'}:gaussian-noise", tmp_path, entries="recipe"
        )
    with open_diff(diff) as reader:
        assert reader.header.version == 3 and reader.manifest.recipe.version == "9.9"
        assert {r.kind for r in reader.records} == {PayloadKind.RECIPE}
    out = tmp_path / "out"
    for given in (original, tmp_path / "no-such-original"):  # not even listed
        with pytest.raises(RecipeError) as e:
            _apply(given, diff, out)
        assert e.value.message.endswith(
            "the diff's recipe entries name gaussian-noise 9.9; benchmark-regen "
            f"{load_manifest(tmp_path / 'bench' / MANIFEST_NAME).fingerprint['toolchain']} "
            "ships gaussian-noise 1.0"
        ), e.value.message
        assert e.value.exit_code == ExitCode.BAD_INPUT
        assert not out.exists()


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


def test_without_split_the_recorded_one_is_read_where_there_are_several(
    pets: Path, tmp_path: Path
) -> None:
    """pets has train and validation: given no --split, diff create, check and apply read
    the split the manifest records, not an error asking for one."""
    bench, diff = tmp_path / "bench", tmp_path / "pets.bdiff"
    with pinned():
        generate_benchmark(
            pets, "adversarial", bench, source_options=SourceOptions(split="validation")
        )
        create_diff(pets, bench, diff)  # the benchmark's manifest records validation
    assert check_diff(pets, diff).ok
    out = tmp_path / "out"
    result = _apply(pets, diff, out)
    assert result.ok, [o.message for o in result.failures()]
    assert (out / MANIFEST_NAME).read_bytes() == (bench / MANIFEST_NAME).read_bytes()
    with pytest.raises(InputError) as e:  # a split given is still the one read
        _apply(pets, diff, tmp_path / "train", source_options=SourceOptions(split="train"))
    assert e.value.hint == "pass --split validation"
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
