"""What every source shares: sample ids, listings, the :class:`Source` interface."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toolchain.errors import SourceError
from toolchain.model.columns import ColumnSpec, ColumnValue
from toolchain.model.original import OriginalRef, ref_from_hub_cache

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_SAMPLE_BYTES",
    "Listing",
    "Sample",
    "Source",
    "class_labels_from_ids",
    "is_sample_name",
    "select_columns",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_SAMPLE_BYTES = 256 * 1024 * 1024
"""The largest original file we read (256 MiB); larger ones are refused, not truncated."""


def is_sample_name(rel: str) -> bool:
    parts = rel.split("/")
    if any(p.startswith(".") for p in parts):
        return False
    name = parts[-1]
    dot = name.rfind(".")  # the suffix as PurePosixPath gives it, without making one
    return 0 < dot < len(name) - 1 and name[dot:].lower() in IMAGE_SUFFIXES


@dataclass(frozen=True, kw_only=True)
class Listing:
    """The canonical listing of a source."""

    ids: tuple[str, ...]
    """Sample ids, sorted by their UTF-8 bytes."""
    ignored: int
    """Files that are not samples (other extensions, hidden files)."""
    ignored_kinds: Mapping[str, int] = field(default_factory=dict)
    """Ignored files by kind (suffix such as ``.gif``, or ``hidden``), for the summary."""
    columns: tuple[ColumnSpec, ...] = ()
    """The columns every sample carries, in order."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    """One original sample as read: its id, its file bytes, its carried column values."""

    id: str
    data: bytes
    columns: Mapping[str, ColumnValue] = field(default_factory=dict)


class Source:
    """Base class of sources (``docs/sources.md``).

    :meth:`iter_samples` yields each sample once, in the source's storage order, from one
    open per sample (what was checked is what is read); :meth:`read` is random access.
    """

    path: Path

    @property
    def name(self) -> str:
        """The original's name: the repo (``org/name``) of a Hub cache snapshot, else the
        folder's or file's name."""
        hub = ref_from_hub_cache(self.path.absolute())
        return hub.repo if hub is not None else self.path.name

    @property
    def split_name(self) -> str:
        """The split these samples are (``train`` unless a dataset says otherwise)."""
        return "train"

    @property
    def original_ref(self) -> OriginalRef | None:
        """Where these samples came from (Hub repo, commit, config, split); ``None`` for a
        folder or a tar, which name no dataset."""
        return None

    def listing(self) -> Listing:
        raise NotImplementedError

    def read(self, sample_id: str) -> bytes:
        raise NotImplementedError

    def columns_of(self, sample_id: str) -> Mapping[str, ColumnValue]:
        """The carried column values of one sample (none, unless the source has columns)."""
        return {}

    def iter_samples(self, ids: Iterable[str]) -> Iterator[Sample]:
        """The samples ``ids`` (each once), in the order this source reads fastest."""
        for sid in ids:
            yield Sample(id=sid, data=self.read(sid), columns=self.columns_of(sid))

    def close(self) -> None:
        """Release any open handle (a no-op for folders)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def select_columns(
    available: Sequence[str], spec: str | Sequence[str] | None, *, where: str
) -> tuple[str, ...]:
    """Which carryable columns to carry, in ``available``'s (schema) order.

    ``spec``: ``None`` → all of ``available``; ``""`` or ``[]`` → none;
    ``"label,caption"`` → exactly those; ``"-caption"`` or ``"-caption,-id"`` →
    all but those. Picks and drops cannot be mixed; names must be known.
    """
    if spec is None:
        return tuple(available)
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    items = [s for s in items if s]
    if not items:
        return ()
    drops = [s[1:] for s in items if s.startswith("-")]
    picks = [s for s in items if not s.startswith("-")]
    if drops and picks:
        raise SourceError(
            f"--columns {','.join(items)!r} mixes picked and dropped columns",
            hint="either list the columns to carry (label,caption) or those to drop (-caption)",
        )
    names = drops or picks
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SourceError(f"--columns names {dup[0]!r} twice", hint="name each column once")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SourceError(
            f"{where} has no carryable column {unknown[0]!r}",
            hint="carryable columns: " + (", ".join(available) or "(none)"),
        )
    if drops:
        return tuple(n for n in available if n not in drops)
    return tuple(n for n in available if n in picks)


def class_labels_from_ids(
    ids: Iterable[str], *, has_metadata_file: bool = False
) -> tuple[ColumnSpec, Mapping[str, int]] | None:
    """The ``label`` column ``load_dataset("imagefolder")`` infers for a folder-per-class original.

    Returns the column (names sorted by code point) and each id's label index, or None when
    ``datasets`` 5.2.0 would add no labels: a metadata file, files at mixed depths, or fewer
    than two label folders. The rule: ``docs/huggingface.md``, "Folder-per-class labels".
    """
    if has_metadata_file:
        return None
    ids = list(ids)
    labels = {sid.rsplit("/", 2)[-2] if "/" in sid else "" for sid in ids}
    depths = {sid.count("/") for sid in ids}
    if len(labels) <= 1 or len(depths) != 1:
        return None
    names = tuple(sorted(labels))
    index = {n: i for i, n in enumerate(names)}
    spec = ColumnSpec(name="label", type="class_label", names=names)
    return spec, {sid: index[sid.rsplit("/", 2)[-2]] for sid in ids}
