"""toolchain.hub.rebuild: the original is the one given (folder, parquet, Dataset, DatasetDict)
or the recorded Hub repo; the diff is applied or the recipe run (only a recipe.py that is the
manifest's), and the result must verify against the published root."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.diff_cases import pinned
from tests.hf_cases import class_records, hf_offline, make_dataset
from tests.hub_cases import ORIGINAL_COMMIT, ORIGINAL_REPO, HubWorld, hub_with, make_world
from tests.hub_snapshots import hub_offline
from toolchain.audit.verify import verify_benchmark
from toolchain.errors import InputError, RecipeError, SourceError
from toolchain.hub.publication import PUBLICATION_NAME, Publication, list_files, read_publication
from toolchain.hub.rebuild import original_of, rebuild
from toolchain.model.manifest import Manifest, load_manifest
from toolchain.source.hf import split_patterns

__all__ = ["hf_offline", "hub_offline"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> HubWorld:
    return make_world(tmp_path_factory.mktemp("world"))


def _manifest(world: HubWorld) -> Manifest:
    return load_manifest(world.bench / "manifest.json")


def test_the_recorded_original_is_fetched_and_read_as_recorded(
    world: HubWorld, hub_offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    hub_with(world, hub_offline)
    real, asked = huggingface_hub.snapshot_download, []

    def spy(*args: Any, **kwargs: Any) -> str:
        asked.append(kwargs.get("allow_patterns"))
        return str(real(*args, **kwargs))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    source, options = original_of(_manifest(world))
    expected = hub_offline / "datasets--org--photos" / "snapshots" / ORIGINAL_COMMIT
    assert Path(source).resolve() == expected.resolve()
    assert (options.split, options.config) == ("validation", "default")
    assert asked == [split_patterns("validation", "default")]  # not the other splits


def test_an_original_given_is_read_as_recorded_where_that_applies(
    world: HubWorld, tmp_path: Path
) -> None:
    manifest = _manifest(world)
    _, parquet = original_of(manifest, world.original)
    assert (parquet.split, parquet.config) == ("validation", "default")
    (tmp_path / "imgs").mkdir()
    _, folder = original_of(manifest, tmp_path / "imgs")  # a plain folder: no split to pass
    assert (folder.split, folder.config) == (None, None)
    ds = make_dataset(class_records(3))
    assert original_of(manifest, ds)[1].split == "validation"  # a Dataset with no split
    import datasets

    both = datasets.DatasetDict({"train": ds, "validation": ds})
    picked, opts = original_of(manifest, both)
    assert picked is both["validation"] and opts.split == "validation"
    with pytest.raises(SourceError, match=r"splits a, b; the publication was made from split"):
        original_of(manifest, datasets.DatasetDict({"a": ds, "b": ds}))


def test_an_unrecorded_original_must_be_given(world: HubWorld) -> None:
    manifest = _manifest(world)
    bare = replace(manifest, provenance=replace(manifest.provenance, original=None))
    with pytest.raises(SourceError, match="does not record where its original is") as e:
        original_of(bare)
    assert "original=" in (e.value.hint or "") and ORIGINAL_REPO in e.value.message


def test_both_kinds_rebuild_into_a_verified_folder(world: HubWorld, tmp_path: Path) -> None:
    with pinned():
        got = rebuild(
            world.publication, read_publication(world.publication), _manifest(world),
            tmp_path / "a", original=world.snapshot,
        )  # fmt: skip
        regen = load_manifest(world.regen_bench / "manifest.json")
        made = rebuild(
            world.regen_publication, read_publication(world.regen_publication), regen,
            tmp_path / "b", original=world.snapshot, trust_recipe=True,
        )  # fmt: skip
    assert got.ok and got.manifest.root == _manifest(world).root
    assert made.ok and made.manifest.root == regen.root
    assert verify_benchmark(tmp_path / "a").ok and verify_benchmark(tmp_path / "b").ok


def test_another_original_does_not_rebuild(world: HubWorld, tmp_path: Path) -> None:
    rows = class_records(8)
    rows[1]["bytes"] = rows[2]["bytes"]  # one photograph swapped for another
    with pinned(), pytest.raises(InputError, match="the diff did not rebuild the benchmark") as e:
        rebuild(
            world.publication, read_publication(world.publication), _manifest(world),
            tmp_path / "a", original=make_dataset(rows),
        )  # fmt: skip
    assert "benchmark-regen diff apply" in (e.value.hint or "")


def _forged(world: HubWorld, tmp_path: Path, text: str) -> tuple[Path, Publication]:
    """The regenerate publication with another recipe.py, and publication.json made to match."""
    forged = Path(shutil.copytree(world.regen_publication, tmp_path / "forged"))
    (forged / "recipe.py").write_text(text)
    pub = read_publication(world.regen_publication)
    files = tuple(list_files(forged, skip=frozenset({"README.md", "croissant.json",
                                                     PUBLICATION_NAME})))  # fmt: skip
    pub = replace(pub, files=files)
    (forged / PUBLICATION_NAME).write_bytes(pub.render())
    return forged, read_publication(forged)


def test_only_the_manifests_recipe_runs(world: HubWorld, tmp_path: Path) -> None:
    regen = load_manifest(world.regen_bench / "manifest.json")
    text = world.recipe_file.read_text() + "\nimport os  # and anything else\n"
    forged, pub = _forged(world, tmp_path, text)
    with pytest.raises(RecipeError, match="is not the recipe the manifest records"):
        rebuild(forged, pub, regen, tmp_path / "out", original=world.snapshot, trust_recipe=True)
    with pytest.raises(RecipeError, match=r"Python code") as e:
        rebuild(world.regen_publication, read_publication(world.regen_publication), regen,
                tmp_path / "out", original=world.snapshot)  # fmt: skip
    assert "trust_recipe=True" in (e.value.hint or "")
    assert not (tmp_path / "out").exists()
