"""atheris harness: ``parse_manifest`` on arbitrary bytes (seeded with a real manifest).

Run: ``nox -s fuzz`` or ``python fuzz/atheris_manifest.py -runs=200000 [corpus_dir]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
with atheris.instrument_imports(include=["toolchain"]):
    from toolchain.audit.sign import verify_manifest_signature
    from toolchain.errors import Error, ManifestError, SignatureError
    from toolchain.model.hashing import Digest
    from toolchain.model.manifest import (
        Manifest,
        ManifestEntry,
        Provenance,
        RecipeIdentity,
        dump_manifest,
        parse_manifest,
    )

import contextlib

from _common import main
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _seed() -> bytes:
    d = Digest.of(b"x")
    entries = [
        ManifestEntry(id=f"c/{i}.jpg", path=f"c/{i}.png", pixels=d, file=d, source_pixels=d)
        for i in range(3)
    ]
    m = Manifest.build(
        recipe=RecipeIdentity(name="r", version="1", seed=1, params={"k": 2}, source=d),
        entries=entries,
        fingerprint={"numpy": "2"},
        provenance=Provenance(original_name="o", samples_used=3, samples_in_original=3),
    )
    return dump_manifest(m)


SEED = _seed()
KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(ManifestError):
        parse_manifest(data)
    # The same bytes as a signature envelope over the seed manifest, and as a manifest
    # under a signature: SignatureError / ManifestError only.
    try:
        verify_manifest_signature(SEED, data, KEY.public_key())
    except (SignatureError, ManifestError):
        pass
    except Error as e:  # another typed error would be a bug in what is raised
        raise AssertionError(f"unexpected {type(e).__name__}: {e}") from None


if __name__ == "__main__":
    main(test_one_input, seeds=[SEED])
