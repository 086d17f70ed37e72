"""Signed manifests: determinism, the statement layout, and every way to tamper."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import make_image
from toolchain.audit.sign import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    check_manifest_signature,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    pae,
    sign_manifest,
    sign_manifest_bytes,
    verify_manifest_signature,
)
from toolchain.audit.verify import verify_benchmark
from toolchain.errors import (
    ExitCode,
    KeyFileError,
    ManifestError,
    OutputError,
    SignatureError,
)
from toolchain.model.manifest import MANIFEST_NAME
from toolchain.run.generate import generate_benchmark


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    orig = tmp_path_factory.mktemp("orig")
    for i in range(3):
        make_image(orig / "c" / f"{i}.png", seed=i)
    out = tmp_path_factory.mktemp("bench") / "b"
    generate_benchmark(orig, "identity", out)
    return out


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture(scope="module")
def manifest_bytes(bench: Path) -> bytes:
    return (bench / MANIFEST_NAME).read_bytes()


@pytest.fixture(scope="module")
def envelope(manifest_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    return sign_manifest_bytes(manifest_bytes, key)


def _statement(envelope: bytes) -> dict[str, Any]:
    doc = json.loads(envelope)
    return json.loads(base64.b64decode(doc["payload"]))  # type: ignore[no-any-return]


def _resign(statement: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """A correctly signed envelope over an arbitrary statement (a malicious signer's view)."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    sig = key.sign(pae(PAYLOAD_TYPE, payload))
    return json.dumps(
        {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [
                {"keyid": key_id(key.public_key()), "sig": base64.b64encode(sig).decode()}
            ],
        }
    ).encode()


# -- happy path ------------------------------------------------------------------------


def test_signing_is_deterministic_and_verifies(
    manifest_bytes: bytes, key: Ed25519PrivateKey, envelope: bytes
) -> None:
    assert sign_manifest_bytes(manifest_bytes, key) == envelope
    check = verify_manifest_signature(manifest_bytes, envelope, key.public_key())
    assert check.keyid == key_id(key.public_key())
    assert check.keyid.startswith("sha256:")


def test_statement_is_an_in_toto_statement_about_the_root(
    bench: Path, manifest_bytes: bytes, envelope: bytes
) -> None:
    doc = json.loads(envelope)
    assert doc["payloadType"] == PAYLOAD_TYPE
    stmt = _statement(envelope)
    manifest = json.loads(manifest_bytes)
    assert stmt["_type"] == STATEMENT_TYPE
    assert stmt["predicateType"] == PREDICATE_TYPE
    assert stmt["subject"] == [
        {"name": "benchmark", "digest": {"sha256": manifest["root"].removeprefix("sha256:")}}
    ]
    pred = stmt["predicate"]
    assert pred["manifest"] == {"sha256": hashlib.sha256(manifest_bytes).hexdigest()}
    assert pred["recipe"] == manifest["recipe"]
    assert pred["fingerprint"] == manifest["fingerprint"]
    assert pred["provenance"] == manifest["provenance"]
    assert pred["sample_count"] == 3
    assert pred["shard"] is None


def test_auditor_recipe_with_cryptography_alone(
    manifest_bytes: bytes, envelope: bytes, key: Ed25519PrivateKey
) -> None:
    """The check in docs/signing.md, written without the package."""
    env = json.loads(envelope)
    payload = base64.b64decode(env["payload"])
    t = env["payloadType"].encode()
    message = b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
    key.public_key().verify(base64.b64decode(env["signatures"][0]["sig"]), message)
    stmt = json.loads(payload)
    assert stmt["predicate"]["manifest"]["sha256"] == hashlib.sha256(manifest_bytes).hexdigest()


def test_sign_manifest_writes_beside_and_verify_benchmark_accepts(
    tmp_path: Path, bench: Path
) -> None:
    pair = generate_key(tmp_path / "k")
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    for p in bench.rglob("*"):
        if p.is_file():
            (copy_dir / p.relative_to(bench)).parent.mkdir(parents=True, exist_ok=True)
            (copy_dir / p.relative_to(bench)).write_bytes(p.read_bytes())
    target = sign_manifest(copy_dir / MANIFEST_NAME, pair.private)
    assert target == copy_dir / "manifest.sig"
    report = verify_benchmark(copy_dir, pubkey=pair.public)
    assert report.ok and report.signature is not None
    assert report.to_json()["signature"] == {
        "keyid": pair.keyid,
        "ok": True,
        "root": str(report.manifest.root),
    }
    other = generate_key(tmp_path / "other")
    bad = verify_benchmark(copy_dir, pubkey=other.public)
    assert not bad.ok
    assert bad.signature_problem is not None and "another key" in bad.signature_problem
    (copy_dir / "manifest.sig").unlink()
    missing = verify_benchmark(copy_dir, pubkey=pair.public)
    assert not missing.ok
    assert missing.signature_problem is not None and "no signature" in missing.signature_problem


# -- keys ------------------------------------------------------------------------------


def test_generate_key_modes_and_no_overwrite(tmp_path: Path) -> None:
    pair = generate_key(tmp_path / "k")
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    assert pair.public == tmp_path / "k.pub"
    assert key_id(load_private_key(pair.private).public_key()) == pair.keyid
    assert key_id(load_public_key(pair.public)) == pair.keyid
    with pytest.raises(OutputError, match="already exists") as e:
        generate_key(tmp_path / "k")
    assert e.value.exit_code == ExitCode.ENVIRONMENT


@pytest.mark.parametrize(
    ("content", "loader", "words"),
    [
        (None, load_public_key, "does not exist"),
        (b"", load_public_key, "not a PEM public key"),
        (
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            load_public_key,
            "not a PEM public key",
        ),
        (b"garbage", load_private_key, "not an unencrypted PEM private key"),
        (b"x" * (70 * 1024), load_private_key, "over the"),
    ],
)
def test_bad_key_files(
    tmp_path: Path, content: bytes | None, loader: Callable[[Path], object], words: str
) -> None:
    p = tmp_path / "key"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(KeyFileError, match=words) as e:
        loader(p)
    assert e.value.exit_code == ExitCode.BAD_INPUT


def test_rsa_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    k = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec.pub").write_bytes(
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(KeyFileError, match="not an Ed25519 public key"):
        load_public_key(tmp_path / "ec.pub")


def test_refuses_to_sign_an_inconsistent_manifest(
    manifest_bytes: bytes, key: Ed25519PrivateKey
) -> None:
    doc = json.loads(manifest_bytes)
    doc["root"] = "sha256:" + "0" * 64
    with pytest.raises(ManifestError, match="refusing to sign"):
        sign_manifest_bytes(json.dumps(doc).encode(), key)


# -- tampering: every field ------------------------------------------------------------


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(stmt: dict[str, Any]) -> None:
        obj: Any = stmt
        for p in path[:-1]:
            obj = obj[p]
        obj[path[-1]] = value

    return mutate


def _drop(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(stmt: dict[str, Any]) -> None:
        obj: Any = stmt
        for p in path[:-1]:
            obj = obj[p]
        del obj[path[-1]]

    return mutate


STATEMENT_TAMPERS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("_type", _set(("_type",), "https://in-toto.io/Statement/v0.1"), "_type"),
    ("predicateType", _set(("predicateType",), "https://example.invalid/x"), "predicateType"),
    ("subject.name", _set(("subject", 0, "name"), "other"), "subject"),
    ("subject.digest", _set(("subject", 0, "digest", "sha256"), "1" * 64), "subject"),
    ("subject.extra", lambda s: s["subject"].append(s["subject"][0]), "subject"),
    ("subject.empty", _set(("subject",), []), "subject"),
    ("manifest.sha256", _set(("predicate", "manifest", "sha256"), "2" * 64), "manifest bytes"),
    ("recipe.name", _set(("predicate", "recipe", "name"), "evil"), "predicate.recipe"),
    ("recipe.version", _set(("predicate", "recipe", "version"), "9"), "predicate.recipe"),
    ("recipe.seed", _set(("predicate", "recipe", "seed"), 7), "predicate.recipe"),
    ("recipe.params", _set(("predicate", "recipe", "params"), {"x": 1}), "predicate.recipe"),
    ("recipe.select", _set(("predicate", "recipe", "select"), "count:1"), "predicate.recipe"),
    (
        "recipe.source",
        _set(("predicate", "recipe", "source"), "sha256:" + "3" * 64),
        "predicate.recipe",
    ),
    (
        "fingerprint.value",
        _set(("predicate", "fingerprint", "numpy"), "0.0"),
        "predicate.fingerprint",
    ),
    ("fingerprint.key", _set(("predicate", "fingerprint", "extra"), "1"), "predicate.fingerprint"),
    (
        "provenance.name",
        _set(("predicate", "provenance", "original_name"), "x"),
        "predicate.provenance",
    ),
    (
        "provenance.terms",
        _set(("predicate", "provenance", "original_terms"), "x"),
        "predicate.provenance",
    ),
    (
        "provenance.license",
        _set(("predicate", "provenance", "recipe_license"), "x"),
        "predicate.provenance",
    ),
    (
        "provenance.used",
        _set(("predicate", "provenance", "samples_used"), 2),
        "predicate.provenance",
    ),
    (
        "provenance.total",
        _set(("predicate", "provenance", "samples_in_original"), 9),
        "predicate.provenance",
    ),
    (
        "provenance.fraction",
        _set(("predicate", "provenance", "fraction"), "0.5"),
        "predicate.provenance",
    ),
    ("sample_count", _set(("predicate", "sample_count"), 4), "predicate.sample_count"),
    ("shard", _set(("predicate", "shard"), "1/2"), "predicate.shard"),
    ("predicate.missing", _drop(("predicate", "recipe")), "predicate.recipe is missing"),
    ("predicate.not-object", _set(("predicate",), []), "predicate must be an object"),
    ("predicate.unknown", _set(("predicate", "extra"), 1), "fields this version does not know"),
    ("statement.unknown", _set(("extra",), 1), "fields this version does not know"),
]


@pytest.mark.parametrize(
    ("name", "mutate", "words"), STATEMENT_TAMPERS, ids=[t[0] for t in STATEMENT_TAMPERS]
)
def test_every_statement_field_is_checked_against_the_manifest(
    name: str,
    mutate: Callable[[dict[str, Any]], None],
    words: str,
    manifest_bytes: bytes,
    envelope: bytes,
    key: Ed25519PrivateKey,
) -> None:
    """Even a valid signature over a changed statement is refused (the key signed a lie)."""
    stmt = copy.deepcopy(_statement(envelope))
    mutate(stmt)
    with pytest.raises(SignatureError, match=words) as e:
        verify_manifest_signature(manifest_bytes, _resign(stmt, key), key.public_key())
    assert e.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize(
    ("name", "mutate", "words"), STATEMENT_TAMPERS[:10], ids=[t[0] for t in STATEMENT_TAMPERS[:10]]
)
def test_a_changed_statement_without_resigning_does_not_verify(
    name: str,
    mutate: Callable[[dict[str, Any]], None],
    words: str,
    manifest_bytes: bytes,
    envelope: bytes,
    key: Ed25519PrivateKey,
) -> None:
    doc = json.loads(envelope)
    stmt = _statement(envelope)
    mutate(stmt)
    doc["payload"] = base64.b64encode(
        json.dumps(stmt, sort_keys=True, separators=(",", ":")).encode()
    ).decode()
    with pytest.raises(SignatureError, match="does not verify"):
        verify_manifest_signature(manifest_bytes, json.dumps(doc).encode(), key.public_key())


def _manifest_tampers() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    def entry(field: str, value: str) -> Callable[[dict[str, Any]], None]:
        def m(doc: dict[str, Any]) -> None:
            doc["entries"][1][field] = value

        return m

    return [
        ("entry.file", entry("file", "sha256:" + "4" * 64)),
        ("entry.pixels", entry("pixels", "sha256:" + "5" * 64)),
        ("entry.source", entry("source", "sha256:" + "6" * 64)),
        ("entries.dropped", lambda d: (d["entries"].pop(), d.__setitem__("sample_count", 2))),
        ("fingerprint", lambda d: d["fingerprint"].__setitem__("numpy", "0.0")),
        ("provenance", lambda d: d["provenance"].__setitem__("original_name", "x")),
        ("recipe", lambda d: d["recipe"].__setitem__("seed", 99)),
    ]


@pytest.mark.parametrize(
    ("name", "mutate"), _manifest_tampers(), ids=[t[0] for t in _manifest_tampers()]
)
def test_a_changed_manifest_is_refused(
    name: str,
    mutate: Callable[[dict[str, Any]], None],
    manifest_bytes: bytes,
    envelope: bytes,
    key: Ed25519PrivateKey,
) -> None:
    doc = json.loads(manifest_bytes)
    mutate(doc)
    changed = (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()
    with pytest.raises(SignatureError, match="does not match the manifest"):
        verify_manifest_signature(changed, envelope, key.public_key())


def test_a_moved_output_path_is_refused_before_the_signature(
    manifest_bytes: bytes, envelope: bytes, key: Ed25519PrivateKey
) -> None:
    """Output paths derive from ids: an edited path is a malformed manifest, signed or not."""
    doc = json.loads(manifest_bytes)
    doc["entries"][1]["path"] = "c/1x.png"
    changed = (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()
    with pytest.raises(ManifestError, match="it must be"):
        verify_manifest_signature(changed, envelope, key.public_key())


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_any_changed_byte_of_the_manifest_is_refused(
    where: str, manifest_bytes: bytes, envelope: bytes, key: Ed25519PrivateKey
) -> None:
    """Whitespace too: the statement pins the exact bytes, not just the parsed content."""
    changed = {
        "start": b" " + manifest_bytes,
        "middle": manifest_bytes.replace(b'"entries": [', b'"entries":  [', 1),
        "end": manifest_bytes + b"\n",
    }[where]
    assert changed != manifest_bytes
    with pytest.raises(SignatureError, match="manifest bytes"):
        verify_manifest_signature(changed, envelope, key.public_key())


def _env_tamper(field: str) -> Callable[[dict[str, Any]], None]:
    def m(doc: dict[str, Any]) -> None:
        if field == "payloadType":
            doc["payloadType"] = "application/json"
        elif field == "keyid":
            doc["signatures"][0]["keyid"] = "sha256:" + "7" * 64
        elif field == "sig":
            raw = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
            raw[0] ^= 1
            doc["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
        elif field == "sig.short":
            doc["signatures"][0]["sig"] = base64.b64encode(b"short").decode()
        elif field == "sig.base64":
            doc["signatures"][0]["sig"] = "not base64!"
        elif field == "payload.base64":
            doc["payload"] = "%%%"
        elif field == "payload.byte":
            raw = bytearray(base64.b64decode(doc["payload"]))
            raw[10] ^= 1
            doc["payload"] = base64.b64encode(bytes(raw)).decode()
        elif field == "signatures.empty":
            doc["signatures"] = []
        elif field == "signatures.extra-field":
            doc["signatures"][0]["cert"] = "x"
        elif field == "envelope.extra":
            doc["extra"] = 1

    return m


ENVELOPE_TAMPERS = [
    ("payloadType", "payloadType is"),
    ("keyid", "another key"),
    ("sig", "does not verify"),
    ("sig.short", "does not verify"),
    ("sig.base64", "not valid base64"),
    ("payload.base64", "not valid base64"),
    ("payload.byte", "does not verify"),
    ("signatures.empty", "list of 1 to"),
    ("signatures.extra-field", "exactly keyid, sig"),
    ("envelope.extra", "unknown envelope field"),
]


@pytest.mark.parametrize(("field", "words"), ENVELOPE_TAMPERS, ids=[t[0] for t in ENVELOPE_TAMPERS])
def test_every_envelope_field_is_checked(
    field: str, words: str, manifest_bytes: bytes, envelope: bytes, key: Ed25519PrivateKey
) -> None:
    doc = json.loads(envelope)
    _env_tamper(field)(doc)
    with pytest.raises(SignatureError, match=words) as e:
        verify_manifest_signature(manifest_bytes, json.dumps(doc).encode(), key.public_key())
    assert e.value.exit_code == ExitCode.BAD_INPUT


def test_signature_by_another_key_claiming_our_keyid_does_not_verify(
    manifest_bytes: bytes, key: Ed25519PrivateKey
) -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    doc = json.loads(sign_manifest_bytes(manifest_bytes, other))
    doc["signatures"][0]["keyid"] = key_id(key.public_key())
    with pytest.raises(SignatureError, match="does not verify"):
        verify_manifest_signature(manifest_bytes, json.dumps(doc).encode(), key.public_key())


def test_a_second_foreign_signature_does_not_hurt(
    manifest_bytes: bytes, key: Ed25519PrivateKey, envelope: bytes
) -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    doc = json.loads(envelope)
    doc["signatures"].append(
        json.loads(sign_manifest_bytes(manifest_bytes, other))["signatures"][0]
    )
    check = verify_manifest_signature(manifest_bytes, json.dumps(doc).encode(), key.public_key())
    assert check.keyid == key_id(key.public_key())


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b"[" * 100000, "not valid JSON"),
        (b" " * (1024 * 1024 + 1), "over the"),
    ],
)
def test_malformed_envelopes(
    data: bytes, words: str, manifest_bytes: bytes, key: Ed25519PrivateKey
) -> None:
    with pytest.raises(SignatureError, match=words):
        verify_manifest_signature(manifest_bytes, data, key.public_key())


def test_missing_signature_file(
    tmp_path: Path, manifest_bytes: bytes, key: Ed25519PrivateKey
) -> None:
    with pytest.raises(SignatureError, match="no signature at"):
        check_manifest_signature(manifest_bytes, tmp_path / "nope.sig", key.public_key())
