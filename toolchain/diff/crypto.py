"""Keys, fingerprints and sealing of ``.bdiff`` payloads.

* **Key material** (``ikm``): the original sample's file bytes (``key_on=file``),
  or ``"<dtype> <H>x<W>x<C>\\n" || C-order pixel bytes`` of its canonical decode
  (``key_on=pixels``). Only someone holding the original has it.
* **Key**: ``HKDF-SHA256(ikm, salt=benchmark id, info=KEY_DOMAIN || key_on || 0x00 || id)``,
  32 bytes, so every (benchmark, sample, original) has its own key.
* **Fingerprint** (stored, to find a renamed original by content):
  ``SHA-256(LOCATE_DOMAIN || benchmark id || key_on || 0x00 || ikm)``. A different
  primitive and a different domain string from the key: knowing it gives no key.
  Salted with the benchmark id, so two diffs made from the same originals cannot
  be linked to each other through their fingerprints.
* **AEAD**: AES-256-GCM-SIV with a fixed all-zero nonce and
  ``aad = AAD_DOMAIN || kind``. Each key seals one plaintext only, so a fixed
  nonce never repeats under a key with a different message; and GCM-SIV is
  nonce-misuse resistant anyway (should a future zstd produce other bytes for
  the same sample, a repeated nonce would reveal only whether two plaintexts
  are equal). A fixed nonce is what makes ``diff create`` deterministic.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from toolchain.diff.format import KeyOn, PayloadKind
from toolchain.model.hashing import pixel_header

__all__ = [
    "AAD_DOMAIN",
    "KEY_DOMAIN",
    "LOCATE_DOMAIN",
    "NONCE",
    "derive_key",
    "fingerprint",
    "open_payload",
    "pixels_key_material",
    "seal_payload",
]

KEY_DOMAIN = b"benchmark-regen/diff/key/v1\x00"
LOCATE_DOMAIN = b"benchmark-regen/diff/locate/v2\x00"
AAD_DOMAIN = b"benchmark-regen/diff/aad/v1\x00"
NONCE = bytes(12)


def pixels_key_material(pixels: object) -> bytes:
    """The ``key_on=pixels`` key material of a canonical uint8 (H, W, C) array."""
    import numpy as np

    assert isinstance(pixels, np.ndarray)
    return (
        pixel_header(pixels.dtype.name, tuple(pixels.shape))
        + np.ascontiguousarray(pixels).tobytes()
    )


def derive_key(ikm: bytes, *, salt: bytes, key_on: KeyOn, sample_id: str) -> bytes:
    info = KEY_DOMAIN + key_on.value.encode("ascii") + b"\x00" + sample_id.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def fingerprint(ikm: bytes, *, key_on: KeyOn, salt: bytes) -> bytes:
    """The locating fingerprint of key material ``ikm`` in the benchmark ``salt`` identifies."""
    h = hashlib.sha256(LOCATE_DOMAIN + salt + key_on.value.encode("ascii") + b"\x00")
    h.update(ikm)
    return h.digest()


def _aad(kind: PayloadKind) -> bytes:
    return AAD_DOMAIN + bytes([int(kind)])


def seal_payload(key: bytes, kind: PayloadKind, plaintext: bytes) -> bytes:
    return AESGCMSIV(key).encrypt(NONCE, plaintext, _aad(kind))


def open_payload(key: bytes, kind: PayloadKind, sealed: bytes) -> bytes | None:
    """The plaintext, or ``None`` when the key is wrong (a different original)."""
    try:
        return AESGCMSIV(key).decrypt(NONCE, sealed, _aad(kind))
    except InvalidTag:
        return None
