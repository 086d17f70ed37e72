"""atheris harness: ``parse_manifest`` and the signature check on arbitrary bytes (seeded
with a real run's manifest and its signature).

Run: ``nox -s fuzz`` or ``python fuzz/atheris_manifest.py -runs=200000 [corpus_dir]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
with atheris.instrument_imports(include=["toolchain"]):
    from toolchain.audit.sign import sign_manifest_bytes, verify_manifest_signature
    from toolchain.errors import ManifestError, SignatureError
    from toolchain.model.manifest import parse_manifest

from _common import main, refused, tiny_run
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))
_, _BENCH = tiny_run(Path(tempfile.mkdtemp(prefix="fuzz-seed-")))
SEED = (_BENCH / "manifest.json").read_bytes()
SEED_SIG = sign_manifest_bytes(SEED, KEY)
verify_manifest_signature(SEED, SEED_SIG, KEY.public_key())  # the seeds are accepted


def test_one_input(data: bytes) -> None:
    with refused(ManifestError):
        parse_manifest(data)
    # The same bytes as a signature envelope over the seed manifest, and as a manifest
    # under the seed's signature: SignatureError / ManifestError only.
    with refused(SignatureError, ManifestError):
        verify_manifest_signature(SEED, data, KEY.public_key())
    with refused(SignatureError, ManifestError):
        verify_manifest_signature(data, SEED_SIG, KEY.public_key())


if __name__ == "__main__":
    main(test_one_input, seeds=[SEED, SEED_SIG])
