"""Open a diff in either form, a ``.bdiff`` file or a diff dataset folder, as one reader."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from toolchain.audit.sign import SignatureCheck, check_manifest_signature
from toolchain.diff.dataset import open_diff_dataset
from toolchain.diff.format import DiffReader

__all__ = ["check_container_signature", "open_diff"]


def open_diff(path: str | os.PathLike[str]) -> DiffReader:
    """Open and check a diff's header, manifest and index (not yet the payloads).

    A ``.bdiff`` file, or a folder holding the diff as a parquet dataset (``diff create
    --format parquet``): the same reader interface and checks either way. Close it when
    done (a context manager).
    """
    if Path(path).is_dir():
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
    path = Path(container)
    sig = Path(signature) if signature is not None else path.with_name(path.name + ".sig")
    with open_diff(path) as reader:
        return check_manifest_signature(reader.manifest_bytes, sig, pubkey)
