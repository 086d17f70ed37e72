"""A Hugging Face Hub cache, laid out as ``huggingface_hub`` lays one out, built offline from
real files (``datasets--ORG--NAME/{blobs/<sha256>, snapshots/<commit>/… → blobs, refs/main}``),
and the info ``datasets`` records for a download."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import class_records, make_dataset, to_hub_parquet

COMMIT = "3f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
"""The commit id the built snapshots are at."""


def cache_repo(staging: Path, cache: Path, repo: str, *, commit: str = COMMIT) -> Path:
    """Put every file under ``staging`` into ``cache`` as the dataset repo ``repo`` at
    ``commit`` (its blob, a relative symlink to it in the snapshot, ``refs/main``)."""
    folder = cache / ("datasets--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / commit
    for f in sorted(p for p in staging.rglob("*") if p.is_file()):
        data = f.read_bytes()
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / f.relative_to(staging)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    return cache


@pytest.fixture
def hub_offline(hf_offline: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Hub cache folder of :func:`tests.hf_cases.hf_offline`'s home, offline:
    ``huggingface_hub`` reads its settings once, at import, so they are set there too."""
    import huggingface_hub.constants as hub_constants

    cache = hf_offline / "hub"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture
def pets(tmp_path: Path, hub_offline: Path) -> Path:
    """The Hub dataset ``photo-lab/pets`` (splits train and validation of real photographs,
    five and three), as ``huggingface_hub`` finds it in its cache, offline."""
    rows = class_records(8)
    staging = tmp_path / "pets-staging"
    to_hub_parquet(make_dataset(rows[:5]), staging, "train")
    to_hub_parquet(make_dataset(rows[5:]), staging, "validation")
    cache_repo(staging, hub_offline, "photo-lab/pets")
    return snapshot_of("photo-lab/pets")


def snapshot_of(repo: str) -> Path:
    """Where ``huggingface_hub`` finds ``repo`` in the cache, offline (the real call)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo, repo_type="dataset"))


def with_downloads(ds: Any, urls: list[str]) -> Any:
    """``ds`` (a ``datasets.Dataset``) with the info ``datasets`` records when it downloads
    files: config ``default``, the files by URL (``info.download_checksums``)."""
    import datasets

    info = datasets.DatasetInfo(
        config_name="default",
        download_checksums={u: {"num_bytes": 1, "checksum": None} for u in urls},
    )
    return datasets.Dataset(ds.data, info=info, split=ds.split)
