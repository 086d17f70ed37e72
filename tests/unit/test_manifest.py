from __future__ import annotations

import json

import pytest

from toolchain.errors import ManifestError
from toolchain.hashing import Digest
from toolchain.manifest import (
    Manifest,
    ManifestEntry,
    Provenance,
    RecipeIdentity,
    dump_manifest,
    parse_manifest,
)


def _entry(i: int) -> ManifestEntry:
    d = Digest.of(str(i).encode())
    return ManifestEntry(id=f"c/{i}.jpg", path=f"c/{i}.png", pixels=d, file=d, source=d)


def _manifest(n: int = 3) -> Manifest:
    return Manifest.build(
        recipe=RecipeIdentity(
            name="r", version="1", seed=1, params={"k": "1.5", "n": 2}, source=Digest.of(b"src")
        ),
        entries=[_entry(i) for i in reversed(range(n))],
        fingerprint={"numpy": "2.4.6", "pillow": "13.0.0"},
        provenance=Provenance(original_name="orig", samples_used=n, samples_in_original=2 * n + 1),
    )


def test_round_trip_is_byte_identical() -> None:
    m = _manifest()
    data = dump_manifest(m)
    again = parse_manifest(data)
    assert dump_manifest(again) == data
    assert again.root == m.root and again.root_is_consistent()
    assert data.endswith(b"}\n") and b"\t" not in data


def test_entries_are_sorted_and_fraction_is_exact_text() -> None:
    doc = json.loads(dump_manifest(_manifest(3)))
    assert [e["id"] for e in doc["entries"]] == ["c/0.jpg", "c/1.jpg", "c/2.jpg"]
    assert doc["provenance"]["fraction"] == "0.428571"
    assert list(doc) == sorted(doc)


def _mutate(fn) -> bytes:  # type: ignore[no-untyped-def]
    doc = json.loads(dump_manifest(_manifest()))
    fn(doc)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("mutation", "match"),
    [
        (lambda d: d.update(format="benchmark-regen.manifest/v9"), "unknown manifest format"),
        (lambda d: d["entries"].append(dict(d["entries"][0])), "duplicated or out of order"),
        (lambda d: d["entries"][0].update(id="../x.jpg"), "unsafe sample id"),
        (lambda d: d["entries"][0].update(path="/etc/x.png"), "absolute path"),
        (lambda d: d["entries"][0].update(pixels="sha256:zz"), "pixels"),
        (lambda d: d.update(sample_count=99), "sample_count"),
        (lambda d: d["recipe"].update(seed=1.5), "floats are not allowed"),
        (lambda d: d["recipe"].update(seed=True), "must be an integer"),
        (lambda d: d.pop("root"), "missing field 'root'"),
        (lambda d: d["fingerprint"].update(x=1), "fingerprint values"),
    ],
)
def test_malformed_manifests_are_refused(mutation, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ManifestError, match=match):
        parse_manifest(_mutate(mutation))


@pytest.mark.parametrize("data", [b"", b"[]", b"{", b"\xff\xfe", b"null"])
def test_garbage_is_a_manifest_error(data: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(data)


def test_tampered_root_is_detected() -> None:
    data = _mutate(lambda d: d.update(root="sha256:" + "0" * 64))
    assert not parse_manifest(data).root_is_consistent()
