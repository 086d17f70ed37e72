"""The cache of rebuilt publications: one entry per root and encoder, sealed once verified; the
seal (each file's size, mtime, ctime, inode) is re-checked by ``stat``, not by hashing."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from toolchain._internal import safefs
from toolchain._internal.atomic import TMP_PREFIX, fsync_dir
from toolchain._internal.jsonload import load_json
from toolchain.codec.encode import ENCODER
from toolchain.errors import InputError
from toolchain.hub import _client
from toolchain.model.hashing import Digest, canonical_json, pretty_json

__all__ = [
    "BENCHMARK_DIR",
    "DATASET_DIR",
    "SEAL_NAME",
    "Seal",
    "building",
    "cache_root",
    "entry_path",
    "file_stats",
    "install",
    "is_sealed",
    "new_entry",
    "read_seal",
    "write_seal",
]

FORMAT = "benchmark-regen.hub-cache/v1"
SEAL_NAME = "seal.json"
BENCHMARK_DIR = "benchmark"
"""The rebuilt benchmark (parquet format), as ``verify`` checks it."""
DATASET_DIR = "dataset"
"""The ``datasets.Dataset`` made from it (``save_to_disk``), which a later load maps."""
MAX_SEAL_BYTES = 1 << 20

FileStat = tuple[str, int, int, int, int]
"""``(path, size, mtime_ns, ctime_ns, inode)`` of one file of an entry."""


def cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    """``cache_dir``; else ``benchmark-regen/`` beside the Hugging Face Hub cache; else
    ``~/.cache/benchmark-regen`` (without ``huggingface_hub``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    try:
        return _client.hub_cache().parent / "benchmark-regen"
    except InputError:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / "benchmark-regen"


def entry_path(root_dir: Path, root: Digest) -> Path:
    """The entry of the benchmark with ``root``, rebuilt by our encoder (a new encoder, a new
    entry: its PNG bytes, though not its pixels, may differ)."""
    key = Digest.of(canonical_json({"encoder": ENCODER, "format": FORMAT, "root": str(root)}))
    return root_dir / f"{root.hex[:16]}-{key.hex[:16]}"


@dataclass(frozen=True, kw_only=True)
class Seal:
    """What an entry was verified for, and the state of its files then."""

    manifest: Digest
    """SHA-256 of the publication's ``manifest.json``."""
    root: Digest
    datasets: str
    """The ``datasets`` version that wrote the dataset (another cannot be trusted to read it)."""
    files: tuple[FileStat, ...]

    def render(self) -> bytes:
        return pretty_json(
            {
                "datasets": self.datasets,
                "files": [list(f) for f in self.files],
                "format": FORMAT,
                "manifest": str(self.manifest),
                "root": str(self.root),
            }
        )


def file_stats(entry: Path) -> tuple[FileStat, ...] | None:
    """Every file of ``entry`` but the seal, sorted, with its stat; ``None`` if the entry holds
    a link or anything but files and folders (never sealed)."""
    out: list[FileStat] = []
    try:
        for rel, kind in safefs.walk(entry):
            if kind == "dir" or rel == SEAL_NAME:
                continue
            if kind != "file":
                return None
            st = os.stat(entry / rel, follow_symlinks=False)
            out.append((rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    except OSError:
        return None
    return tuple(out)


def read_seal(entry: Path) -> Seal | None:
    """The entry's seal, or ``None`` (absent, unreadable or malformed: the entry is unsealed)."""
    try:
        data = safefs.read_file(entry, SEAL_NAME, limit=MAX_SEAL_BYTES)
        doc = load_json(data, what=SEAL_NAME, error=InputError)
        if doc["format"] != FORMAT or not isinstance(doc["datasets"], str):
            return None
        files = tuple(_file_stat(f) for f in doc["files"])
        return Seal(
            manifest=Digest.parse(doc["manifest"]),
            root=Digest.parse(doc["root"]),
            datasets=doc["datasets"],
            files=files,
        )
    except (OSError, InputError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _file_stat(item: object) -> FileStat:
    if not isinstance(item, list) or len(item) != 5 or not isinstance(item[0], str):
        raise ValueError("not a file stat")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in item[1:]):
        raise ValueError("not a file stat")
    return (item[0], item[1], item[2], item[3], item[4])


def is_sealed(entry: Path, *, manifest: Digest, root: Digest, datasets: str) -> bool:
    """Was ``entry`` verified for this manifest and ``datasets``, and is every file as then?"""
    seal = read_seal(entry)
    return (
        seal is not None
        and (seal.manifest, seal.root, seal.datasets) == (manifest, root, datasets)
        and seal.files == file_stats(entry)
    )


def write_seal(entry: Path, *, manifest: Digest, root: Digest, datasets: str) -> Seal:
    """Seal ``entry`` as it is now (call it once its content is verified)."""
    files = file_stats(entry)
    if files is None:
        raise InputError(f"{entry} holds a link or a special file; it cannot be sealed")
    seal = Seal(manifest=manifest, root=root, datasets=datasets, files=files)
    safefs.write_file(entry, SEAL_NAME, seal.render(), durable=True)
    return seal


def new_entry(entry: Path) -> Path:
    """A fresh folder beside ``entry`` to build it in (then :func:`install` it)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    work = entry.with_name(f"{TMP_PREFIX}{secrets.token_hex(8)}-{entry.name}")
    work.mkdir()
    return work


def install(work: Path, entry: Path) -> None:
    """Put the built ``work`` in ``entry``'s place; the entry it replaces is removed."""
    old = entry.with_name(f"{TMP_PREFIX}{secrets.token_hex(8)}-old-{entry.name}")
    with contextlib.suppress(FileNotFoundError):
        os.replace(entry, old)
    os.replace(work, entry)
    fsync_dir(entry.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def building(entry: Path) -> Iterator[Path]:
    """A work folder for ``entry``, removed unless installed."""
    work = new_entry(entry)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
