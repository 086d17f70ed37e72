"""Hugging Face test originals, built with the real ``datasets`` from real photographs.

Everything is offline: the ``hf_offline`` fixture points ``HF_HOME`` and the
datasets cache at a temporary folder and sets ``HF_HUB_OFFLINE`` /
``HF_DATASETS_OFFLINE``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SMALL_DEMO
from toolchain.demo import demo_original

LABELS = ("cat", "dog")


def photos(n: int = len(SMALL_DEMO)) -> list[tuple[str, bytes]]:
    """``n`` real photographs (name, bytes); repeats with a numbered name past eight."""
    root = demo_original()
    out = []
    for i in range(n):
        name = SMALL_DEMO[i % len(SMALL_DEMO)]
        stem, _, ext = name.rpartition(".")
        out.append(
            (name if i < len(SMALL_DEMO) else f"{stem}-{i}.{ext}", (root / name).read_bytes())
        )
    return out


def class_records(n: int = len(SMALL_DEMO)) -> list[dict[str, Any]]:
    """Rows of a folder-per-class original: path ``<class>/<name>``, label, caption, score."""
    rows = []
    for i, (name, data) in enumerate(photos(n)):
        label = i % 2
        rows.append(
            {
                "path": f"{LABELS[label]}/{name}",
                "bytes": data,
                "label": label,
                "caption": f"photo {i}",
                "score": i / 4,
            }
        )
    return rows


def make_dataset(
    rows: Sequence[dict[str, Any]], *, paths: bool = True, names: Sequence[str] = LABELS
) -> Any:
    """A ``datasets.Dataset`` with an ``Image`` column, a ``ClassLabel`` and two scalars."""
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=list(names)),
            "caption": datasets.Value("string"),
            "score": datasets.Value("float32"),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "image": [{"bytes": r["bytes"], "path": r["path"] if paths else None} for r in rows],
            "label": [r["label"] for r in rows],
            "caption": [r["caption"] for r in rows],
            "score": [r["score"] for r in rows],
        },
        features=features,
    )


def to_hub_parquet(
    ds: Any,
    root: Path,
    split: str,
    *,
    shards: int = 1,
    config: str | None = None,
    row_group: int = 3,
) -> list[Path]:
    """Write ``ds`` as ``data/<split>-0000i-of-0000n.parquet`` (or ``<config>/...``)."""
    folder = root / (config or "data")
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(shards):
        part = ds.shard(num_shards=shards, index=i, contiguous=True)
        path = folder / f"{split}-{i:05d}-of-{shards:05d}.parquet"
        part.to_parquet(str(path), batch_size=row_group)
        out.append(path)
    return out


def to_converted_parquet(
    ds: Any, root: Path, config: str, split: str, *, shards: int = 1, row_group: int = 3
) -> list[Path]:
    """``ds`` in the Hub's ``refs/convert/parquet`` layout: ``<config>/<split>/NNNN.parquet``."""
    folder = root / config / split
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(shards):
        path = folder / f"{i:04d}.parquet"
        ds.shard(num_shards=shards, index=i, contiguous=True).to_parquet(
            str(path), batch_size=row_group
        )
        out.append(path)
    return out


def to_folder(rows: Sequence[dict[str, Any]], root: Path) -> Path:
    """The same images as a folder-per-class tree."""
    for r in rows:
        p = root / r["path"]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(r["bytes"])
    return root


@pytest.fixture
def hf_offline(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """No network, and every Hugging Face cache in a fresh temporary folder."""
    home = tmp_path_factory.mktemp("hf-home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import datasets

    # datasets reads its configuration once, at import: point the cache there too
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    datasets.disable_progress_bars()
    yield home


def load_parquet_dir(data_dir: Path, cache: Path, **kw: Any) -> Any:
    import datasets

    return datasets.load_dataset("parquet", data_dir=str(data_dir), cache_dir=str(cache), **kw)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
