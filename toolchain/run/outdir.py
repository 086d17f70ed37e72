"""The benchmark folder on disk: how ``--out`` is prepared, locked, written, committed and
read, for every command that writes or checks one (``docs/output-folder.md``)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchain._internal import safefs
from toolchain._internal.jsonload import load_json
from toolchain._internal.packed import MadeOnAccess, StringIndex
from toolchain.errors import InputError, ManifestError, OutputError, os_error_text
from toolchain.model.hashing import Sha256Stream, sha256_file
from toolchain.model.layout import (
    CARD_NAME,
    CROISSANT_NAME,
    MANIFEST_NAME,
    MAX_OUTPUT_BYTES,
    MAX_SIDE_FILE_BYTES,
    METADATA_NAME,
    RESERVED_NAMES,
    SIGNATURE_NAME,
    STATE_DIR,
    is_parquet_shard,
    is_shard_manifest,
    shard_manifest_name,
)
from toolchain.model.manifest import Manifest, ManifestEntry, iter_manifest, parse_manifest
from toolchain.run.journal import Journal

__all__ = [
    "OutDir",
    "Paths",
    "SampleWriter",
    "companions",
    "metadata_jsonl",
    "open_out",
    "read_output",
    "unexpected_files",
    "write_benchmark_files",
]

Files = Mapping[str, bytes | Iterable[bytes]]
"""Files to write beside a manifest, by path: each its bytes, or its pieces (read once)."""

DATA_DIR = "data"
"""Where the parquet format's shards live: ``data/<split>-0000N-of-0000M.parquet``."""


# -- reading outputs ---------------------------------------------------------------------


def read_output(root: Path, rel: str, *, limit: int = MAX_OUTPUT_BYTES) -> bytes:
    """A file of a benchmark folder: a regular file only, never through a link or a FIFO."""
    return safefs.read_file(root, rel, limit=limit)


def benchmark_format(root: Path) -> str:
    """``parquet`` when ``root`` holds ``data/*.parquet`` shards, else ``folder``."""
    data = root / DATA_DIR  # a link there is not ours: never listed, never followed
    parquet = data.is_dir() and not data.is_symlink() and any(data.glob("*.parquet"))
    return "parquet" if parquet else "folder"


class OutputReader:
    """Random access to a benchmark's PNG bytes by output path, in either format."""

    def __init__(self, root: Path):
        self.root = root
        self.format = benchmark_format(root)
        self._parquet: Any = None
        if self.format == "parquet":
            from toolchain.source.hf import ParquetSource

            # A parquet benchmark is a Hugging Face dataset whose image paths are the
            # output paths: read it as one, by path.
            self._parquet = ParquetSource(root, image_column="image", columns="", ids="path")
            self._parquet.listing()

    def read(self, rel: str) -> bytes:
        if self._parquet is not None:
            return bytes(self._parquet.read(rel))
        return read_output(self.root, rel)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()

    def __enter__(self) -> OutputReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unexpected_files(
    root: Path, listed: Sequence[str], *, data: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """Entries that are neither listed samples nor our own files: ``(path, why)``.

    ``data``: the parquet shards of a parquet benchmark (expected files too).
    """
    wanted = _Wanted(listed, data)
    found: list[tuple[str, str]] = []
    for rel, kind in safefs.walk(root):
        top = rel.split("/", 1)[0]
        if top == STATE_DIR:
            if kind != "dir" and rel.count("/") == 1:
                found.append((rel, "state of a run in progress or interrupted"))
            continue
        if kind == "dir":
            continue
        name = rel.rsplit("/", 1)[-1]
        if kind == "link":
            found.append((rel, "a symlink (benchmark-regen never writes one)"))
        elif kind == "other":
            found.append((rel, "not a regular file (a FIFO, socket or device)"))
        elif name.startswith(safefs.TMP_PREFIX):
            found.append((rel, "left over by an interrupted write"))
        elif rel not in wanted and rel not in RESERVED_NAMES and not is_shard_manifest(rel):
            found.append((rel, "not in the manifest"))
    return found


class _Wanted:
    """The files a benchmark lists: ``listed`` (by position: a manifest's entries' paths,
    made on access) in a :class:`StringIndex`, not a set of every path; ``data`` as is."""

    def __init__(self, listed: Sequence[str], data: Iterable[str]):
        self._index = StringIndex(listed.__getitem__, len(listed))
        for i, p in enumerate(listed):
            self._index.add(p, i)
        self._data = frozenset(data)

    def __contains__(self, path: str) -> bool:
        return path in self._data or path in self._index


class Paths(MadeOnAccess[str]):
    """The output paths of manifest entries, made on access (not a copy of every path)."""

    def __init__(self, entries: Sequence[ManifestEntry]):
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def _item(self, i: int) -> str:
        return self._entries[i].path

    def __iter__(self) -> Iterator[str]:
        return (e.path for e in self._entries)


# -- writing -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SampleWriter:
    """Writes sample files into a benchmark folder (picklable: workers get one)."""

    root: Path
    tag: str = ""
    """Marks this run's temp files (a shard's slug), see :func:`safefs.write_file`."""

    def write(self, rel: str, data: bytes, *, sample: str | None = None) -> None:
        try:
            safefs.write_file(self.root, rel, data, tag=self.tag)
        except safefs.UnsafePath as e:
            raise OutputError(
                f"refusing to write {rel!r} in {self.root}: {os_error_text(e)}", sample=sample
            ) from None
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:
                raise _name_too_long(f"its output path {rel!r}", sample=sample) from None
            raise OutputError(
                f"cannot write {rel}: {os_error_text(e)}",
                sample=sample,
                hint="check free space and permissions of --out",
            ) from None


def _name_too_long(what: str, *, sample: str | None = None) -> InputError:
    """An over-long name is bad input (the name came from the original, a manifest or the
    command line), not a failing disk."""
    return InputError(
        f"{what} has a name longer than the file system allows (255 bytes per name)",
        sample=sample,
        hint="shorten the name: each part of a path must be at most 255 bytes",
    )


class metadata_jsonl(Iterable[bytes]):
    """``metadata.jsonl`` for ``datasets.load_dataset("imagefolder", data_dir=OUT)``, in
    pieces of about 64 KiB, made again each time it is read (never held whole).

    One line per sample, sorted like the entries: ``file_name``, ``sample_id`` and the
    carried columns (so the imagefolder loader yields the labels too).
    """

    _PIECE = 1 << 16

    def __init__(self, entries: Sequence[ManifestEntry]):
        self._entries = entries

    def __iter__(self) -> Iterator[bytes]:
        out = bytearray()
        for e in self._entries:
            doc: dict[str, Any] = {"file_name": e.path, "sample_id": e.id}
            doc.update(getattr(e, "columns", {}) or {})
            out += json.dumps(doc, sort_keys=True, ensure_ascii=True).encode("ascii")
            out += b"\n"
            if len(out) >= self._PIECE:
                yield bytes(out)
                out.clear()
        if out:
            yield bytes(out)


def companions(
    manifest: Manifest,
    manifest_sha256: str,
    *,
    format: str = "folder",
    split: str = "train",
    entries: Sequence[ManifestEntry] | None = None,
    data: Sequence[tuple[str, str]] = (),
) -> dict[str, bytes | Iterable[bytes]]:
    """The files written beside a whole benchmark's manifest, from the manifest alone.

    ``metadata.jsonl`` (folder format), the dataset card ``README.md`` and
    ``croissant.json``. ``manifest_sha256``: the hex SHA-256 of the manifest's bytes
    (Croissant cites it); ``entries``: the samples actually present, when fewer (a
    partial result); ``data``: ``(path, sha256 hex)`` of the parquet shards.
    """
    from toolchain.hf.card import CardInfo, render_card
    from toolchain.hf.croissant import CroissantFile, render_croissant

    out: dict[str, bytes | Iterable[bytes]] = {}
    files: list[CroissantFile] = [
        CroissantFile(path=path, sha256=sha, encoding_format="application/x-parquet")
        for path, sha in data
    ]
    if format == "folder":
        meta = metadata_jsonl(manifest.entries if entries is None else entries)
        out[METADATA_NAME] = meta
        files += [
            CroissantFile(
                path=METADATA_NAME,
                sha256=sha256_file(meta).hex,
                encoding_format="application/jsonlines",
            ),
            CroissantFile(
                path=MANIFEST_NAME,
                sha256=manifest_sha256,
                encoding_format="application/json",
            ),
        ]
    info = CardInfo.from_manifest(manifest, format=format, columns=manifest.columns, split=split)
    out[CARD_NAME] = render_card(info)
    out[CROISSANT_NAME] = render_croissant(info, files)
    return out


def write_benchmark_files(
    root: Path,
    manifest_bytes: bytes | Iterable[bytes],
    *,
    name: str = MANIFEST_NAME,
    companions: Files | Callable[[str], Files] | None = None,
) -> None:
    """Companion files first, then the manifest, durably: the commit point.

    ``manifest_bytes``: the bytes, or pieces of them (``iter_manifest``).
    ``companions``: the files, or a function of the manifest's SHA-256 (hex) that makes
    them; it is called once the manifest is written, hashed on the way, and before it is
    renamed into place, so the manifest is made once and still appears last.
    """
    hasher = Sha256Stream()
    pieces = [manifest_bytes] if isinstance(manifest_bytes, bytes) else manifest_bytes

    def write_companions() -> None:
        files = companions(hasher.digest().hex) if callable(companions) else companions
        for rel, data in sorted((files or {}).items()):
            safefs.write_file(root, rel, data)

    try:
        safefs.write_file(
            root, name, hasher.passing(pieces), durable=True, before_rename=write_companions
        )
    except OSError as e:
        raise OutputError(f"cannot write {root / name}: {os_error_text(e)}") from None


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def _refuse_overlap(out: Path, original: Path | None) -> None:
    if original is None:
        return
    o, src = Path(os.path.realpath(out)), Path(os.path.realpath(original))
    if _overlaps(o, src):
        raise OutputError(
            f"--out {out} and --original {original} overlap (one is inside the other, or they "
            "are the same folder)",
            hint="write the benchmark to a folder outside the original",
        )


@dataclass(kw_only=True)
class OutDir:
    """A prepared, locked benchmark folder for one run (or one shard of a run)."""

    root: Path
    slug: str
    journal: Journal
    writer: SampleWriter
    _lock_fd: int

    @property
    def manifest_name(self) -> str:
        return MANIFEST_NAME if self.slug == "all" else shard_manifest_name(self.slug)

    def commit(
        self,
        manifest: Manifest,
        manifest_bytes: bytes | None = None,
        *,
        format: str = "folder",
        split: str = "train",
        present: Sequence[ManifestEntry] | None = None,
        extra: Mapping[str, bytes] | None = None,
    ) -> None:
        """Finish the benchmark: (parquet: pack the samples into shards), the companion
        files, ``extra`` (e.g. ``coverage.json``), then the manifest, last and durably; then
        the journal goes. ``manifest_bytes``: the exact bytes to write (a carried manifest)."""
        extra_files: dict[str, bytes | Iterable[bytes]] = dict(extra or {})
        files: Files | Callable[[str], Files] = extra_files
        if self.slug == "all":
            shards: Sequence[tuple[str, str]] = ()
            if format == "parquet":
                shards = self._pack_parquet(manifest, split, present)

            def with_companions(sha: str) -> Files:
                made = companions(
                    manifest, sha, format=format, split=split, entries=present, data=shards
                )
                return {**extra_files, **made}

            files = with_companions
        # Streamed, and made once: a manifest of a million entries is never held whole.
        data = manifest_bytes if manifest_bytes is not None else iter_manifest(manifest)
        write_benchmark_files(self.root, data, name=self.manifest_name, companions=files)
        self.journal.remove()

    def _pack_parquet(
        self, manifest: Manifest, split: str, present: Sequence[ManifestEntry] | None
    ) -> list[tuple[str, str]]:
        """Move the written samples into ``data/<split>-*.parquet`` (sorted by id)."""
        from toolchain.hf.parquet import BenchmarkRow, write_parquet

        entries = manifest.entries if present is None else present

        def rows() -> Iterator[BenchmarkRow]:
            for e in entries:
                png = read_output(self.root, e.path)
                yield BenchmarkRow(id=e.id, path=e.path, png=png, columns=e.columns)

        try:
            result = write_parquet(self.root, rows(), manifest.columns, split=split)
        except ValueError as bad:  # a value the manifest carries that parquet cannot hold
            raise InputError(
                f"cannot write the benchmark as parquet: {bad}",
                hint="write it in the folder format (--format folder)",
            ) from None
        for e in entries:
            safefs.remove_file(self.root, e.path)
        _remove_empty_folders(self.root)
        return [(f.path, f.sha256) for f in result.files]


def _remove_empty_folders(root: Path) -> None:
    for rel, kind in reversed(list(safefs.walk(root))):
        if kind == "dir" and rel.split("/", 1)[0] not in (STATE_DIR, DATA_DIR):
            with contextlib.suppress(OSError):
                safefs.remove_folder(root, rel)


def _lock_rel(slug: str) -> str:
    return f"{STATE_DIR}/lock-{slug}"


def _acquire(root: Path, slug: str) -> int:
    rel = _lock_rel(slug)
    try:
        fd = safefs.open_append(root, rel)
    except safefs.UnsafePath as e:
        raise OutputError(f"refusing {root / rel}: {os_error_text(e)}") from None
    except OSError as e:
        raise OutputError(
            f"cannot write to --out {root}: {os_error_text(e)}",
            hint="check that the folder is writable and the disk has space",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            holder = safefs.read_file(root, rel, limit=4096).decode().strip()
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise OutputError(
                f"another run{who} is writing to {root} right now",
                hint="wait for it to finish, or choose another --out",
            ) from None
        raise OutputError(f"cannot lock {root / rel}: {os_error_text(e)}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _release(root: Path, slug: str, fd: int, *, remove: bool) -> None:
    if remove:
        with contextlib.suppress(OSError):
            safefs.remove_file(root, _lock_rel(slug))
        with contextlib.suppress(OSError):
            safefs.remove_folder(root, STATE_DIR)
    os.close(fd)


def _is_ours_only_state(root: Path) -> bool:
    """Is the folder empty but for our state folder (our own lock)?"""
    for rel, kind in safefs.walk(root):
        if rel.split("/", 1)[0] != STATE_DIR:
            return False
        if kind != "dir" and not rel.startswith(f"{STATE_DIR}/lock-"):
            return False
    return True


def _parse_side(root: Path, rel: str) -> Manifest | None:
    try:
        return parse_manifest(safefs.read_file(root, rel, limit=MAX_SIDE_FILE_BYTES))
    except FileNotFoundError:
        return None
    except (OSError, ManifestError) as e:
        raise OutputError(
            f"--out {root} holds {rel}, but it is not a benchmark-regen manifest "
            f"({getattr(e, 'message', None) or e}); refusing to delete anything",
            hint="choose an empty folder, or remove the folder yourself",
        ) from None


@dataclass(frozen=True, kw_only=True)
class _Inventory:
    """What a folder holds, as far as benchmark-regen is concerned."""

    ours: frozenset[str]
    """Files our manifests and journals name, and our companions of those manifests."""
    known: bool
    """A manifest or journal of ours is there."""
    unknown: tuple[str, ...]
    """Everything else (links and special files included), outside our state folder."""


def _companion_is_ours(root: Path, rel: str, manifests: Sequence[Manifest], ours: set[str]) -> bool:
    """Is a top-level file with one of our reserved names one we wrote, by its content?

    A user's own ``README.md`` beside our manifest is not ours. What we write cites the
    manifest: ``metadata.jsonl`` lists its samples, the dataset card, ``croissant.json``
    and ``coverage.json`` state its root; ``manifest.sig`` sits beside a manifest.
    """
    if not manifests and rel != METADATA_NAME:
        return False
    if rel == SIGNATURE_NAME:
        return True
    try:
        data = safefs.read_file(root, rel, limit=MAX_SIDE_FILE_BYTES)
    except OSError:
        return False
    if rel == METADATA_NAME:
        try:
            docs = [load_json(line, what=rel, error=OutputError)
                    for line in data.splitlines() if line.strip()]  # fmt: skip
        except OutputError:
            return False  # not JSON lines (or nested thousands deep): not what we write
        return all(isinstance(d, dict) and d.get("file_name") in ours for d in docs)
    return any(str(m.root).encode() in data for m in manifests)


def _parquet_shards(root: Path, manifests: Sequence[Manifest], ours: set[str]) -> set[str]:
    """A parquet benchmark's shards: the ``data/…parquet`` files our ``croissant.json``
    (which states the manifest's root) lists, with their hashes, as the benchmark's."""
    if not _companion_is_ours(root, CROISSANT_NAME, manifests, ours):
        return set()
    try:
        data = safefs.read_file(root, CROISSANT_NAME, limit=MAX_SIDE_FILE_BYTES)
        doc = load_json(data, what=CROISSANT_NAME, error=OutputError)
    except (OSError, OutputError):
        return set()
    files = doc.get("distribution") if isinstance(doc, dict) else None
    return {
        f["contentUrl"]
        for f in (files if isinstance(files, list) else [])
        if isinstance(f, dict)
        and isinstance(f.get("contentUrl"), str)
        and f["contentUrl"].startswith(f"{DATA_DIR}/")
        and is_parquet_shard(f["contentUrl"][len(DATA_DIR) + 1 :])
    }


def _inventory(root: Path) -> _Inventory:
    ours: set[str] = set()
    manifests: list[Manifest] = []
    for rel, kind in safefs.walk(root):
        if kind == "file" and "/" not in rel and (rel == MANIFEST_NAME or is_shard_manifest(rel)):
            m = _parse_side(root, rel)
            if m is not None:
                manifests.append(m)
                ours |= {e.path for e in m.entries}
                ours.add(rel)
    ours |= _parquet_shards(root, manifests, ours)
    journaled = False
    for rel, kind in safefs.walk(root):
        if kind == "file" and rel.startswith(f"{STATE_DIR}/journal-"):
            j = Journal(root, rel, {})
            if j.recorded_header() is not None:
                ours |= j.paths()  # refuses a journal naming what we never write
                journaled = True
    unknown: list[str] = []
    for rel, kind in safefs.walk(root):
        top = rel.split("/", 1)[0]
        if kind == "dir" or top == STATE_DIR:
            continue
        name = rel.rsplit("/", 1)[-1]
        if rel in ours or (kind == "file" and name.startswith(safefs.TMP_PREFIX)):
            continue
        if kind == "file" and rel in RESERVED_NAMES and _companion_is_ours(root, rel, manifests,
                                                                           ours):  # fmt: skip
            ours.add(rel)
            continue
        unknown.append(rel + ("" if kind == "file" else f" ({kind})"))
    return _Inventory(ours=frozenset(ours), known=bool(manifests) or journaled,
                      unknown=tuple(unknown))  # fmt: skip


def _list(unknown: Sequence[str]) -> str:
    shown = ", ".join(repr(u) for u in unknown[:10])
    return shown + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")


def _refuse_unknown(root: Path) -> None:
    """A shard shares its folder with other shards of its run, never with files not ours."""
    unknown = _inventory(root).unknown
    if unknown:
        raise OutputError(
            f"--out {root} holds files that no benchmark-regen run wrote: {_list(unknown)}; "
            "shards share a folder only with each other",
            hint="choose an empty folder (the same one for every shard)",
        )


def _wipe(root: Path, keep_lock: str) -> None:
    """``--overwrite``: delete our benchmark (manifest first), refusing unknown files."""
    found = _inventory(root)
    if not found.known:
        raise OutputError(
            f"--out {root} is not empty and does not hold a benchmark made by benchmark-regen; "
            "refusing to delete it",
            hint="choose an empty folder",
        )
    if found.unknown:
        raise OutputError(
            f"--out {root} holds files that are not part of its benchmark: "
            f"{_list(found.unknown)}; "
            "--overwrite deletes only what a benchmark-regen manifest or journal names",
            hint="move those files away, or choose another --out",
        )
    # The manifest goes first: nothing half-deleted may look valid.
    safefs.remove_file(root, MANIFEST_NAME)
    entries = list(safefs.walk(root))
    for rel, kind in entries:
        if kind == "dir":
            continue
        if rel.split("/", 1)[0] == STATE_DIR and rel == keep_lock:
            continue
        safefs.remove_file(root, rel)
    for rel, kind in reversed(entries):
        if kind == "dir" and rel != STATE_DIR:
            with contextlib.suppress(OSError):
                safefs.remove_folder(root, rel)


def _what_changed(
    journal: Journal, recorded: Mapping[str, Any] | None, plan: Sequence[tuple[str, str]]
) -> str:
    """When only the original's samples changed: name one the interrupted run made that
    the original no longer has."""
    differing = {k for k, v in journal.header.items() if (recorded or {}).get(k) != v}
    if not plan or recorded is None or not differing <= {"plan", "samples"}:
        return ""
    planned = {sid for sid, _ in plan}
    gone = sorted({s.entry.id for s in journal.samples()} - planned, key=str.encode)
    if gone:
        more = f" (and {len(gone) - 1} more)" if len(gone) > 1 else ""
        return (
            f": sample {gone[0]!r}{more}, made by the interrupted run, is no longer in the "
            "original (renamed or removed?)"
        )
    then = recorded.get("samples")
    if then == len(plan):
        return f": {len(plan)} samples then and now, but a sample not made yet was renamed"
    return f": {then} samples then, {len(plan)} now (samples were added or removed)"


def _clean_temp_files(root: Path, slug: str) -> None:
    """Delete leftovers of a killed run: all of them for a whole run; a shard's own only
    (other shards sharing the folder may be writing theirs right now)."""
    prefix = safefs.TMP_PREFIX if slug == "all" else safefs.temp_prefix(slug)
    for rel, kind in safefs.walk(root):
        if kind == "file" and rel.rsplit("/", 1)[-1].startswith(prefix):
            safefs.remove_file(root, rel)


def _check_writable(root: Path) -> None:
    try:
        safefs.write_file(root, f"{STATE_DIR}/write-probe", b"")
        safefs.remove_file(root, f"{STATE_DIR}/write-probe")
    except OSError as e:
        raise OutputError(
            f"cannot write to --out {root}: {os_error_text(e)}",
            hint="check that the folder is writable and the disk has space",
        ) from None


@contextlib.contextmanager
def open_out(
    out: str | os.PathLike[str],
    *,
    header: Mapping[str, Any],
    slug: str = "all",
    original: Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    plan: Sequence[tuple[str, str]] = (),
) -> Iterator[OutDir]:
    """Prepare and lock ``out`` for one run (``slug`` ``all``) or one shard (``I-of-N``).

    Fresh: the folder must be empty; ``overwrite`` deletes an old benchmark there first
    (:func:`_wipe`); ``resume`` needs the journal to name this very run (``header``).
    ``plan``: the run's ``(sample id, output path)`` pairs, to name a sample when a resumed
    run's original changed. Raises :class:`OutputError`. On exit the lock is released; the
    journal stays unless :meth:`OutDir.commit` ran (``docs/output-folder.md``).
    """
    path = Path(out)
    _refuse_overlap(path, original)
    try:
        if path.exists() and not path.is_dir():
            raise OutputError(f"--out {path} exists and is not a folder")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise _name_too_long(f"--out {path}") from None
        raise OutputError(f"cannot create --out {path}: {os_error_text(e)}") from None
    root = Path(os.path.realpath(path))
    fd = _acquire(root, slug)
    committed = refused = False
    try:
        journal = Journal(root, f"{STATE_DIR}/journal-{slug}.jsonl", header)
        if resume and journal.exists():
            recorded = journal.recorded_header()
            if recorded is None or {k: recorded.get(k) for k in journal.header} != journal.header:
                raise OutputError(
                    f"the interrupted run in {path} is a different run (recipe, parameters, "
                    f"shard, or the samples of the original differ)"
                    f"{_what_changed(journal, recorded, plan)}",
                    hint="use the same command on the same original, or --overwrite to start over",
                )
            _clean_temp_files(root, slug)  # leftovers of a killed run are never trusted
        elif journal.exists() and not overwrite:
            raise OutputError(
                f"--out {path} holds an interrupted run",
                hint="add --resume to continue it, or --overwrite to start over",
            )
        elif not _is_ours_only_state(root) and slug == "all":
            if not overwrite:
                raise OutputError(
                    f"--out {path} is not empty",
                    hint="choose an empty folder, or --overwrite to replace a benchmark there",
                )
            _wipe(root, keep_lock=_lock_rel(slug))
        elif overwrite and journal.exists():
            # One shard restarts: only the files its own journal names go.
            _refuse_unknown(root)
            for rel in sorted(journal.paths()):
                safefs.remove_file(root, rel)
            journal.remove()
        if slug != "all":
            _refuse_unknown(root)
        _check_writable(root)
        if slug == "all":
            safefs.remove_file(root, MANIFEST_NAME)
        else:
            safefs.remove_file(root, shard_manifest_name(slug))
    except BaseException:
        refused = True  # before any work: take our lock (and state folder) away again
        raise
    finally:
        if refused:
            _release(root, slug, fd, remove=True)
    try:
        outdir = OutDir(
            root=root,
            slug=slug,
            journal=journal,
            writer=SampleWriter(root=root, tag="" if slug == "all" else slug),
            _lock_fd=fd,
        )
        yield outdir
        committed = not journal.exists()
    finally:
        _release(root, slug, fd, remove=committed)
