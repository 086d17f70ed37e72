"""The original's identity: strict parsing, and repo and commit read off a Hub cache path."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolchain.errors import ManifestError
from toolchain.model.original import OriginalRef, ref_from_download_urls, ref_from_hub_cache

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
        {"repo": "", "revision": COMMIT, "config": "", "split": ""},  # a commit of no repo
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


def test_best_effort_keeps_what_is_well_formed_and_drops_the_rest() -> None:
    assert OriginalRef.best_effort(
        repo="ylecun/mnist", revision=COMMIT, config="default", split="test"
    ) == OriginalRef(repo="ylecun/mnist", revision=COMMIT, config="default", split="test")
    # a sliced split, a branch name, a repo without its org: unknown, never repaired
    assert OriginalRef.best_effort(
        repo="ylecun/mnist", revision="main", config="default", split="test[:10]"
    ) == OriginalRef(repo="ylecun/mnist", config="default")
    assert OriginalRef.best_effort(repo="mnist", revision=COMMIT, split="test") == OriginalRef(
        split="test"
    )  # no commit without the repo it is of


def test_differs_from_compares_only_what_both_know() -> None:
    ref = OriginalRef(repo="a/b", revision=COMMIT, config="default", split="test")
    assert ref.differs_from(OriginalRef(split="test")) == ()
    assert ref.differs_from(OriginalRef(repo="a/c", config="x", split="train")) == (
        "repo",
        "config",
        "split",
    )
    newer = OriginalRef(repo="a/b", revision="f" * 40, split="test")
    assert ref.differs_from(newer) == () and ref.differs_from(newer, revision=True) == ("revision",)


def test_filled_from_takes_only_unknown_fields() -> None:
    found = OriginalRef(config="default", split="validation")
    declared = OriginalRef(repo="a/b", revision=COMMIT, config="other", split="train")
    assert found.filled_from(declared) == OriginalRef(
        repo="a/b", revision=COMMIT, config="default", split="validation"
    )
    same_repo = OriginalRef(repo="a/b", split="validation")
    assert same_repo.filled_from(declared).revision == COMMIT
    other_repo = OriginalRef(repo="a/c", split="validation")
    assert other_repo.filled_from(declared).revision == ""  # a commit of another repo


def test_the_files_datasets_downloaded_name_their_repo_and_commit() -> None:
    hf = f"hf://datasets/ylecun/mnist@{COMMIT}/mnist/test-00000-of-00001.parquet"
    old = f"https://huggingface.co/datasets/ylecun/mnist/resolve/{COMMIT}/mnist/train.parquet"
    want = OriginalRef(repo="ylecun/mnist", revision=COMMIT)
    assert ref_from_download_urls([hf]) == ref_from_download_urls([hf, old]) == want
    branch = "hf://datasets/ylecun/mnist@refs%2Fconvert%2Fparquet/mnist/test/0000.parquet"
    assert ref_from_download_urls([branch]) == OriginalRef(repo="ylecun/mnist")
    other = f"hf://datasets/other/mnist@{COMMIT}/x.parquet"
    assert ref_from_download_urls([hf, other]) is None  # two repos: neither is guessed
    assert ref_from_download_urls(["https://example.org/mnist.tar.gz"]) is None
    assert ref_from_download_urls([]) is None
