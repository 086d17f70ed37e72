"""toolchain.hub.metadata: the publication's card opens with the one line users run and carries
Hub metadata a YAML parser reads; its croissant.json validates, hashes every file, and
mlcroissant loads the diff's rows from it."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import replace

import pytest

from tests.hub_cases import BENCH_REPO, HubWorld, make_world
from toolchain.hub.metadata import PLACEHOLDER_REPO, load_line, render_croissant, render_readme
from toolchain.hub.publication import read_publication
from toolchain.model.manifest import Manifest, load_manifest

pytestmark = [
    # mlcroissant builds its graph with rdflib's deprecated ConjunctiveGraph
    pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> HubWorld:
    return make_world(tmp_path_factory.mktemp("world"))


def _front(card: str) -> tuple[dict[str, object], str]:
    import yaml

    _, header, body = card.split("---\n", 2)
    doc = yaml.safe_load(header)
    assert isinstance(doc, dict)
    return doc, body


def _first_code_block(body: str) -> list[str]:
    match = re.search(r"```[a-z]*\n(.*?)```", body, re.S)
    assert match is not None
    return match.group(1).splitlines()


def test_the_card_opens_with_the_one_line_to_run(world: HubWorld) -> None:
    card = (world.publication / "README.md").read_text()
    meta, body = _front(card)
    assert _first_code_block(body) == [
        f'import toolchain; bench = toolchain.load_benchmark("{BENCH_REPO}")'
    ]
    assert meta["tags"] == ["benchmark-regen", "benchmark-regen-publication"]
    assert meta["configs"] == [
        {"config_name": "diff", "data_files": [
            {"split": "train", "path": ["diff/data/train-*.parquet"]}
        ]}
    ]  # fmt: skip
    manifest = load_manifest(world.bench / "manifest.json")
    assert str(manifest.root) in body and "org/photos@0f1e2d3" in body
    assert f"benchmark-regen get {BENCH_REPO} --out ./bench" in body


def test_a_regenerate_publication_asks_for_trust_and_hides_the_viewer(world: HubWorld) -> None:
    meta, body = _front((world.regen_publication / "README.md").read_text())
    assert _first_code_block(body) == [
        f'import toolchain; bench = toolchain.load_benchmark("{BENCH_REPO}", trust_recipe=True)'
    ]
    assert meta["viewer"] is False and "configs" not in meta
    assert "recipe.py` (Python code: read it first)" in body and "--trust-recipe" in body


def test_without_a_recorded_original_the_line_asks_for_one(world: HubWorld) -> None:
    pub = read_publication(world.publication)
    manifest = load_manifest(world.bench / "manifest.json")
    bare = replace(manifest, provenance=replace(manifest.provenance, original=None))
    line = load_line("a/b", pub, bare)
    assert line == (
        'import toolchain; bench = toolchain.load_benchmark("a/b", original="path/to/your/copy")'
    )
    assert "--original ./your-copy" in render_readme("a/b", pub, bare).decode()


def test_the_descriptions_are_deterministic_and_name_their_repo(world: HubWorld) -> None:
    pub = read_publication(world.publication)
    manifest: Manifest = load_manifest(world.bench / "manifest.json")
    files = pub.files
    assert (
        render_readme(BENCH_REPO, pub, manifest) == (world.publication / "README.md").read_bytes()
    )
    made = render_croissant(BENCH_REPO, pub, manifest, files)
    assert made == (world.publication / "croissant.json").read_bytes()
    assert json.loads(made)["url"] == f"https://huggingface.co/datasets/{BENCH_REPO}"
    assert "url" not in json.loads(render_croissant(PLACEHOLDER_REPO, pub, manifest, files))
    assert PLACEHOLDER_REPO in render_readme(PLACEHOLDER_REPO, pub, manifest).decode()


def test_croissant_hashes_every_file_and_mlcroissant_loads_the_diff(
    world: HubWorld, caplog: pytest.LogCaptureFixture
) -> None:
    import mlcroissant as mlc

    path = world.publication / "croissant.json"
    doc = json.loads(path.read_text())
    listed = {d["contentUrl"]: d["sha256"] for d in doc["distribution"] if "sha256" in d}
    assert set(listed) == {f.path for f in read_publication(world.publication).files}
    for rel, sha in listed.items():
        assert hashlib.sha256((world.publication / rel).read_bytes()).hexdigest() == sha
    with caplog.at_level(logging.WARNING):
        records = list(mlc.Dataset(jsonld=str(path)).records("diff"))
    manifest = load_manifest(world.bench / "manifest.json")
    assert [r["diff/sample_id"].decode() for r in records] == [e.id for e in manifest.entries]
    assert {r["diff/kind"].decode() for r in records} == {"recipe"}  # a shipped recipe
    assert "not standard" not in caplog.text  # the standard @context


def test_a_regenerate_croissant_lists_the_recipe(world: HubWorld) -> None:
    import mlcroissant as mlc

    doc = json.loads((world.regen_publication / "croissant.json").read_text())
    by_path = {d["@id"]: d for d in doc["distribution"]}
    assert by_path["recipe.py"]["encodingFormat"] == "text/x-python"
    assert doc["recordSet"] == []
    mlc.Dataset(jsonld=str(world.regen_publication / "croissant.json"))  # validates
