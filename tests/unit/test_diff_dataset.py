"""The diff as a parquet dataset: same entries as the .bdiff, same checks, loadable."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import pickle
import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.diff_cases import build, many_entries, pinned, tiny_original
from tests.hf_cases import hf_offline
from toolchain.diff import create_diff
from toolchain.diff.dataset import (
    HEADER_NAME,
    open_diff_dataset,
    write_diff_dataset,
)
from toolchain.diff.format import (
    FORMAT_VERSION,
    DiffReader,
    KeyOn,
    PayloadKind,
    SealedEntry,
    write_diff,
)
from toolchain.diff.reader import open_diff
from toolchain.errors import DiffFormatError, OutputError
from toolchain.model.manifest import Manifest, dump_manifest

__all__ = ["hf_offline"]

pytestmark = pytest.mark.usefixtures("hf_offline")


@pytest.fixture(scope="module")
def bdiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("hfdiff")
    _, diff = build(tiny_original(work / "original"), "adversarial", work)
    return diff


# The lead's format change gives SealedEntry its manifest `index` (entries in any order)
# and DiffReader a close(): these helpers work with and without them.
INDEXED = "index" in {f.name for f in dataclasses.fields(SealedEntry)}


def _entry(i: int, reader: DiffReader) -> SealedEntry:
    rec = reader.records[i]
    extra: dict[str, Any] = {"index": i} if INDEXED else {}
    return SealedEntry(
        kind=rec.kind, fingerprint=rec.fingerprint, sealed=reader.read_sealed(i), **extra
    )


def _entries(reader: DiffReader) -> list[SealedEntry]:
    return [_entry(i, reader) for i in range(len(reader.records))]


@contextlib.contextmanager
def opened(path: Path) -> Iterator[DiffReader]:
    reader = open_diff(path)
    try:
        yield reader
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


@pytest.fixture
def dataset(bdiff: Path, tmp_path: Path) -> Path:
    out = tmp_path / "diffds"
    with opened(bdiff) as reader:
        write_diff_dataset(
            out,
            key_on=reader.header.key_on,
            manifest_bytes=reader.manifest_bytes,
            entries=iter(_entries(reader)),
            entry_count=reader.header.entry_count,
        )
    return out


def test_both_forms_read_back_the_same(bdiff: Path, dataset: Path) -> None:
    with opened(bdiff) as a, open_diff_dataset(dataset) as b:
        _same(a, b, bdiff, dataset)


def _same(a: DiffReader, b: DiffReader, bdiff: Path, dataset: Path) -> None:
    assert isinstance(b, DiffReader) and b.path == dataset
    assert b.manifest_bytes == a.manifest_bytes
    assert b.manifest == a.manifest
    assert b.records == a.records
    assert b.header == a.header
    assert [b.read_sealed(i) for i in range(len(b.records))] == [
        a.read_sealed(i) for i in range(len(a.records))
    ]
    assert list(b.iter_sealed()) == list(a.iter_sealed())
    # a payload in a parquet row group is read here, never by a worker on its own
    assert b.sealed_span(0) is None
    span = a.sealed_span(0)
    assert span is not None and span.read() == b.read_sealed(0)
    # the stored digest is the .bdiff's header digest, byte for byte
    declared = json.loads((dataset / HEADER_NAME).read_text())
    assert bytes.fromhex(declared["header_digest"]) == bdiff.read_bytes()[72:104]


def test_writer_is_deterministic_and_takes_write_diffs_inputs(bdiff: Path, tmp_path: Path) -> None:
    with opened(bdiff) as reader:
        _writer_checks(reader, tmp_path)


@pytest.mark.skipif(not INDEXED, reason="entries carry no index before the format change")
def test_entries_in_any_order_give_the_same_dataset(
    bdiff: Path, dataset: Path, tmp_path: Path
) -> None:
    with opened(bdiff) as reader:
        shuffled = _entries(reader)[::-1]
        write_diff_dataset(
            tmp_path / "rev",
            key_on=reader.header.key_on,
            manifest_bytes=reader.manifest_bytes,
            entries=shuffled,
            entry_count=reader.header.entry_count,
        )
    for p in dataset.rglob("*"):
        if p.is_file():
            assert (tmp_path / "rev" / p.relative_to(dataset)).read_bytes() == p.read_bytes()


def test_the_manifest_is_written_from_a_file_as_from_bytes(
    bdiff: Path, dataset: Path, tmp_path: Path
) -> None:
    """A manifest held in a file (what ``diff create`` passes) gives the same dataset."""
    with opened(bdiff) as reader, (tmp_path / "manifest").open("w+b") as f:
        f.write(reader.manifest_bytes)
        header = write_diff_dataset(
            tmp_path / "streamed",
            key_on=reader.header.key_on,
            manifest_bytes=f,
            entries=_entries(reader),
            entry_count=reader.header.entry_count,
        )
        assert header == reader.header
    for p in dataset.rglob("*"):
        if p.is_file():
            assert (tmp_path / "streamed" / p.relative_to(dataset)).read_bytes() == p.read_bytes()


def _writer_checks(reader: DiffReader, tmp_path: Path) -> None:
    kwargs = {
        "key_on": reader.header.key_on,
        "manifest_bytes": reader.manifest_bytes,
        "entry_count": reader.header.entry_count,
    }
    h1 = write_diff_dataset(tmp_path / "one", entries=iter(_entries(reader)), **kwargs)  # type: ignore[arg-type]
    h2 = write_diff_dataset(tmp_path / "two", entries=iter(_entries(reader)), **kwargs)  # type: ignore[arg-type]
    h3 = write_diff(tmp_path / "x.bdiff", entries=iter(_entries(reader)), **kwargs)  # type: ignore[arg-type]
    assert h1 == h2 == h3 == reader.header

    def files(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }

    assert files(tmp_path / "one") == files(tmp_path / "two")
    assert sorted(files(tmp_path / "one")) == [
        "README.md",
        "data/train-00000-of-00001.parquet",
        "diff.json",
        "manifest.json",
    ]
    with pytest.raises(OutputError, match="not an empty folder"):
        write_diff_dataset(tmp_path / "one", entries=iter(_entries(reader)), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected 5 entries, got 4"):
        write_diff_dataset(tmp_path / "short", entries=iter(_entries(reader)[:4]), **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "short").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_loads_as_a_dataset_with_its_card(dataset: Path, hf_offline: Path) -> None:
    import datasets
    import yaml

    ds = datasets.load_dataset(str(dataset), split="train", cache_dir=str(hf_offline / "c"))
    reader = open_diff_dataset(dataset)
    assert ds.column_names == [
        "sample_id",
        "kind",
        "fingerprint",
        "sealed",
        "sealed_length",
        "sealed_sha256",
    ]
    assert ds["sample_id"] == [e.id for e in reader.manifest.entries]
    assert ds["sealed"] == [s for _, s in reader.iter_sealed()]
    card = (dataset / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["configs"][0]["data_files"][0]["path"] == ["data/train-*.parquet"]
    assert "No image of the original or of the benchmark, and no key" in card


def test_picklable_for_workers(dataset: Path) -> None:
    reader = open_diff_dataset(dataset)
    clone = pickle.loads(pickle.dumps(reader))
    assert clone.read_sealed(3) == reader.read_sealed(3)


# -- tampering ---------------------------------------------------------------------------


def _shard(dataset: Path) -> Path:
    return dataset / "data" / "train-00000-of-00001.parquet"


def test_a_flipped_payload_byte_is_detected_and_named(dataset: Path) -> None:
    reader = open_diff_dataset(dataset)
    sealed = reader.read_sealed(2)
    raw = bytearray(_shard(dataset).read_bytes())
    at = raw.find(sealed)
    assert at > 0 and raw.find(sealed, at + 1) == -1  # stored uncompressed, once
    raw[at + len(sealed) // 2] ^= 0x01
    _shard(dataset).write_bytes(bytes(raw))
    reader = open_diff_dataset(dataset)  # header, manifest and index are intact
    assert reader.read_sealed(1) and reader.read_sealed(3)
    entry = reader.manifest.entries[2].id
    with pytest.raises(DiffFormatError, match=f"entry '{entry}'.*payload digest mismatch"):
        reader.read_sealed(2)
    with pytest.raises(DiffFormatError, match="payload digest mismatch"):
        list(reader.iter_sealed())


def test_a_flipped_manifest_byte_is_detected(dataset: Path) -> None:
    path = dataset / "manifest.json"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(DiffFormatError, match="header digest mismatch"):
        open_diff_dataset(dataset)


def test_a_consistently_rewritten_row_is_detected(dataset: Path) -> None:
    """Payload and its row digest replaced together: the header digest still catches it."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(_shard(dataset))
    sealed = table.column("sealed").to_pylist()
    sealed[0] = bytes(len(sealed[0]))
    digests = table.column("sealed_sha256").to_pylist()
    digests[0] = hashlib.sha256(sealed[0]).digest()
    table = table.set_column(3, "sealed", pa.array(sealed, pa.binary()))
    table = table.set_column(5, "sealed_sha256", pa.array(digests, pa.binary()))
    pq.write_table(table, _shard(dataset), compression="none")
    with pytest.raises(DiffFormatError, match="header digest mismatch"):
        open_diff_dataset(dataset)


def test_rows_naming_other_samples_are_refused(dataset: Path) -> None:
    """The header digest covers the index, not the rows' sample ids: two ids swapped
    pass it, and the check of each row against the manifest's entry names the first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(_shard(dataset))
    ids = table.column("sample_id").to_pylist()
    swapped = [ids[1], ids[0], *ids[2:]]
    table = table.set_column(0, "sample_id", pa.array(swapped, pa.string()))
    pq.write_table(table, _shard(dataset), compression="none")
    with pytest.raises(
        DiffFormatError,
        match=f"row 0 is for sample {ids[1]!r}, the manifest's entry 0 is {ids[0]!r}",
    ):
        open_diff_dataset(dataset)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("entry_count", 1 << 30, r"entry count 1073741824 is not in 0\.\.16777216"),
        ("entry_count", -1, r"entry count -1 is not in 0\.\.16777216"),
        ("manifest_length", 12, "5 entries cannot fit in a manifest of 12 bytes"),
        ("manifest_length", -1, "manifest length -1 is implausible"),
        ("manifest_length", 1 << 40, "manifest length 1099511627776 is implausible"),
        ("file_length", -1, "file length -1 does not fit"),
        ("file_length", 1 << 64, f"file length {1 << 64} does not fit"),
        ("file_length", 0, "file length 0 does not fit"),
        ("header_digest", "00" * 32, "header digest mismatch"),
        ("key_on", "pixels", "header digest mismatch"),
        ("format", "other/v9", "unknown format"),
        ("version", FORMAT_VERSION + 1, f"unknown container version {FORMAT_VERSION + 1}"),
        ("entry_count", 4, "more rows than the 4 entries declared"),
        ("entry_count", 6, "hold 5 rows, diff.json declares 6"),
    ],
)
def test_header_fields_are_checked(dataset: Path, key: str, value: object, match: str) -> None:
    path = dataset / HEADER_NAME
    doc = json.loads(path.read_text())
    doc[key] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(DiffFormatError, match=match):
        open_diff_dataset(dataset)


def test_missing_or_extra_pieces(dataset: Path, tmp_path: Path) -> None:
    other = tmp_path / "copy"
    shutil.copytree(dataset, other)
    (other / "manifest.json").unlink()
    with pytest.raises(DiffFormatError, match=r"has no manifest\.json"):
        open_diff_dataset(other)
    with pytest.raises(DiffFormatError, match=r"has no diff\.json"):
        open_diff_dataset(tmp_path)
    shutil.copy(_shard(dataset), dataset / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(DiffFormatError, match=r"exactly data/train-NNNNN-of-NNNNN\.parquet"):
        open_diff_dataset(dataset)


# -- the carried manifest: one check for both readers -------------------------------------


def _write_either(kind: str, path: Path, reader: DiffReader, manifest_bytes: bytes) -> None:
    write = write_diff if kind == "bdiff" else write_diff_dataset
    write(  # type: ignore[operator]
        path,
        key_on=reader.header.key_on,
        manifest_bytes=manifest_bytes,
        entries=iter(_entries(reader)),
        entry_count=reader.header.entry_count,
    )


def _reseal(kind: str, path: Path, text: bytes, bid: bytes) -> None:
    """Put ``text`` (as long as the manifest there) and the benchmark id ``bid`` in the
    diff at ``path``, and make its header digest over them again: only the carried
    manifest's own checks are left to refuse them."""
    with opened(path) as reader:
        assert len(text) == reader.header.manifest_length
        header = dataclasses.replace(reader.header, benchmark_id=bid)
        index = reader.records.pack()  # type: ignore[attr-defined]
    digest = hashlib.sha256(header.pack_head() + text + index).digest()
    if kind == "bdiff":
        raw = bytearray(path.read_bytes())
        raw[40:72], raw[72:104] = bid, digest
        raw[104 : 104 + len(text)] = text
        path.write_bytes(bytes(raw))
    else:
        doc = json.loads((path / HEADER_NAME).read_text())
        doc["benchmark_id"], doc["header_digest"] = bid.hex(), digest.hex()
        (path / HEADER_NAME).write_text(json.dumps(doc))
        (path / "manifest.json").write_bytes(text)


@pytest.mark.parametrize("kind", ["bdiff", "dataset"])
@pytest.mark.parametrize(
    ("change", "match", "offset"),
    [
        ("indent", "carried manifest is not in canonical form", 104),
        ("root", "carried manifest: root hash does not match", 104),
        ("unclosed", "carried manifest: ", 104),
        ("nul", "holds byte 0x00 at its byte 7, which canonical JSON", 111),
        ("benchmark id", "benchmark id does not match the manifest", 40),
    ],
)
def test_both_readers_refuse_the_same_carried_manifests(
    bdiff: Path, tmp_path: Path, kind: str, change: str, match: str, offset: int
) -> None:
    """Digests all correct: the carried manifest's own checks refuse it, the same in a
    .bdiff and in a diff dataset; only the .bdiff names an offset (a dataset's pieces
    are files)."""
    target = tmp_path / ("x.bdiff" if kind == "bdiff" else "x")
    with opened(bdiff) as reader:
        text, bid = reader.manifest_bytes, reader.header.benchmark_id
        if change == "indent":
            text = json.dumps(json.loads(text), indent=1, sort_keys=True).encode()
        _write_either(kind, target, reader, text)
        root = str(reader.manifest.root).encode()
    if change == "root":
        assert text.count(root) == 1
        text = text.replace(root, root[:-1] + (b"0" if root[-1:] != b"0" else b"1"))
    elif change == "unclosed":
        assert text.endswith(b"}\n")
        text = text[:-2] + b" \n"
    elif change == "nul":
        text = text[:7] + b"\x00" + text[8:]
    elif change == "benchmark id":
        bid = hashlib.sha256(b"another benchmark").digest()
    if change != "indent":
        _reseal(kind, target, text, bid)
    with pytest.raises(DiffFormatError, match=match) as e:
        open_diff(target)
    where = f"diff container, offset {offset}: " if kind == "bdiff" else "diff container: "
    assert str(e.value).startswith(where), str(e.value)


def test_a_manifest_of_fewer_entries_than_the_index_is_refused(bdiff: Path, tmp_path: Path) -> None:
    with opened(bdiff) as reader:
        m = reader.manifest
        fewer = Manifest.build(
            recipe=m.recipe,
            entries=m.entries[:-1],
            fingerprint=m.fingerprint,
            encoder=m.encoder,
            provenance=m.provenance,
        )
        _write_either("bdiff", tmp_path / "x.bdiff", reader, dump_manifest(fewer))
        n = reader.header.entry_count
    with pytest.raises(DiffFormatError, match=f"offset 16: entry count {n} != {n - 1} manifest"):
        open_diff(tmp_path / "x.bdiff")


@pytest.mark.parametrize("kind", ["bdiff", "dataset"])
def test_the_carried_manifest_is_read_without_holding_its_text(tmp_path: Path, kind: str) -> None:
    """Parsed as it is read and hashed: what is held is the packed table and the index
    (0.66 of the text's size here), and the peak stays near it, plus the fixed 1 MiB read
    buffer of ``safefs.open_path``; read whole, the text took 2.66 times its size at the
    peak (its pieces, their join, the parse)."""
    manifest, sealed = many_entries(5000)
    text = dump_manifest(manifest)
    target = tmp_path / ("x.bdiff" if kind == "bdiff" else "x")
    write = write_diff if kind == "bdiff" else write_diff_dataset
    write(target, key_on=KeyOn.FILE, manifest_bytes=text, entries=sealed, entry_count=5000)  # type: ignore[operator]
    open_diff(target).close()  # pyarrow's own first-use allocations are not ours
    tracemalloc.start()
    try:
        reader = open_diff(target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with reader:
        assert reader.manifest == manifest and reader.manifest_bytes == text
    assert peak < 1.25 * len(text) + (1 << 20), f"peak {peak} bytes, {len(text)}-byte manifest"


# -- recipe entries: version 3 -------------------------------------------------------------


@pytest.fixture(scope="module")
def recipe_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The identity benchmark of a tiny original as a diff dataset of recipe entries."""
    work = tmp_path_factory.mktemp("recipe-ds")
    original = tiny_original(work / "original")
    bench, _ = build(original, "identity", work)
    with pinned():
        create_diff(original, bench, work / "ds", entries="auto", format="parquet")
    return work / "ds"


def _kinds(dataset: Path) -> list[str]:
    import pyarrow.parquet as pq

    kinds: list[str] = pq.read_table(_shard(dataset), columns=["kind"]).column(0).to_pylist()
    return kinds


def test_recipe_entries_make_a_version_3_dataset(recipe_dataset: Path, dataset: Path) -> None:
    assert json.loads((recipe_dataset / HEADER_NAME).read_text())["version"] == 3
    assert _kinds(recipe_dataset) == ["recipe"] * 5
    with open_diff_dataset(recipe_dataset) as reader:
        assert reader.header.version == 3
        assert [r.kind for r in reader.records] == [PayloadKind.RECIPE] * 5
    assert (
        "(5; 5 recipe entries, which hold no pixels, 0 deltas, 0 full targets)"
        in (recipe_dataset / "README.md").read_text()
    )
    # the control: without recipe entries, version 2, which older releases read
    assert json.loads((dataset / HEADER_NAME).read_text())["version"] == 2
    assert set(_kinds(dataset)) <= {"delta", "full"}


def _declare_version(dataset: Path, version: int) -> None:
    """Make ``diff.json`` declare ``version``, with its header digest made again over that."""
    with open_diff_dataset(dataset) as reader:
        header = dataclasses.replace(reader.header, version=version)
        index = reader.records.pack()  # type: ignore[attr-defined]
        text = reader.manifest_bytes
    doc = json.loads((dataset / HEADER_NAME).read_text())
    doc["version"] = version
    doc["header_digest"] = hashlib.sha256(header.pack_head() + text + index).hexdigest()
    (dataset / HEADER_NAME).write_text(json.dumps(doc))


def test_recipe_rows_in_a_version_2_dataset_are_refused(
    recipe_dataset: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(recipe_dataset, tmp_path / "ds"))
    declared = (copy / HEADER_NAME).read_text()
    _declare_version(copy, 3)  # as written: the same digest
    assert json.loads((copy / HEADER_NAME).read_text()) == json.loads(declared)
    _declare_version(copy, 2)
    with pytest.raises(
        DiffFormatError,
        match=r"row 0: unknown payload kind 'recipe' in a version 2 diff",
    ) as e:
        open_diff_dataset(copy)
    assert e.value.entry == "a/one.png"
