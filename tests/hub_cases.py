"""Hub repos for the publish/get tests, from real photographs, laid out offline in a Hub cache
(:func:`tests.hub_snapshots.cache_repo`), which the real ``snapshot_download`` resolves with
``HF_HUB_OFFLINE=1`` (:func:`tests.hub_snapshots.hub_offline`).

:func:`make_world` makes, once per test module: the original (parquet shards of eight real
photographs in the Hub layout, split ``validation``) as ``org/photos``; a gaussian-noise
benchmark generated from that snapshot, whose manifest records it; a signing key; the diff
publication and a ``--regenerate-only`` one (a recipe file with a parameter).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.diff_cases import pinned
from tests.hf_cases import class_records, make_dataset, to_hub_parquet
from tests.hub_snapshots import cache_repo
from toolchain.audit.sign import generate_key
from toolchain.hub.publish import publish
from toolchain.model.layout import MANIFEST_NAME
from toolchain.model.manifest import load_manifest
from toolchain.model.original import OriginalRef
from toolchain.run.generate import generate_benchmark
from toolchain.source import SourceOptions

__all__ = [
    "BENCH_REPO",
    "ORIGINAL_COMMIT",
    "ORIGINAL_REPO",
    "RECIPE_TEXT",
    "HubWorld",
    "flip_byte",
    "hub_with",
    "lay_out",
    "make_world",
]

ORIGINAL_REPO = "org/photos"
ORIGINAL_COMMIT = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
BENCH_REPO = "org/bench"
BENCH_COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
SPLIT = "validation"

RECIPE_TEXT = '''"""A recipe published as a file: a seeded brightness shift of every photograph."""

import numpy as np

from toolchain import recipe


@recipe(name="hub-shift", version="1.0", seed=11)
def shift(pixels, rng, *, amount: float = 6.0):
    step = int(amount)
    delta = int(rng.integers(0, 2 * step + 1)) - step
    return np.clip(pixels.astype(np.int16) + delta, 0, 255).astype(np.uint8)
'''


def flip_byte(path: Path, offset: int) -> None:
    """Flip every bit of one byte of ``path`` in place (same size)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def lay_out(cache: Path, repo: str, files: Path, commit: str) -> Path:
    """``files`` (a folder) as revision ``commit`` (and ``main``) of dataset ``repo`` in the
    Hub cache ``cache``; the snapshot folder."""
    cache_repo(files, cache, repo, commit=commit)
    return cache / ("datasets--" + repo.replace("/", "--")) / "snapshots" / commit


@dataclass(frozen=True)
class HubWorld:
    original: Path
    """The original's files (parquet shards in the Hub layout, a README)."""
    snapshot: Path
    """The original laid out in :attr:`cache` as ``org/photos``."""
    cache: Path
    """A Hub cache holding the original only (copy it to add a publication)."""
    bench: Path
    """The gaussian-noise benchmark, its manifest recording the original."""
    key: Path
    publication: Path
    """The diff publication of :attr:`bench`, signed by :attr:`key`."""
    regen_bench: Path
    regen_publication: Path
    """A ``--regenerate-only`` publication of a benchmark made by :attr:`recipe_file`."""
    recipe_file: Path


def _records_original(bench: Path) -> None:
    """The manifest records the Hub original it was generated from (the source's identity)."""
    recorded = load_manifest(bench / MANIFEST_NAME).provenance.original
    assert recorded == OriginalRef(
        repo=ORIGINAL_REPO, revision=ORIGINAL_COMMIT, config="default", split=SPLIT
    )


def make_world(work: Path) -> HubWorld:
    original = work / "original"
    to_hub_parquet(make_dataset(class_records(8)), original, SPLIT)
    (original / "README.md").write_text("---\nlicense: other\n---\n# Eight photographs\n")
    cache = work / "hub-cache"
    snapshot = lay_out(cache, ORIGINAL_REPO, original, ORIGINAL_COMMIT)
    key = generate_key(work / "publisher.key").private
    options = SourceOptions(split=SPLIT)
    recipe_file = work / "recipes" / "shift.py"
    recipe_file.parent.mkdir()
    recipe_file.write_text(RECIPE_TEXT)
    bench, regen_bench = work / "bench", work / "regen-bench"
    with pinned():
        generate_benchmark(snapshot, "gaussian-noise", bench, source_options=options)
        _records_original(bench)
        publication = work / "publication"
        publish(bench, snapshot, publication, key=key, name=BENCH_REPO, source_options=options)
        generate_benchmark(
            snapshot, f"{recipe_file}:shift", regen_bench, params={"amount": 4.0},
            source_options=options,
        )  # fmt: skip
        _records_original(regen_bench)
        regen_publication = work / "regen-publication"
        publish(
            regen_bench, snapshot, regen_publication, regenerate_only=True,
            recipe=recipe_file, name=BENCH_REPO, source_options=options,
        )  # fmt: skip
    return HubWorld(
        original=original,
        snapshot=snapshot,
        cache=cache,
        bench=bench,
        key=key,
        publication=publication,
        regen_bench=regen_bench,
        regen_publication=regen_publication,
        recipe_file=recipe_file,
    )


def hub_with(world: HubWorld, cache: Path, publication: Path | None = None) -> Path:
    """``cache`` holding the original and ``publication`` (default: the diff one) as
    ``org/bench``; the publication's snapshot."""
    shutil.copytree(world.cache, cache, symlinks=True, dirs_exist_ok=True)
    return lay_out(cache, BENCH_REPO, publication or world.publication, BENCH_COMMIT)
