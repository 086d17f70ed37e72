"""Hugging Face in and out, end to end (issue #10), with the real ``datasets``, offline.

The same real photographs as a folder-per-class tree, a tar, Hub-layout parquet
shards, a ``save_to_disk`` folder and a ``Dataset`` object give one root; the
labels travel into ``metadata.jsonl`` and the manifest (a changed label fails
``verify``); the parquet output format loads with ``load_dataset`` and has the
folder format's root; a diff made as a parquet dataset applies to the same root.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.diff_cases import pinned
from tests.hf_cases import (
    LABELS,
    class_records,
    hf_offline,
    make_dataset,
    to_folder,
    to_hub_parquet,
)
from toolchain.audit.verify import Problem, verify_benchmark
from toolchain.cli import cli
from toolchain.diff import create_diff, get_benchmark
from toolchain.errors import ExitCode, SourceError
from toolchain.hub.load import load_benchmark
from toolchain.model.manifest import load_manifest
from toolchain.run.generate import generate_benchmark
from toolchain.source import SourceOptions

__all__ = ["hf_offline"]  # the fixture, used by name below

LABEL_ONLY = SourceOptions(columns="label")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return class_records(8)


@pytest.fixture
def folder(rows: list[dict[str, Any]], tmp_path: Path) -> Path:
    return to_folder(rows, tmp_path / "folder")


def _gen(original: Any, out: Path, **kw: Any) -> Any:
    with pinned():
        return generate_benchmark(original, "gaussian-noise", out, **kw)


def test_same_images_same_benchmark_from_every_kind_of_original(
    rows: list[dict[str, Any]], folder: Path, tmp_path: Path, hf_offline: Path
) -> None:
    by_folder = _gen(folder, tmp_path / "from-folder")
    tar = tmp_path / "orig.tar"
    with tarfile.open(tar, "w") as t:
        t.add(folder, arcname=".")
    by_tar = _gen(tar, tmp_path / "from-tar")
    ds = make_dataset(rows)
    to_hub_parquet(ds, tmp_path / "hub", "validation", shards=2)
    by_parquet = _gen(tmp_path / "hub", tmp_path / "from-parquet", source_options=LABEL_ONLY)
    ds.save_to_disk(str(tmp_path / "saved"))
    by_arrow = _gen(tmp_path / "saved", tmp_path / "from-arrow", source_options=LABEL_ONLY)
    by_dataset = _gen(ds, tmp_path / "from-dataset", source_options=LABEL_ONLY)
    roots = {str(r.root) for r in (by_folder, by_tar, by_parquet, by_dataset)}
    assert len(roots) == 1, roots
    # save_to_disk keeps only the images' base names: other ids, the labels still carried.
    label_of = {r["path"].rsplit("/", 1)[-1]: r["label"] for r in rows}
    assert by_arrow.manifest.entries
    assert all(e.columns["label"] == label_of[e.id] for e in by_arrow.manifest.entries)
    m = by_folder.manifest
    assert [c.names for c in m.columns] == [LABELS]
    assert {e.id: e.columns["label"] for e in m.entries} == {
        r["path"]: r["label"] for r in rows if r["path"] in m.by_id()
    }


def test_labels_flow_into_metadata_and_a_changed_label_fails_verify(
    folder: Path, tmp_path: Path, hf_offline: Path
) -> None:
    out = tmp_path / "bench"
    result = _gen(folder, out)
    meta = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert {d["sample_id"]: d["label"] for d in meta} == {
        e.id: e.columns["label"] for e in result.manifest.entries
    }
    ds = load_benchmark(out, cache_dir=tmp_path / "cache")
    import datasets

    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    assert sorted(ds["sample_id"]) == sorted(e.id for e in result.manifest.entries)
    # Relabel one sample in the manifest (and keep it canonical): verify must fail.
    doc = json.loads((out / "manifest.json").read_text())
    doc["entries"][0]["columns"]["label"] = 1 - doc["entries"][0]["columns"]["label"]
    (out / "manifest.json").write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    report = verify_benchmark(out)
    assert not report.ok and not report.root_consistent


def test_columns_pick_and_drop(folder: Path, rows: list[dict[str, Any]], tmp_path: Path) -> None:
    dropped = _gen(folder, tmp_path / "a", source_options=SourceOptions(columns="-label"))
    assert dropped.manifest.columns == () and all(not e.columns for e in dropped.manifest.entries)
    kept = _gen(folder, tmp_path / "b")
    assert dropped.root != kept.root  # the labels are part of the benchmark


def test_parquet_output_has_the_folder_root_and_loads(
    folder: Path, tmp_path: Path, hf_offline: Path
) -> None:
    import datasets

    as_folder = _gen(folder, tmp_path / "f")
    as_parquet = _gen(folder, tmp_path / "p", format="parquet")
    assert as_parquet.root == as_folder.root
    p = tmp_path / "p"
    shards = sorted((p / "data").glob("*.parquet"))
    assert shards and shards[0].name.startswith("train-00000-of-")
    assert not list(p.rglob("*.png"))  # the PNGs live in the shards
    assert verify_benchmark(p).ok
    _gen(folder, tmp_path / "p2", format="parquet")
    assert [s.read_bytes() for s in shards] == [
        s.read_bytes() for s in sorted((tmp_path / "p2" / "data").glob("*.parquet"))
    ]
    ds = datasets.load_dataset("parquet", data_dir=str(p / "data"), split="train")
    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    m = as_parquet.manifest
    assert sorted(ds["sample_id"]) == sorted(e.id for e in m.entries)
    png = {e.path: (tmp_path / "f" / e.path).read_bytes() for e in as_folder.manifest.entries}
    for row in ds.cast_column("image", datasets.Image(decode=False)):
        assert row["image"]["bytes"] == png[row["image"]["path"]]  # the same canonical bytes
    loaded = load_benchmark(p, cache_dir=tmp_path / "cache")
    assert len(loaded) == len(m.entries)


def test_parquet_output_verify_catches_a_changed_row(folder: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "p"
    _gen(folder, out, format="parquet")
    shard = sorted((out / "data").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    labels = table.column("label").to_pylist()
    labels[0] = 1 - labels[0]
    table = table.set_column(table.schema.get_field_index("label"), "label", [labels])
    pq.write_table(table, shard)
    report = verify_benchmark(out)
    assert not report.ok
    assert any(
        p.problem is Problem.PIXELS_DIFFER and "columns" in p.detail for p in report.problems
    )


@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")
def test_the_card_and_croissant_validate(folder: Path, tmp_path: Path, hf_offline: Path) -> None:
    import mlcroissant as mlc

    out = tmp_path / "bench"
    result = _gen(folder, out)
    card = (out / "README.md").read_text()
    assert str(result.root) in card and "gaussian-noise" in card
    ds = mlc.Dataset(jsonld=str(out / "croissant.json"))
    records = list(ds.records(record_set="samples"))
    assert len(records) == len(result.manifest.entries)


def test_a_diff_as_a_parquet_dataset_applies_to_the_same_root(
    folder: Path, tmp_path: Path, hf_offline: Path
) -> None:
    import datasets

    bench = tmp_path / "bench"
    result = _gen(folder, bench)
    with pinned():
        create_diff(folder, bench, tmp_path / "x.bdiff")
        create_diff(folder, bench, tmp_path / "xdiff", format="parquet")
        a = get_benchmark(folder, tmp_path / "x.bdiff", tmp_path / "a")
        b = get_benchmark(folder, tmp_path / "xdiff", tmp_path / "b", format="parquet")
    assert a.ok and b.ok and a.manifest.root == b.manifest.root == result.root
    assert (tmp_path / "xdiff" / "README.md").is_file()
    rows = datasets.load_dataset(str(tmp_path / "xdiff"), split="train")
    assert len(rows) == len(result.manifest.entries) and "sealed" in rows.column_names
    assert verify_benchmark(tmp_path / "b").ok


def test_no_images_at_all_is_an_error_not_an_empty_benchmark(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "docs").mkdir(parents=True)
    (empty / "docs" / "README.txt").write_text("no images here")
    with pytest.raises(SourceError, match="holds no images") as e:
        _gen(empty, tmp_path / "out")
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_cli_takes_hf_options(rows: list[dict[str, Any]], tmp_path: Path, hf_offline: Path) -> None:
    ds = make_dataset(rows)
    to_hub_parquet(ds, tmp_path / "hub", "validation")
    to_hub_parquet(ds, tmp_path / "hub", "test")
    runner = CliRunner()
    base = ["generate", "--recipe", "identity", "--original", str(tmp_path / "hub")]
    with pinned():
        r = runner.invoke(cli, [*base, "--out", str(tmp_path / "o1"), "--json"])
        assert r.exit_code == ExitCode.BAD_INPUT and "split" in r.output
        r = runner.invoke(
            cli,
            [*base, "--split", "test", "--columns", "label,caption", "--format", "parquet",
             "--out", str(tmp_path / "o2"), "--json"],
        )  # fmt: skip
    assert r.exit_code == 0, r.output
    m = load_manifest(tmp_path / "o2" / "manifest.json")
    assert [c.name for c in m.columns] == ["caption", "label"]
    assert sorted((tmp_path / "o2" / "data").iterdir())[0].name.startswith("test-")
