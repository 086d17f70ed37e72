"""What every source shares: sample ids, listings, the :class:`Source` interface."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toolchain._internal.packed import PackedStrings
from toolchain.errors import SourceError
from toolchain.model.columns import ColumnSpec, ColumnValue
from toolchain.model.original import OriginalRef, ref_from_hub_cache

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_SAMPLE_BYTES",
    "FolderLabels",
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

    ids: Sequence[str]
    """Sample ids, sorted by their UTF-8 bytes; packed (a few bytes over each id's length,
    and ``in`` is a binary search), whatever sequence they were given as."""
    ignored: int
    """Files that are not samples (other extensions, hidden files)."""
    ignored_kinds: Mapping[str, int] = field(default_factory=dict)
    """Ignored files by kind (suffix such as ``.gif``, or ``hidden``), for the summary."""
    columns: tuple[ColumnSpec, ...] = ()
    """The columns every sample carries, in order."""

    def __post_init__(self) -> None:
        ids = self.ids
        if not (isinstance(ids, PackedStrings) and ids.is_sorted):
            ids = PackedStrings.in_order(ids)
        object.__setattr__(self, "ids", ids)


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
    The labels are found from each id when asked (:class:`FolderLabels`), over ``ids`` as
    given when they are a listing's (packed and sorted), not a second copy of every id.
    """
    if has_metadata_file:
        return None
    if not (isinstance(ids, PackedStrings) and ids.is_sorted):
        ids = PackedStrings(sorted(set(ids), key=lambda s: s.encode("utf-8")))
    labels: set[str] = set()
    depths: set[int] = set()
    for sid in ids:
        labels.add(_class_of(sid))
        depths.add(sid.count("/"))
    if len(labels) <= 1 or len(depths) != 1:
        return None
    names = tuple(sorted(labels))
    spec = ColumnSpec(name="label", type="class_label", names=names)
    return spec, FolderLabels(ids, {n: i for i, n in enumerate(names)})


def _class_of(sample_id: str) -> str:
    """The folder that holds a sample (``""`` at the top)."""
    return sample_id.rsplit("/", 2)[-2] if "/" in sample_id else ""


class FolderLabels(Mapping[str, int]):
    """Each listed id's label index, from the name of the folder that holds it."""

    __slots__ = ("_ids", "_index")

    def __init__(self, ids: PackedStrings, index: Mapping[str, int]):
        self._ids, self._index = ids, index

    def __getitem__(self, sample_id: str) -> int:
        if sample_id not in self._ids:
            raise KeyError(sample_id)
        return self._index[_class_of(sample_id)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)
