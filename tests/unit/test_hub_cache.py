"""toolchain.hub.cache: an entry per root and encoder; the seal holds while every file is as it
was sealed, and breaks on a changed byte, a touched or replaced file, an extra file or link,
another manifest or datasets version, or a damaged seal."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import hf_offline
from tests.hub_cases import flip_byte
from tests.hub_snapshots import hub_offline
from toolchain.hub import cache
from toolchain.model.hashing import Digest

__all__ = ["hf_offline", "hub_offline"]

MANIFEST, ROOT = Digest.of(b"manifest"), Digest.of(b"root")


@pytest.fixture
def entry(tmp_path: Path) -> Path:
    root = tmp_path / "entry"
    (root / "benchmark" / "data").mkdir(parents=True)
    (root / "benchmark" / "manifest.json").write_text("{}\n")
    (root / "benchmark" / "data" / "train-00000-of-00001.parquet").write_bytes(bytes(range(256)))
    (root / "dataset").mkdir()
    (root / "dataset" / "data-00000-of-00001.arrow").write_bytes(b"arrow" * 100)
    cache.write_seal(root, manifest=MANIFEST, root=ROOT, datasets="5.2.0")
    return root


def _sealed(
    entry: Path, *, manifest: Digest = MANIFEST, root: Digest = ROOT, datasets: str = "5.2.0"
) -> bool:
    return cache.is_sealed(entry, manifest=manifest, root=root, datasets=datasets)


def test_the_seal_holds_for_the_same_files_and_records_them(entry: Path) -> None:
    assert _sealed(entry)
    seal = cache.read_seal(entry)
    assert seal is not None and [f[0] for f in seal.files] == [
        "benchmark/data/train-00000-of-00001.parquet",
        "benchmark/manifest.json",
        "dataset/data-00000-of-00001.arrow",
    ]
    assert seal.render() == (entry / cache.SEAL_NAME).read_bytes()


@pytest.mark.parametrize(
    "change", [{"manifest": Digest.of(b"other")}, {"root": MANIFEST}, {"datasets": "5.3.0"}]
)
def test_another_manifest_root_or_datasets_breaks_it(entry: Path, change: dict[str, Any]) -> None:
    assert not _sealed(entry, **change)


def test_a_changed_byte_of_the_same_size_breaks_it(entry: Path) -> None:
    arrow = entry / "dataset" / "data-00000-of-00001.arrow"
    before = arrow.stat()
    flip_byte(arrow, 7)
    os.utime(arrow, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back: ctime moved
    assert arrow.stat().st_size == before.st_size and not _sealed(entry)


def test_a_replaced_file_breaks_it(entry: Path, tmp_path: Path) -> None:
    shard = entry / "benchmark" / "data" / "train-00000-of-00001.parquet"
    copy = tmp_path / "copy"
    shutil.copy2(shard, copy)  # same bytes and mtime, another inode
    os.replace(copy, shard)
    assert not _sealed(entry)


def test_an_extra_file_or_link_or_a_missing_one_breaks_it(entry: Path) -> None:
    extra = entry / "dataset" / "extra.arrow"
    extra.write_bytes(b"")
    assert not _sealed(entry)
    extra.unlink()
    assert _sealed(entry)
    (entry / "dataset" / "link").symlink_to(entry / "benchmark" / "manifest.json")
    assert cache.file_stats(entry) is None and not _sealed(entry)
    (entry / "dataset" / "link").unlink()
    (entry / "benchmark" / "manifest.json").unlink()
    assert not _sealed(entry)


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"format": "x"}', '{"format": "benchmark-regen.hub-cache/v1"}',
     "[" * 5000 + "]" * 5000, '{"format": NaN}'],
)  # fmt: skip
def test_a_damaged_seal_is_no_seal(entry: Path, text: str) -> None:
    (entry / cache.SEAL_NAME).write_text(text)
    assert cache.read_seal(entry) is None and not _sealed(entry)


def test_a_forged_file_list_is_no_seal(entry: Path) -> None:
    seal = (entry / cache.SEAL_NAME).read_text()
    (entry / cache.SEAL_NAME).write_text(seal.replace('"benchmark/manifest.json",', "true,"))
    assert cache.read_seal(entry) is None


def test_entries_differ_by_root_and_install_replaces(tmp_path: Path, entry: Path) -> None:
    a, b = cache.entry_path(tmp_path, ROOT), cache.entry_path(tmp_path, MANIFEST)
    assert a != b and a.parent == tmp_path and a.name.startswith(ROOT.hex[:16])
    with cache.building(a) as work:
        (work / "x").write_text("first")
        cache.install(work, a)
    with cache.building(a) as work:
        (work / "x").write_text("second")
        cache.install(work, a)
    with cache.building(a) as work:
        (work / "x").write_text("never installed")
    assert (a / "x").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, "entry"])


def test_the_default_root_is_beside_the_hub_cache(hub_offline: Path, tmp_path: Path) -> None:
    assert cache.cache_root(None) == hub_offline.parent / "benchmark-regen"
    assert cache.cache_root(tmp_path) == tmp_path
