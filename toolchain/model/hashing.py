"""Digests (pixel, file, source, root) and the canonical JSON forms: the reproducibility
contract, specified byte for byte in docs/manifest.md."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "PIXELS_DOMAIN",
    "ROOT_DOMAIN",
    "ROOT_DOMAIN_V1",
    "SOURCE_DOMAIN",
    "Digest",
    "RootHasher",
    "Sha256Stream",
    "canonical_json",
    "file_digest",
    "pixel_digest",
    "pretty_json",
    "root_digest",
    "root_digest_v1",
    "sha256_file",
    "source_digest",
    "source_salt",
]

PIXELS_DOMAIN = b"benchmark-regen/pixels/v1\n"
ROOT_DOMAIN = b"benchmark-regen/root/v2\n"
ROOT_DOMAIN_V1 = b"benchmark-regen/root/v1\n"
SOURCE_DOMAIN = b"benchmark-regen/source/v2\n"
SOURCE_SALT_DOMAIN = b"benchmark-regen/source-salt/v1\n"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True, kw_only=True, slots=True)
class Digest:
    """A SHA-256 digest, written ``sha256:<64 lowercase hex>``."""

    hex: str

    def __post_init__(self) -> None:
        if not _HEX64.fullmatch(self.hex):
            raise ValueError(f"not a lowercase hex SHA-256 digest: {self.hex!r}")

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse the canonical ``sha256:<hex>`` form; raises ``ValueError`` otherwise."""
        algo, sep, hexpart = text.partition(":")
        if algo != "sha256" or not sep:
            raise ValueError(f"expected 'sha256:<hex>', got {text!r}")
        return cls(hex=hexpart)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Digest:
        """The digest whose 32 raw bytes are ``raw`` (always valid: no check to make)."""
        if len(raw) != 32:
            raise ValueError(f"a SHA-256 digest is 32 bytes, not {len(raw)}")
        digest = object.__new__(cls)
        object.__setattr__(digest, "hex", raw.hex())
        return digest

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls(hex=hashlib.sha256(data).hexdigest())

    def __str__(self) -> str:
        return f"sha256:{self.hex}"

    @property
    def short(self) -> str:
        """The first 12 hex digits, for humans."""
        return self.hex[:12]


def pixel_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    """The canonical prefix hashed before the C-order pixel bytes."""
    return PIXELS_DOMAIN + f"{dtype} {'x'.join(str(n) for n in shape)}\n".encode("ascii")


def pixel_digest(pixels: npt.NDArray[np.uint8]) -> Digest:
    """SHA-256 over ``domain || "<dtype> <H>x<W>x<C>\\n" || C-order bytes``.

    This is independent of the image file format and of the PNG encoder: two
    outputs with the same pixel digest are the same benchmark sample.
    """
    h = hashlib.sha256(pixel_header(pixels.dtype.name, tuple(pixels.shape)))
    h.update((pixels if pixels.flags.c_contiguous else pixels.copy(order="C")).data)
    return Digest(hex=h.hexdigest())


def file_digest(data: bytes) -> Digest:
    """SHA-256 of a file's bytes (depends on the encoder, unlike :func:`pixel_digest`)."""
    return Digest.of(data)


class Sha256Stream:
    """The SHA-256 of bytes on their way elsewhere (a writer): :meth:`passing` hashes each
    piece as it goes by, :meth:`digest` is that of all the pieces so far."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def passing(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            self._h.update(piece)
            yield piece

    def digest(self) -> Digest:
        return Digest(hex=self._h.hexdigest())


def sha256_file(file: str | os.PathLike[str] | int | Iterable[bytes]) -> Digest:
    """SHA-256 of a file's bytes, never held whole: a path, an open descriptor (read from
    where it stands to its end, left open), or the file's pieces (``iter_manifest``)."""
    stream = Sha256Stream()
    for _ in stream.passing(_pieces(file)):
        pass
    return stream.digest()


def _pieces(file: str | os.PathLike[str] | int | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(file, int):
        while piece := os.read(file, _CHUNK):
            yield piece
    elif isinstance(file, str | os.PathLike):
        with open(file, "rb") as f:
            while piece := f.read(_CHUNK):
                yield piece
    else:
        yield from file


def canonical_json(value: Any) -> bytes:
    """Compact canonical JSON: sorted keys, ``,``/``:`` separators, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def pretty_json(value: Any) -> bytes:
    """The JSON files we write (manifest, signature, croissant.json): sorted keys, two-space
    indentation, ASCII only, one trailing newline."""
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def source_salt(recipe: Mapping[str, Any]) -> bytes:
    """The salt of a benchmark's source commitments: SHA-256 of its recipe identity.

    ``SHA-256("benchmark-regen/source-salt/v1\\n" || canonical JSON of the recipe identity)``.
    Two runs of one recipe (any machine) share it, so their commitments compare;
    two recipes over the same originals do not, so their manifests cannot be linked.
    """
    return hashlib.sha256(SOURCE_SALT_DOMAIN + canonical_json(dict(recipe))).digest()


def source_digest(pixels: npt.NDArray[np.uint8], salt: bytes) -> Digest:
    """The commitment to an original's decoded pixels, salted per benchmark.

    ``SHA-256("benchmark-regen/source/v2\\n" || salt || "<dtype> <H>x<W>x<C>\\n" || bytes)``.
    """
    shape = "x".join(str(n) for n in pixels.shape)
    h = hashlib.sha256(SOURCE_DOMAIN + salt + f"{pixels.dtype.name} {shape}\n".encode("ascii"))
    h.update((pixels if pixels.flags.c_contiguous else pixels.copy(order="C")).data)
    return Digest(hex=h.hexdigest())


class RootHasher:
    """The root hash (format v2), fed one entry at a time in id order: no list held.

    :func:`root_digest` for entries already sorted by id (UTF-8 bytes); ``add`` refuses
    an id that sorts before the previous one with ``ValueError``.
    """

    def __init__(self, columns: Mapping[str, Any]):
        self._h = hashlib.sha256(ROOT_DOMAIN + b"columns " + canonical_json(dict(columns)) + b"\n")
        self._last: bytes | None = None

    def add(self, sample_id: str, path: str, pixels: Digest, values: Mapping[str, Any]) -> None:
        key = sample_id.encode("utf-8")
        if self._last is not None and key < self._last:
            raise ValueError(f"sample id {sample_id!r} comes before the previous one")
        self._last = key
        self._h.update(
            key
            + b"\x00"
            + path.encode("utf-8")
            + b"\x00"
            + pixels.hex.encode("ascii")
            + b"\x00"
            + canonical_json(dict(values))
            + b"\n"
        )

    def digest(self) -> Digest:
        return Digest(hex=self._h.hexdigest())


def root_digest(
    entries: Iterable[tuple[str, str, Digest, Mapping[str, Any]]],
    columns: Mapping[str, Any],
) -> Digest:
    """The root hash (format v2): ids, output paths, pixel digests and carried columns.

    ``SHA-256(ROOT_DOMAIN || "columns " || canonical JSON of the column schema || "\\n"
    || for each entry sorted by id (UTF-8 bytes):
    id || 0x00 || path || 0x00 || pixels hex || 0x00 || canonical JSON of its columns || "\\n")``.
    Moving a file to another path, relabelling a sample or renaming a class changes it.
    """
    hasher = RootHasher(columns)
    for sample_id, path, digest, values in sorted(entries, key=lambda e: e[0].encode("utf-8")):
        hasher.add(sample_id, path, digest, values)
    return hasher.digest()


def root_digest_v1(entries: Iterable[tuple[str, Digest]]) -> Digest:
    """The root hash of format v1 manifests: ``(sample id, pixel digest)`` pairs only.

    ``sha256(ROOT_DOMAIN_V1 || for each entry sorted by id (UTF-8 bytes):
    id || 0x00 || pixel hex || 0x0a)``.
    """
    h = hashlib.sha256(ROOT_DOMAIN_V1)
    for sample_id, digest in sorted(entries, key=lambda e: e[0].encode("utf-8")):
        h.update(sample_id.encode("utf-8") + b"\x00" + digest.hex.encode("ascii") + b"\n")
    return Digest(hex=h.hexdigest())
