"""toolchain.hub.load: load_benchmark verifies a benchmark folder, then loads either output
format as a ``datasets.Dataset`` with its class labels named; a publication (a folder or a Hub
repo id, resolved offline from a Hub cache of real photographs) is rebuilt once, verified,
sealed in the cache, and loaded from there again without an apply."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.diff_cases import pinned
from tests.hf_cases import LABELS, class_records, hf_offline, make_dataset
from tests.hf_outputs import assert_same_samples, folder_benchmark, parquet_benchmark
from tests.hub_cases import (
    BENCH_REPO,
    ORIGINAL_COMMIT,
    ORIGINAL_REPO,
    HubWorld,
    flip_byte,
    hub_with,
    lay_out,
    make_world,
)
from tests.hub_snapshots import hub_offline
from toolchain.audit.sign import generate_key
from toolchain.audit.verify import verify_benchmark
from toolchain.codec.decode import decode
from toolchain.diff.apply import get_benchmark
from toolchain.errors import ExitCode, InputError, RecipeError, SignatureError, SourceError
from toolchain.hub.load import load_benchmark
from toolchain.hub.publish import publish
from toolchain.model.columns import ColumnSpec
from toolchain.model.hashing import pixel_digest
from toolchain.model.manifest import Manifest, load_manifest
from toolchain.run.outdir import benchmark_format
from toolchain.source import SourceOptions

__all__ = ["hf_offline", "hub_offline"]

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


# -- publications: a folder, or a Hub repo id fetched from the (offline) Hub cache ------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> HubWorld:
    return make_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def applies(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The ``diff apply`` runs made through the publication loader, by output folder."""
    import toolchain.hub.rebuild as rebuild_mod

    runs: list[Path] = []
    real = rebuild_mod.get_benchmark

    def counted(original: Any, diff: Any, out: Any, **kw: Any) -> Any:
        runs.append(Path(out))
        return real(original, diff, out, **kw)

    monkeypatch.setattr(rebuild_mod, "get_benchmark", counted)
    return runs


def _png_digests(ds: Any) -> list[str]:
    import datasets

    raw = ds.cast_column("image", datasets.Image(decode=False))
    return [str(pixel_digest(decode(row["image"]["bytes"]))) for row in raw]


def test_a_hub_repo_id_loads_what_diff_apply_and_verify_give(
    world: HubWorld, hub_offline: Path, tmp_path: Path, applies: list[Path]
) -> None:
    import datasets

    hub_with(world, hub_offline)
    with pinned():
        ds = load_benchmark(BENCH_REPO, cache_dir=tmp_path / "cache", pubkey=f"{world.key}.pub")
        applied = get_benchmark(
            world.snapshot, world.publication / "diff", tmp_path / "applied",
            source_options=SourceOptions(split="validation"),
        )  # fmt: skip
    assert applied.ok and verify_benchmark(tmp_path / "applied").ok
    entries = applied.manifest.entries
    assert applied.manifest.root == load_manifest(world.bench / "manifest.json").root
    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    assert ds["sample_id"] == [e.id for e in entries]
    assert ds["label"] == [e.columns["label"] for e in entries]
    assert _png_digests(ds) == [str(e.pixels) for e in entries]
    assert len(applies) == 1  # the publication was applied once, in the cache


def test_the_second_call_applies_nothing_and_reads_the_sealed_entry(
    world: HubWorld, hub_offline: Path, tmp_path: Path, applies: list[Path]
) -> None:
    hub_with(world, hub_offline)
    cache = tmp_path / "cache"
    with pinned():
        first = load_benchmark(BENCH_REPO, cache_dir=cache)
    (entry,) = cache.iterdir()
    seal = (entry / "seal.json").stat()
    second = load_benchmark(BENCH_REPO, cache_dir=cache)  # not pinned: no apply may run
    assert len(applies) == 1
    assert (entry / "seal.json").stat().st_ino == seal.st_ino  # not rebuilt, not resealed
    assert second["sample_id"] == first["sample_id"] and second["label"] == first["label"]
    assert _png_digests(second) == _png_digests(first)


def test_a_changed_cache_is_verified_again_and_a_damaged_one_rebuilt(
    world: HubWorld, hub_offline: Path, tmp_path: Path, applies: list[Path]
) -> None:
    hub_with(world, hub_offline)
    cache = tmp_path / "cache"
    with pinned():
        good = _png_digests(load_benchmark(BENCH_REPO, cache_dir=cache))
        (entry,) = cache.iterdir()
        # Touched only: the seal no longer matches; the benchmark still verifies and is kept.
        shard = next((entry / "benchmark" / "data").glob("*.parquet"))
        os.utime(shard, ns=(0, 0))
        assert _png_digests(load_benchmark(BENCH_REPO, cache_dir=cache)) == good
        assert len(applies) == 1
        # A flipped pixel byte in the cached benchmark: it is rebuilt from the publication.
        shard = next((entry / "benchmark" / "data").glob("*.parquet"))
        flip_byte(shard, shard.stat().st_size // 2)
        assert _png_digests(load_benchmark(BENCH_REPO, cache_dir=cache)) == good
        assert len(applies) == 2
        # The saved dataset altered: never returned as it is.
        arrow = next((entry / "dataset").glob("*.arrow"))
        flip_byte(arrow, arrow.stat().st_size // 2)
        assert _png_digests(load_benchmark(BENCH_REPO, cache_dir=cache)) == good
    assert [p.name for p in cache.iterdir()] == [entry.name]  # no temporary left behind


def test_a_local_publication_folder_and_an_explicit_original(
    world: HubWorld, tmp_path: Path
) -> None:
    import datasets

    original = datasets.DatasetDict(
        {
            "train": make_dataset(class_records(2)),
            "validation": make_dataset(class_records(8)),
        }
    )
    with pinned():  # no Hub cache holds the original: only the one given is read
        ds = load_benchmark(world.publication, original=original, cache_dir=tmp_path / "c")
    bench = load_manifest(world.bench / "manifest.json")
    assert ds["sample_id"] == [e.id for e in bench.entries]
    assert _png_digests(ds) == [str(e.pixels) for e in bench.entries]


def test_a_regenerate_only_publication_runs_its_recipe_only_when_trusted(
    world: HubWorld, hub_offline: Path, tmp_path: Path, applies: list[Path]
) -> None:
    hub_with(world, hub_offline, world.regen_publication)
    with pytest.raises(RecipeError, match="Python code") as e:
        load_benchmark(BENCH_REPO, cache_dir=tmp_path / "c")
    assert "trust_recipe=True" in (e.value.hint or "")
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
    with pinned():
        ds = load_benchmark(BENCH_REPO, cache_dir=tmp_path / "c", trust_recipe=True)
    regen = load_manifest(world.regen_bench / "manifest.json")
    assert ds["sample_id"] == [e.id for e in regen.entries]
    assert _png_digests(ds) == [str(e.pixels) for e in regen.entries]
    assert applies == []


def test_a_wrong_revision_names_repo_and_revision(
    world: HubWorld, hub_offline: Path, tmp_path: Path
) -> None:
    hub_with(world, hub_offline)
    with pytest.raises(InputError, match=r"org/bench at revision v2 .*offline mode") as e:
        load_benchmark(BENCH_REPO, revision="v2", cache_dir=tmp_path / "c")
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert not (tmp_path / "c").exists()


def test_a_missing_original_says_which_and_how_to_get_it(
    world: HubWorld, hub_offline: Path, tmp_path: Path
) -> None:
    lay_out(hub_offline, BENCH_REPO, world.publication, "ab" * 20)  # the original is not cached
    with pytest.raises(SourceError) as e:
        load_benchmark(BENCH_REPO, cache_dir=tmp_path / "c")
    text = e.value.diagnostics()
    assert f"the original {ORIGINAL_REPO} at revision {ORIGINAL_COMMIT}" in text
    assert "huggingface-cli login" in text and "original=" in text
    assert list((tmp_path / "c").iterdir()) == []  # no entry, no temporary folder


def test_a_tampered_publication_file_is_refused_before_anything_is_applied(
    world: HubWorld, hub_offline: Path, tmp_path: Path, applies: list[Path]
) -> None:
    snapshot = hub_with(world, hub_offline)
    shard = next((snapshot / "diff" / "data").glob("*.parquet"))
    flip_byte(shard.resolve(), 100)  # the blob the snapshot links to
    with pytest.raises(InputError, match=r"train-00000-of-00001.parquet has SHA-256 .*changed"):
        load_benchmark(BENCH_REPO, cache_dir=tmp_path / "c")
    assert applies == []


def test_a_bad_signature_is_refused(world: HubWorld, hub_offline: Path, tmp_path: Path) -> None:
    hub_with(world, hub_offline)
    other = generate_key(tmp_path / "other.key")
    with pytest.raises(SignatureError, match="signed by another key"):
        load_benchmark(BENCH_REPO, cache_dir=tmp_path / "c", pubkey=other.public)
    unsigned = tmp_path / "unsigned"
    with pinned():
        publish(
            world.bench, world.snapshot, unsigned,
            source_options=SourceOptions(split="validation"),
        )  # fmt: skip
    with pytest.raises(SignatureError, match="no signature"):
        load_benchmark(unsigned, cache_dir=tmp_path / "c", pubkey=f"{world.key}.pub")


def test_a_name_that_is_neither_folder_nor_repo_id(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="neither a folder nor a Hub repo id"):
        load_benchmark("no such thing")
    with pytest.raises(InputError, match="revision applies to Hub repos"):
        load_benchmark(tmp_path, revision="main")
