from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

import toolchain
from tests.conftest import make_image
from tests.diff_cases import pinned
from tests.hf_cases import class_records, hf_offline, make_dataset
from tests.hub_snapshots import COMMIT, hub_offline, pets
from toolchain.audit.verify import verify_benchmark
from toolchain.codec.decode import decode
from toolchain.codec.encode import ENCODER
from toolchain.errors import DecodeError, InputError, OutputError, RecipeError, SourceError
from toolchain.model.manifest import MANIFEST_NAME, Provenance, load_manifest
from toolchain.model.original import OriginalRef
from toolchain.run.generate import generate_benchmark, plan_outputs
from toolchain.run.session import RunOptions
from toolchain.run.shard import Shard
from toolchain.source import SourceOptions

__all__ = ["hf_offline", "hub_offline", "pets"]


def test_generate_writes_pngs_metadata_and_manifest(small_original: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = generate_benchmark(small_original, "identity", out)
    m = load_manifest(out / "manifest.json")
    assert m.root == result.root and len(m.entries) == 8
    assert all((out / e.path).is_file() and e.path.endswith(".png") for e in m.entries)
    meta = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in meta] == [e.path for e in m.entries]
    # identity: the output pixels are the decoded original, committed to (salted) in `source`
    assert all(e.source == m.source_of(decode((out / e.path).read_bytes())) for e in m.entries)
    assert m.encoder == ENCODER and m.version == 2
    assert verify_benchmark(out).ok


def test_the_result_reports_notes_only_when_there_are_some(
    identity_bench: Path, small_original: Path, tmp_path: Path
) -> None:
    with pinned():
        result = generate_benchmark(small_original, "identity", tmp_path / "o")
    assert result.notes == () and "notes" not in result.to_json()
    assert result.root == load_manifest(identity_bench / MANIFEST_NAME).root
    noted = dataclasses.replace(result, notes=("2 finished sample(s) ... are made again",))
    assert noted.to_json() == {**result.to_json(), "notes": list(noted.notes)}


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_root_is_the_same_for_any_worker_count(
    small_original: Path, tmp_path: Path, workers: int
) -> None:
    result = generate_benchmark(
        small_original, "adversarial", tmp_path / "o", workers=workers, params={"steps": 2}
    )
    assert str(result.root) == ADVERSARIAL_SMALL_STEPS2


ADVERSARIAL_SMALL_STEPS2 = "sha256:ee2e2f7b2b422fef9501a90dab903f591dfa569ad7d80d34da0a8863feaff681"


def test_same_root_when_tree_created_in_another_order(small_original: Path, tmp_path: Path) -> None:
    files = sorted(p for p in small_original.rglob("*") if p.is_file())
    copy = tmp_path / "copy"
    for p in reversed(files):
        dest = copy / p.relative_to(small_original)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest)
    a = generate_benchmark(small_original, "gaussian-noise", tmp_path / "a")
    b = generate_benchmark(copy, "gaussian-noise", tmp_path / "b")
    assert a.root == b.root
    assert a.manifest.entries == b.manifest.entries


def test_recipe_using_global_numpy_random_is_deterministic(
    tmp_path: Path, small_original: Path
) -> None:
    recipe_file = tmp_path / "glob.py"
    recipe_file.write_text(
        "import random\nimport numpy as np\nimport toolchain\n"
        "@toolchain.recipe(name='globals', version='1', seed=11)\n"
        "def jitter(pixels, rng):\n"
        "    shift = np.random.randint(-3, 4, size=pixels.shape) + random.randint(0, 1)\n"
        "    order = sorted({'b', 'a', 'c'})\n"
        "    return np.clip(pixels.astype(int) + shift + len(order), 0, 255).astype(np.uint8)\n"
    )
    a = generate_benchmark(small_original, f"{recipe_file}:jitter", tmp_path / "a", workers=2)
    b = generate_benchmark(small_original, f"{recipe_file}:jitter", tmp_path / "b", workers=1)
    assert a.root == b.root


def test_undecodable_input_names_the_sample_and_writes_no_manifest(tmp_path: Path) -> None:
    orig = tmp_path / "orig"
    make_image(orig / "good.png")
    data = make_image(orig / "bad.jpg", seed=3)
    (orig / "bad.jpg").write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    with pytest.raises(DecodeError) as e:
        generate_benchmark(orig, "identity", out)
    assert e.value.sample == "bad.jpg"
    assert not (out / "manifest.json").exists()


def test_recipe_returning_garbage_is_a_recipe_error(tmp_path: Path) -> None:
    make_image(tmp_path / "orig/a.png")
    f = tmp_path / "floaty.py"
    f.write_text(
        "import toolchain\n"
        "@toolchain.recipe(name='floaty', version='1', seed=0)\n"
        "def floaty(pixels, rng):\n"
        "    return pixels / 2\n"
    )
    with pytest.raises(RecipeError, match="dtype float64") as e:
        generate_benchmark(tmp_path / "orig", f"{f}:floaty", tmp_path / "out")
    assert e.value.sample == "a.png"
    assert not (tmp_path / "out/manifest.json").exists()


def test_inline_recipe_in_unpinned_process_is_refused_clearly(tmp_path: Path) -> None:
    make_image(tmp_path / "orig/a.png")

    @toolchain.recipe(name="inline", version="1", seed=0)
    def inline(pixels, rng):  # type: ignore[no-untyped-def]
        return pixels

    with pytest.raises(RecipeError, match="cannot import it"):
        generate_benchmark(tmp_path / "orig", inline, tmp_path / "out")


def test_non_empty_out_needs_overwrite(small_original: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    with pytest.raises(OutputError, match="not empty"):
        generate_benchmark(small_original, "identity", out)
    with pytest.raises(OutputError, match="does not hold a benchmark"):
        generate_benchmark(small_original, "identity", out, overwrite=True)
    assert (out / "precious.txt").exists()


def test_overwrite_replaces_an_old_benchmark(small_original: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    generate_benchmark(small_original, "identity", out)
    again = generate_benchmark(small_original, "gaussian-noise", out, overwrite=True)
    assert verify_benchmark(out).ok and again.manifest.recipe.name == "gaussian-noise"


def test_overwrite_replaces_a_parquet_benchmark_and_only_its_own_shards(
    small_original: Path, tmp_path: Path
) -> None:
    """The shards are ours when our croissant.json lists them; another parquet file in
    data/ is the user's: refused, and kept."""
    out = tmp_path / "out"
    first = generate_benchmark(small_original, "identity", out, format="parquet")
    again = generate_benchmark(small_original, "identity", out, format="parquet", overwrite=True)
    assert again.root == first.root and verify_benchmark(out).ok
    stray = out / "data" / "extra.parquet"
    stray.write_bytes(b"the user's")
    with pytest.raises(OutputError, match=r"data/extra\.parquet") as e:
        generate_benchmark(small_original, "identity", out, format="parquet", overwrite=True)
    assert "--overwrite deletes only what" in e.value.message
    assert stray.read_bytes() == b"the user's"
    assert (out / MANIFEST_NAME).is_file() and (out / "data/train-00000-of-00001.parquet").is_file()


def test_run_options_whole_or_as_keywords_make_the_same_run(
    small_original: Path, tmp_path: Path
) -> None:
    by_keywords = generate_benchmark(small_original, "identity", tmp_path / "a", shard="1/2")
    options = RunOptions(shard=Shard(index=1, count=2))
    whole = generate_benchmark(small_original, "identity", tmp_path / "b", options=options)
    assert whole.root == by_keywords.root and whole.manifest.shard == "1/2"
    with pytest.raises(TypeError, match="options= or the run keywords, not both"):
        generate_benchmark(small_original, "identity", tmp_path / "c", options=options, workers=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'worker'"):
        generate_benchmark(small_original, "identity", tmp_path / "c", worker=2)  # type: ignore[call-arg]
    assert not (tmp_path / "c").exists()


def test_output_collision_is_refused() -> None:
    with pytest.raises(SourceError, match="would both be written"):
        plan_outputs(["a.jpg", "a.png"])


# -- the original's identity -------------------------------------------------------------


def test_a_folder_originals_manifest_keeps_its_bytes(small_original: Path, tmp_path: Path) -> None:
    """No ``provenance.original`` for a folder: the manifest is the one it always was (the
    golden root for its entries, the provenance block to the byte, canonical encoding)."""
    out = tmp_path / "o"
    result = generate_benchmark(small_original, "adversarial", out, params={"steps": 2})
    assert str(result.root) == ADVERSARIAL_SMALL_STEPS2
    data = (out / MANIFEST_NAME).read_bytes()
    doc = json.loads(data)
    assert data == (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()
    assert sorted(doc) == [
        "columns", "encoder", "entries", "fingerprint", "format", "provenance", "recipe",
        "root", "sample_count",
    ]  # fmt: skip
    block = data[data.index(b'  "provenance": {') : data.index(b'  "recipe": {')]
    assert block.decode() == (
        '  "provenance": {\n'
        '    "fraction": "1.000000",\n'
        f'    "original_name": "{small_original.name}",\n'
        '    "original_terms": "",\n'
        '    "recipe_license": "",\n'
        '    "samples_in_original": 8,\n'
        '    "samples_used": 8\n'
        "  },\n"
    )
    assert result.manifest.provenance.original is None


def test_a_hub_snapshot_original_is_recorded_and_names_the_card(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    with pinned():
        result = generate_benchmark(
            pets, "identity", out, source_options=SourceOptions(split="validation")
        )
    ref = OriginalRef(repo="photo-lab/pets", revision=COMMIT, config="default", split="validation")
    m = load_manifest(out / MANIFEST_NAME)
    assert m.provenance.original == result.manifest.provenance.original == ref
    assert json.loads((out / MANIFEST_NAME).read_text())["provenance"]["original"] == {
        "config": "default",
        "repo": "photo-lab/pets",
        "revision": COMMIT,
        "split": "validation",
    }
    assert m.provenance.original_name == "photo-lab/pets"
    card = (out / "README.md").read_text()
    assert f"\n# identity {m.recipe.version} on photo-lab/pets\n" in card
    assert COMMIT not in card  # titled by the repo, not the snapshot's folder
    assert len(m.entries) == 3 and verify_benchmark(out).ok


def test_a_dataset_original_records_its_split(tmp_path: Path, hf_offline: Path) -> None:
    ds = make_dataset(class_records(3))
    with pinned():
        result = generate_benchmark(
            ds, "identity", tmp_path / "o", source_options=SourceOptions(split="validation")
        )
    assert result.manifest.provenance.original == OriginalRef(split="validation")
    assert load_manifest(tmp_path / "o" / MANIFEST_NAME).provenance.original == OriginalRef(
        split="validation"
    )


def test_a_declared_identity_fills_what_the_original_does_not_know(
    tmp_path: Path, hf_offline: Path
) -> None:
    ds = make_dataset(class_records(3))
    declared = OriginalRef(repo="photo-lab/pets", revision=COMMIT, split="validation")
    with pinned():
        result = generate_benchmark(
            ds,
            "identity",
            tmp_path / "o",
            provenance=Provenance(original=declared),
            source_options=SourceOptions(split="validation"),
        )
    assert result.manifest.provenance.original == declared
    assert result.manifest.provenance.original_name == "photo-lab/pets"
    wrong = Provenance(original=OriginalRef(split="test"))
    with pytest.raises(InputError, match=r"says split 'test'.* is split 'validation'"):
        generate_benchmark(
            ds,
            "identity",
            tmp_path / "x",
            provenance=wrong,
            source_options=SourceOptions(split="validation"),
        )
    assert not (tmp_path / "x").exists()
