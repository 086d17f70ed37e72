"""``load_benchmark``: verify a benchmark, then load it as a :class:`datasets.Dataset`, in
either output format (``docs/huggingface.md``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolchain._internal.deps import require
from toolchain.audit.verify import verify_benchmark
from toolchain.errors import InputError
from toolchain.hf.card import data_files
from toolchain.hf.parquet import DATA_DIR, parquet_files
from toolchain.model.columns import ColumnSpec

__all__ = ["benchmark_format", "load_benchmark"]


def benchmark_format(out: str | os.PathLike[str]) -> str:
    """``parquet`` if ``out`` holds ``data/*.parquet`` shards, else ``folder``."""
    data = Path(out) / DATA_DIR
    return "parquet" if data.is_dir() and any(data.glob("*.parquet")) else "folder"


def load_benchmark(
    out: str | os.PathLike[str],
    *,
    split: str | None = None,
    columns: Sequence[ColumnSpec] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """Verify the benchmark in ``out`` and return it as a ``datasets.Dataset``.

    Raises :class:`~toolchain.errors.InputError` if it does not verify (run
    ``benchmark-regen verify OUT`` for the per-sample report). ``columns``:
    the carried columns, to give a folder benchmark's class labels their
    names (default: the manifest's, when it records them).
    """
    report = verify_benchmark(out)
    if not report.ok:
        first = report.problems[0] if report.problems else None
        detail = f"; first: {first.path}: {first.problem} ({first.detail})" if first else ""
        raise InputError(
            f"the benchmark in {out} does not verify ({len(report.problems)} problems{detail})",
            hint=f"run `benchmark-regen verify {out}` for the full report",
        )
    ds_mod = require("datasets")
    cache = str(cache_dir) if cache_dir is not None else None
    if benchmark_format(out) == "parquet":
        files = parquet_files(out, split=split)
        name = split or files[0].name.split("-")[0]
        return ds_mod.load_dataset(
            "parquet", data_files={name: [str(f) for f in files]}, split=name, cache_dir=cache
        )
    name = split or "train"
    ds = ds_mod.load_dataset(
        "imagefolder",
        data_dir=str(out),
        data_files={name: list(data_files("folder", name))},
        split=name,
        cache_dir=cache,
    )
    specs = (
        tuple(columns) if columns is not None else tuple(getattr(report.manifest, "columns", ()))
    )
    for spec in specs:
        if spec.type == "class_label" and spec.name in ds.column_names:
            ds = ds.cast_column(spec.name, ds_mod.ClassLabel(names=list(spec.names)))
    return ds
