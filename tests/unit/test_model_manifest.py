from __future__ import annotations

import hashlib
import json
import pickle
import tracemalloc
from pathlib import Path

import pytest

from toolchain.errors import ManifestError
from toolchain.model.columns import ColumnSpec
from toolchain.model.hashing import Digest
from toolchain.model.layout import output_path_for
from toolchain.model.manifest import (
    EntryCollector,
    EntryTable,
    Manifest,
    ManifestEntry,
    Provenance,
    RecipeIdentity,
    dump_manifest,
    entry_index,
    holds_manifest,
    is_canonical,
    iter_manifest,
    load_manifest,
    manifest_sha256,
    parse_manifest,
    read_manifest_bytes,
    write_manifest,
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


# -- entries held packed, written and read streamed ---------------------------------------


def _rich_manifest(n: int, version: int = 2, shard: str | None = None) -> Manifest:
    """Entries with non-ASCII characters and quotes in ids, and
    columns of every scalar kind (format v2)."""
    schema = (
        [
            ColumnSpec(name="flag", type="bool"),
            ColumnSpec(name="label", type="class_label", names=("a", "b", "c")),
            ColumnSpec(name="note", type="string"),
        ]
        if version == 2
        else []
    )
    entries = []
    for i in range(n):
        d = Digest.of(str(i).encode())
        sid = f'c{i % 3}/é "{i}" 日本.jpg'
        columns = {"flag": i % 2 == 0, "label": i % 3, "note": "ü\n"} if version == 2 else {}
        entries.append(
            ManifestEntry(
                id=sid, path=output_path_for(sid), pixels=d, file=d, source=d, columns=columns
            )
        )
    return Manifest.build(
        recipe=RecipeIdentity(name="r", version="1", seed=1, source=Digest.of(b"src")),
        entries=reversed(entries),
        fingerprint={"numpy": "2.4.6"},
        encoder={"level": 6, "name": "benchmark-regen-png"} if version == 2 else None,
        columns=schema,
        provenance=Provenance(samples_used=n, samples_in_original=n),
        shard=shard,
        version=version,
    )


@pytest.mark.parametrize("n", [0, 1, 2, 1300])
@pytest.mark.parametrize("version", [1, 2])
def test_streamed_bytes_are_one_json_dumps_of_the_document(n: int, version: int) -> None:
    """The piecewise writer gives exactly the documented canonical form, whatever the ids."""
    m = _rich_manifest(n, version, shard="1/2" if n == 1 else None)
    reference = (
        json.dumps(m.to_json(), sort_keys=True, indent=2, ensure_ascii=True) + "\n"
    ).encode("ascii")
    assert b"".join(iter_manifest(m)) == dump_manifest(m) == reference
    assert manifest_sha256(m) == hashlib.sha256(reference).hexdigest()
    assert is_canonical(m, reference)
    assert not is_canonical(m, reference[:-1]) and not is_canonical(m, reference + b" ")
    again = parse_manifest(reference)
    assert again == m and again.root == m.root and again.root_is_consistent()


def test_any_valid_json_layout_parses_to_the_same_manifest() -> None:
    m = _rich_manifest(5)
    compact = json.dumps(m.to_json(), separators=(",", ":"), ensure_ascii=False)
    shuffled = json.dumps(dict(reversed(list(m.to_json().items()))), indent=7)
    for text in (compact, shuffled, "\r\n" + compact + "\r\n"):
        assert parse_manifest(text.encode("utf-8")) == m


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    m = _rich_manifest(40)
    write_manifest(m, tmp_path / "sub" / "manifest.json")
    assert (tmp_path / "sub" / "manifest.json").read_bytes() == dump_manifest(m)
    assert load_manifest(tmp_path / "sub" / "manifest.json") == m


def test_read_manifest_bytes_reads_them_unparsed_or_says_why_not(tmp_path: Path) -> None:
    m = _rich_manifest(3)
    write_manifest(m, tmp_path / "manifest.json")
    assert read_manifest_bytes(tmp_path / "manifest.json") == dump_manifest(m)
    (tmp_path / "junk.json").write_bytes(b"not a manifest")
    assert read_manifest_bytes(tmp_path / "junk.json") == b"not a manifest"
    with pytest.raises(ManifestError, match="no manifest at") as e:
        read_manifest_bytes(tmp_path / "absent.json")
    assert "only once a run has completed" in e.value.diagnostics()
    for read in (read_manifest_bytes, load_manifest):
        with pytest.raises(ManifestError, match="cannot read"):
            read(tmp_path)  # a folder


def test_holds_manifest_whatever_the_name_and_links_on_request(tmp_path: Path) -> None:
    write_manifest(_rich_manifest(2), tmp_path / "bench.bdiff")
    (tmp_path / "other.json").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "bench.bdiff")
    assert holds_manifest(tmp_path / "bench.bdiff")
    assert holds_manifest(tmp_path / "bench.bdiff", follow_links=False)
    assert holds_manifest(tmp_path / "link")
    assert not holds_manifest(tmp_path / "link", follow_links=False)
    for other in ("other.json", "absent", "."):
        assert not holds_manifest(tmp_path / other)


def test_a_repeated_top_level_field_is_refused() -> None:
    text = dump_manifest(_manifest()).decode().replace('"root":', '"root": "x", "root":', 1)
    with pytest.raises(ManifestError, match="'root' appears twice"):
        parse_manifest(text.encode())


def test_v1_entries_under_a_v2_format_are_refused() -> None:
    v1 = json.loads(dump_manifest(_rich_manifest(2, version=1)))
    v1["format"] = "benchmark-regen.manifest/v2"
    with pytest.raises(ManifestError, match="missing field 'source'"):
        parse_manifest(json.dumps(v1).encode())


def test_an_unknown_format_is_named_before_any_entry_defect() -> None:
    doc = json.loads(dump_manifest(_manifest()))
    doc["entries"][0]["id"] = "../x.jpg"
    doc["format"] = "benchmark-regen.manifest/v9"
    with pytest.raises(ManifestError, match="unknown manifest format"):
        parse_manifest(json.dumps(doc).encode())


def test_entry_table_is_a_compact_sorted_sequence() -> None:
    entries = [_entry(i) for i in (5, 3, 9, 1)]
    table = EntryTable(entries)
    ordered = sorted(entries, key=lambda e: e.id.encode("utf-8"))
    assert list(table) == ordered and len(table) == 4
    assert table[0] == ordered[0] and table[-1] == ordered[-1] and table[1:3] == tuple(ordered[1:3])
    assert table == tuple(ordered) and table != tuple(reversed(ordered))
    assert pickle.loads(pickle.dumps(table)) == table
    with pytest.raises(IndexError):
        table[4]
    with pytest.raises(ValueError, match="added twice"):
        EntryTable([_entry(1), _entry(1)])
    collector = EntryCollector()
    for e in entries:
        collector.add(e)
    assert len(collector) == 4 and collector.table() == table


def test_entries_collected_in_id_order_are_adopted_and_any_order_gives_one_table() -> None:
    ordered = [_entry(i) for i in sorted(range(300), key=lambda i: f"c/{i}.jpg".encode())]
    in_order, shuffled = EntryCollector(), EntryCollector()
    for e in ordered:
        in_order.add(e)
    for e in ordered[::-1][:150] + ordered[:150]:
        shuffled.add(e)
    a, b = in_order.table(), shuffled.table()
    assert a == b == tuple(ordered) and len(in_order) == 0 == len(shuffled)
    twice = EntryCollector()
    for e in ordered[:3] + ordered[2:3]:  # in order up to a repeat: still refused
        twice.add(e)
    with pytest.raises(ValueError, match="added twice"):
        twice.table()


def test_a_path_is_packed_only_when_it_is_not_the_one_its_id_gives() -> None:
    derived = _entry(1)
    other = ManifestEntry(
        id="c/1.jpg",
        path="elsewhere/1.png",
        pixels=derived.pixels,
        file=derived.file,
        source=derived.source,
    )
    assert EntryTable([derived]).nbytes < EntryTable([other]).nbytes
    assert list(EntryTable([derived])) == [derived] and list(EntryTable([other])) == [other]
    with pytest.raises(ManifestError, match="its path: it is empty"):
        EntryCollector().add(
            ManifestEntry(
                id="c/1.jpg",
                path="",
                pixels=derived.pixels,
                file=derived.file,
                source=derived.source,
            )
        )


def test_an_entry_is_found_by_its_id_without_a_dict() -> None:
    entries = EntryTable([_entry(i) for i in range(50)])
    for i, e in enumerate(entries):
        assert entry_index(entries, e.id, i) == i  # the guess
        assert entry_index(entries, e.id, (i + 2) % len(entries)) == i  # binary search
        assert entry_index(entries, e.id, len(entries)) == i
        assert entry_index(entries, e.id, -1) == i
    for absent in ("", "zzz", entries[0].id + "x"):
        with pytest.raises(KeyError):
            entry_index(entries, absent, 0)


def test_a_manifest_is_read_without_holding_its_text_or_its_json_tree(tmp_path: Path) -> None:
    """Streamed: neither the file's bytes nor its JSON tree (together over three times
    the file's size) are ever held; what stays is the packed table (about 40 % here),
    and the layout check's index of paths is the rest of the peak."""
    m = _rich_manifest(20_000)
    path = tmp_path / "manifest.json"
    write_manifest(m, path)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        loaded = load_manifest(path)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(loaded.entries) == 20_000
    assert held < 0.5 * size, f"{held} bytes kept for a {size}-byte manifest"
    assert peak < 1.25 * size, f"peak {peak} bytes for a {size}-byte manifest"


def test_collecting_entries_costs_a_few_hundred_bytes_each() -> None:
    """What a run holds per finished sample (was over a kilobyte as objects)."""
    entries = list(_rich_manifest(5000).entries)
    tracemalloc.start()
    try:
        collector = EntryCollector()
        for e in entries:
            collector.add(e)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / len(entries) < 250


def test_the_original_identity_is_carried_only_when_known() -> None:
    from toolchain.model.manifest import Provenance
    from toolchain.model.original import OriginalRef

    plain = Provenance(original_name="imagenet-val")
    assert "original" not in plain.to_json()  # manifests of folder originals keep their bytes
    ref = OriginalRef(repo="org/data", revision="ab" * 20, config="default", split="validation")
    assert Provenance(original_name="org/data", original=ref).to_json()["original"] == {
        "config": "default",
        "repo": "org/data",
        "revision": "ab" * 20,
        "split": "validation",
    }
