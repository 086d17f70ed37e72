"""Benchmarks in both output formats, for the card, Croissant and load tests.

The folder format is made by the real ``generate`` (in this process, pinned);
its ``metadata.jsonl`` then gets the carried ``label`` column, as the manifest
v2 output will write it. The parquet format holds the same PNG bytes, ids and
labels, written by :func:`toolchain.hf.parquet.write_parquet`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.diff_cases import pinned
from tests.hf_cases import class_records, to_folder
from toolchain.codec.decode import decode
from toolchain.hf.card import CardInfo
from toolchain.hf.parquet import BenchmarkRow, ParquetWriteResult, write_parquet
from toolchain.model.columns import ColumnSpec
from toolchain.model.hashing import pixel_digest
from toolchain.model.manifest import Manifest, Provenance, load_manifest
from toolchain.run.generate import generate_benchmark
from toolchain.source.hf import class_labels_from_ids

__all__ = ["assert_same_samples", "card_info", "folder_benchmark", "parquet_benchmark"]


def folder_benchmark(work: Path, n: int = 6) -> tuple[Path, Manifest, tuple[ColumnSpec, ...]]:
    """A real generated benchmark (identity recipe) of a folder-per-class original."""
    original = to_folder(class_records(n), work / "original")
    out = work / "bench"
    with pinned():
        generate_benchmark(
            original,
            "identity",
            out,
            provenance=Provenance(
                original_name="Demo photographs (café edition)",
                original_terms="https://scikit-image.org/docs/stable/api/skimage.data.html",
                recipe_license="Apache-2.0",
            ),
        )
    manifest = load_manifest(out / "manifest.json")
    labels = class_labels_from_ids([e.id for e in manifest.entries])
    assert labels is not None
    spec, values = labels
    lines = []
    for line in (out / "metadata.jsonl").read_text().splitlines():
        doc = json.loads(line)
        doc["label"] = values[doc["sample_id"]]
        lines.append(json.dumps(doc, sort_keys=True))
    (out / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return out, manifest, (spec,)


def parquet_benchmark(
    folder: Path, manifest: Manifest, columns: tuple[ColumnSpec, ...], out: Path
) -> ParquetWriteResult:
    """The same benchmark as parquet shards (two shards, row groups of two)."""
    labels = {
        json.loads(line)["sample_id"]: json.loads(line)["label"]
        for line in (folder / "metadata.jsonl").read_text().splitlines()
    }
    rows = [
        BenchmarkRow(
            id=e.id,
            path=e.path,
            png=(folder / e.path).read_bytes(),
            columns={"label": labels[e.id]},
        )
        for e in manifest.entries
    ]
    return write_parquet(out, rows, columns, shard_bytes=1, row_group_rows=3)


def card_info(manifest: Manifest, columns: tuple[ColumnSpec, ...], fmt: str) -> CardInfo:
    return CardInfo.from_manifest(manifest, format=fmt, columns=columns)


def assert_same_samples(ds: Any, bench: Path, manifest: Manifest) -> None:
    """``ds`` (a loaded ``datasets.Dataset``) holds exactly the benchmark's samples."""
    import datasets

    raw = ds.cast_column("image", datasets.Image(decode=False))
    by_id = {e.id: e for e in manifest.entries}
    assert sorted(raw["sample_id"]) == sorted(by_id)
    for row in raw:
        entry = by_id[row["sample_id"]]
        image = row["image"]  # parquet: the bytes; a folder: the file's path
        data = image["bytes"] or Path(image["path"]).read_bytes()
        assert pixel_digest(decode(data)) == entry.pixels
