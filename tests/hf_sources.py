"""Hugging Face originals for the source tests: rows, a Hub-layout folder, what reading gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import LABELS, class_records, make_dataset, to_hub_parquet
from toolchain.model.columns import ColumnSpec

SPECS = (
    ColumnSpec(name="label", type="class_label", names=LABELS),
    ColumnSpec(name="caption", type="string"),
    ColumnSpec(name="score", type="float"),
)
"""The carried columns of :func:`make_dataset`'s rows, in order."""


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return class_records(8)


@pytest.fixture
def hub(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    """data/train-0000i-of-00002.parquet (8 rows, row groups of 3) + data/test-... + README."""
    root = tmp_path / "hub"
    to_hub_parquet(make_dataset(rows), root, "train", shards=2)
    to_hub_parquet(make_dataset(rows[:3]), root, "test")
    (root / "README.md").write_text("---\nlicense: other\n---\n")
    (root / ".gitattributes").write_text("*.parquet filter=lfs\n")
    return root


def samples(source: Any, ids: Any = None) -> list[tuple[str, bytes, dict[str, Any]]]:
    """(id, bytes, columns) of each sample ``iter_samples`` gives (all ids by default)."""
    ids = source.listing().ids if ids is None else ids
    return [(s.id, s.data, dict(s.columns)) for s in source.iter_samples(ids)]


def expected(rows: list[dict[str, Any]]) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """What a source of ``rows`` gives for each path id: the bytes and the carried columns."""
    return {
        r["path"]: (
            r["bytes"],
            {"label": r["label"], "caption": r["caption"], "score": repr(float(r["score"]))},
        )
        for r in rows
    }
