"""Hugging Face originals: Hub-layout parquet folders, ``save_to_disk`` folders, ``Dataset``\\ s.

``pyarrow`` is imported on first use, ``datasets`` only where a parquet shard's schema
metadata does not suffice, or for ``save_to_disk`` folders (``docs/huggingface.md``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolchain._internal.lazy import lazy_attributes

if TYPE_CHECKING:
    from toolchain.source._common import class_labels_from_ids, select_columns
    from toolchain.source.hf.arrow import ArrowSource
    from toolchain.source.hf.base import IDS_MODES, HFSource
    from toolchain.source.hf.dataset import DATASET_BATCH_ROWS, DatasetSource, is_dataset
    from toolchain.source.hf.layout import detect, parquet_layout, split_patterns
    from toolchain.source.hf.parquet import READ_BATCH_ROWS, ParquetSource

__all__ = [
    "DATASET_BATCH_ROWS",
    "IDS_MODES",
    "READ_BATCH_ROWS",
    "ArrowSource",
    "DatasetSource",
    "HFSource",
    "ParquetSource",
    "class_labels_from_ids",
    "detect",
    "is_dataset",
    "parquet_layout",
    "select_columns",
    "split_patterns",
]

_LAZY = {
    "class_labels_from_ids": "toolchain.source._common",
    "select_columns": "toolchain.source._common",
    "ArrowSource": "toolchain.source.hf.arrow",
    "IDS_MODES": "toolchain.source.hf.base",
    "HFSource": "toolchain.source.hf.base",
    "DATASET_BATCH_ROWS": "toolchain.source.hf.dataset",
    "DatasetSource": "toolchain.source.hf.dataset",
    "is_dataset": "toolchain.source.hf.dataset",
    "detect": "toolchain.source.hf.layout",
    "parquet_layout": "toolchain.source.hf.layout",
    "split_patterns": "toolchain.source.hf.layout",
    "READ_BATCH_ROWS": "toolchain.source.hf.parquet",
    "ParquetSource": "toolchain.source.hf.parquet",
}
"""Each name's module, loaded on first use: opening a folder of images asks whether it
is a Hugging Face dataset (``detect``, ``is_dataset``) without loading the sources."""


__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
