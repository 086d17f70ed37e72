"""The ``.bdiff`` container: byte layout, a deterministic writer, a bounded reader that
raises :class:`~toolchain.errors.DiffFormatError` naming the entry and byte offset.
Specified byte for byte, with the checks and their order, in ``docs/diff-format.md``."""

from __future__ import annotations

import enum
import hashlib
import io
import os
import struct
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from toolchain._internal import safefs
from toolchain._internal.atomic import TMP_PREFIX
from toolchain._internal.packed import MadeOnAccess
from toolchain.errors import DiffFormatError, ManifestError, OutputError, os_error_text
from toolchain.model.limits import shown
from toolchain.model.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    dump_manifest,
    iter_manifest,
    read_manifest,
)

__all__ = [
    "AEAD_AES_256_GCM_SIV",
    "CODEC_ZSTD",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "INDEX_RECORD_SIZE",
    "MAGIC",
    "MAX_CONTAINER_BYTES",
    "MAX_ENTRIES",
    "MAX_SEALED_BYTES",
    "READABLE_VERSIONS",
    "REFETCH_HINT",
    "DiffReader",
    "Header",
    "IndexRecord",
    "IndexTable",
    "KeyOn",
    "PayloadKind",
    "SealedEntry",
    "SealedSpan",
    "Spooled",
    "benchmark_id",
    "check_payload",
    "check_sizes",
    "container_version",
    "manifest_length",
    "manifest_pieces",
    "spool_entries",
    "write_diff",
]

MAGIC = b"\x89BDIFF\r\n"
"""8 bytes; the high byte and CR LF catch 7-bit and text-mode transfers, as in PNG."""
FORMAT_VERSION = 3
"""The newest version written: 3 when a container holds a recipe entry, else 2."""
READABLE_VERSIONS = (2, 3)
"""2: locating fingerprints are salted with the benchmark id (1: unsalted).
3: as 2, with recipe entries (:attr:`PayloadKind.RECIPE`)."""
AEAD_AES_256_GCM_SIV = 1
CODEC_ZSTD = 1
HEADER_SIZE = 104
REFETCH_HINT = "download the .bdiff again and compare its checksum"
"""What a reader suggests when a digest shows the file is not what was published."""
INDEX_RECORD_SIZE = 88
MAX_ENTRIES = 1 << 24
"""At most 16 Mi entries per container."""
MAX_SEALED_BYTES = 1 << 30
"""At most 1 GiB per sealed payload (a 128 Mi-pixel RGBA image is 512 MiB raw)."""
MAX_CONTAINER_BYTES = (
    HEADER_SIZE + MAX_MANIFEST_BYTES + (INDEX_RECORD_SIZE + MAX_SEALED_BYTES) * MAX_ENTRIES
)
"""The largest container the format allows (no other bound: the header's are checked)."""
_MAX_READ = 1 << 30
_MIN_SEALED = 16
"""A sealed payload is longer than its 16-byte tag."""

BENCHMARK_ID_DOMAIN = b"benchmark-regen/diff/benchmark-id/v1\n"
_MANIFEST_BASE = 1 << 20
_MANIFEST_PER_ENTRY = 1 << 14
"""A manifest is at most 1 MiB plus 16 KiB per entry: checked before it is read."""
_MIN_ENTRY_BYTES = 256
"""Every entry takes at least this much of a canonical manifest (three digests of 71
characters, the id, the path, the keys and the indentation: 345 bytes for a one-letter
id), so the index (88 bytes per entry) is never larger than the manifest."""
_TEXT = bytes([0x0A, *range(0x20, 0x7F)])
"""The bytes a canonical manifest is made of (ASCII JSON, indented, ``ensure_ascii``)."""

_HEAD = struct.Struct("<8sHBBB3xIIQQ32s")  # everything up to the header digest: 72 bytes
_RECORD = struct.Struct("<QQB7x32s32s")
_OFFSET = _LENGTH = struct.Struct("<Q")  # a record's first two fields
_PIECE = 1 << 20
"""The pieces a manifest held in a file is read in."""
assert _HEAD.size + 32 == HEADER_SIZE
assert _RECORD.size == INDEX_RECORD_SIZE


class KeyOn(enum.StrEnum):
    """What the per-sample key is derived from (see ``docs/diff-format.md``)."""

    FILE = "file"
    PIXELS = "pixels"


_KEY_ON_CODE = {KeyOn.FILE: 0, KeyOn.PIXELS: 1}


class PayloadKind(enum.IntEnum):
    DELTA = 1
    """Residuals ``(target - original) mod 256`` against the decoded original."""
    FULL = 2
    """The target pixels themselves (shape changed, or smaller than the delta)."""
    RECIPE = 3
    """No pixels: the manifest's built-in recipe, run on the decoded original, makes the
    target (``docs/diff-format.md``, "Recipe entries"). Version 3 containers only."""


def container_version(kinds: Iterable[PayloadKind]) -> int:
    """The version a container of these entries is written as: the oldest that reads it
    (2 without recipe entries, so that such a diff stays readable by older releases)."""
    return 3 if PayloadKind.RECIPE in kinds else 2


def benchmark_id(manifest_bytes: bytes | Iterable[bytes]) -> bytes:
    """The HKDF salt: SHA-256 over a domain string and the canonical manifest bytes
    (given whole, or in pieces)."""
    digest = hashlib.sha256(BENCHMARK_ID_DOMAIN)
    for piece in [manifest_bytes] if isinstance(manifest_bytes, bytes) else manifest_bytes:
        digest.update(piece)
    return digest.digest()


@dataclass(frozen=True, kw_only=True, slots=True)
class Header:
    version: int
    key_on: KeyOn
    entry_count: int
    manifest_length: int
    file_length: int
    benchmark_id: bytes

    @property
    def index_offset(self) -> int:
        return HEADER_SIZE + self.manifest_length

    @property
    def payload_offset(self) -> int:
        return self.index_offset + INDEX_RECORD_SIZE * self.entry_count

    def pack_head(self) -> bytes:
        return _HEAD.pack(
            MAGIC,
            self.version,
            _KEY_ON_CODE[self.key_on],
            AEAD_AES_256_GCM_SIV,
            CODEC_ZSTD,
            self.entry_count,
            0,
            self.manifest_length,
            self.file_length,
            self.benchmark_id,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexRecord:
    """One entry of the index: where its sealed payload is, and how to find its original."""

    offset: int
    length: int
    kind: PayloadKind
    fingerprint: bytes
    """Locates the original by content; domain-separated from the key derivation."""
    sealed_digest: bytes
    """SHA-256 of the sealed payload bytes (tag included)."""

    def pack(self) -> bytes:
        return _RECORD.pack(
            self.offset, self.length, int(self.kind), self.fingerprint, self.sealed_digest
        )


class IndexTable(MadeOnAccess[IndexRecord]):
    """The index as stored (88 bytes a record), records made on access: a reader of a
    diff of a million entries holds 88 MB, not a million objects."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes | bytearray):
        """``raw``: the records as stored; a ``bytearray`` is adopted, never changed."""
        if len(raw) % INDEX_RECORD_SIZE:
            raise ValueError("the index is not a whole number of records")
        self._raw = raw

    def __len__(self) -> int:
        return len(self._raw) // INDEX_RECORD_SIZE

    def _item(self, i: int) -> IndexRecord:
        off, length, kind, fp, sd = _RECORD.unpack_from(self._raw, i * INDEX_RECORD_SIZE)
        return IndexRecord(
            offset=off, length=length, kind=PayloadKind(kind), fingerprint=fp, sealed_digest=sd
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IndexTable):
            return self._raw == other._raw
        return super().__eq__(other)

    __hash__ = None

    def pack(self) -> bytes | bytearray:
        """The index bytes, as a ``.bdiff`` stores them."""
        return self._raw


# -- writing ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class SealedEntry:
    """One sealed payload for the entry at ``index`` of the manifest."""

    index: int
    kind: PayloadKind
    fingerprint: bytes
    sealed: bytes


@dataclass(frozen=True, slots=True)
class Spooled:
    """Sealed payloads spooled to a file as they came, and their index records.

    ``records`` are in manifest order with the offsets a ``.bdiff`` of these entries
    gives them; ``file_length`` is where that ``.bdiff`` ends.
    """

    spool: BinaryIO
    at: Sequence[int]
    """Offset of each entry's payload in ``spool``, by manifest index."""
    records: IndexTable
    file_length: int

    def payload(self, index: int) -> bytes:
        """The sealed payload of the entry at ``index``, read back from the spool."""
        return _read_exact(self.spool, self.at[index], self.records[index].length, "the spool")


def spool_entries(
    spool: BinaryIO, entries: Iterable[SealedEntry], entry_count: int, manifest_length: int
) -> Spooled:
    """Write each entry's payload to ``spool`` as it comes (any order, each index once),
    keeping only its packed record; then fix every record's offset in manifest order.

    Memory holds one payload and 97 bytes per entry (its spool offset, its record as the
    index stores it, a flag), no object. Raises ``ValueError`` for an index out of range
    or repeated, or a count other than ``entry_count``.
    """
    at = array("Q", [0]) * entry_count  # index -> spool offset
    packed = bytearray(INDEX_RECORD_SIZE * entry_count)  # index -> record, offset 0 for now
    seen = bytearray(entry_count)
    spooled = end = 0
    for entry in entries:
        i = entry.index
        if not 0 <= i < entry_count or seen[i]:
            raise ValueError(f"entry index {i} is out of range or repeated")
        spool.write(entry.sealed)
        seen[i] = 1
        at[i] = end
        _RECORD.pack_into(
            packed,
            i * INDEX_RECORD_SIZE,
            0,
            len(entry.sealed),
            int(entry.kind),
            entry.fingerprint,
            hashlib.sha256(entry.sealed).digest(),
        )
        spooled += 1
        end += len(entry.sealed)
    if spooled != entry_count:
        raise ValueError(f"expected {entry_count} entries, got {spooled}")
    offset = HEADER_SIZE + manifest_length + INDEX_RECORD_SIZE * entry_count
    for i in range(entry_count):
        _OFFSET.pack_into(packed, i * INDEX_RECORD_SIZE, offset)
        offset += _LENGTH.unpack_from(packed, i * INDEX_RECORD_SIZE + 8)[0]
    records = IndexTable(packed)  # adopted: no copy
    return Spooled(spool=spool, at=at, records=records, file_length=offset)


def manifest_pieces(manifest: bytes | BinaryIO) -> Iterator[bytes]:
    """The manifest's bytes: ``manifest`` itself, or a file's, read from its start."""
    if isinstance(manifest, bytes):
        yield manifest
        return
    manifest.seek(0)
    while piece := manifest.read(_PIECE):
        yield piece


def _benchmark_id(manifest: bytes | BinaryIO, known: bytes | None) -> bytes:
    return known if known is not None else benchmark_id(manifest_pieces(manifest))


def manifest_length(manifest: bytes | BinaryIO) -> int:
    """How many bytes :func:`manifest_pieces` gives."""
    return len(manifest) if isinstance(manifest, bytes) else manifest.seek(0, os.SEEK_END)


def write_diff(
    path: Path,
    *,
    key_on: KeyOn,
    manifest_bytes: bytes | BinaryIO,
    entries: Iterable[SealedEntry],
    entry_count: int,
    benchmark_id: bytes | None = None,
) -> Header:
    """Write a container from sealed entries, given in any order (each index once).

    ``manifest_bytes``: the canonical manifest's bytes, or a file holding them (read from
    its start, in pieces, never held whole); ``benchmark_id``: theirs, when the caller
    has it already (else computed here). Payloads are spooled to an unnamed temporary
    file next to ``path`` as they come (memory holds one payload and one packed record per
    entry), then header, manifest, index and the payloads in manifest order are written
    by :func:`safefs.write_file` (an exclusive, randomly named temporary file renamed over
    ``path``: a link at ``path`` is replaced, never written through). The bytes depend
    only on the entries.
    """
    path = Path(path)
    length = manifest_length(manifest_bytes)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent, prefix=TMP_PREFIX) as sp:
            spooled = spool_entries(sp, entries, entry_count, length)
            header = Header(
                version=container_version(r.kind for r in spooled.records),
                key_on=key_on,
                entry_count=entry_count,
                manifest_length=length,
                file_length=spooled.file_length,
                benchmark_id=_benchmark_id(manifest_bytes, benchmark_id),
            )
            head = header.pack_head()
            index = spooled.records.pack()
            digest = hashlib.sha256(head)
            for piece in manifest_pieces(manifest_bytes):
                digest.update(piece)
            digest.update(index)

            def pieces() -> Iterator[bytes | bytearray]:
                yield head
                yield digest.digest()
                yield from manifest_pieces(manifest_bytes)
                yield index
                for i in range(entry_count):
                    yield spooled.payload(i)

            safefs.write_file(path.parent, path.name, pieces(), durable=True)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {os_error_text(e)}") from None
    return header


# -- reading ---------------------------------------------------------------------------


def _read_exact(
    f: BinaryIO, offset: int, length: int, what: str, entry: str | None = None
) -> bytes:
    f.seek(offset)
    data = f.read(length)
    if len(data) != length:
        raise DiffFormatError(
            f"truncated: {what} needs {length} bytes, only {len(data)} remain",
            offset=offset + len(data),
            entry=entry,
        )
    return data


def _read_at(fd: int, offset: int, length: int, what: str, entry: str | None = None) -> bytes:
    """``length`` bytes at ``offset`` of ``fd`` (``pread``: no shared file position)."""
    pieces, at, end = [], offset, offset + length
    while at < end:
        piece = os.pread(fd, min(end - at, _MAX_READ), at)
        if not piece:
            break
        pieces.append(piece)
        at += len(piece)
    if at != end:
        raise DiffFormatError(
            f"truncated: {what} needs {length} bytes, only {at - offset} remain",
            offset=at,
            entry=entry,
        )
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _Sink(Protocol):
    """What bytes are fed to as they pass: a running digest."""

    def update(self, data: bytes, /) -> None: ...


class _Passing(io.RawIOBase):
    """The manifest's bytes on their way from the file to the parser, never held whole:
    each piece is refused at the first byte canonical JSON text never holds (a file's
    holes, in a sparse file declaring a huge manifest, read as NUL, so memory follows the
    bytes really there) and fed to ``sinks`` (the digests) as it passes. ``read_at(offset,
    size)`` gives the file's bytes at ``offset`` (asked for in order, from ``start`` until
    ``length`` bytes have passed); ``where`` turns a file offset into the one an error names
    (``None``: none)."""

    def __init__(
        self,
        read_at: Callable[[int, int], bytes],
        start: int,
        length: int,
        sinks: Sequence[_Sink],
        where: Callable[[int], int | None],
    ):
        self._read_at, self._sinks, self._where = read_at, sinks, where
        self._start, self._at, self._end = start, start, start + length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._end - self._at
        if not left:
            return 0
        chunk = self._read_at(self._at, min(len(buffer), left, _MANIFEST_BASE))
        if not chunk:
            raise DiffFormatError(
                f"truncated: the manifest needs {self._end - self._start} bytes, only "
                f"{self._at - self._start} remain",
                offset=self._where(self._at),
            )
        odd = chunk.translate(None, _TEXT)
        if odd:
            at = self._at + min(chunk.index(b) for b in set(odd))
            raise DiffFormatError(
                f"the manifest holds byte 0x{odd[0]:02x} at its byte {at - self._start}, "
                "which canonical JSON text never does (a NUL: a hole in a sparse file?)",
                offset=self._where(at),
            )
        for sink in self._sinks:
            sink.update(chunk)
        n = len(chunk)
        memoryview(buffer).cast("B")[:n] = chunk
        self._at += n
        return n

    def drain(self) -> None:
        """Pass what the parser left unread (after an error, or trailing bytes) to the sinks."""
        scratch = bytearray(min(self._end - self._at, _MANIFEST_BASE))
        while self._at < self._end:
            self.readinto(scratch)


def _parse_header(raw: bytes, actual_size: int) -> tuple[Header, bytes]:
    (magic, version, key_code, aead, codec, count, reserved, mlen, flen, bid) = _HEAD.unpack(
        raw[: _HEAD.size]
    )
    if magic != MAGIC:
        raise DiffFormatError(
            "not a .bdiff container (bad magic)",
            offset=0,
            hint="pass the .bdiff file the publisher gave you",
        )
    if version not in READABLE_VERSIONS:
        raise DiffFormatError(
            f"unknown container version {version} (this version reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))})",
            offset=8,
            hint="upgrade benchmark-regen",
        )
    codes = {v: k for k, v in _KEY_ON_CODE.items()}
    if key_code not in codes:
        raise DiffFormatError(f"unknown key_on code {key_code}", offset=10)
    if aead != AEAD_AES_256_GCM_SIV:
        raise DiffFormatError(f"unknown AEAD code {aead}", offset=11)
    if codec != CODEC_ZSTD:
        raise DiffFormatError(f"unknown codec code {codec}", offset=12)
    if raw[13:16] != b"\x00\x00\x00" or reserved != 0:
        raise DiffFormatError("reserved header bytes are not zero", offset=13)
    if flen != actual_size:
        raise DiffFormatError(
            f"truncated or padded: header declares {flen} bytes, the file has {actual_size}",
            offset=min(flen, actual_size),
            hint=REFETCH_HINT,
        )
    check_sizes(entry_count=count, manifest_length=mlen, file_length=flen, where=lambda at: at)
    header = Header(
        version=version,
        key_on=codes[key_code],
        entry_count=count,
        manifest_length=mlen,
        file_length=flen,
        benchmark_id=bid,
    )
    return header, raw[_HEAD.size : HEADER_SIZE]


def check_sizes(
    *,
    entry_count: int,
    manifest_length: int,
    file_length: int,
    where: Callable[[int], int | None],
) -> None:
    """The sizes a header declares (a ``.bdiff``'s, or a diff dataset's ``diff.json``), each
    within the format's bounds and fitting the others, before any is used;
    :class:`DiffFormatError` naming the header field (``where`` turns its offset in a
    ``.bdiff`` header into the one an error names) if not."""
    count, mlen, flen = entry_count, manifest_length, file_length
    if not 0 <= count <= MAX_ENTRIES:
        raise DiffFormatError(
            f"entry count {shown(count, 40)} is not in 0..{MAX_ENTRIES}", offset=where(16)
        )
    most = min(MAX_MANIFEST_BYTES, _MANIFEST_BASE + _MANIFEST_PER_ENTRY * count)
    if not 0 <= mlen <= most:
        raise DiffFormatError(
            f"manifest length {shown(mlen, 40)} is implausible for {count} entries (at most "
            f"{_MANIFEST_BASE} + {_MANIFEST_PER_ENTRY} bytes per entry)",
            offset=where(24),
        )
    if count * _MIN_ENTRY_BYTES > mlen:
        raise DiffFormatError(
            f"{count} entries cannot fit in a manifest of {mlen} bytes (each takes at least "
            f"{_MIN_ENTRY_BYTES})",
            offset=where(16),
        )
    payloads = HEADER_SIZE + mlen + INDEX_RECORD_SIZE * count
    least, largest = payloads + (_MIN_SEALED + 1) * count, payloads + MAX_SEALED_BYTES * count
    if not least <= flen <= largest:
        raise DiffFormatError(
            f"file length {shown(flen, 40)} does not fit the manifest ({mlen} bytes) and the "
            f"index and payloads of {count} entries (it must be in {least}..{largest})",
            offset=where(32),
        )


def check_payload(
    data: bytes,
    digest: bytes,
    entry: str,
    *,
    offset: int | None = None,
    hint: str = REFETCH_HINT,
) -> bytes:
    """``data``, once its SHA-256 is the ``digest`` its checked index gives entry ``entry``
    (:class:`DiffFormatError` naming the entry, and ``offset`` where there is one, if not)."""
    if hashlib.sha256(data).digest() != digest:
        raise DiffFormatError(
            "payload digest mismatch: the payload is corrupt", offset=offset, entry=entry, hint=hint
        )
    return data


@dataclass(frozen=True, slots=True)
class SealedSpan:
    """Where one sealed payload lies in a ``.bdiff``, and the digest its index gives it.

    A rebuild task on this machine carries this, not the payload: the process that
    rebuilds the entry reads the bytes itself, so they cross no pipe. It reads the file
    the diff was opened from, and the digest comes from the index checked then: what is
    used is what was checked, or the read is refused.
    """

    path: str
    """Where the opened diff is reached: the reader's open descriptor under ``/proc``
    (the same file even if another is put at its path), or else its path."""
    file: tuple[int, int]
    """The opened diff's ``(st_dev, st_ino)``: any other file is refused."""
    offset: int
    length: int
    digest: bytes
    entry: str

    def read(self) -> bytes:
        """The payload, checked against its digest (:class:`DiffFormatError` if not)."""
        try:
            # A regular file only, opened without blocking: a FIFO put at the path since it
            # was opened cannot hang us (nor any file but the opened one be read).
            with safefs.open_path(Path(self.path), limit=MAX_CONTAINER_BYTES) as f:
                st = os.fstat(f.fileno())
                if (st.st_dev, st.st_ino) != self.file:
                    raise DiffFormatError(
                        "the diff file was replaced while the run read it",
                        entry=self.entry,
                        hint="leave the diff in place until the run ends, then run it again",
                    )
                data = _read_at(f.fileno(), self.offset, self.length, "the payload", self.entry)
        except OSError as e:
            raise DiffFormatError(
                f"cannot read the diff again: {os_error_text(e)}", entry=self.entry
            ) from None
        return check_payload(data, self.digest, self.entry, offset=self.offset)


class DiffReader:
    """An opened, integrity-checked container, read through one file handle.

    What it hands out is a copy checked against the header or index digest (a
    :class:`SealedSpan` checks what it reads), so what was checked is what is used
    ("Integrity and bounds" in ``docs/diff-format.md``). A context manager (or :meth:`close`).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            # A regular file only, opened without blocking: a FIFO cannot hang us. Read at
            # offsets (pread) through its descriptor, never through the file's buffer.
            self._f = safefs.open_path(self.path, limit=MAX_CONTAINER_BYTES)
        except FileNotFoundError:
            raise DiffFormatError(f"{self.path} does not exist") from None
        except OSError as e:
            raise DiffFormatError(f"cannot read {self.path}: {os_error_text(e)}") from None
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        fd = self._f.fileno()
        try:
            st = os.fstat(fd)
            self._identity = (st.st_dev, st.st_ino)
            # Where a process on this machine opens this same file again (sealed_span).
            again = f"/proc/{os.getpid()}/fd/{fd}"
            self._again = again if os.path.exists(again) else os.path.abspath(self.path)
            head = _read_at(fd, 0, HEADER_SIZE, "the header")
            self.header, stored_digest = _parse_header(head, st.st_size)
            h = self.header
            # The manifest is parsed as it is read and hashed, never held whole (its
            # canonical bytes are made again from the parsed one when needed).
            digest = hashlib.sha256(head[: _HEAD.size])
            parsed, text_id = self._read_carried(
                lambda at, n: os.pread(fd, n, at), HEADER_SIZE, h.manifest_length, digest
            )
            index = _read_at(fd, h.index_offset, INDEX_RECORD_SIZE * h.entry_count, "the index")
        except OSError as e:
            raise DiffFormatError(f"cannot read {self.path}: {os_error_text(e)}") from None
        digest.update(index)
        if digest.digest() != stored_digest:
            raise DiffFormatError(
                "header digest mismatch: the header, manifest or index is corrupt",
                offset=_HEAD.size,
                hint=REFETCH_HINT,
            )
        self.manifest = self._carried_manifest(parsed, text_id)
        self._check_index(index)
        self.records: Sequence[IndexRecord] = IndexTable(index)

    @property
    def manifest_bytes(self) -> bytes:
        """The carried manifest's bytes: canonical, so :func:`dump_manifest` of the parsed
        manifest gives them again (the reader does not hold them)."""
        return dump_manifest(self.manifest)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> DiffReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self, offset: int) -> int | None:
        """The offset an error names for a byte at ``offset`` of the file read."""
        return offset

    def _read_carried(
        self, read_at: Callable[[int, int], bytes], start: int, length: int, digest: _Sink
    ) -> tuple[Manifest | ManifestError, bytes]:
        """The carried manifest at ``start`` (``read_at(offset, size)`` reads the file, in
        order), parsed as it is read (never held whole), every byte fed to ``digest``; and
        :func:`benchmark_id` of the bytes read. A parse error is returned, not raised: it
        waits until ``digest`` has been checked, which names corruption first."""
        text_id = hashlib.sha256(BENCHMARK_ID_DOMAIN)
        passing = _Passing(read_at, start, length, (digest, text_id), self._where)
        parsed: Manifest | ManifestError
        try:
            parsed = read_manifest(io.BufferedReader(passing, 1 << 16))
        except ManifestError as e:
            parsed = e
        passing.drain()
        return parsed, text_id.digest()

    def _carried_manifest(self, parsed: Manifest | ManifestError, text_id: bytes) -> Manifest:
        """The carried manifest, once it parsed, is canonical (its bytes are made again
        from it: the same SHA-256 and length) and matches the header. ``text_id`` is
        :func:`benchmark_id` of the bytes read (see :meth:`_read_carried`)."""
        h, at = self.header, self._where(HEADER_SIZE)
        if isinstance(parsed, ManifestError):
            raise DiffFormatError(f"carried manifest: {parsed.message}", offset=at)
        manifest = parsed
        again, size = hashlib.sha256(BENCHMARK_ID_DOMAIN), 0
        for chunk in iter_manifest(manifest):
            again.update(chunk)
            size += len(chunk)
        if size != h.manifest_length or again.digest() != text_id:
            raise DiffFormatError("carried manifest is not in canonical form", offset=at)
        if not manifest.root_is_consistent():
            raise DiffFormatError("carried manifest: root hash does not match", offset=at)
        if text_id != h.benchmark_id:
            raise DiffFormatError(
                "benchmark id does not match the manifest", offset=self._where(40)
            )
        if len(manifest.entries) != h.entry_count:
            raise DiffFormatError(
                f"entry count {h.entry_count} != {len(manifest.entries)} manifest entries",
                offset=self._where(16),
            )
        return manifest

    def _check_index(self, index: bytes) -> None:
        h = self.header
        expected = h.payload_offset
        entries = self.manifest.entries
        for i in range(len(entries)):
            at = h.index_offset + i * INDEX_RECORD_SIZE
            off, length, kind, _, _ = _RECORD.unpack_from(index, i * INDEX_RECORD_SIZE)
            if index[i * INDEX_RECORD_SIZE + 17 : i * INDEX_RECORD_SIZE + 24] != bytes(7):
                raise DiffFormatError(
                    "reserved index bytes are not zero", offset=at + 17, entry=entries[i].id
                )
            if kind not in PayloadKind._value2member_map_ or (
                kind == PayloadKind.RECIPE and h.version < 3
            ):
                raise DiffFormatError(
                    f"unknown payload kind {kind} in a version {h.version} container",
                    offset=at + 16,
                    entry=entries[i].id,
                )
            if off != expected:
                raise DiffFormatError(
                    f"payload offset {off} != {expected} (payloads must be contiguous)",
                    offset=at,
                    entry=entries[i].id,
                )
            if not _MIN_SEALED < length <= MAX_SEALED_BYTES or off + length > h.file_length:
                raise DiffFormatError(
                    f"payload length {length} is out of bounds", offset=at + 8, entry=entries[i].id
                )
            expected = off + length
        if expected != h.file_length:
            raise DiffFormatError(
                f"{h.file_length - expected} bytes after the last payload", offset=expected
            )

    def read_sealed(self, i: int) -> bytes:
        """The sealed payload of entry ``i``: read once, checked against its index digest."""
        record, sample_id = self.records[i], self.manifest.entries[i].id
        try:
            data = _read_at(
                self._f.fileno(), record.offset, record.length, "the payload", sample_id
            )
        except OSError as e:
            raise DiffFormatError(
                f"cannot read {self.path}: {os_error_text(e)}", entry=sample_id
            ) from None
        return check_payload(data, record.sealed_digest, sample_id, offset=record.offset)

    def sealed_span(self, i: int) -> SealedSpan | None:
        """Where entry ``i``'s sealed payload lies, for a process on this machine to read
        and check itself (``None`` when it cannot be read on its own: read it here)."""
        record = self.records[i]
        return SealedSpan(
            path=self._again,
            file=self._identity,
            offset=record.offset,
            length=record.length,
            digest=record.sealed_digest,
            entry=self.manifest.entries[i].id,
        )

    def iter_sealed(self) -> Iterator[tuple[int, bytes]]:
        """Every sealed payload in order, each checked (streams; one payload in memory)."""
        for i in range(len(self.records)):
            yield i, self.read_sealed(i)
