"""The original's identity: strict parsing, and repo and commit read off a Hub cache path."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolchain.errors import ManifestError
from toolchain.model.original import OriginalRef, ref_from_hub_cache

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_round_trip_and_description() -> None:
    ref = OriginalRef(repo="ylecun/mnist", revision=COMMIT, config="default", split="test")
    assert OriginalRef.from_json(ref.to_json()) == ref
    assert list(ref.to_json()) == ["config", "repo", "revision", "split"]
    assert ref.describe() == "ylecun/mnist@0123456 (config default, split test)"
    assert OriginalRef(split="validation").describe() == "a local copy (split validation)"


@pytest.mark.parametrize(
    "doc",
    [
        {"repo": "a/b", "revision": "", "config": ""},  # a field missing
        {"repo": "a/b", "revision": "", "config": "", "split": "", "extra": ""},
        {"repo": 1, "revision": "", "config": "", "split": ""},
        {"repo": "../x", "revision": "", "config": "", "split": ""},
        {"repo": "a/b", "revision": "HEAD", "config": "", "split": ""},
        {"repo": "a/b", "revision": "", "config": "", "split": "../train"},
        {"repo": "a/b", "revision": "", "config": "x\u009b", "split": ""},
        [],
    ],
)
def test_malformed_identities_are_refused(doc: object) -> None:
    with pytest.raises(ManifestError, match="provenance"):
        OriginalRef.from_json(doc)


def test_a_hub_cache_snapshot_names_its_repo_and_commit(tmp_path: Path) -> None:
    snap = tmp_path / "hub" / "datasets--ylecun--mnist" / "snapshots" / COMMIT
    assert ref_from_hub_cache(snap) == OriginalRef(repo="ylecun/mnist", revision=COMMIT)
    assert ref_from_hub_cache(snap / "mnist" / "test-00000-of-00001.parquet") is not None
    assert ref_from_hub_cache(tmp_path / "datasets--a--b" / "snapshots" / "main") is None
    assert ref_from_hub_cache(tmp_path / "models--a--b" / "snapshots" / COMMIT) is None
    assert ref_from_hub_cache(tmp_path / "datasets--a--b--c" / "snapshots" / COMMIT) is None
    assert ref_from_hub_cache(tmp_path / "plain" / "folder") is None
