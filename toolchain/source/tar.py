"""An original stored as a ``.tar`` (optionally gzip/bz2/xz-compressed), read in streaming
passes; only regular-file members are samples (``docs/sources.md``)."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import shutil
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from toolchain._internal import safefs
from toolchain._internal.packed import PackedStrings
from toolchain.errors import SourceError, os_error_text
from toolchain.model.columns import ColumnValue
from toolchain.model.ids import check_collisions, check_sample_id
from toolchain.source._common import MAX_SAMPLE_BYTES, Listing, Sample, Source, is_sample_name
from toolchain.source.folder import METADATA_FILES, folder_labels, ignored_kind

__all__ = ["TarSource"]

_MAGIC = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


@dataclass(frozen=True, slots=True)
class _Member:
    offset: int
    """Where the member's data starts in the uncompressed tar stream."""
    size: int


def _member_id(m: tarfile.TarInfo) -> str:
    name = m.name[2:] if m.name.startswith("./") else m.name
    return check_sample_id(name)  # every member: a '../x.txt' is refused too, not skipped


@dataclass(eq=False)
class TarSource(Source):
    """An original stored as a ``.tar`` (optionally compressed); see the module docstring."""

    path: Path
    columns: str | Sequence[str] | None = None
    """Which carried columns to keep (``--columns``): of a folder-per-class archive, ``label``."""
    _index: dict[str, _Member] | None = field(default=None, init=False, repr=False)
    _labels: Mapping[str, int] = field(default_factory=dict, init=False, repr=False)
    _metadata: bool = field(default=False, init=False, repr=False)
    _ignored: Counter[str] = field(default_factory=Counter, init=False, repr=False)
    _plain: IO[bytes] | None = field(default=None, init=False, repr=False)

    @contextlib.contextmanager
    def _stream(self) -> Iterator[tarfile.TarFile]:
        try:
            raw = safefs.open_regular(self.path)
        except OSError as e:
            raise SourceError(
                f"cannot read tar {self.path.name!r}: {os_error_text(e)}",
                hint="pass the archive itself, a regular file",
            ) from None
        with raw:
            try:
                tar = tarfile.open(fileobj=raw, mode="r|*")  # noqa: SIM115 - closed below
            except (tarfile.TarError, OSError, EOFError) as e:
                raise SourceError(
                    f"cannot read tar {self.path.name!r}: {e}",
                    hint="check that the archive is complete (compare its checksum)",
                ) from None
            with tar:
                yield tar

    def _scan(self) -> dict[str, _Member]:
        if self._index is not None:
            return self._index
        index: dict[str, _Member] = {}
        try:
            with self._stream() as tar:
                for m in tar:
                    if m.isdir():
                        if m.name not in (".", "./"):  # `tar -C DIR .` stores the root as "."
                            _member_id(m)
                        continue
                    sid = _member_id(m)
                    if not is_sample_name(sid):
                        self._ignored[ignored_kind(sid)] += 1
                        self._metadata |= sid.rsplit("/", 1)[-1] in METADATA_FILES
                        continue
                    if not m.isreg():
                        raise SourceError(
                            f"tar member {sid!r} is a link or special file, not a regular file",
                            hint="store the image itself in the archive",
                        )
                    if sid in index:
                        raise SourceError(f"tar member {sid!r} appears twice in the archive")
                    if m.size > MAX_SAMPLE_BYTES:
                        raise SourceError(
                            f"member is {m.size} bytes, over the {MAX_SAMPLE_BYTES}-byte limit",
                            sample=sid,
                        )
                    index[sid] = _Member(offset=m.offset_data, size=m.size)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise SourceError(
                f"cannot read tar {self.path.name!r}: {e}",
                hint="check that the archive is complete (compare its checksum)",
            ) from None
        self._index = index
        return index

    def listing(self) -> Listing:
        ids = sorted(self._scan())  # code points: the UTF-8 bytes' order
        packed = PackedStrings(ids)
        del ids
        check_collisions(packed)
        spec, self._labels = folder_labels(packed, self.columns, has_metadata_file=self._metadata)
        return Listing(
            ids=packed,
            ignored=sum(self._ignored.values()),
            ignored_kinds=dict(sorted(self._ignored.items())),
            columns=spec,
        )

    def columns_of(self, sample_id: str) -> Mapping[str, ColumnValue]:
        return {"label": self._labels[sample_id]} if self._labels else {}

    def iter_samples(self, ids: Iterable[str]) -> Iterator[Sample]:
        """The samples ``ids``, in archive order, in one streaming pass."""
        wanted = set(ids)
        index = self._scan()
        missing = sorted(wanted - set(index))
        if missing:
            raise SourceError("not in the tar archive", sample=missing[0])
        try:
            with self._stream() as tar:
                for m in tar:
                    if not wanted:
                        break
                    if m.isdir():
                        continue
                    sid = _member_id(m)
                    if sid not in wanted:
                        continue
                    f = tar.extractfile(m)
                    data = f.read() if f is not None else b""
                    if len(data) != index[sid].size:
                        raise SourceError("tar member is truncated", sample=sid)
                    wanted.discard(sid)
                    yield Sample(id=sid, data=data, columns=self.columns_of(sid))
        except (tarfile.TarError, OSError, EOFError) as e:
            raise SourceError(f"cannot read tar {self.path.name!r}: {e}") from None
        if wanted:
            raise SourceError(
                "vanished from the tar archive while the run was reading it",
                sample=sorted(wanted)[0],
                hint="keep the original unchanged during a run, then run again",
            )

    def _random_access(self) -> IO[bytes]:
        if self._plain is None:
            try:
                raw = safefs.open_regular(self.path)
            except OSError as e:
                why = os_error_text(e)
                raise SourceError(f"cannot read tar {self.path.name!r}: {why}") from None
            head = raw.read(6)
            raw.seek(0)
            opener = next((o for m, o in _MAGIC.items() if head.startswith(m)), None)
            if opener is None:
                self._plain = raw  # closed by close()
                return raw
            spool = tempfile.TemporaryFile(prefix="benchmark-regen-tar-")  # noqa: SIM115
            try:
                with raw, opener(raw, "rb") as plain:  # type: ignore[operator]
                    shutil.copyfileobj(plain, spool, 1 << 20)
            except (OSError, EOFError, lzma.LZMAError) as e:
                spool.close()
                raise SourceError(f"cannot read tar {self.path.name!r}: {e}") from None
            self._plain = spool
        return self._plain

    def read(self, sample_id: str) -> bytes:
        member = self._scan().get(sample_id)
        if member is None:
            raise SourceError("not in the tar archive", sample=sample_id)
        f = self._random_access()
        f.seek(member.offset)
        data = f.read(member.size)
        if len(data) != member.size:
            raise SourceError("tar member is truncated", sample=sample_id)
        return data

    def close(self) -> None:
        if self._plain is not None:
            self._plain.close()
            self._plain = None
