"""The original's identity: the Hub dataset repo, commit, config and split it was read from."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath

from toolchain.errors import ManifestError

__all__ = ["OriginalRef", "ref_from_download_urls", "ref_from_hub_cache"]

_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_REVISION = re.compile(r"[0-9a-f]{40}")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_FIELDS = ("config", "repo", "revision", "split")
_CHECKED = ("repo", "config", "split")
_HF_URL = re.compile(  # datasets >= 2.14 records hf:// paths, older ones the resolve URL
    r"(?:hf://datasets/(?P<repo>[^@/]+/[^@/]+)@(?P<rev>[^/]+)"
    r"|https://huggingface\.co/datasets/(?P<repo2>[^/]+/[^/]+)/resolve/(?P<rev2>[^/]+))/"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class OriginalRef:
    """Where the original's samples came from; an empty field is unknown or does not apply."""

    repo: str = ""
    """The Hugging Face Hub dataset repo, ``org/name``."""
    revision: str = ""
    """The commit (40 hex digits) whose files were read."""
    config: str = ""
    """The dataset config (``default`` unless the dataset has several)."""
    split: str = ""
    """The split read (``validation``); empty for a folder or tar original."""

    def __post_init__(self) -> None:
        for field, pattern in (("repo", _REPO), ("revision", _REVISION)):
            value = getattr(self, field)
            if value and not pattern.fullmatch(value):
                raise ValueError(f"original {field} {value!r} is malformed")
        for field in ("config", "split"):
            value = getattr(self, field)
            if value and not _NAME.fullmatch(value):
                raise ValueError(f"original {field} {value!r} is malformed")
        if self.revision and not self.repo:
            raise ValueError(f"original revision {self.revision!r} names no repo")

    @classmethod
    def best_effort(
        cls, *, repo: str = "", revision: str = "", config: str = "", split: str = ""
    ) -> OriginalRef:
        """The fields that are well-formed; any other is left unknown (a revision without its
        repo too): what a dataset's own metadata says is recorded, never repaired."""
        if not _REPO.fullmatch(repo):
            repo = revision = ""
        if not _REVISION.fullmatch(revision):
            revision = ""
        config, split = (v if _NAME.fullmatch(v) else "" for v in (config, split))
        return cls(repo=repo, revision=revision, config=config, split=split)

    def differs_from(self, other: OriginalRef, *, revision: bool = False) -> tuple[str, ...]:
        """The fields (repo, config, split; the revision too if asked) that both know and
        that differ."""
        fields = (*_CHECKED, "revision") if revision else _CHECKED
        pairs = ((f, getattr(self, f), getattr(other, f)) for f in fields)
        return tuple(f for f, mine, theirs in pairs if mine and theirs and mine != theirs)

    def filled_from(self, other: OriginalRef) -> OriginalRef:
        """This identity with its unknown fields taken from ``other`` (a commit only with
        the repo it belongs to)."""
        repo, revision = self.repo, self.revision
        if not repo:
            repo, revision = other.repo, other.revision
        elif not revision and other.repo == repo:
            revision = other.revision
        return OriginalRef(
            repo=repo,
            revision=revision,
            config=self.config or other.config,
            split=self.split or other.split,
        )

    def to_json(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in _FIELDS}

    @classmethod
    def from_json(cls, doc: object) -> OriginalRef:
        """Parse ``provenance.original``: exactly its four string fields, each well-formed."""
        if not isinstance(doc, Mapping) or sorted(doc) != list(_FIELDS):
            raise ManifestError(
                "provenance.original must be an object with exactly the fields "
                + ", ".join(_FIELDS)
            )
        if not all(isinstance(v, str) for v in doc.values()):
            raise ManifestError("provenance.original's fields must be strings")
        try:
            return cls(**{f: doc[f] for f in _FIELDS})
        except ValueError as e:
            raise ManifestError(f"provenance.{e}") from None

    def describe(self) -> str:
        """One line for people: ``org/name@0123abc (config default, split validation)``."""
        where = self.repo + (f"@{self.revision[:7]}" if self.revision else "")
        detail = ", ".join(
            f"{f} {getattr(self, f)}" for f in ("config", "split") if getattr(self, f)
        )
        return f"{where or 'a local copy'}" + (f" ({detail})" if detail else "")


def ref_from_hub_cache(path: str | PurePath) -> OriginalRef | None:
    """The repo and commit of a path inside a Hub cache snapshot, as ``huggingface_hub`` lays
    it out (``…/datasets--ORG--NAME/snapshots/<commit>/…``); ``None`` elsewhere."""
    parts = PurePath(path).parts
    for i in range(len(parts) - 2):
        folder, snapshots, commit = parts[i : i + 3]
        if snapshots != "snapshots" or not folder.startswith("datasets--"):
            continue
        org_name = folder.removeprefix("datasets--").split("--")
        repo = "/".join(org_name)
        if len(org_name) == 2 and _REPO.fullmatch(repo) and _REVISION.fullmatch(commit):
            return OriginalRef(repo=repo, revision=commit)
    return None


def ref_from_download_urls(urls: Iterable[str]) -> OriginalRef | None:
    """The repo and commit of the files ``datasets`` downloaded (``info.download_checksums``
    keys, ``hf://datasets/ORG/NAME@<commit>/…``), when they all name one; ``None`` otherwise.
    A revision that is not a commit id (``main``) is left unknown."""
    found = {
        (m["repo"] or m["repo2"], m["rev"] or m["rev2"]) for u in urls if (m := _HF_URL.match(u))
    }
    if len(found) != 1:
        return None
    repo, revision = found.pop()
    ref = OriginalRef.best_effort(repo=repo, revision=revision)
    return ref if ref.repo else None
