"""``diff create``: seal a verified benchmark against its original into one ``.bdiff``.

The pipeline::

    verify the benchmark → read its canonical manifest bytes → benchmark id
        → per entry: read original → decode → check the source commitment
          → the manifest's shipped recipe, run here, gives the entry's pixels? a recipe
            entry (the target's shape alone)
          → otherwise decode target → check pixels → pack (delta or full)
          → key material → HKDF key → seal
        → write the container (deterministic: same inputs, same bytes)

``entries``: ``auto`` chooses per sample as above; ``delta`` never makes a recipe entry;
``recipe`` makes nothing else, and fails naming every sample that does not reproduce.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from toolchain._internal import safefs
from toolchain._internal.atomic import TMP_PREFIX
from toolchain._internal.progress import Progress
from toolchain.audit.verify import verify_benchmark
from toolchain.codec.decode import decode
from toolchain.diff.codec import pack_payload, recipe_payload
from toolchain.diff.crypto import derive_key, fingerprint, pixels_key_material, seal_payload
from toolchain.diff.format import (
    Header,
    KeyOn,
    PayloadKind,
    SealedEntry,
    benchmark_id,
    manifest_pieces,
    write_diff,
)
from toolchain.errors import (
    DecodeError,
    Error,
    InputError,
    Interrupted,
    ManifestError,
    OutputError,
    ParamError,
    RecipeError,
    os_error_text,
)
from toolchain.model.drift import Cause, describe_differences, differences_for
from toolchain.model.hashing import pixel_digest
from toolchain.model.layout import MANIFEST_NAME, RESERVED_NAMES, is_shard_manifest
from toolchain.model.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestEntry,
    entry_index,
    holds_manifest,
    iter_manifest,
    read_manifest,
)
from toolchain.recipes.shipped import ShippedRecipe, shipped_recipe_of
from toolchain.run.executor import make_executor, worker_fingerprint
from toolchain.run.outdir import OutputReader
from toolchain.source import Source, SourceOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["DIFF_FORMATS", "ENTRY_CHOICES", "CreateResult", "create_diff"]

DIFF_FORMATS = ("bdiff", "parquet")
"""A ``.bdiff`` file, or the same diff as a parquet dataset (a folder)."""
ENTRY_CHOICES = ("auto", "delta", "recipe")
"""Which entries ``diff create`` makes: recipe entries where the sample reproduces, deltas
(or full targets) only, or recipe entries only."""
_SHOWN = 5
"""How many samples a refusal names."""
_PIECE = 1 << 20
"""The pieces the manifest is copied in."""


@dataclass(frozen=True, kw_only=True)
class CreateResult:
    out: Path
    header: Header
    kinds: tuple[PayloadKind, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "bytes": self.header.file_length,
            "delta": sum(k is PayloadKind.DELTA for k in self.kinds),
            "full": sum(k is PayloadKind.FULL for k in self.kinds),
            "recipe": sum(k is PayloadKind.RECIPE for k in self.kinds),
            "key_on": str(self.header.key_on),
            "out": str(self.out),
            "samples": self.header.entry_count,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class SealTask:
    """One entry to seal: the original's bytes and the benchmark file's bytes."""

    sample_id: str
    index: int
    entry: ManifestEntry
    original: bytes = field(repr=False)
    target: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class _NotReproduced:
    """With ``entries="recipe"``: the sample at ``index`` is not the recipe's output here."""

    index: int


@dataclass(frozen=True)
class _SealJob:
    """Seal one sample; picklable, sent once to each worker."""

    key_on: KeyOn
    salt: bytes
    manifest: Manifest
    """The benchmark's manifest without its entries: its source commitments' rule
    (:meth:`~toolchain.model.manifest.Manifest.source_of`), light to send."""
    recipe: ShippedRecipe | None = None
    """The manifest's recipe, when this release ships it and recipe entries are wanted."""
    recipe_only: bool = False

    def reproduced(self, original: npt.NDArray[np.uint8], e: ManifestEntry) -> bytes | None:
        """A recipe entry's plaintext, if the recipe run here gives the entry's pixels."""
        if self.recipe is None:
            return None
        try:
            made = self.recipe.run(e.id, original)
        except Error:
            return None  # a recipe that fails on this sample here: carry the pixels
        return recipe_payload(made) if pixel_digest(made) == e.pixels else None

    def __call__(self, t: SealTask) -> SealedEntry | _NotReproduced:
        entry = t.entry
        original = _decoded(t.original, entry.id)
        if self.manifest.source_of(original) != entry.source:
            raise InputError(
                "this original decodes to other pixels than the benchmark was made from",
                sample=entry.id,
                hint="create the diff from the exact original (and decoder) used by generate",
            )
        plaintext = self.reproduced(original, entry)
        if plaintext is not None:
            return self._seal(t, original, PayloadKind.RECIPE, plaintext)
        if self.recipe_only:
            return _NotReproduced(t.index)
        target = _decoded(t.target, entry.id)
        if pixel_digest(target) != entry.pixels:
            raise InputError(f"{entry.path} does not match the manifest", sample=entry.id)
        kind, plaintext = pack_payload(original, target)
        return self._seal(t, original, kind, plaintext)

    def _seal(
        self, t: SealTask, original: npt.NDArray[np.uint8], kind: PayloadKind, plaintext: bytes
    ) -> SealedEntry:
        entry = t.entry
        ikm = t.original if self.key_on is KeyOn.FILE else pixels_key_material(original)
        key = derive_key(ikm, salt=self.salt, key_on=self.key_on, sample_id=entry.id)
        return SealedEntry(
            index=t.index,
            kind=kind,
            fingerprint=fingerprint(ikm, key_on=self.key_on, salt=self.salt),
            sealed=seal_payload(key, kind, plaintext),
        )


def _decoded(data: bytes, sample_id: str) -> npt.NDArray[np.uint8]:
    try:
        return decode(data)
    except DecodeError as e:
        e.sample = sample_id
        raise


def _entry_recipe(manifest: Manifest, entries: str) -> ShippedRecipe | None:
    """The recipe the entries may name: the manifest's, if this release ships it."""
    if entries == "delta":
        return None
    try:
        return shipped_recipe_of(manifest)
    except (RecipeError, ParamError) as e:  # not shipped, or not with these parameters
        if entries == "auto":
            return None
        raise InputError(
            f"--entries recipe: the benchmark was made by {manifest.recipe}, which cannot "
            f"make recipe entries: {e.message}",
            hint="use --entries auto or delta: each sample then carries its pixels",
        ) from None


def _refuse_unreproduced(manifest: Manifest, missed: list[int]) -> None:
    """``entries="recipe"``: name the samples the recipe does not reproduce here, and why
    this process may differ from the publisher's."""
    ids = [manifest.entries[i].id for i in sorted(missed)]
    shown = ", ".join(repr(i) for i in ids[:_SHOWN]) + (", ..." if len(ids) > _SHOWN else "")
    differ = differences_for(Cause.GENERATOR, manifest.fingerprint, worker_fingerprint())
    why = (
        f"this process differs from the publisher's in {describe_differences(differ)}"
        if differ
        else "the generator fingerprints agree, so the benchmark was not made by this recipe "
        "as recorded"
    )
    raise InputError(
        f"--entries recipe: {len(ids)} of {len(manifest.entries)} samples are not what "
        f"{manifest.recipe} gives here ({shown}); {why}",
        hint="use --entries auto (those samples then carry their pixels), or make the diff "
        "in the pinned image the benchmark was generated in",
    )


@dataclass(frozen=True, kw_only=True)
class _Verified:
    """A verified benchmark's manifest, and its canonical bytes in an unnamed file."""

    manifest: Manifest
    text: BinaryIO = field(repr=False)
    """A copy of ``manifest.json``, read once: the bytes checked are the bytes written."""
    benchmark_id: bytes


@contextlib.contextmanager
def _verified_manifest(benchmark: Path, target: Path) -> Iterator[_Verified]:
    """Verify ``benchmark``, and copy its ``manifest.json`` into an unnamed temporary file
    next to ``target`` (memory does not grow with the manifest): the canonical bytes of
    the manifest verified, or :class:`ManifestError`."""
    report = verify_benchmark(benchmark)
    if not report.ok:
        raise InputError(
            f"the benchmark in {benchmark} does not verify ({len(report.problems)} problems)",
            hint=f"run `benchmark-regen verify {benchmark}` and fix it before making a diff",
        )
    manifest = report.manifest
    del report  # its problems and notes: only the manifest is kept
    near = next(p for p in (target.parent, *target.parent.parents) if p.is_dir())
    with contextlib.ExitStack() as stack:
        try:
            copy = stack.enter_context(tempfile.TemporaryFile(dir=near, prefix=TMP_PREFIX))
        except OSError as e:
            raise OutputError(f"cannot write {target}: {os_error_text(e)}") from None
        _copy_manifest(benchmark, copy, target)
        bid = benchmark_id(manifest_pieces(copy))
        if bid != benchmark_id(iter_manifest(manifest)):  # the same hash: the same bytes
            _refuse_copy(manifest, copy, benchmark / MANIFEST_NAME)
        yield _Verified(manifest=manifest, text=copy, benchmark_id=bid)


def _copy_manifest(benchmark: Path, copy: BinaryIO, target: Path) -> None:
    """Copy ``benchmark``'s ``manifest.json`` (a regular file, never through a link) to
    ``copy``, a piece at a time."""
    where = benchmark / MANIFEST_NAME
    try:
        with safefs.open_file(benchmark, MANIFEST_NAME, limit=MAX_MANIFEST_BYTES) as f:
            while piece := f.read(_PIECE):
                try:
                    copy.write(piece)
                except OSError as e:
                    raise OutputError(f"cannot write {target}: {os_error_text(e)}") from None
    except OSError as e:
        raise ManifestError(f"cannot read {where}: {os_error_text(e)}") from None
    try:
        copy.flush()
    except OSError as e:
        raise OutputError(f"cannot write {target}: {os_error_text(e)}") from None


def _refuse_copy(manifest: Manifest, copy: BinaryIO, where: Path) -> NoReturn:
    """The copy of ``where`` is not the canonical form of the manifest verified: say why."""
    copy.seek(0)
    try:
        same = read_manifest(copy) == manifest
    except ManifestError:
        same = False
    if not same:
        raise InputError(
            f"{where} changed while diff create read it",
            hint="leave the benchmark as it is until the diff is made, then run it again",
        )
    raise ManifestError(
        f"{where} is not in canonical form",
        hint="use the manifest exactly as generate wrote it",
    )


def _tasks(source: Source, outputs: OutputReader, manifest: Manifest) -> Iterator[SealTask]:
    bench, i = outputs.root, -1
    for sample in source.iter_samples(e.id for e in manifest.entries):
        i = entry_index(manifest.entries, sample.id, i + 1)
        entry = manifest.entries[i]
        try:
            target = outputs.read(entry.path)
        except OSError as e:
            raise InputError(
                f"cannot read {entry.path} in {bench}: {os_error_text(e)}", sample=entry.id
            ) from None
        yield SealTask(
            sample_id=entry.id, index=i, entry=entry, original=sample.data, target=target
        )


def create_diff(
    original: str | os.PathLike[str] | Any,
    benchmark: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    key_on: str = "file",
    workers: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    progress: Progress | None = None,
    source_options: SourceOptions | None = None,
    format: str = "bdiff",
    entries: str = "auto",
) -> CreateResult:
    """Write ``out``, a ``.bdiff`` that rebuilds ``benchmark`` for holders of ``original``.

    ``format="parquet"``: ``out`` is a folder holding the same diff as a small
    parquet dataset (``docs/huggingface.md``), which ``diff apply`` takes too.

    ``entries`` (:data:`ENTRY_CHOICES`): ``auto`` makes a recipe entry, which holds no
    pixels, for each sample that the manifest's recipe, shipped in this release and run
    here, reproduces bit for bit, and a delta (or full target) for the others; ``delta``
    never makes recipe entries; ``recipe`` only makes them, and refuses naming every sample
    that does not reproduce.

    Refuses a benchmark that does not verify, and an existing ``out`` that is a
    manifest or a benchmark folder. The output is byte-identical for the same
    original, benchmark, ``key_on``, ``entries``, zstd version and recipe outputs.
    """
    try:
        mode = KeyOn(key_on)
    except ValueError:
        raise InputError(f"key_on must be 'file' or 'pixels', not {key_on!r}") from None
    if format not in DIFF_FORMATS:
        raise InputError(
            f"unknown diff format {format!r}", hint=f"use one of: {', '.join(DIFF_FORMATS)}"
        )
    if entries not in ENTRY_CHOICES:
        raise InputError(
            f"unknown entries choice {entries!r}", hint=f"use one of: {', '.join(ENTRY_CHOICES)}"
        )
    bench = Path(benchmark)
    target = Path(out)
    _refuse_target(target, format)
    kinds: list[PayloadKind] = []
    missed: list[int] = []
    with contextlib.ExitStack() as stack:
        verified = stack.enter_context(_verified_manifest(bench, target))
        manifest = verified.manifest
        recipe = _entry_recipe(manifest, entries)
        pool = stack.enter_context(make_executor(executor, workers=workers, scheduler=scheduler))
        source = stack.enter_context(
            (source_options or SourceOptions())
            .preferring(manifest.provenance.original)
            .open(original)
        )
        pool.prestart()  # the workers import while the original is listed
        present = source.listing().ids  # sorted and packed: `in` is a binary search
        absent = [e.id for e in manifest.entries if e.id not in present]
        if absent:
            raise InputError(
                f"{len(absent)} samples of the benchmark are not in the original, "
                f"e.g. {absent[0]!r}",
                hint="create the diff from the original the benchmark was generated from",
            )
        job = _SealJob(
            key_on=mode,
            salt=verified.benchmark_id,
            manifest=replace(manifest, entries=()),
            recipe=recipe,
            recipe_only=entries == "recipe",
        )
        n = len(manifest.entries)

        def sealed() -> Iterator[SealedEntry]:
            with (
                OutputReader(bench) as outputs,
                pool.run(job, _tasks(source, outputs, manifest)) as run,
            ):
                for s in run:
                    if isinstance(s, _NotReproduced):
                        missed.append(s.index)
                    else:
                        kinds.append(s.kind)
                        yield s
                    if progress:
                        progress(len(kinds) + len(missed), n)
            if missed:  # before the writer finishes: nothing is written
                _refuse_unreproduced(manifest, missed)

        try:
            if format == "bdiff":
                header = write_diff(
                    target,
                    key_on=mode,
                    manifest_bytes=verified.text,
                    entries=sealed(),
                    entry_count=n,
                    benchmark_id=verified.benchmark_id,
                )
            else:
                header = _write_dataset(target, mode, verified, sealed(), n)
        except KeyboardInterrupt:
            raise Interrupted(
                "interrupted; no diff was written", hint="run the same command again"
            ) from None
    return CreateResult(out=target, header=header, kinds=tuple(kinds))


def _write_dataset(
    path: Path,
    key_on: KeyOn,
    verified: _Verified,
    entries: Iterable[SealedEntry],
    entry_count: int,
) -> Header:
    """The diff as a dataset, from the manifest already verified, parsed and hashed."""
    from toolchain.diff.dataset import write_diff_dataset

    return write_diff_dataset(
        path,
        key_on=key_on,
        manifest_bytes=verified.text,
        entries=entries,
        entry_count=entry_count,
        benchmark_id=verified.benchmark_id,
        manifest=verified.manifest,
    )


def _refuse_target(target: Path, format: str) -> None:
    """Never overwrite a manifest or a folder with ``--out``: only a file, or nothing."""
    if format == "parquet":
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InputError(
                f"--out {target} exists and is not an empty folder",
                hint="the parquet form of a diff is written into a new, empty folder",
            )
        return
    if target.is_dir():
        raise InputError(f"--out {target} is a folder; give the .bdiff file to write")
    if holds_manifest(target, follow_links=False):  # a link is replaced, never written through
        raise InputError(
            f"--out {target} is a benchmark-regen manifest; refusing to overwrite it",
            hint="write the diff to its own file, e.g. bench.bdiff",
        )
    if target.name in RESERVED_NAMES or is_shard_manifest(target.name):
        raise InputError(
            f"--out {target} names a file of a benchmark folder ({target.name}); refusing to "
            "overwrite it",
            hint="write the diff to its own file, e.g. bench.bdiff",
        )
