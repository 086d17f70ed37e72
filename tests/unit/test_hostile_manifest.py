"""Hostile manifests: any bytes give a Manifest or a ManifestError, quickly and cheaply."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import HOSTILE, json_values, mutations, peak_allocation, typed
from toolchain.errors import ExitCode, ManifestError
from toolchain.model.hashing import Digest
from toolchain.model.manifest import (
    Manifest,
    ManifestEntry,
    Provenance,
    RecipeIdentity,
    dump_manifest,
    parse_manifest,
)


def _manifest(n: int = 3) -> Manifest:
    def entry(i: int) -> ManifestEntry:
        d = Digest.of(str(i).encode())
        return ManifestEntry(id=f"c/{i}.jpg", path=f"c/{i}.png", pixels=d, file=d, source=d)

    return Manifest.build(
        recipe=RecipeIdentity(
            name="r", version="1", seed=1, params={"k": "1.5", "n": 2}, source=Digest.of(b"src")
        ),
        entries=[entry(i) for i in range(n)],
        fingerprint={"numpy": "2.4.6"},
        provenance=Provenance(original_name="o", samples_used=n, samples_in_original=n),
    )


GOOD = dump_manifest(_manifest())
GOOD_DOC: dict[str, Any] = json.loads(GOOD)


def _parse(data: bytes) -> object:
    return typed(lambda: parse_manifest(data), ManifestError)


@HOSTILE
@given(mutations(GOOD))
def test_mutated_manifest_bytes(data: bytes) -> None:
    _parse(data)


@HOSTILE
@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    _parse(data)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(GOOD_DOC)[1:]


@HOSTILE
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=3))
def test_fields_replaced_by_any_json(changes: list[tuple[tuple[Any, ...], Any]]) -> None:
    """Every field replaced by values of every type (huge ints, nesting, unsafe paths)."""
    doc = copy.deepcopy(GOOD_DOC)
    for path, value in changes:
        obj: Any = doc
        try:
            for p in path[:-1]:
                obj = obj[p]
            obj[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _parse(json.dumps(doc).encode())


@HOSTILE
@given(st.sampled_from(PATHS))
def test_each_field_removed(path: tuple[Any, ...]) -> None:
    doc = copy.deepcopy(GOOD_DOC)
    obj: Any = doc
    for p in path[:-1]:
        obj = obj[p]
    del obj[path[-1]]
    _parse(json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (
            lambda d: d.__setitem__("format", "benchmark-regen.manifest/v3"),
            "unknown manifest format",
        ),
        (
            lambda d: d.__setitem__("format", "benchmark-regen.manifest/v0"),
            "unknown manifest format",
        ),
        (lambda d: d["entries"].append(d["entries"][0]), "duplicated or out of order"),
        (lambda d: d["entries"].reverse(), "duplicated or out of order"),
        (lambda d: d["entries"][1].__setitem__("path", "c/0.png"), "it must be"),
        (lambda d: d["entries"][0].__setitem__("path", "manifest.json"), "it must be"),
        (lambda d: d["entries"][0].__setitem__("path", "../x.png"), "'..' path component"),
        (lambda d: d["entries"][0].__setitem__("id", "../x.jpg"), "'..' path component"),
        (lambda d: d["entries"][0].__setitem__("path", "/etc/x.png"), "absolute path"),
        (lambda d: d["entries"][0].__setitem__("path", "c\\0.png"), "backslash"),
        (lambda d: d["entries"][0].__setitem__("path", "c/0\x00.png"), "NUL"),
        (lambda d: d["entries"][0].__setitem__("path", "c/e\u0301.png"), "NFC"),
        (lambda d: d.__setitem__("sample_count", 10**30), "sample_count is"),
        (lambda d: d.__setitem__("sample_count", -1), "sample_count is"),
        (lambda d: d["recipe"].__setitem__("seed", True), "must be an integer"),
        (lambda d: d["recipe"]["params"].__setitem__("x", [1]), "string, integer or boolean"),
        (lambda d: d.__setitem__("root", "sha256:" + "Z" * 64), "not a lowercase hex"),
        (lambda d: d.__setitem__("root", "md5:00"), "expected 'sha256:<hex>'"),
        (lambda d: d.__setitem__("entries", {}), "must be list"),
    ],
)
def test_named_bad_manifests(mutate: Any, words: str) -> None:
    doc = copy.deepcopy(GOOD_DOC)
    mutate(doc)
    with pytest.raises(ManifestError, match=words) as e:
        parse_manifest(json.dumps(doc).encode())
    assert e.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "not valid JSON"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "not valid JSON"),
        (GOOD.replace(b'"seed": 1', b'"seed": 1' + b"0" * 100_000), "not valid JSON|digits"),
        (GOOD.replace(b'"seed": 1', b'"seed": 1.5'), "floats are not allowed"),
        (GOOD.replace(b'"seed": 1', b'"seed": NaN'), "floats are not allowed"),
        (GOOD.replace(b'"seed": 1', b'"seed": 1e999'), "floats are not allowed"),
        (b"\xef\xbb\xbf" + GOOD, "not valid JSON"),
        (GOOD[: len(GOOD) // 2], "not valid JSON"),
        (b"", "not valid JSON"),
        (b"null", "top level must be a JSON object"),
    ],
    ids=[
        "deep-list",
        "deep-object",
        "huge-int",
        "float",
        "nan",
        "inf",
        "bom",
        "truncated",
        "empty",
        "null",
    ],
)
def test_named_bad_bytes(data: bytes, words: str) -> None:
    with pytest.raises(ManifestError, match=words):
        parse_manifest(data)


def test_huge_declared_numbers_allocate_nothing() -> None:
    """sample_count and seed are never used as sizes: 10**30 costs nothing."""
    doc = copy.deepcopy(GOOD_DOC)
    doc["sample_count"] = 10**30
    doc["provenance"]["samples_in_original"] = 10**30
    data = json.dumps(doc).encode()
    assert peak_allocation(lambda: parse_manifest(data)) < 1024 * 1024
