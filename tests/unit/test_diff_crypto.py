"""Keys come from the original only: nothing stored in the container opens a payload."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.diff_cases import build, tiny_original
from toolchain.diff.crypto import derive_key, fingerprint, open_payload, seal_payload
from toolchain.diff.format import KeyOn, PayloadKind
from toolchain.diff.reader import open_diff


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("crypto")
    original = tiny_original(work / "original")
    _, diff = build(original, "adversarial", work)
    return original, diff


def _stored_fields(path: Path) -> list[bytes]:
    """Every digest, fingerprint and id the container holds, as raw bytes and as text."""
    with open_diff(path) as r:
        text = r.manifest_bytes.decode("ascii")
        fields = [r.header.benchmark_id, r.manifest_bytes, path.read_bytes()[72:104]]
        for hexpart in sorted(set(re.findall(r"sha256:([0-9a-f]{64})", text))):
            fields += [bytes.fromhex(hexpart), hexpart.encode(), f"sha256:{hexpart}".encode()]
        for rec in r.records:
            fields += [rec.fingerprint, rec.sealed_digest, rec.fingerprint.hex().encode()]
        return fields


def test_no_payload_opens_with_a_key_built_from_stored_fields(sealed: tuple[Path, Path]) -> None:
    original, diff = sealed
    with open_diff(diff) as r:
        fields = _stored_fields(diff)
        assert len(fields) > 30
        for i, entry in enumerate(r.manifest.entries):
            payload = r.read_sealed(i)
            kind = r.records[i].kind
            for salt in (r.header.benchmark_id, b""):
                for ikm in fields:
                    for mode in KeyOn:
                        key = derive_key(ikm, salt=salt, key_on=mode, sample_id=entry.id)
                        assert open_payload(key, kind, payload) is None
            # The control: the original's own bytes do open it.
            data = (original / entry.id).read_bytes()
            salt = r.header.benchmark_id
            key = derive_key(data, salt=salt, key_on=KeyOn.FILE, sample_id=entry.id)
            assert open_payload(key, kind, payload) is not None


def test_fingerprint_is_not_the_key_nor_a_plain_hash(sealed: tuple[Path, Path]) -> None:
    original, diff = sealed
    with open_diff(diff) as r:
        entry = r.manifest.entries[0]
        data = (original / entry.id).read_bytes()
        salt = r.header.benchmark_id
        fp = fingerprint(data, key_on=KeyOn.FILE, salt=salt)
        assert fp == r.records[0].fingerprint
        key = derive_key(data, salt=salt, key_on=KeyOn.FILE, sample_id=entry.id)
        assert fp != key and fp != hashlib.sha256(data).digest()
        # Salted with the benchmark id: another benchmark from the same original links nothing.
        assert fingerprint(data, key_on=KeyOn.FILE, salt=bytes(32)) != fp


def test_keys_are_unique_per_sample_and_benchmark() -> None:
    ikm = b"the same original bytes"
    keys = {
        derive_key(ikm, salt=salt, key_on=mode, sample_id=sid)
        for salt in (b"\x01" * 32, b"\x02" * 32)
        for mode in KeyOn
        for sid in ("a.png", "b.png")
    }
    assert len(keys) == 8


def test_sealing_is_deterministic_and_authenticates_the_kind() -> None:
    key = bytes(range(32))
    a = seal_payload(key, PayloadKind.DELTA, b"plaintext")
    assert a == seal_payload(key, PayloadKind.DELTA, b"plaintext")
    assert open_payload(key, PayloadKind.DELTA, a) == b"plaintext"
    assert open_payload(key, PayloadKind.FULL, a) is None
