"""Hugging Face originals: Hub-layout parquet folders, ``save_to_disk`` folders, ``Dataset``\\ s.

``pyarrow`` is imported on first use, ``datasets`` only where a parquet shard's schema
metadata does not suffice, or for ``save_to_disk`` folders (``docs/huggingface.md``)."""

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
