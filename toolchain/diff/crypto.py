"""Key material, HKDF keys, locating fingerprints and AES-256-GCM-SIV sealing of diff
payloads. Constructions, and why a fixed nonce is safe: ``docs/diff-format.md``, "Keys"."""

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
