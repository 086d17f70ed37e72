"""toolchain.diff.create: a deterministic .bdiff of a benchmark that verifies, from the very
original it was made from, written only where nothing of ours is overwritten."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import toolchain
from tests.diff_cases import build, pinned, tiny_original
from toolchain.diff import create as create_module
from toolchain.diff import create_diff, get_benchmark
from toolchain.diff.audit import audit_diff
from toolchain.diff.format import KeyOn, PayloadKind
from toolchain.diff.reader import open_diff
from toolchain.errors import InputError, ManifestError
from toolchain.model.manifest import MANIFEST_NAME, EntryTable, load_manifest, write_manifest
from toolchain.run.generate import generate_benchmark


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("create")
    original = tiny_original(work / "original")
    bench, diff = build(original, "adversarial", work)
    return original, bench, diff


def test_create_twice_gives_identical_bytes(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, bench, diff = tiny
    with pinned():
        toolchain.create_diff(original, bench, tmp_path / "again.bdiff", entries="delta")
    assert (tmp_path / "again.bdiff").read_bytes() == diff.read_bytes()


def test_create_refuses_a_benchmark_that_does_not_verify(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, bench, _ = tiny
    copy = Path(shutil.copytree(bench, tmp_path / "bench"))
    entry = load_manifest(copy / MANIFEST_NAME).entries[0]
    (copy / entry.path).unlink()
    with pytest.raises(InputError, match="does not verify"):
        create_diff(original, copy, tmp_path / "x.bdiff")
    assert not (tmp_path / "x.bdiff").exists()


def test_create_refuses_a_manifest_not_in_canonical_form(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, bench, _ = tiny
    copy = Path(shutil.copytree(bench, tmp_path / "bench"))
    text = copy / MANIFEST_NAME
    text.write_bytes(json.dumps(json.loads(text.read_bytes())).encode())  # the same, other bytes
    with pinned(), pytest.raises(ManifestError, match="is not in canonical form"):
        create_diff(original, copy, tmp_path / "x.bdiff")
    assert [p.name for p in tmp_path.iterdir()] == ["bench"]  # no diff, no temporary file


def test_create_refuses_a_manifest_changed_after_it_was_verified(
    tiny: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes written are the bytes of the manifest verified, or nothing is written."""
    original, bench, _ = tiny
    copy = Path(shutil.copytree(bench, tmp_path / "bench"))
    verify = create_module.verify_benchmark

    def verify_then_change(out: Path) -> object:
        report = verify(out)
        m = report.manifest
        write_manifest(replace(m, entries=EntryTable(list(m.entries)[1:])), out / MANIFEST_NAME)
        return report

    monkeypatch.setattr(create_module, "verify_benchmark", verify_then_change)
    with pinned(), pytest.raises(InputError, match="changed while diff create read it"):
        create_diff(original, copy, tmp_path / "x.bdiff")
    assert [p.name for p in tmp_path.iterdir()] == ["bench"]


def test_create_refuses_another_original(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, bench, _ = tiny
    other = tiny_original(tmp_path / "other")
    from tests.conftest import make_image

    make_image(other / "a/one.png", seed=99)
    with pinned(), pytest.raises(InputError, match="other pixels") as e:
        create_diff(other, bench, tmp_path / "x.bdiff")
    assert e.value.sample == "a/one.png"


def test_the_result_describes_what_was_written(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, bench, _ = tiny
    with pinned():
        result = create_diff(original, bench, tmp_path / "d.bdiff", key_on="pixels")
    doc = result.to_json()
    # adversarial is shipped and reproduces here: every entry names it (keyed on pixels too)
    assert doc["samples"] == 5 and doc["recipe"] == 5 and doc["delta"] + doc["full"] == 0
    assert doc["key_on"] == "pixels" and doc["bytes"] == (tmp_path / "d.bdiff").stat().st_size
    with open_diff(tmp_path / "d.bdiff") as reader:
        assert reader.header.key_on is KeyOn.PIXELS
        assert [r.kind for r in reader.records] == list(result.kinds)
        assert reader.manifest.root == load_manifest(bench / MANIFEST_NAME).root
    assert set(result.kinds) <= set(PayloadKind)


@pytest.mark.parametrize(
    ("kw", "words"),
    [({"key_on": "name"}, "key_on must be 'file' or 'pixels'"),
     ({"format": "zip"}, "unknown diff format 'zip'"),
     ({"entries": "both"}, "unknown entries choice 'both'")],
)  # fmt: skip
def test_bad_options_are_bad_input(
    tiny: tuple[Path, Path, Path], tmp_path: Path, kw: dict[str, str], words: str
) -> None:
    original, bench, _ = tiny
    with pytest.raises(InputError, match=words):
        create_diff(original, bench, tmp_path / "x.bdiff", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["manifest.json", "metadata.jsonl", "manifest.shard-0-of-2.json"])
def test_out_never_overwrites_a_file_of_a_benchmark_folder(
    tiny: tuple[Path, Path, Path], tmp_path: Path, name: str
) -> None:
    original, bench, _ = tiny
    target = tmp_path / name
    target.write_text("keep")
    with pinned(), pytest.raises(InputError, match="refusing to overwrite"):
        create_diff(original, bench, target)
    assert target.read_text() == "keep"


def test_out_may_not_be_a_folder(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, bench, _ = tiny
    with pinned(), pytest.raises(InputError, match="is a folder"):
        create_diff(original, bench, tmp_path)


def test_a_renamed_original_still_makes_the_same_diff(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """The container commits to the benchmark and the originals' bytes, not to where they are."""
    original, bench, diff = tiny
    copy = Path(shutil.copytree(original, tmp_path / "elsewhere" / "val"))
    with pinned():
        toolchain.create_diff(copy, bench, tmp_path / "again.bdiff", entries="delta")
    assert (tmp_path / "again.bdiff").read_bytes() == diff.read_bytes()


# -- recipe entries (issue #27) ------------------------------------------------------------


@pytest.fixture(scope="module", params=["gaussian-noise", "identity"])
def shipped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Path, Path]:
    """(a shipped recipe, an original, the benchmark it makes, its delta-only .bdiff)."""
    recipe: str = request.param
    work = tmp_path_factory.mktemp(recipe)
    original = tiny_original(work / "original")
    bench, diff = build(original, recipe, work)
    return recipe, original, bench, diff


RECIPE_PAYLOAD = 12 + 16
"""A recipe entry's sealed payload: its 12-byte head and the 16-byte AEAD tag."""
SMALLER = {"gaussian-noise": 3, "identity": 1}
"""How many times the delta-only .bdiff is at least as large as the auto one. Measured on
:func:`tiny_original`: gaussian-noise 13774 / 3589 bytes (3.8; the carried manifest is most
of what is left), identity 4585 / 4495 (an all-zero delta compresses to a few bytes)."""


def _rebuilds_the_benchmark(original: Path, diff: Path, bench: Path, out: Path) -> None:
    with pinned():
        result = get_benchmark(original, diff, out)
    assert result.ok, [o.message for o in result.failures()]
    assert (out / MANIFEST_NAME).read_bytes() == (bench / MANIFEST_NAME).read_bytes()
    for e in result.manifest.entries:
        assert (out / e.path).read_bytes() == (bench / e.path).read_bytes(), e.id


def test_auto_makes_recipe_entries_that_rebuild_what_deltas_do(
    shipped: tuple[str, Path, Path, Path], tmp_path: Path
) -> None:
    recipe, original, bench, _ = shipped
    n = len(load_manifest(bench / MANIFEST_NAME).entries)
    diffs: dict[tuple[str, str], Path] = {}
    with pinned():
        for fmt in ("bdiff", "parquet"):
            for entries in ("auto", "delta"):
                out = tmp_path / (f"{entries}.bdiff" if fmt == "bdiff" else f"{entries}-ds")
                kinds = create_diff(original, bench, out, entries=entries, format=fmt).kinds
                if entries == "auto":
                    assert kinds == (PayloadKind.RECIPE,) * n
                else:
                    assert len(kinds) == n and PayloadKind.RECIPE not in kinds
                diffs[entries, fmt] = out
        create_diff(original, bench, tmp_path / "again.bdiff", entries="auto")
    assert (tmp_path / "again.bdiff").read_bytes() == (tmp_path / "auto.bdiff").read_bytes()
    sealed: dict[str, list[int]] = {}
    for (entries, fmt), diff in diffs.items():
        with open_diff(diff) as reader:
            assert reader.header.version == (3 if entries == "auto" else 2), (entries, fmt)
            sealed[entries] = [r.length for r in reader.records]
        _rebuilds_the_benchmark(original, diff, bench, tmp_path / f"out-{entries}-{fmt}")
    assert sealed["auto"] == [RECIPE_PAYLOAD] * n
    assert sum(sealed["delta"]) > RECIPE_PAYLOAD * n
    auto, delta = diffs["auto", "bdiff"].stat().st_size, diffs["delta", "bdiff"].stat().st_size
    assert auto * SMALLER[recipe] < delta, (auto, delta)


def test_the_audit_tests_no_recipe_payload_on_its_own(
    shipped: tuple[str, Path, Path, Path], tmp_path: Path
) -> None:
    """28 bytes are too few for a test of randomness: recipe entries count only in the
    test of all bytes together, are reported as such, and have no delta to measure."""
    _, original, bench, delta = shipped
    manifest = load_manifest(bench / MANIFEST_NAME)
    with pinned():
        create_diff(original, bench, tmp_path / "auto.bdiff", entries="auto")
    report = audit_diff(tmp_path / "auto.bdiff", original)
    doc = report.to_json()
    assert report.recipe_entries is not None
    assert report.recipe_entries.count == len(manifest.entries) > 0
    assert doc["recipe_entries"] == {
        "count": len(manifest.entries),
        "recipe": str(manifest.recipe),
        "reveals": report.recipe_entries.to_json()["reveals"],
    }
    assert report.payloads == 0 and doc["sealed"]["payloads"] == 0  # type: ignore[index]
    assert "sealed-payloads-not-random" not in report.flags
    assert not report.leaks and "delta" not in doc
    deltas = audit_diff(delta)  # the control: the same benchmark as deltas
    assert deltas.payloads == len(manifest.entries) and deltas.recipe_entries is None
    assert "recipe_entries" not in deltas.to_json()


IMPOSTOR = '''"""Recipes that are not the shipped ones (test-local)."""

import toolchain
from toolchain.recipes.gaussian_noise import gaussian_noise as shipped


# Declares the shipped name and version; the same noise, but inverted when not RGB.
@toolchain.recipe(name="gaussian-noise", version="1.0", seed=2024, bounds={"sigma": (0.0, 255.0)})
def impostor(pixels, rng, *, sigma: float = 8.0):
    out = shipped.fn(pixels, rng, sigma=sigma)
    return out if pixels.shape[2] == 3 else 255 - out


@toolchain.recipe(name="blur", version="1", seed=0)
def blur(pixels, rng):
    return pixels
'''
IMPOSTOR_DIFFERS = ("b/four.png", "b/three.png")
"""The samples :data:`IMPOSTOR` makes otherwise than the shipped gaussian-noise: L and RGBA."""


@pytest.fixture(scope="module")
def impostor(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(an original, its benchmark by the impostor gaussian-noise, its benchmark by blur)."""
    work = tmp_path_factory.mktemp("impostor")
    original = tiny_original(work / "original")
    (work / "impostor.py").write_text(IMPOSTOR)
    with pinned():
        for name in ("gaussian-noise", "blur"):
            generate_benchmark(original, f"{work / 'impostor.py'}:{name}", work / name)
    return original, work / "gaussian-noise", work / "blur"


@pytest.mark.parametrize("fmt", ["bdiff", "parquet"])
def test_auto_carries_the_pixels_of_samples_the_shipped_recipe_does_not_make(
    impostor: tuple[Path, Path, Path], tmp_path: Path, fmt: str
) -> None:
    original, bench, _ = impostor
    manifest = load_manifest(bench / MANIFEST_NAME)
    assert manifest.recipe.name == "gaussian-noise" and manifest.recipe.version == "1.0"
    diff = tmp_path / ("x.bdiff" if fmt == "bdiff" else "x")
    with pinned():
        create_diff(original, bench, diff, entries="auto", format=fmt)
    with open_diff(diff) as reader:
        assert reader.header.version == 3
        kinds = {e.id: r.kind for e, r in zip(reader.manifest.entries, reader.records, strict=True)}
    assert {i for i, k in kinds.items() if k is not PayloadKind.RECIPE} == set(IMPOSTOR_DIFFERS)
    assert {kinds[i] for i in IMPOSTOR_DIFFERS} <= {PayloadKind.DELTA, PayloadKind.FULL}
    _rebuilds_the_benchmark(original, diff, bench, tmp_path / "out")


@pytest.mark.parametrize("fmt", ["bdiff", "parquet"])
@pytest.mark.parametrize(
    ("made_by", "words"),
    [
        ("gaussian-noise", "2 of 5 samples are not what gaussian-noise@1.0 (seed 2024) gives "
         "here ('b/four.png', 'b/three.png'); the generator fingerprints agree"),
        ("blur", "--entries recipe: the benchmark was made by blur@1 (seed 0), which cannot "
         "make recipe entries: the diff's recipe entries name the recipe 'blur'"),
    ],
)  # fmt: skip
def test_entries_recipe_refuses_what_it_cannot_name_and_writes_nothing(
    impostor: tuple[Path, Path, Path], tmp_path: Path, fmt: str, made_by: str, words: str
) -> None:
    original, noise, blur = impostor
    bench = noise if made_by == "gaussian-noise" else blur
    folder = tmp_path / "diffs"
    folder.mkdir()
    with pinned(), pytest.raises(InputError) as e:
        create_diff(original, bench, folder / "x.bdiff", entries="recipe", format=fmt)
    assert words in e.value.message, e.value.message
    assert "--entries auto" in (e.value.hint or "")
    assert list(folder.iterdir()) == []  # no diff, no temporary file left


OTHER_PARAMS = '''"""gaussian-noise 1.0 by name, with a parameter it does not have (test-local)."""

import toolchain


@toolchain.recipe(name="gaussian-noise", version="1.0", seed=2024)
def inverted(pixels, rng, *, strength: int = 3):
    return 255 - pixels
'''


def test_auto_carries_every_pixel_when_the_recorded_params_are_not_the_shipped_recipes(
    tmp_path: Path,
) -> None:
    original = tiny_original(tmp_path / "original")
    (tmp_path / "other.py").write_text(OTHER_PARAMS)
    bench, diff = build(
        original, f"{tmp_path / 'other.py'}:gaussian-noise", tmp_path, entries="auto"
    )
    with open_diff(diff) as reader:
        assert reader.header.version == 2
        assert PayloadKind.RECIPE not in {r.kind for r in reader.records}
    _rebuilds_the_benchmark(original, diff, bench, tmp_path / "out")


@pytest.mark.parametrize("fmt", ["bdiff", "parquet"])
def test_the_manifest_is_parsed_once_and_its_id_hashed_twice(
    fmt: str, tiny: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writers take the manifest verify parsed and the id computed from the copy (the
    second hash checks the copy is that manifest's canonical form): no third hash, and no
    second parse or entry table while a parquet diff is written."""
    pytest.importorskip("pyarrow")
    from toolchain.diff import dataset, format

    original, bench, diff = tiny
    calls: list[str] = []
    real = format.benchmark_id

    def counted(pieces):  # type: ignore[no-untyped-def]
        calls.append("id")
        return real(pieces)

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the manifest was parsed a second time")

    for module in (format, create_module, dataset):
        monkeypatch.setattr(module, "benchmark_id", counted)
    monkeypatch.setattr(dataset, "read_manifest", refused)
    monkeypatch.setattr(dataset, "parse_manifest", refused)
    out = tmp_path / ("d.bdiff" if fmt == "bdiff" else "d")
    with pinned():
        create_diff(original, bench, out, entries="delta", format=fmt)
    assert calls == ["id", "id"]
    if fmt == "bdiff":
        assert out.read_bytes() == diff.read_bytes()  # the id given is the id computed
    else:
        assert open_diff(out).header.benchmark_id == open_diff(diff).header.benchmark_id
