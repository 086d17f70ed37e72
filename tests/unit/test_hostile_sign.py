"""Hostile signature envelopes and key files: SignatureError / KeyFileError only."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import HOSTILE, json_values, mutations, typed
from tests.unit.test_hostile_manifest import GOOD
from toolchain.audit.sign import load_public_key, sign_manifest_bytes, verify_manifest_signature
from toolchain.errors import KeyFileError, ManifestError, SignatureError

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ENVELOPE = sign_manifest_bytes(GOOD, KEY)
ENV_DOC = json.loads(ENVELOPE)


def _verify(envelope: bytes, manifest: bytes = GOOD) -> object:
    return typed(
        lambda: verify_manifest_signature(manifest, envelope, KEY.public_key()),
        (SignatureError, ManifestError),
    )


def test_seed_envelope_verifies() -> None:
    assert verify_manifest_signature(GOOD, ENVELOPE, KEY.public_key()).keyid.startswith("sha256:")


@HOSTILE
@given(mutations(ENVELOPE))
def test_mutated_envelope_bytes(data: bytes) -> None:
    result = _verify(data)
    if not isinstance(result, SignatureError | ManifestError):
        # Accepted: then it must carry the very same signed payload (JSON re-spelling only).
        assert json.loads(data)["payload"] == ENV_DOC["payload"]


@HOSTILE
@given(mutations(base64.b64decode(ENV_DOC["payload"])))
def test_mutated_payload_without_resigning(payload: bytes) -> None:
    doc = dict(ENV_DOC, payload=base64.b64encode(payload).decode())
    result = _verify(json.dumps(doc).encode())
    if payload != base64.b64decode(ENV_DOC["payload"]):
        assert isinstance(result, SignatureError)


@HOSTILE
@given(st.sampled_from(["payload", "payloadType", "signatures", "extra"]), json_values)
def test_envelope_fields_replaced_by_any_json(field: str, value: object) -> None:
    doc = dict(ENV_DOC)
    doc[field] = value
    assert isinstance(_verify(json.dumps(doc).encode()), SignatureError)


@HOSTILE
@given(mutations(GOOD))
def test_mutated_manifest_under_a_good_signature(manifest: bytes) -> None:
    result = _verify(ENVELOPE, manifest)
    if manifest != GOOD:
        assert isinstance(result, SignatureError | ManifestError)


@HOSTILE
@given(
    st.binary(max_size=300)
    | mutations(
        b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"
        + b"A" * 44
        + b"\n-----END PUBLIC KEY-----\n"
    )
)
def test_hostile_public_key_files(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    p = tmp_path_factory.mktemp("k") / "k.pub"
    p.write_bytes(data)
    typed(lambda: load_public_key(p), KeyFileError)
