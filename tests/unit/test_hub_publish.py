"""toolchain.hub.publish: a benchmark and its original become a folder that is a Hub dataset
repo (same inputs, same bytes; nothing left on failure); the recipe file is shipped only when
it is the one the manifest names; a push offline is a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.diff_cases import pinned
from tests.hf_cases import hf_offline
from tests.hub_cases import BENCH_REPO, RECIPE_TEXT, HubWorld, make_world
from tests.hub_snapshots import hub_offline
from toolchain.audit.sign import check_manifest_signature
from toolchain.errors import ExitCode, InputError, OutputError, RecipeError
from toolchain.hub.publication import read_publication
from toolchain.hub.publish import publish
from toolchain.source import SourceOptions

__all__ = ["hf_offline", "hub_offline"]

VALIDATION = SourceOptions(split="validation")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> HubWorld:
    return make_world(tmp_path_factory.mktemp("world"))


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_diff_publication_holds_exactly_its_files(world: HubWorld) -> None:
    tree = _tree(world.publication)
    data = sorted(p for p in tree if p.startswith("diff/data/"))
    assert sorted(tree) == sorted(
        ["README.md", "croissant.json", "manifest.json", "manifest.sig", "publication.json",
         "diff/README.md", "diff/diff.json", "diff/manifest.json", *data]
    )  # fmt: skip
    assert data == ["diff/data/train-00000-of-00001.parquet"]
    manifest = (world.bench / "manifest.json").read_bytes()
    assert tree["manifest.json"] == tree["diff/manifest.json"] == manifest
    check = check_manifest_signature(
        manifest, world.publication / "manifest.sig", f"{world.key}.pub"
    )
    pub = read_publication(world.publication)
    assert pub.kind == "diff" and pub.signed and check.root == str(pub.root)
    assert json.loads(tree["publication.json"])["samples"] == 4


def test_the_same_inputs_give_the_same_bytes(world: HubWorld, tmp_path: Path) -> None:
    again = tmp_path / "again"
    again.mkdir()  # an empty folder is taken, and replaced
    with pinned():
        result = publish(
            world.bench, world.snapshot, again, key=world.key, name=BENCH_REPO,
            source_options=VALIDATION,
        )  # fmt: skip
    assert _tree(again) == _tree(world.publication)
    assert [f.path for f in result.files] == sorted(_tree(again), key=str.encode)
    assert result.commit is None and result.kind == "diff" and result.repo == BENCH_REPO
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no temporary sibling left


def test_a_regenerate_only_publication_ships_the_recipe_file(world: HubWorld) -> None:
    tree = _tree(world.regen_publication)
    assert sorted(tree) == [
        "README.md", "croissant.json", "manifest.json", "publication.json", "recipe.py",
    ]  # fmt: skip
    assert tree["recipe.py"] == RECIPE_TEXT.encode()
    pub = read_publication(world.regen_publication)
    assert pub.kind == "regenerate" and pub.recipe == "shift" and not pub.signed


def test_the_recipe_file_must_be_the_manifests(world: HubWorld, tmp_path: Path) -> None:
    def regen(recipe: Path | str | None, bench: Path = world.regen_bench) -> None:
        publish(
            bench, world.snapshot, tmp_path / "out", regenerate_only=True, recipe=recipe,
            source_options=VALIDATION,
        )  # fmt: skip

    with pytest.raises(RecipeError, match="none was given") as e:
        regen(None)
    assert "--recipe path/to/recipe.py" in (e.value.hint or "")
    edited = tmp_path / "shift.py"
    edited.write_text(RECIPE_TEXT.replace("amount: float = 6.0", "amount: float = 5.0"))
    with pytest.raises(RecipeError, match=r"has SHA-256 [0-9a-f]{64} .* recipe.source") as e:
        regen(edited)
    assert "the very file" in (e.value.hint or "")
    crlf = tmp_path / "crlf.py"  # a checkout with CRLF line ends is the same recipe
    crlf.write_bytes(RECIPE_TEXT.replace("\n", "\r\n").encode())
    regen(f"{crlf}:shift")
    assert (tmp_path / "out" / "recipe.py").read_bytes() == crlf.read_bytes()
    shutil.rmtree(tmp_path / "out")
    with pytest.raises(RecipeError, match="built into benchmark-regen") as e:
        regen(None, bench=world.bench)  # gaussian-noise
    assert "drop --regenerate-only" in (e.value.hint or "")
    with pytest.raises(RecipeError, match=r"not a \.py file"):
        regen(tmp_path / "shift.txt")
    assert not (tmp_path / "out").exists()  # a refusal writes nothing


def test_a_failure_leaves_nothing(world: HubWorld, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(world.original, partial)
    for shard in (partial / "data").glob("*.parquet"):
        shard.unlink()  # the original is gone: no diff can be made
    (partial / "data" / "x.png").write_bytes((world.original / "README.md").read_bytes())
    with pinned(), pytest.raises(InputError):
        publish(world.bench, partial, tmp_path / "out", key=world.key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InputError, match="not an empty folder"):
        publish(world.bench, world.snapshot, tmp_path / "full")


def test_names_must_agree_and_be_repo_ids(world: HubWorld, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="the card would name a/b but the folder is pushed to c/d"):
        publish(world.bench, world.snapshot, tmp_path / "o", name="a/b", push="c/d")
    with pytest.raises(InputError, match="'no-slash' is not a Hub repo id"):
        publish(world.bench, world.snapshot, tmp_path / "o", name="no-slash")
    assert not (tmp_path / "o").exists()


def test_push_offline_is_a_clear_error_and_a_dry_run_uploads_nothing(
    world: HubWorld, tmp_path: Path, hub_offline: Path
) -> None:
    with pinned():
        dry = publish(
            world.bench, world.snapshot, tmp_path / "dry", key=world.key, push=BENCH_REPO,
            dry_run=True, source_options=VALIDATION,
        )  # fmt: skip
        assert dry.commit is None and _tree(tmp_path / "dry") == _tree(world.publication)
        with pytest.raises(OutputError, match="offline mode is on") as e:
            publish(
                world.bench, world.snapshot, tmp_path / "pushed", key=world.key,
                push=BENCH_REPO, source_options=VALIDATION,
            )  # fmt: skip
    assert e.value.exit_code == ExitCode.ENVIRONMENT
    assert _tree(tmp_path / "pushed") == _tree(world.publication)  # ready to push again
