"""An original stored as a ``.tar`` (optionally gzip/bz2/xz-compressed)."""

from __future__ import annotations

import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from toolchain.errors import SourceError
from toolchain.source._common import (
    MAX_SAMPLE_BYTES,
    Listing,
    Source,
    check_collisions,
    check_sample_id,
    is_sample_name,
)

__all__ = ["TarSource"]


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
        check_collisions(ids)
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
        if not is_sample_name(name):
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
