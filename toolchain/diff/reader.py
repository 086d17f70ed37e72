"""Open a diff in either form, a ``.bdiff`` file or a diff dataset folder, as one reader, and
the checks before it is used: the publisher's signature, the recorded original."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain.diff.format import DiffReader
from toolchain.errors import InputError
from toolchain.model.original import OriginalRef

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from toolchain.audit.sign import SignatureCheck

# The diff dataset's reader and the signature check are imported where they are used: a
# .bdiff applied without --pubkey needs neither.

__all__ = ["check_container_signature", "check_original", "open_diff"]


def open_diff(path: str | os.PathLike[str]) -> DiffReader:
    """Open and check a diff's header, manifest and index (not yet the payloads).

    A ``.bdiff`` file, or a folder holding the diff as a parquet dataset (``diff create
    --format parquet``): the same reader interface and checks either way. Close it when
    done (a context manager).
    """
    if Path(path).is_dir():
        from toolchain.diff.dataset import open_diff_dataset

        return open_diff_dataset(path)
    return DiffReader(path)


def check_container_signature(
    container: str | os.PathLike[str],
    pubkey: str | os.PathLike[str] | Ed25519PublicKey,
    *,
    signature: str | os.PathLike[str] | None = None,
) -> SignatureCheck:
    """Verify the signature over the manifest a ``.bdiff`` carries, before touching any original.

    The signature is the publisher's ``manifest.sig``, shipped beside the
    container as ``FILE.bdiff.sig`` (or given as ``signature``). Only the
    container's header, carried manifest and index are read (and checked).
    """
    from toolchain.audit.sign import check_manifest_signature

    path = Path(container)
    sig = Path(signature) if signature is not None else path.with_name(path.name + ".sig")
    with open_diff(path) as reader:
        return check_manifest_signature(reader.manifest_bytes, sig, pubkey)


def check_original(recorded: OriginalRef | None, found: OriginalRef | None) -> None:
    """Refuse an original whose split, config or repo is not the recorded one (each where
    both are known): an :class:`~toolchain.errors.InputError` saying what to pass."""
    if recorded is None or found is None:
        return
    differ = recorded.differs_from(found)
    if not differ:
        return
    yours = " and ".join(
        f"{f} {getattr(found, f)!r} (not {getattr(recorded, f)!r})" for f in differ
    )
    todo = [f"--{f} {getattr(recorded, f)}" for f in ("split", "config") if f in differ]
    hint = f"pass {' '.join(todo)}" if todo else ""
    if "repo" in differ:
        at = f" at commit {recorded.revision}" if recorded.revision else ""
        hint += ("; and " if hint else "") + f"use a copy of {recorded.repo}{at}"
    raise InputError(
        f"this diff was made from {recorded.describe()}; the original you gave is {yours}",
        hint=hint,
    )
