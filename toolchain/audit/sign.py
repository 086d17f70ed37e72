"""Signed manifests: an in-toto Statement v1 about the benchmark in a DSSE envelope, signed
with Ed25519 (specified in ``docs/signing.md``)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from toolchain._internal import safefs
from toolchain._internal.atomic import atomic_write
from toolchain._internal.jsonload import load_json
from toolchain.errors import (
    KeyFileError,
    ManifestError,
    OutputError,
    SignatureError,
    os_error_text,
)
from toolchain.model.hashing import Digest, canonical_json, file_digest, pretty_json
from toolchain.model.layout import SIGNATURE_NAME
from toolchain.model.manifest import (
    Manifest,
    holds_manifest,
    parse_manifest,
    read_manifest_bytes,
)

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "MAX_KEY_BYTES",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SIGNATURE_NAME",
    "STATEMENT_TYPE",
    "KeyPair",
    "SignatureCheck",
    "build_statement",
    "check_manifest_signature",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "pae",
    "sign_manifest",
    "sign_manifest_bytes",
    "verify_manifest_signature",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://benchmark-regen.github.io/predicate/manifest/v1"
SUBJECT_NAME = "benchmark"
MAX_ENVELOPE_BYTES = 1024 * 1024
"""Signature files over 1 MiB are refused before they are read (a real one is < 4 KiB
plus the fingerprint and provenance strings)."""
MAX_KEY_BYTES = 64 * 1024
"""Key files over 64 KiB are refused before they are read (a PEM Ed25519 key is < 200 B)."""
MAX_SIGNATURES = 16
_SIGNATURE_HINT = "the signature file was altered or damaged; get a fresh copy from the publisher"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the exact bytes Ed25519 signs."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def key_id(public_key: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return str(Digest.of(raw))


# -- keys ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KeyPair:
    """Where :func:`generate_key` wrote the keys, and the key id."""

    private: Path
    public: Path
    keyid: str

    def to_json(self) -> dict[str, str]:
        return {"keyid": self.keyid, "private": str(self.private), "public": str(self.public)}


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (never wider, whatever the umask); refuse to overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise OutputError(
            f"{path} already exists", hint="choose another --out; keys are never overwritten"
        ) from None
    except OSError as e:
        raise OutputError(f"cannot create {path}: {os_error_text(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        with contextlib.suppress(OSError):
            path.unlink()
        raise OutputError(f"cannot write {path}: {os_error_text(e)}") from None


def generate_key(out: str | os.PathLike[str]) -> KeyPair:
    """Write a new Ed25519 private key to ``out`` (PEM, PKCS#8, mode 0600) and ``out.pub``."""
    priv_path = Path(out)
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    if pub_path.exists():
        raise OutputError(
            f"{pub_path} already exists", hint="choose another --out; keys are never overwritten"
        )
    key = Ed25519PrivateKey.generate()
    priv_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(priv_path, priv_pem, 0o600)
    try:
        _write_new(pub_path, pub_pem, 0o644)
    except OutputError:
        priv_path.unlink()
        raise
    return KeyPair(private=priv_path, public=pub_path, keyid=key_id(key.public_key()))


def _read_small(path: Path, limit: int, what: str) -> bytes:
    try:
        return safefs.read_path(path, limit=limit)
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise KeyFileError(f"{what} {path} is a folder, not a key file") from None
    except OSError as e:
        raise KeyFileError(f"cannot read {what} {path}: {os_error_text(e)}") from None


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Load an unencrypted PEM Ed25519 private key."""
    p = Path(path)
    data = _read_small(p, MAX_KEY_BYTES, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise KeyFileError(
            f"{p} is not an unencrypted PEM private key: {e}",
            hint="make one with `benchmark-regen key generate --out KEY`",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{p} is a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Load a PEM (SubjectPublicKeyInfo) Ed25519 public key."""
    p = Path(path)
    data = _read_small(p, MAX_KEY_BYTES, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise KeyFileError(
            f"{p} is not a PEM public key: {e}",
            hint="pass the KEY.pub file written by `benchmark-regen key generate`",
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{p} is a {type(key).__name__}, not an Ed25519 public key")
    return key


# -- the statement ---------------------------------------------------------------------


def build_statement(manifest: Manifest, manifest_bytes: bytes) -> dict[str, Any]:
    """The in-toto Statement v1 signed for ``manifest`` (whose exact bytes are given)."""
    return {
        "_type": STATEMENT_TYPE,
        "predicate": {
            "fingerprint": dict(sorted(manifest.fingerprint.items())),
            "manifest": {"sha256": file_digest(manifest_bytes).hex},
            "provenance": manifest.provenance.to_json(),
            "recipe": manifest.recipe.to_json(),
            "sample_count": len(manifest.entries),
            "shard": manifest.shard,
        },
        "predicateType": PREDICATE_TYPE,
        "subject": [{"digest": {"sha256": manifest.root.hex}, "name": SUBJECT_NAME}],
    }


def _envelope_bytes(payload: bytes, signatures: list[dict[str, str]]) -> bytes:
    doc = {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": sorted(signatures, key=lambda s: (s["keyid"], s["sig"])),
    }
    return pretty_json(doc)


def _consistent(manifest_bytes: bytes) -> Manifest:
    m = parse_manifest(manifest_bytes)
    if not m.root_is_consistent():
        raise ManifestError(
            "the manifest's root hash does not match its entries; refusing to sign it",
            hint="sign only a manifest written by `generate` and checked by `verify`",
        )
    return m


def sign_manifest_bytes(manifest_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    """The ``manifest.sig`` bytes for ``manifest_bytes`` (deterministic)."""
    m = _consistent(manifest_bytes)
    payload = canonical_json(build_statement(m, manifest_bytes))
    sig = key.sign(pae(PAYLOAD_TYPE, payload))
    entry = {"keyid": key_id(key.public_key()), "sig": base64.b64encode(sig).decode("ascii")}
    return _envelope_bytes(payload, [entry])


def sign_manifest(
    manifest: str | os.PathLike[str],
    key: str | os.PathLike[str] | Ed25519PrivateKey,
    *,
    out: str | os.PathLike[str] | None = None,
) -> Path:
    """Sign a manifest file; write the envelope to ``out`` (default: ``manifest.sig`` beside).

    ``out`` may be a new file or a signature of ours (replaced); anything else there (the
    manifest, a user's file) is an :class:`OutputError`, and nothing is written."""
    mpath = Path(manifest)
    private = key if isinstance(key, Ed25519PrivateKey) else load_private_key(key)
    envelope = sign_manifest_bytes(read_manifest_bytes(mpath), private)
    target = Path(out) if out is not None else mpath.with_name(SIGNATURE_NAME)
    _refuse_overwriting(target)
    try:
        atomic_write(target, envelope, durable=True)
    except OSError as e:
        raise OutputError(f"cannot write {target}: {os_error_text(e)}") from None
    return target


def _refuse_overwriting(target: Path) -> None:
    """``sign --out`` writes a signature: over nothing, or over a signature of ours only
    (links followed: what they reach is what would be lost to the user)."""
    if not os.path.lexists(target):
        return
    if holds_manifest(target):
        raise OutputError(
            f"--out {target} is a manifest; refusing to overwrite it with a signature",
            hint=f"write the signature to its own file, e.g. {SIGNATURE_NAME} or FILE.bdiff.sig",
        )
    why = _not_a_signature(target)
    if why is not None:
        raise OutputError(
            f"--out {target} exists and is not a signature ({why}); refusing to overwrite it",
            hint="give --out a new file, or a signature to replace; move the file away first",
        )


def _not_a_signature(path: Path) -> str | None:
    """Why ``path`` is not a signature this tool wrote (``None``: it is one): a DSSE envelope
    of an in-toto statement with our predicate type."""
    try:
        envelope = safefs.read_path(path, limit=MAX_ENVELOPE_BYTES)
    except OSError as e:
        return os_error_text(e)
    try:
        _, payload, _ = _parse_envelope(envelope)
        statement = load_json(payload, what="its statement", error=SignatureError)
    except SignatureError as e:
        return e.message
    if not isinstance(statement, dict) or statement.get("predicateType") != PREDICATE_TYPE:
        return "its statement is not about a benchmark-regen manifest"
    return None


# -- verification ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SignatureCheck:
    """A signature that verified: who signed, and what."""

    keyid: str
    root: str
    """``sha256:<hex>``: the benchmark root hash the signer vouched for."""
    statement: dict[str, Any]

    def to_json(self) -> dict[str, object]:
        return {"keyid": self.keyid, "ok": True, "root": self.root}


def _b64(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise SignatureError(f"signature file: {where} must be a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SignatureError(f"signature file: {where} is not valid base64") from None


def _parse_envelope(data: bytes) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    if len(data) > MAX_ENVELOPE_BYTES:
        raise SignatureError(
            f"signature file is {len(data)} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit"
        )
    doc = load_json(data, what="signature file", error=SignatureError, hint=_SIGNATURE_HINT)
    if not isinstance(doc, dict):
        raise SignatureError("signature file: top level must be a JSON object (a DSSE envelope)")
    extra = sorted(set(doc) - {"payload", "payloadType", "signatures"})
    if extra:
        raise SignatureError(f"signature file: unknown envelope field {extra[0]!r}")
    ptype = doc.get("payloadType")
    if ptype != PAYLOAD_TYPE:
        raise SignatureError(f"signature file: payloadType is {ptype!r}, expected {PAYLOAD_TYPE!r}")
    payload = _b64(doc.get("payload"), "payload")
    sigs = doc.get("signatures")
    if not isinstance(sigs, list) or not 1 <= len(sigs) <= MAX_SIGNATURES:
        raise SignatureError(
            f"signature file: 'signatures' must be a list of 1 to {MAX_SIGNATURES} signatures"
        )
    parsed: list[tuple[str, bytes]] = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict) or set(s) != {"keyid", "sig"}:
            raise SignatureError(f"signature file: signatures[{i}] must have exactly keyid, sig")
        if not isinstance(s["keyid"], str):
            raise SignatureError(f"signature file: signatures[{i}].keyid must be a string")
        parsed.append((s["keyid"], _b64(s["sig"], f"signatures[{i}].sig")))
    return ptype, payload, parsed


def _mismatch(field: str, signed: object, actual: object) -> SignatureError:
    return SignatureError(
        f"signed statement field {field} does not match the manifest "
        f"(signed {signed!r}, manifest has {actual!r})",
        hint="the manifest or the signature was changed after signing",
    )


def _check_statement(payload: bytes, manifest_bytes: bytes) -> dict[str, Any]:
    stmt = load_json(payload, what="signed payload", error=SignatureError, hint=_SIGNATURE_HINT)
    if not isinstance(stmt, dict):
        raise SignatureError("signed payload is not a JSON object (an in-toto Statement)")
    m = parse_manifest(manifest_bytes)
    expected = build_statement(m, manifest_bytes)
    # Field by field, so the message names what differs; then the whole (unknown fields).
    for key in ("_type", "predicateType", "subject"):
        if stmt.get(key) != expected[key]:
            raise _mismatch(key, stmt.get(key), expected[key])
    pred = stmt.get("predicate")
    if not isinstance(pred, dict):
        raise SignatureError("signed statement: predicate must be an object")
    for key in sorted(expected["predicate"]):
        if key not in pred:
            raise SignatureError(f"signed statement: predicate.{key} is missing")
        if pred[key] != expected["predicate"][key]:
            name = "predicate.manifest.sha256 (the manifest bytes)" if key == "manifest" else ""
            raise _mismatch(name or f"predicate.{key}", pred[key], expected["predicate"][key])
    if stmt != expected:
        raise SignatureError("signed statement has fields this version does not know")
    if not m.root_is_consistent():
        raise SignatureError("the manifest's root hash does not match its entries (tampered)")
    return stmt


def verify_manifest_signature(
    manifest_bytes: bytes, envelope: bytes, public_key: Ed25519PublicKey
) -> SignatureCheck:
    """Check that ``envelope`` is a valid signature by ``public_key`` over ``manifest_bytes``.

    Raises :class:`SignatureError` naming what is wrong; a malformed manifest
    raises :class:`~toolchain.errors.ManifestError`.
    """
    ptype, payload, sigs = _parse_envelope(envelope)
    want = key_id(public_key)
    candidates = [sig for kid, sig in sigs if kid == want]
    if not candidates:
        got = ", ".join(sorted({kid for kid, _ in sigs}))
        raise SignatureError(
            f"the manifest is signed by another key (keyid {got}), not by {want}",
            hint="check that --pubkey is the publisher's key",
        )
    message = pae(ptype, payload)
    for sig in candidates:
        try:
            public_key.verify(sig, message)
            break
        except InvalidSignature:
            continue
    else:
        raise SignatureError(
            f"the signature by {want} does not verify: the signed statement was changed",
            hint="the signature file was altered or damaged; get a fresh copy from the publisher",
        )
    stmt = _check_statement(payload, manifest_bytes)
    return SignatureCheck(
        keyid=want, root=f"sha256:{stmt['subject'][0]['digest']['sha256']}", statement=stmt
    )


def check_manifest_signature(
    manifest_bytes: bytes,
    signature: str | os.PathLike[str],
    pubkey: str | os.PathLike[str] | Ed25519PublicKey,
) -> SignatureCheck:
    """Read the signature file and verify it over ``manifest_bytes`` with ``pubkey``."""
    key = pubkey if isinstance(pubkey, Ed25519PublicKey) else load_public_key(pubkey)
    p = Path(signature)
    try:
        envelope = safefs.read_path(p, limit=MAX_ENVELOPE_BYTES)
    except FileNotFoundError:
        raise SignatureError(
            f"no signature at {p}",
            hint="a public key was given, so the manifest must be signed "
            "(`benchmark-regen sign MANIFEST --key KEY`)",
        ) from None
    except OSError as e:
        raise SignatureError(f"cannot read signature {p}: {os_error_text(e)}") from None
    return verify_manifest_signature(manifest_bytes, envelope, key)
