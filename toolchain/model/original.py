"""The original's identity: the Hub dataset repo, commit, config and split it was read from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath

from toolchain.errors import ManifestError

__all__ = ["OriginalRef", "ref_from_hub_cache"]

_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_REVISION = re.compile(r"[0-9a-f]{40}")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_FIELDS = ("config", "repo", "revision", "split")


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
