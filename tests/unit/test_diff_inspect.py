"""toolchain.diff.inspect: what a .bdiff holds, read without the original, every byte accounted
for and every payload's digest checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.diff_cases import build, pinned, tiny_original
from tests.hf_cases import hf_offline
from tests.hub_snapshots import COMMIT, hub_offline, pets
from toolchain.diff import create_diff, inspect_diff
from toolchain.diff.format import HEADER_SIZE, INDEX_RECORD_SIZE
from toolchain.diff.reader import open_diff
from toolchain.errors import DiffFormatError
from toolchain.model.manifest import load_manifest
from toolchain.run.generate import generate_benchmark
from toolchain.source import SourceOptions

__all__ = ["hf_offline", "hub_offline", "pets"]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("inspect")
    bench, diff = build(tiny_original(work / "original"), "adversarial", work)
    return bench, diff


def test_every_byte_of_the_file_is_accounted_for(published: tuple[Path, Path]) -> None:
    _, diff = published
    doc = inspect_diff(diff).to_json()
    sizes = doc["bytes"]
    assert sizes["header"] == HEADER_SIZE and sizes["index"] == INDEX_RECORD_SIZE * 5
    assert sizes["file"] == diff.stat().st_size
    total = sizes["header"] + sizes["manifest"] + sizes["index"] + sum(sizes["payloads"].values())
    assert total == sizes["file"]
    with open_diff(diff) as reader:
        assert sizes["largest_payload"] == max(r.length for r in reader.records)


def test_the_report_names_the_benchmark_and_counts_the_payloads(
    published: tuple[Path, Path],
) -> None:
    bench, diff = published
    info = inspect_diff(diff)
    doc = json.loads(json.dumps(info.to_json()))
    manifest = load_manifest(bench / "manifest.json")
    assert doc["integrity"] == "ok" and doc["samples"] == 5 and doc["version"] == 2
    assert doc["key_on"] == "file" and len(bytes.fromhex(doc["benchmark_id"])) == 32
    assert set(doc["kinds"]) == {"delta", "full", "recipe"} and sum(doc["kinds"].values()) == 5
    assert doc["kinds"]["recipe"] == 0 and doc["recipe_entries"] is None  # made with deltas
    assert doc["manifest"]["root"] == str(manifest.root)
    assert doc["manifest"]["recipe"]["name"] == "adversarial"
    assert doc["manifest"]["samples"] == doc["manifest"]["samples_in_original"] == 5
    # only the decoders' versions are shown: they decide whether apply can work here
    assert doc["manifest"]["fingerprint"] and all(
        k.startswith("pillow") for k in doc["manifest"]["fingerprint"]
    )
    assert info.manifest == manifest and info.path == diff


def test_a_corrupt_payload_fails_the_inspection(
    published: tuple[Path, Path], tmp_path: Path
) -> None:
    _, diff = published
    with open_diff(diff) as reader:
        last = reader.records[-1]
    data = bytearray(diff.read_bytes())
    data[last.offset + last.length // 2] ^= 0x01
    bad = tmp_path / "bad.bdiff"
    bad.write_bytes(bytes(data))
    with pytest.raises(DiffFormatError) as e:
        inspect_diff(bad)
    assert e.value.exit_code == 3


def test_the_recorded_original_is_shown(
    published: tuple[Path, Path], pets: Path, tmp_path: Path
) -> None:
    _, folder_diff = published
    plain = inspect_diff(folder_diff)
    assert plain.to_json()["manifest"]["original"] is None  # a folder names no dataset
    assert "original   original\n" in "\n".join(plain.lines()) + "\n"
    options = SourceOptions(split="validation")
    with pinned():
        generate_benchmark(pets, "identity", tmp_path / "bench", source_options=options)
        create_diff(pets, tmp_path / "bench", tmp_path / "pets.bdiff", source_options=options)
    info = inspect_diff(tmp_path / "pets.bdiff")
    assert info.to_json()["manifest"]["original"] == {
        "config": "default",
        "repo": "photo-lab/pets",
        "revision": COMMIT,
        "split": "validation",
    }
    lines = info.lines()
    assert lines[2] == (
        f"original   photo-lab/pets, from photo-lab/pets@{COMMIT[:7]} "
        "(config default, split validation)"
    )
    assert [line.split()[0] for line in lines] == [
        "container", "benchmark", "original", "payloads", "recipes", "size",
    ]  # fmt: skip
    assert lines[0].startswith("container  v3,")  # recipe entries: version 3
    assert lines[4] == "recipes    they name identity@1.0 (seed 0), shipped in this release"
    n = len(info.manifest.entries)
    assert n and info.to_json()["kinds"] == {"delta": 0, "full": 0, "recipe": n}
