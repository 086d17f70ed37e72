"""Sources: the user's copy of the original dataset, as a folder tree or a ``.tar``.

A sample's id is its relative POSIX path inside the source. Samples are listed
in one canonical order (sorted by the UTF-8 bytes of the id), whatever order
the file system or the tar stores them in. Only ``.jpg``, ``.jpeg``, ``.png``
and ``.webp`` files (any letter case) are samples; hidden entries (a path
component starting with ``.``) and other files are ignored and counted.

Reads never escape the source: ids with ``..``, absolute paths, backslashes or
NUL bytes are refused, symlinks must resolve inside the source tree, and tar
members that are links or devices are refused.
"""

from __future__ import annotations

import os
import stat
import tarfile
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from toolchain.errors import SourceError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_SAMPLE_BYTES",
    "FolderSource",
    "Source",
    "TarSource",
    "check_sample_id",
    "open_source",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_SAMPLE_BYTES = 256 * 1024 * 1024
"""The largest original file we read (256 MiB); larger ones are refused, not truncated."""


def check_sample_id(sample_id: str) -> str:
    """Return ``sample_id`` if it is a safe, canonical relative POSIX path, else raise.

    Refused: empty ids, absolute paths, ``.`` or ``..`` components, empty
    components, backslashes, NUL and other control characters, and ids that
    are not in Unicode NFC form (two spellings of one name would collide).
    """
    problem = None
    if not sample_id:
        problem = "it is empty"
    elif "\\" in sample_id:
        problem = "it contains a backslash"
    elif any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in sample_id):
        problem = "it contains a NUL or control character"
    elif sample_id.startswith("/"):
        problem = "it is an absolute path"
    elif any(part in ("", ".", "..") for part in sample_id.split("/")):
        problem = "it has an empty, '.' or '..' path component"
    elif unicodedata.normalize("NFC", sample_id) != sample_id:
        problem = "it is not in Unicode NFC form"
    if problem:
        raise SourceError(
            f"unsafe sample id {sample_id!r}: {problem}",
            hint="sample ids must be plain relative paths inside the original",
        )
    return sample_id


def _is_sample_name(rel: str) -> bool:
    parts = rel.split("/")
    if any(p.startswith(".") for p in parts):
        return False
    return PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES


def _check_collisions(ids: Iterable[str]) -> None:
    seen: dict[str, str] = {}
    for sid in ids:
        key = unicodedata.normalize("NFC", sid).casefold()
        if key in seen:
            raise SourceError(
                f"sample ids {seen[key]!r} and {sid!r} collide once case is folded",
                hint="rename one of them: they would overwrite each other on many file systems",
            )
        seen[key] = sid


@dataclass(frozen=True, kw_only=True)
class Listing:
    """The canonical listing of a source."""

    ids: tuple[str, ...]
    ignored: int
    """Files that are not samples (other extensions, hidden files)."""


class Source:
    """Base class of sources. Subclasses are picklable: workers reopen them."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def listing(self) -> Listing:
        raise NotImplementedError

    def read(self, sample_id: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        """Release any open handle (a no-op for folders)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(eq=False)
class FolderSource(Source):
    """An original stored as a folder tree."""

    path: Path

    def __post_init__(self) -> None:
        self._real = Path(os.path.realpath(self.path))

    def listing(self) -> Listing:
        ids: list[str] = []
        ignored = 0
        visited: dict[tuple[int, int], str] = {}
        for dirpath, dirnames, filenames in os.walk(self._real, followlinks=True, onerror=_raise):
            st = os.stat(dirpath)
            here = Path(dirpath).relative_to(self._real).as_posix()
            first = visited.get((st.st_dev, st.st_ino))
            if first is not None:
                raise SourceError(
                    f"folder {here!r} is a second path (a symlink) to {first!r}: its images "
                    "would be listed twice, or forever in a loop",
                    hint="remove the symlink, or copy the folder",
                )
            visited[(st.st_dev, st.st_ino)] = here
            dirnames.sort()  # a deterministic walk: messages must not depend on the FS order
            for d in dirnames:
                self._inside(Path(dirpath) / d)
            rel_dir = Path(dirpath).relative_to(self._real).as_posix()
            for fn in filenames:
                rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
                if not _is_sample_name(rel):
                    ignored += 1
                    continue
                ids.append(check_sample_id(rel))
        ids.sort(key=lambda s: s.encode("utf-8"))
        _check_collisions(ids)
        return Listing(ids=tuple(ids), ignored=ignored)

    def _inside(self, p: Path) -> Path:
        real = Path(os.path.realpath(p))
        if real != self._real and self._real not in real.parents:
            rel = p.relative_to(self._real).as_posix() if p.is_relative_to(self._real) else str(p)
            raise SourceError(
                f"{rel!r} is a symlink that points outside the original ({real})",
                hint="copy the target into the original tree, or remove the link",
            )
        return real

    def read(self, sample_id: str) -> bytes:
        check_sample_id(sample_id)
        p = self._inside(self._real / sample_id)
        try:
            with open(p, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise SourceError("not a regular file", sample=sample_id)
                if st.st_size > MAX_SAMPLE_BYTES:
                    raise SourceError(
                        f"file is {st.st_size} bytes, over the {MAX_SAMPLE_BYTES}-byte limit",
                        sample=sample_id,
                    )
                return f.read()
        except FileNotFoundError:
            raise SourceError(
                "file vanished from the original while the run was reading it",
                sample=sample_id,
                hint="keep the original unchanged during a run, then run again",
            ) from None
        except OSError as e:
            raise SourceError(f"cannot read: {e.strerror or e}", sample=sample_id) from None


def _raise(e: OSError) -> None:
    raise SourceError(f"cannot list {e.filename}: {e.strerror}") from None


@dataclass(eq=False)
class TarSource(Source):
    """An original stored as a ``.tar`` (optionally gzip/bz2/xz-compressed).

    Only regular-file members can be samples; link, device and FIFO members
    with an image name are refused rather than followed.
    """

    path: Path
    _tar: tarfile.TarFile | None = field(default=None, init=False, repr=False)
    _index: dict[str, tarfile.TarInfo] = field(default_factory=dict, init=False, repr=False)
    _ignored: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __getstate__(self) -> dict[str, object]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.path = state["path"]  # type: ignore[assignment]
        self._tar = None
        self._index = {}
        self._ignored = 0
        self._lock = threading.Lock()

    def _open(self) -> tarfile.TarFile:
        if self._tar is None:
            try:
                self._tar = tarfile.open(self.path, "r:*")  # noqa: SIM115 - kept open for reads
                members = self._tar.getmembers()
            except (tarfile.TarError, OSError, EOFError) as e:
                raise SourceError(
                    f"cannot read tar {self.path.name!r}: {e}",
                    hint="check that the archive is complete (compare its checksum)",
                ) from None
            try:
                self._index, self._ignored = _index_members(members)
            except SourceError:
                self.close()
                raise
        return self._tar

    def listing(self) -> Listing:
        self._open()
        ids = sorted(self._index, key=lambda s: s.encode("utf-8"))
        _check_collisions(ids)
        return Listing(ids=tuple(ids), ignored=self._ignored)

    def read(self, sample_id: str) -> bytes:
        with self._lock:
            tar = self._open()
            info = self._index.get(sample_id)
            if info is None:
                raise SourceError("not in the tar archive", sample=sample_id)
            try:
                f = tar.extractfile(info)
                assert f is not None
                data = f.read()
            except (tarfile.TarError, OSError, EOFError) as e:
                raise SourceError(f"cannot read tar member: {e}", sample=sample_id) from None
        if len(data) != info.size:
            raise SourceError("tar member is truncated", sample=sample_id)
        return data

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None


def _index_members(members: list[tarfile.TarInfo]) -> tuple[dict[str, tarfile.TarInfo], int]:
    """Index a tar's sample members by id; refuse unsafe names, links and duplicates."""
    index: dict[str, tarfile.TarInfo] = {}
    ignored = 0
    for m in members:
        if m.isdir():
            continue
        name = m.name[2:] if m.name.startswith("./") else m.name
        check_sample_id(name)  # every member: a '../x.txt' is refused too, not skipped
        if not _is_sample_name(name):
            ignored += 1
            continue
        if not m.isreg():
            raise SourceError(
                f"tar member {name!r} is a link or special file, not a regular file",
                hint="store the image itself in the archive",
            )
        if name in index:
            raise SourceError(f"tar member {name!r} appears twice in the archive")
        if m.size > MAX_SAMPLE_BYTES:
            raise SourceError(
                f"member is {m.size} bytes, over the {MAX_SAMPLE_BYTES}-byte limit", sample=name
            )
        index[name] = m
    return index, ignored


def open_source(path: str | os.PathLike[str]) -> Source:
    """Open an original: a folder tree, or a tar archive."""
    p = Path(path)
    if p.is_dir():
        return FolderSource(p)
    if p.is_file():
        if tarfile.is_tarfile(p):
            return TarSource(p)
        raise SourceError(
            f"{p} is a file but not a tar archive",
            hint="pass the folder that holds the images, or a .tar of it",
        )
    raise SourceError(f"original {p} does not exist", hint="check the --original path")
