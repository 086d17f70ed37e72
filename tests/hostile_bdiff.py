"""A hostile ``.bdiff`` builder: containers that pass every integrity check we have.

:func:`forge` writes a container with *correct* digests, a *canonical* manifest and a
*consistent* root, around entries the attacker chooses (any ids and output paths,
any sealed bytes), with our own writer. So a refusal of such a file proves that the
reader checks what the entries *say* (their paths), not just that the bytes are intact.

:func:`sparse_header` writes the first bytes of a container whose header declares
huge sizes, padded to the declared length with a hole (a sparse file): a few KiB on
disk, any apparent size.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from pathlib import Path

from toolchain.diff.format import (
    AEAD_AES_256_GCM_SIV,
    CODEC_ZSTD,
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    KeyOn,
    PayloadKind,
    SealedEntry,
    write_diff,
)
from toolchain.model.hashing import Digest
from toolchain.model.manifest import Manifest, ManifestEntry, dump_manifest

__all__ = ["forge", "sparse_header"]


def forge(
    path: Path,
    template: Manifest,
    pairs: Sequence[tuple[str, str]],
    *,
    key_on: KeyOn = KeyOn.FILE,
) -> bytes:
    """Write a container carrying ``template``'s recipe and fingerprint with entries
    ``(sample id, output path)``; return its manifest bytes."""
    entries = [
        ManifestEntry(
            id=sid,
            path=out,
            pixels=Digest.of(b"pixels " + sid.encode()),
            file=Digest.of(b"file " + sid.encode()),
            source=Digest.of(b"source " + sid.encode()),
            columns={},
        )
        for sid, out in pairs
    ]
    manifest = Manifest.build(
        recipe=template.recipe,
        entries=entries,
        fingerprint=template.fingerprint,
        encoder=template.encoder,
        provenance=template.provenance,
    )
    assert manifest.root_is_consistent()
    data = dump_manifest(manifest)
    sealed = [
        SealedEntry(
            index=i,
            kind=PayloadKind.DELTA,
            fingerprint=hashlib.sha256(b"fp" + e.id.encode()).digest(),
            sealed=hashlib.sha256(e.id.encode()).digest() * 2,
        )
        for i, e in enumerate(manifest.entries)
    ]
    write_diff(path, key_on=key_on, manifest_bytes=data, entries=sealed, entry_count=len(sealed))
    return data


def sparse_header(
    path: Path, *, manifest_length: int, entry_count: int, prefix: bytes = b""
) -> int:
    """A header declaring ``manifest_length`` and ``entry_count``, then ``prefix`` (the
    manifest's first bytes), then a hole up to the declared end. Returns the apparent size."""
    size = HEADER_SIZE + manifest_length + 88 * entry_count + 17 * entry_count
    head = struct.pack(
        "<8sHBBB3xIIQQ32s",
        MAGIC,
        FORMAT_VERSION,
        0,
        AEAD_AES_256_GCM_SIV,
        CODEC_ZSTD,
        entry_count,
        0,
        manifest_length,
        size,
        bytes(32),
    )
    with open(path, "wb") as f:
        f.write(head + bytes(32) + prefix)
        f.truncate(size)
    return size
