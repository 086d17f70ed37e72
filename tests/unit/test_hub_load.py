"""toolchain.hub.load: load_benchmark verifies first, then loads either output format as a
``datasets.Dataset`` with its class labels named; benchmark_format tells the formats apart."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.hf_cases import LABELS, hf_offline
from tests.hf_outputs import assert_same_samples, folder_benchmark, parquet_benchmark
from toolchain.errors import InputError
from toolchain.hub.load import benchmark_format, load_benchmark
from toolchain.model.columns import ColumnSpec
from toolchain.model.manifest import Manifest

__all__ = ["hf_offline"]

pytestmark = pytest.mark.usefixtures("hf_offline")

Bench = tuple[Path, Manifest, tuple[ColumnSpec, ...]]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return folder_benchmark(tmp_path_factory.mktemp("load"))


def test_load_benchmark_folder_end_to_end(bench: Bench, hf_offline: Path) -> None:
    import datasets

    folder, manifest, columns = bench
    assert benchmark_format(folder) == "folder"
    ds = load_benchmark(folder, columns=columns, cache_dir=hf_offline / "c")
    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    assert len(ds) == len(manifest.entries)
    assert_same_samples(ds, folder, manifest)
    # Without columns given, the manifest's own schema names the classes.
    plain = load_benchmark(folder, cache_dir=hf_offline / "c2")
    assert plain.features["label"] == datasets.ClassLabel(names=list(LABELS))


def test_load_benchmark_refuses_what_does_not_verify(bench: Bench, tmp_path: Path) -> None:
    folder, manifest, _ = bench
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    (bad / manifest.entries[0].path).write_bytes((bad / manifest.entries[1].path).read_bytes())
    with pytest.raises(InputError, match=r"does not verify .*first: .*pixels-differ") as e:
        load_benchmark(bad)
    assert "benchmark-regen verify" in (e.value.hint or "")


def test_load_benchmark_parquet_with_verification_stubbed(
    bench: Bench, tmp_path: Path, hf_offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify of the parquet format is the lead's part: stubbed here, and only here."""
    import datasets

    import toolchain.hub.load as load_mod

    folder, manifest, columns = bench
    out = tmp_path / "pq"
    parquet_benchmark(folder, manifest, columns, out)
    checked: list[Path] = []

    class Ok:
        ok = True

    def fake_verify(path: Path) -> Ok:
        checked.append(Path(path))
        return Ok()

    monkeypatch.setattr(load_mod, "verify_benchmark", fake_verify)
    assert benchmark_format(out) == "parquet"
    ds = load_benchmark(out, cache_dir=hf_offline / "c")
    assert checked == [out]
    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    assert_same_samples(ds, folder, manifest)


def test_benchmark_format_is_parquet_only_with_shards(tmp_path: Path) -> None:
    assert benchmark_format(tmp_path) == "folder"
    (tmp_path / "data").mkdir()
    assert benchmark_format(tmp_path) == "folder"  # an empty data/ is no parquet benchmark
    (tmp_path / "data" / "train-00000-of-00001.parquet").write_bytes(b"")
    assert benchmark_format(tmp_path) == "parquet"


def test_a_folder_without_manifest_is_refused_before_datasets_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(InputError, match="manifest"):
        load_benchmark(tmp_path)


def test_without_datasets_a_verified_benchmark_says_how_to_load_it(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _, _ = bench
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(InputError, match="optional package 'datasets'") as e:
        load_benchmark(folder)
    assert e.value.hint == "pip install 'benchmark-regen[hf]'"


def test_a_split_name_is_honoured_and_columns_override_the_manifest(
    bench: Bench, hf_offline: Path
) -> None:
    import datasets

    folder, manifest, columns = bench
    ds = load_benchmark(folder, split="validation", columns=columns, cache_dir=hf_offline / "s")
    assert ds.split == "validation" and len(ds) == len(manifest.entries)
    plain = load_benchmark(folder, columns=(), cache_dir=hf_offline / "n")  # no names given
    assert not isinstance(plain.features["label"], datasets.ClassLabel)
    assert sorted(set(plain["label"])) == [0, 1]
