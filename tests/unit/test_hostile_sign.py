"""Hostile signature envelopes and key files: SignatureError / KeyFileError only."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from tests.cli import diff_apply_args, no_traceback, run_cli
from tests.diff_cases import build, tiny_original
from tests.hostile import HOSTILE, json_values, mutations, no_hang, typed
from tests.unit.test_hostile_manifest import GOOD
from toolchain.audit.sign import (
    PAYLOAD_TYPE,
    generate_key,
    key_id,
    load_public_key,
    pae,
    sign_manifest,
    sign_manifest_bytes,
    verify_manifest_signature,
)
from toolchain.errors import ExitCode, KeyFileError, ManifestError, SignatureError

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


# -- issue #23: a FIFO for a signature or key file, JSON nested too deep ---------------------

HANG = 30
"""Seconds after which a command counts as hung (each of these takes well under one)."""
DEEP = b"[" * 5000 + b"]" * 5000


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """An original, its benchmark and .bdiff, each signed (``manifest.sig``,
    ``x.bdiff.sig``), and the publisher's key pair (``k``, ``k.pub``)."""
    root = tmp_path_factory.mktemp("signed")
    original = tiny_original(root / "original")
    bench, diff = build(original, "identity", root / "work")
    keys = generate_key(root / "k")
    sign_manifest(bench / "manifest.json", keys.private)
    sign_manifest(bench / "manifest.json", keys.private, out=diff.with_name("x.bdiff.sig"))
    return original, bench, diff, keys.private


def _run(*args: str | Path) -> Result:
    with no_hang(HANG):
        return no_traceback(run_cli(*args, pinned=True))


@pytest.mark.parametrize("kind", ["fifo", "deep"])
def test_a_bad_bdiff_sig_stops_apply_before_any_original_is_read(
    signed: tuple[Path, Path, Path, Path], tmp_path: Path, kind: str
) -> None:
    original, _, diff, key = signed
    box = Path(shutil.copy(diff, tmp_path / "x.bdiff"))
    sig = tmp_path / "x.bdiff.sig"
    if kind == "fifo":
        os.mkfifo(sig)
    else:
        sig.write_bytes(DEEP)
    out = tmp_path / "out"
    r = _run(*diff_apply_args(original, box, out, pubkey=key.with_name("k.pub")))
    assert r.exit_code == ExitCode.BAD_INPUT, r.output
    words = "x.bdiff.sig: is not a regular file" if kind == "fifo" else "nested too deep"
    assert words in r.output and not out.exists()


@pytest.mark.parametrize("kind", ["fifo", "deep"])
def test_a_bad_manifest_sig_fails_verify(
    signed: tuple[Path, Path, Path, Path], tmp_path: Path, kind: str
) -> None:
    """``verify --pubkey`` reports a signature it cannot check as a failed check (exit 1,
    docs/signing.md), saying why."""
    bench = Path(shutil.copytree(signed[1], tmp_path / "bench"))
    (bench / "manifest.sig").unlink()
    if kind == "fifo":
        os.mkfifo(bench / "manifest.sig")
    else:
        (bench / "manifest.sig").write_bytes(DEEP)
    r = _run("verify", bench, "--pubkey", signed[3].with_name("k.pub"))
    assert r.exit_code == ExitCode.CHECK_FAILED, r.output
    words = "manifest.sig: is not a regular file" if kind == "fifo" else "nested too deep"
    assert f"signature: {'cannot read signature' if kind == 'fifo' else 'signature file'}" in (
        r.output
    )
    assert words in r.output


def test_a_fifo_as_a_key_never_hangs(signed: tuple[Path, Path, Path, Path], tmp_path: Path) -> None:
    fifo = tmp_path / "key"
    os.mkfifo(fifo)
    for args in (["sign", signed[1] / "manifest.json", "--key", fifo, "--out", tmp_path / "s"],
                 ["verify", signed[1], "--pubkey", fifo]):  # fmt: skip
        r = _run(*args)
        assert r.exit_code == ExitCode.BAD_INPUT, r.output
        assert "is not a regular file" in r.output
    assert not (tmp_path / "s").exists()


def test_a_statement_nested_too_deep_is_a_signature_error() -> None:
    """Signed by the key the check trusts, so only the statement's JSON is wrong."""
    sig = KEY.sign(pae(PAYLOAD_TYPE, DEEP))
    envelope = json.dumps({"payload": base64.b64encode(DEEP).decode(), "payloadType": PAYLOAD_TYPE,
                           "signatures": [{"keyid": key_id(KEY.public_key()),
                                           "sig": base64.b64encode(sig).decode()}]})  # fmt: skip
    with pytest.raises(SignatureError, match=r"signed payload: not valid JSON \(nested too deep"):
        verify_manifest_signature(GOOD, envelope.encode(), KEY.public_key())
    with pytest.raises(SignatureError, match=r"signature file: not valid JSON \(nested too deep"):
        verify_manifest_signature(GOOD, DEEP, KEY.public_key())
