"""Hostile manifests: any bytes give a Manifest or a ManifestError, quickly and cheaply."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.cli import no_traceback, run_cli
from tests.hostile import HOSTILE, json_values, mutations, peak_allocation, typed
from toolchain.errors import ExitCode, ManifestError
from toolchain.model.hashing import Digest
from toolchain.model.manifest import (
    EntryCollector,
    Manifest,
    ManifestEntry,
    Provenance,
    RecipeIdentity,
    dump_manifest,
    load_manifest,
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


# -- issue #23: names that break our outputs, field sizes, what is printed ----------------


def _with_columns(columns: dict[str, Any], values: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD_DOC)
    doc["columns"] = columns
    for entry, value in zip(doc["entries"], values, strict=True):
        entry["columns"] = value
    return doc


@pytest.mark.parametrize("name", ["file_name", "sample_id", "image", ""])
def test_a_column_named_like_our_own_outputs_is_refused(name: str) -> None:
    """A publisher's ``file_name`` column remapped the images ``metadata.jsonl`` names while
    ``verify`` passed: the parser refuses the name (the root is consistent here)."""
    doc = _with_columns({name: {"type": "string"}}, [{name: "x.png"}] * 3)
    with pytest.raises(ManifestError, match=r"a carried column cannot have this name") as e:
        parse_manifest(json.dumps(doc).encode())
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert ("benchmark's own" if name else "it is empty") in e.value.message


def test_no_label_is_carried_and_covered_by_the_root() -> None:
    """-1 ("no label", ImageNet's test split) is a class-label value like any other: it
    parses, the root covers it, and -2 or a label past the names is refused."""
    label = {"label": {"names": ["cat", "dog"], "type": "class_label"}}
    doc = _with_columns(label, [{"label": 0}, {"label": -1}, {"label": 1}])
    m = parse_manifest(json.dumps(doc).encode())  # the root is stale: columns changed
    fixed = Manifest.build(
        recipe=m.recipe, entries=m.entries, fingerprint=m.fingerprint, encoder=m.encoder,
        columns=m.columns, provenance=m.provenance,
    )  # fmt: skip
    again = parse_manifest(dump_manifest(fixed))
    assert again.entries[1].columns == {"label": -1} and again.root_is_consistent()
    relabelled = json.loads(dump_manifest(fixed))
    relabelled["entries"][1]["columns"]["label"] = 0
    assert not parse_manifest(json.dumps(relabelled).encode()).root_is_consistent()
    for bad in (-2, 2):
        doc = _with_columns(label, [{"label": 0}, {"label": bad}, {"label": 1}])
        with pytest.raises(ManifestError, match=rf"value {bad} does not fit its type class_label"):
            parse_manifest(json.dumps(doc).encode())


BIG = 1 << 20  # MAX_TEXT_CHARS


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: d["entries"][0].__setitem__("id", "c/" + "x" * 300 + ".jpg"),
         "a component of it is 304 bytes"),
        (lambda d: d["entries"][0].__setitem__("id", "c/\ud800.jpg"), "not valid Unicode"),
        (lambda d: d["fingerprint"].__setitem__("numpy", "9" * 4097), "over the 4096-character"),
        (lambda d: d["fingerprint"].update({f"k{i}": "" for i in range(1024)}),
         "1025 members, over the 1024 limit"),
        (lambda d: d["recipe"].__setitem__("name", "r" * 4097), "over the 4096-character"),
        (lambda d: d["recipe"]["params"].__setitem__("k", "p" * (BIG + 1)),
         "over the 1048576-character"),
        (lambda d: d["recipe"]["params"].__setitem__("k" * 4097, 1), "over the 4096-character"),
        (lambda d: d["provenance"].__setitem__("original_name", "o" * (BIG + 1)),
         "over the 1048576-character"),
        (lambda d: d["encoder"].__setitem__("name", "e" * 4097), "over the 4096-character"),
        (lambda d: d.__setitem__("shard", "1/" + "2" * 4097), "over the 4096-character"),
        (lambda d: d.__setitem__("root", "sha256:" + "0" * 100_000), "got 'sha256:000"),
        (lambda d: d.__setitem__("format", "f" * 100_000), "unknown manifest format 'fff"),
    ],
    ids=["component", "surrogate", "fingerprint", "fingerprint-keys", "recipe-name",
         "param-value", "param-name", "provenance", "encoder", "shard", "root", "format"],
)  # fmt: skip
def test_every_field_is_bounded_and_quoted_short(mutate: Any, words: str) -> None:
    doc = copy.deepcopy(GOOD_DOC)
    mutate(doc)
    with pytest.raises(ManifestError, match=words) as e:
        parse_manifest(json.dumps(doc).encode())
    assert len(e.value.diagnostics()) < 400, e.value.diagnostics()


@pytest.mark.parametrize(
    "columns",
    [
        ({"caption": {"type": "string"}}, [{"caption": "B" * (BIG + 1)}, *[{"caption": ""}] * 2]),
        ({"label": {"type": "class_label", "names": ["n" * 4097]}}, [{"label": 0}] * 3),
        ({"c" * 4097: {"type": "int"}}, [{"c" * 4097: 1}] * 3),
    ],
    ids=["value", "class-name", "column-name"],
)  # fmt: skip
def test_column_names_and_values_are_bounded(columns: tuple[dict[str, Any], Any]) -> None:
    doc = _with_columns(*columns)
    with pytest.raises(ManifestError, match=r"over the \d+-character limit") as e:
        parse_manifest(json.dumps(doc).encode())
    assert len(e.value.diagnostics()) < 400, e.value.diagnostics()


def test_what_the_parser_refuses_is_never_built() -> None:
    """The run keeps the parser's limits, naming the sample and the column: generate never
    writes a manifest that verify refuses."""
    m = _manifest()
    with pytest.raises(ManifestError, match=r"original_name.*over the 1048576-character") as e:
        Manifest.build(recipe=m.recipe, entries=m.entries, fingerprint=m.fingerprint,
                       provenance=Provenance(original_name="o" * (BIG + 1)))  # fmt: skip
    assert len(e.value.diagnostics()) < 400
    entry = dataclasses.replace(m.entries[0], columns={"caption": "B" * (BIG + 1)})
    with pytest.raises(ManifestError, match="column 'caption': it is 1048577 characters") as e:
        EntryCollector().add(entry)
    assert e.value.sample == "c/0.jpg" and "--columns -NAME" in (e.value.hint or "")


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A benchmark-like folder whose manifest holds a 64 MB string in a column, and a
    manifest with one in the fingerprint (written in pieces: never held whole here)."""
    root = tmp_path_factory.mktemp("huge")
    out = {}
    for where in ("column", "fingerprint"):
        doc = _with_columns({"caption": {"type": "string"}}, [{"caption": "x"} for _ in "abc"])
        marker = "\x00MARK\x00"
        if where == "column":
            doc["entries"][0]["columns"]["caption"] = marker
        else:
            doc["fingerprint"]["numpy"] = marker
        head, tail = json.dumps(doc, sort_keys=True, indent=2).split(json.dumps(marker))
        folder = root / where
        folder.mkdir()
        with open(folder / "manifest.json", "w") as f:
            f.write(head + '"')
            for _ in range(64):
                f.write("B" * 1_000_000)
            f.write('"' + tail)
        out[where] = folder
    return out


@pytest.mark.parametrize("where", ["column", "fingerprint"])
def test_a_64_mb_string_costs_a_bounded_read(huge: dict[str, Path], where: str) -> None:
    """Refused once 16 MiB of the value are read: 33 MiB at the peak (the old reader held
    the whole string and its copies: 313 MiB in a column, 123 in the fingerprint)."""
    path = huge[where] / "manifest.json"
    with pytest.raises(ManifestError, match=r"character \d+ is too large") as e:
        load_manifest(path)
    assert len(e.value.diagnostics()) < 400
    peak = peak_allocation(lambda: load_manifest(path))
    assert peak < 48 << 20, f"{peak >> 20} MiB"


def test_verify_and_compare_print_a_short_error(huge: dict[str, Path]) -> None:
    """The issue's verify printed the 200 MB value whole; compare held the fingerprint."""
    for args in (["verify", str(huge["column"])],
                 ["compare", str(huge["column"] / "manifest.json"),
                  str(huge["fingerprint"] / "manifest.json")]):  # fmt: skip
        r = no_traceback(run_cli(*args))
        assert r.exit_code == ExitCode.BAD_INPUT, r.output
        assert "too large" in r.output and len(r.output) < 1000, r.output[:1000]
