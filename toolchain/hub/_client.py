"""Every call to ``huggingface_hub``, and its errors as ours: fetch a dataset repo's snapshot,
push a folder as one commit (no stability guarantee)."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

from toolchain._internal.deps import require
from toolchain.errors import InputError, OutputError

__all__ = ["REPO_ID", "fetch", "hub_cache", "is_repo_id", "upload"]

REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
"""A Hub repo id, ``org/name``."""
LOGIN = "huggingface-cli login"


def _hub() -> ModuleType:
    return require("huggingface_hub", purpose="Hugging Face Hub repositories")


def is_repo_id(text: str) -> bool:
    return bool(REPO_ID.fullmatch(text)) and ".." not in text


def hub_cache() -> Path:
    """The Hugging Face Hub cache (``HF_HUB_CACHE``, as ``huggingface_hub`` read it)."""
    return Path(_hub().constants.HF_HUB_CACHE)


def _offline(hf: ModuleType) -> bool:
    return bool(hf.constants.HF_HUB_OFFLINE)


def _transport_errors(hf: ModuleType) -> tuple[type[BaseException], ...]:
    # The HTTP library's own base error (connection refused, DNS, timeouts) is the base
    # huggingface_hub's HTTP error shares with OSError; its name changes across versions.
    base = hf.errors.HfHubHTTPError
    return (*(b for b in base.__bases__ if b is not OSError), OSError, ValueError)


def fetch(
    repo: str,
    *,
    revision: str | None,
    what: str,
    error: type[InputError],
    hint: str,
    allow_patterns: list[str] | None = None,
) -> Path:
    """The local snapshot of dataset ``repo`` at ``revision`` (default: ``main``), downloaded
    if needed (only the files ``allow_patterns`` match, when given); the user's token,
    ``HF_HUB_OFFLINE`` and cache apply as ``huggingface_hub`` sets them. Failure is
    ``error`` naming ``what``, the repo and the revision, with ``hint``."""
    hf = _hub()
    at = f" at revision {revision}" if revision else ""
    name = f"{what} {repo}{at}"
    access = f"accept its terms on https://huggingface.co/datasets/{repo} and run `{LOGIN}`"
    errors = hf.errors
    try:
        return Path(
            hf.snapshot_download(
                repo, repo_type="dataset", revision=revision, allow_patterns=allow_patterns
            )
        )
    except errors.GatedRepoError:
        raise error(
            f"{name} is gated: its terms must be accepted before it can be downloaded",
            hint=f"{access}; {hint}",
        ) from None
    except errors.RevisionNotFoundError:
        raise error(
            f"{what} {repo} has no revision {revision!r} on the Hub",
            hint=f"check the revision on https://huggingface.co/datasets/{repo}; {hint}",
        ) from None
    except errors.RepositoryNotFoundError:
        raise error(
            f"{name} is not on the Hub, or is private or gated",
            hint=f"check the name; if it is private or gated, {access}; {hint}",
        ) from None
    except errors.LocalEntryNotFoundError:
        why = (
            "offline mode is on (HF_HUB_OFFLINE=1)"
            if _offline(hf)
            else "the Hub cannot be reached (no network?)"
        )
        raise error(
            f"{name} is not in the Hugging Face cache ({hub_cache()}) and {why}",
            hint=f"connect (unset HF_HUB_OFFLINE) and try again, and if it is gated, {access}; "
            f"{hint}",
        ) from None
    except _transport_errors(hf) as e:
        raise error(f"cannot fetch {name}: {type(e).__name__}: {e}", hint=hint) from None


def upload(folder: Path, repo: str, *, private: bool, revision: str | None, message: str) -> str:
    """Create dataset ``repo`` if needed (``private``), then push ``folder`` as one commit to
    ``revision`` (a branch, made if needed; default ``main``) replacing the files there;
    the commit id. Failure is an :class:`OutputError` (the folder is ready to push again)."""
    hf = _hub()
    api = hf.HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo, branch=revision, repo_type="dataset", exist_ok=True)
        info = api.upload_folder(
            repo_id=repo,
            folder_path=str(folder),
            repo_type="dataset",
            revision=revision,
            commit_message=message,
            delete_patterns="*",  # files of an earlier publication go: the folder is the repo
        )
    except _transport_errors(hf) as e:
        why = (
            "offline mode is on (HF_HUB_OFFLINE=1)"
            if _offline(hf)
            else f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        )
        raise OutputError(
            f"cannot push {folder} to the Hub dataset {repo}: {why}",
            hint=f"connect (unset HF_HUB_OFFLINE), run `{LOGIN}` with a write token, and "
            f"push again; {folder} is complete and can also be uploaded as it is",
        ) from None
    return str(info.oid)
