"""Finding the user's originals for ``diff check`` and ``diff apply``: by sample id, then
by content fingerprint; a candidate counts only when its key opens the sealed payload."""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from toolchain.codec.decode import decode
from toolchain.diff.crypto import derive_key, fingerprint, open_payload, pixels_key_material
from toolchain.diff.format import KeyOn, PayloadKind
from toolchain.errors import DecodeError
from toolchain.source import Source

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["Found", "Unsealed", "key_material", "scan_by_content", "unseal"]


class Found(enum.StrEnum):
    BY_ID = "found-by-id"
    BY_CONTENT = "found-by-content"
    MISSING = "missing"
    DIFFERENT = "present-but-different"
    RESUMED = "finished-before-resume"
    """``diff apply --resume``: made by the interrupted run, its file checked against the
    manifest; its original was not read again."""


def key_material(data: bytes, key_on: KeyOn) -> tuple[bytes, npt.NDArray[np.uint8] | None]:
    """``(ikm, decoded pixels or None)``; decodes only when the key needs pixels."""
    if key_on is KeyOn.FILE:
        return data, None
    pixels = decode(data)
    return pixels_key_material(pixels), pixels


@dataclass(frozen=True, kw_only=True, slots=True)
class Unsealed:
    plaintext: bytes | None
    """``None`` when the candidate's key does not open the payload."""
    pixels: npt.NDArray[np.uint8] | None
    """The candidate's decoded pixels, when they were needed for the key."""


def unseal(
    data: bytes, *, key_on: KeyOn, salt: bytes, sample_id: str, kind: PayloadKind, sealed: bytes
) -> Unsealed:
    """Try to open one sealed payload with the key of candidate original ``data``."""
    try:
        ikm, pixels = key_material(data, key_on)
    except DecodeError:
        return Unsealed(plaintext=None, pixels=None)
    key = derive_key(ikm, salt=salt, key_on=key_on, sample_id=sample_id)
    return Unsealed(plaintext=open_payload(key, kind, sealed), pixels=pixels)


def scan_by_content(
    source: Source, ids: Iterable[str], key_on: KeyOn, salt: bytes, wanted: Collection[bytes]
) -> Mapping[bytes, str]:
    """Fingerprint ``ids`` in source order; map each wanted fingerprint to the first id with it."""
    found: dict[bytes, str] = {}
    if not wanted:
        return found
    for sample in source.iter_samples(ids):
        try:
            ikm, _ = key_material(sample.data, key_on)
        except DecodeError:
            continue  # undecodable files cannot be anyone's original
        fp = fingerprint(ikm, key_on=key_on, salt=salt)
        if fp in wanted and fp not in found:
            found[fp] = sample.id
            if len(found) == len(wanted):
                break
    return found
