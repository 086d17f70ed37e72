"""toolchain.hf.card: the dataset card (README.md), for both output formats (load_benchmark's
own tests: test_hf_load.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import LABELS, hf_offline
from tests.hf_outputs import assert_same_samples, card_info, folder_benchmark, parquet_benchmark
from toolchain.hf.card import CardInfo, render_card
from toolchain.model.columns import ColumnSpec
from toolchain.model.manifest import Manifest

__all__ = ["hf_offline"]

pytestmark = pytest.mark.usefixtures("hf_offline")

Bench = tuple[Path, Manifest, tuple[ColumnSpec, ...]]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return folder_benchmark(tmp_path_factory.mktemp("card"))


def _front_matter(card: bytes) -> dict[str, Any]:
    import yaml

    text = card.decode("utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])  # type: ignore[no-any-return]


def test_card_metadata_is_valid_and_deterministic(bench: Bench) -> None:
    from huggingface_hub import DatasetCard

    _, manifest, columns = bench
    info = card_info(manifest, columns, "parquet")
    card = render_card(info)
    assert card == render_card(info)
    meta = _front_matter(card)
    assert meta["license"] == "other"
    assert meta["license_name"] == "terms of Demo photographs (café edition)"
    assert meta["license_link"].startswith("https://scikit-image.org/")
    (config,) = meta["configs"]
    assert config["config_name"] == "default"
    assert config["data_files"] == [{"split": "train", "path": ["data/train-*.parquet"]}]
    features = meta["dataset_info"]["features"]
    assert config["features"] == features
    assert features[2] == {
        "name": "label",
        "dtype": {"class_label": {"names": {"0": LABELS[0], "1": LABELS[1]}}},
    }
    assert meta["dataset_info"]["splits"] == [{"name": "train", "num_examples": 6}]
    parsed = DatasetCard(card.decode("utf-8"))
    assert parsed.data.pretty_name == info.pretty_name
    text = card.decode()
    assert manifest.root.hex in text or str(manifest.root) in text
    assert "benchmark-regen verify OUT" in text and "toolchain.load_benchmark" in text
    assert "Samples used: 6 of 6 (fraction 1.000000)" in text


def test_yaml_strings_survive_any_character() -> None:
    import datasets

    odd = 'a "quoted" \\ name: with # and \U0001f600, tab\tand é'
    info = CardInfo(
        pretty_name=odd,
        format="folder",
        sample_count=1,
        root="sha256:" + "0" * 64,
        original_name=odd,
        original_terms="none",
        samples_in_original=2,
        fraction="0.500000",
        recipe_name="r",
        recipe_version="1",
        recipe_seed=1,
        columns=(ColumnSpec(name="label", type="class_label", names=(odd, "b")),),
        license="cc-by-4.0",
    )
    card = render_card(info)
    assert card.split(b"---\n")[1].isascii()
    meta = _front_matter(card)
    assert meta["pretty_name"] == odd and meta["license"] == "cc-by-4.0"
    assert "license_name" not in meta
    parsed = datasets.DatasetInfo._from_yaml_dict(meta["dataset_info"])
    assert parsed.features["label"].names == [odd, "b"]


def test_parquet_output_loads_with_its_card(bench: Bench, tmp_path: Path, hf_offline: Path) -> None:
    import datasets

    folder, manifest, columns = bench
    out = tmp_path / "pq"
    parquet_benchmark(folder, manifest, columns, out)
    (out / "README.md").write_bytes(render_card(card_info(manifest, columns, "parquet")))
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(hf_offline / "c"))
    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    assert isinstance(ds.features["image"], datasets.Image)
    assert_same_samples(ds, folder, manifest)


def test_folder_output_loads_with_its_card(bench: Bench, tmp_path: Path, hf_offline: Path) -> None:
    import datasets

    folder, manifest, columns = bench
    out = tmp_path / "folder"
    shutil.copytree(folder, out)
    (out / "README.md").write_bytes(render_card(card_info(manifest, columns, "folder")))
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(hf_offline / "c"))
    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    assert sorted(ds.column_names) == ["image", "label", "sample_id"]
    assert_same_samples(ds, folder, manifest)
