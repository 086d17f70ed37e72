"""The .bdiff container: layout, bounded parsing, whole-file integrity."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.diff_cases import build, pinned, tiny_original
from toolchain.codec.decode import decode
from toolchain.diff import create_diff
from toolchain.diff.format import (
    HEADER_SIZE,
    INDEX_RECORD_SIZE,
    MAGIC,
    IndexRecord,
    IndexTable,
    PayloadKind,
    SealedEntry,
    benchmark_id,
    spool_entries,
    write_diff,
)
from toolchain.diff.inspect import inspect_diff
from toolchain.diff.reader import open_diff
from toolchain.errors import DiffFormatError
from toolchain.model.hashing import pixel_digest


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    work = tmp_path_factory.mktemp("fmt")
    _, diff = build(tiny_original(work / "original"), "adversarial", work)
    return diff.read_bytes()


def _read_all(path: Path) -> None:
    """Open and read every payload: what ``diff inspect`` does."""
    inspect_diff(path)


def test_layout_matches_the_spec(container: bytes, tmp_path: Path) -> None:
    p = tmp_path / "x.bdiff"
    p.write_bytes(container)
    with open_diff(p) as r:
        assert container[:8] == MAGIC
        version, key_on, aead, codec = struct.unpack_from("<HBBB", container, 8)
        assert (version, key_on, aead, codec) == (2, 0, 1, 1)
        count, mlen, flen = struct.unpack_from("<I4xQQ", container, 16)
        assert count == len(r.manifest.entries) == 5
        assert flen == len(container)
        assert container[HEADER_SIZE : HEADER_SIZE + mlen] == r.manifest_bytes
        first = HEADER_SIZE + mlen + INDEX_RECORD_SIZE * count
        assert r.records[0].offset == first
        assert all(
            a.offset + a.length == b.offset for a, b in zip(r.records, r.records[1:], strict=False)
        )
        assert {rec.kind for rec in r.records} <= set(PayloadKind)


def test_the_index_is_held_as_stored(container: bytes, tmp_path: Path) -> None:
    """88 bytes a record, records made on access (a million entries: 88 MB, no objects)."""
    p = tmp_path / "x.bdiff"
    p.write_bytes(container)
    with open_diff(p) as r:
        count, mlen = struct.unpack_from("<I4xQ", container, 16)
        at = HEADER_SIZE + mlen
        raw = container[at : at + INDEX_RECORD_SIZE * count]
        assert isinstance(r.records, IndexTable) and r.records.pack() == raw
        records = list(r.records)
        assert all(isinstance(x, IndexRecord) for x in records)
        assert b"".join(x.pack() for x in records) == raw
        assert r.records == records and r.records[-1] == records[-1]
        assert r.records[1:3] == tuple(records[1:3])
        with pytest.raises(IndexError):
            r.records[count]
    with pytest.raises(ValueError, match="whole number of records"):
        IndexTable(raw[:-1])


def _sealed(i: int, size: int = 20) -> SealedEntry:
    return SealedEntry(
        index=i,
        kind=PayloadKind.DELTA,
        fingerprint=bytes([i % 256]) * 32,
        sealed=bytes([i % 256]) * size,
    )


def test_spooled_entries_are_packed_records_in_manifest_order(tmp_path: Path) -> None:
    """Payloads come in any order; the records are the index as stored, no objects."""
    with (tmp_path / "spool").open("w+b") as spool:
        spooled = spool_entries(spool, [_sealed(2, 30), _sealed(0), _sealed(1, 17)], 3, 1000)
        assert isinstance(spooled.records, IndexTable)
        first = HEADER_SIZE + 1000 + 3 * INDEX_RECORD_SIZE
        assert [(r.offset, r.length) for r in spooled.records] == [
            (first, 20),
            (first + 20, 17),
            (first + 37, 30),
        ]
        assert spooled.file_length == first + 67
        assert [r.fingerprint for r in spooled.records] == [bytes([i]) * 32 for i in range(3)]
        assert spooled.records[2].sealed_digest == hashlib.sha256(bytes([2]) * 30).digest()
        assert [spooled.payload(i) for i in range(3)] == [
            bytes([i]) * n for i, n in ((0, 20), (1, 17), (2, 30))
        ]
        assert list(spooled.at) == [30, 50, 0]


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([0, 3], "entry index 3 is out of range or repeated"),
        ([0, -1], "entry index -1 is out of range or repeated"),
        ([1, 1], "entry index 1 is out of range or repeated"),
        ([2, 0], "expected 3 entries, got 2"),
    ],
)
def test_spooling_refuses_an_index_out_of_range_repeated_or_missing(
    tmp_path: Path, indices: list[int], message: str
) -> None:
    with (tmp_path / "spool").open("w+b") as spool, pytest.raises(ValueError, match=message):
        spool_entries(spool, [_sealed(i) for i in indices], 3, 1000)


def test_the_manifest_is_written_from_a_file_as_from_bytes(
    container: bytes, tmp_path: Path
) -> None:
    """The writer streams a manifest held in a file: the same container, byte for byte."""
    p = tmp_path / "x.bdiff"
    p.write_bytes(container)
    with open_diff(p) as r:
        text = r.manifest_bytes
        entries = [
            SealedEntry(index=i, kind=rec.kind, fingerprint=rec.fingerprint, sealed=data)
            for (i, data), rec in zip(r.iter_sealed(), r.records, strict=True)
        ]
        key_on = r.header.key_on
    assert benchmark_id(text) == benchmark_id([text[:7], text[7:]]) == benchmark_id(iter([text]))
    with (tmp_path / "manifest").open("w+b") as f:
        f.write(text)
        header = write_diff(
            tmp_path / "y.bdiff",
            key_on=key_on,
            manifest_bytes=f,
            entries=reversed(entries),
            entry_count=len(entries),
        )
    assert (tmp_path / "y.bdiff").read_bytes() == container
    assert header.manifest_length == len(text) and header.benchmark_id == benchmark_id(text)


def test_every_flipped_bit_is_detected(container: bytes, tmp_path: Path) -> None:
    """A sweep over every byte position (one bit each, rotating)."""
    p = tmp_path / "x.bdiff"
    for pos in range(len(container)):
        data = bytearray(container)
        data[pos] ^= 1 << (pos % 8)
        p.write_bytes(bytes(data))
        with pytest.raises(DiffFormatError):
            _read_all(p)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pos=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_flipped_bit_is_detected_with_entry_or_offset(
    container: bytes, tmp_path: Path, pos: int, bit: int
) -> None:
    pos %= len(container)
    data = bytearray(container)
    data[pos] ^= 1 << bit
    p = tmp_path / "h.bdiff"
    p.write_bytes(bytes(data))
    with pytest.raises(DiffFormatError) as e:
        _read_all(p)
    assert e.value.offset is not None or e.value.entry is not None
    if pos >= open_diff_payload_start(container):
        assert e.value.entry is not None  # a payload flip names its sample


def open_diff_payload_start(container: bytes) -> int:
    count, mlen = struct.unpack_from("<I4xQ", container, 16)
    return HEADER_SIZE + mlen + INDEX_RECORD_SIZE * count


@pytest.mark.parametrize("keep", [0, 7, 50, HEADER_SIZE, HEADER_SIZE + 100, -1])
def test_truncated_container_names_the_offset(container: bytes, tmp_path: Path, keep: int) -> None:
    cut = len(container) - 1 if keep == -1 else keep
    p = tmp_path / "t.bdiff"
    p.write_bytes(container[:cut])
    with pytest.raises(DiffFormatError, match="truncated") as e:
        open_diff(p)
    assert e.value.offset == cut
    assert f"offset {cut}" in str(e.value)


def test_declared_lengths_are_bounded_before_reading(container: bytes, tmp_path: Path) -> None:
    data = bytearray(container)
    struct.pack_into("<Q", data, 24, 1 << 40)  # manifest length: 1 TiB
    p = tmp_path / "big.bdiff"
    p.write_bytes(bytes(data))
    with pytest.raises(DiffFormatError, match="manifest length") as e:
        open_diff(p)
    assert e.value.offset == 24


def test_bad_magic_and_version(container: bytes, tmp_path: Path) -> None:
    p = tmp_path / "m.bdiff"
    p.write_bytes(b"PK\x03\x04" + container[4:])
    with pytest.raises(DiffFormatError, match="bad magic"):
        open_diff(p)
    data = bytearray(container)
    data[8] = 9
    p.write_bytes(bytes(data))
    with pytest.raises(DiffFormatError, match="unknown container version 9"):
        open_diff(p)


def test_appended_bytes_are_refused(container: bytes, tmp_path: Path) -> None:
    p = tmp_path / "a.bdiff"
    p.write_bytes(container + b"\x00")
    with pytest.raises(DiffFormatError, match="declares"):
        open_diff(p)


@pytest.mark.parametrize(("recipe", "entries"), [("identity", "delta"), ("gaussian-noise", "auto")])
def test_the_specs_reimplementation_opens_a_real_container(
    tmp_path: Path, recipe: str, entries: str
) -> None:
    """The Python block at the end of docs/diff-format.md, run against a container we wrote:
    a delta's body, and a recipe entry's shape, which the spec's own gaussian-noise turns,
    from the decoded original alone, into the pixels the manifest commits to."""
    doc = (Path(__file__).parents[2] / "docs" / "diff-format.md").read_text()
    code = doc.rsplit("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "diff-format.md", "exec"), namespace)
    original = tiny_original(tmp_path / "original")
    _, diff = build(original, recipe, tmp_path, entries=entries)
    with open_diff(diff) as r:
        made_by = r.manifest.recipe
        for i, entry in enumerate(r.manifest.entries):
            data = (original / entry.id).read_bytes()
            kind, shape, body = namespace["open_sample"](diff.read_bytes(), i, entry.id, data)
            pixels = decode(data)
            if entries == "delta":
                assert kind == PayloadKind.DELTA and shape == pixels.shape
                assert body == bytes(len(body)) and len(body) > 0  # identity: an all-zero delta
                continue
            assert (kind, body) == (PayloadKind.RECIPE, b"")
            made = namespace["gaussian_noise"](
                pixels, entry.id, made_by.seed, made_by.params["sigma"]
            )
            assert made.shape == shape and pixel_digest(made) == entry.pixels, entry.id


# -- a payload read by the process that rebuilds it ----------------------------------------


def test_a_sealed_span_reads_and_checks_what_the_reader_checked(
    container: bytes, tmp_path: Path
) -> None:
    p = tmp_path / "x.bdiff"
    p.write_bytes(container)
    with open_diff(p) as r:
        n = len(r.records)
        spans = [r.sealed_span(i) for i in range(n)]
        assert all(s is not None for s in spans)
        payloads = [r.read_sealed(i) for i in range(n)]
        # what a worker receives (pickled), read in that worker, is the checked payload
        travelled = [pickle.loads(pickle.dumps(s)) for s in spans]
        assert [s.read() for s in travelled] == payloads
        first, last = spans[0], spans[-1]
        assert first is not None and last is not None

        # a flipped byte in place (the same file): refused, naming the entry and offset
        data = bytearray(container)
        data[last.offset + 5] ^= 0x10
        with open(p, "r+b") as f:
            f.write(bytes(data))
        with pytest.raises(DiffFormatError, match="payload digest mismatch") as e:
            last.read()
        assert e.value.entry == r.manifest.entries[n - 1].id
        assert e.value.offset == last.offset
        # cut short in place: refused as truncated, at the offset where the bytes end
        os.truncate(p, last.offset + 10)
        with pytest.raises(DiffFormatError, match="truncated") as e:
            last.read()
        assert e.value.offset == last.offset + 10
        assert first.read() == payloads[0]  # the entries before the cut still read

        # a span of another file (as if the path now named one): refused before reading
        other = dataclasses.replace(first, file=(first.file[0], first.file[1] + 1))
        with pytest.raises(DiffFormatError, match="replaced while the run read it"):
            other.read()


def test_a_sealed_span_reads_the_opened_file_after_another_is_put_at_its_path(
    container: bytes, tmp_path: Path
) -> None:
    p = tmp_path / "x.bdiff"
    p.write_bytes(container)
    with open_diff(p) as r:
        span = r.sealed_span(1)
        assert span is not None
        payload = r.read_sealed(1)
        swap = tmp_path / "swap"
        swap.write_bytes(bytes(len(container)))
        os.replace(swap, p)
        if span.path.startswith("/proc/"):
            # Linux: reached through the reader's open descriptor, the checked file
            assert span.read() == payload
        else:
            with pytest.raises(DiffFormatError, match="replaced while the run read it"):
                span.read()


# -- version 3: recipe entries ---------------------------------------------------------------


@pytest.fixture(scope="module")
def by_kind(tmp_path_factory: pytest.TempPathFactory) -> dict[PayloadKind, bytes]:
    """The identity benchmark of a tiny original, as recipe entries and as deltas."""
    work = tmp_path_factory.mktemp("v3")
    original = tiny_original(work / "original")
    bench, diff = build(original, "identity", work)
    with pinned():
        create_diff(original, bench, work / "recipe.bdiff", entries="auto")
    return {
        PayloadKind.RECIPE: (work / "recipe.bdiff").read_bytes(),
        PayloadKind.DELTA: diff.read_bytes(),
    }


def _as_version(container: bytes, version: int) -> bytes:
    """``container`` declaring ``version``, its header digest made again over that: only
    what the version allows is left to refuse it."""
    data = bytearray(container)
    struct.pack_into("<H", data, 8, version)
    count, mlen = struct.unpack_from("<I4xQ", data, 16)
    end = HEADER_SIZE + mlen + INDEX_RECORD_SIZE * count
    data[72:104] = hashlib.sha256(bytes(data[:72]) + bytes(data[HEADER_SIZE:end])).digest()
    return bytes(data)


@pytest.mark.parametrize(
    ("kind", "version", "refused"),
    [
        (PayloadKind.RECIPE, 3, None),
        (PayloadKind.RECIPE, 2, "unknown payload kind 3 in a version 2 container"),
        (PayloadKind.DELTA, 2, None),
        (PayloadKind.DELTA, 3, None),  # version 3 may hold no recipe entry (none is written)
    ],
    ids=["recipe entries, v3", "recipe entries, v2", "deltas, v2", "deltas, v3"],
)
def test_recipe_entries_are_read_in_version_3_containers_only(
    by_kind: dict[PayloadKind, bytes],
    tmp_path: Path,
    kind: PayloadKind,
    version: int,
    refused: str | None,
) -> None:
    container = by_kind[kind]
    written = struct.unpack_from("<H", container, 8)[0]
    assert written == (3 if kind is PayloadKind.RECIPE else 2)  # the oldest that reads it
    assert _as_version(container, written) == container  # the digest is made as written
    p = tmp_path / "x.bdiff"
    p.write_bytes(_as_version(container, version))
    if refused is not None:
        with pytest.raises(DiffFormatError, match=refused) as e:
            _read_all(p)
        (mlen,) = struct.unpack_from("<Q", container, 24)
        assert e.value.offset == HEADER_SIZE + mlen + 16  # the first record's kind
        assert e.value.entry == "a/one.png"
        return
    _read_all(p)
    with open_diff(p) as r:
        assert r.header.version == version
        assert [rec.kind for rec in r.records] == [kind] * 5
        assert all((rec.length == 28) == (kind is PayloadKind.RECIPE) for rec in r.records)
