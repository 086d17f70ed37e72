"""``generate``: regenerate a benchmark from the user's copy of the original.

The pipeline, in order (the run's skeleton is :func:`toolchain.run.session.run_session`)::

    open source → list → select → plan outputs → open --out (prepare, lock)
        → the collecting process reads each sample once, in the source's order,
          and ships its bytes to a worker
        → per sample, in a worker: decode → hash source → transform → check
          → encode → hash → write
        → the collecting process journals each result, in task order
        → companions (metadata.jsonl, ...) → manifest.json (the commit point)

A sample's output depends only on its bytes, the recipe and the sample id:
not on the worker that ran it, the order, the time or the machine's locale.
Until ``manifest.json`` is written the folder is not a benchmark: nothing
half-written can pass ``verify``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

# Re-exported only for toolchain.demo, until it imports the owner, toolchain._internal.progress.
from toolchain.codec.decode import decode
from toolchain.codec.encode import ENCODER, encode_png
from toolchain.errors import DecodeError, InputError, SourceError
from toolchain.model.columns import ColumnValue
from toolchain.model.hashing import Digest, file_digest, pixel_digest, source_digest, source_salt
from toolchain.model.layout import PlannedOutputs, output_path_for, plan_outputs
from toolchain.model.manifest import EntryCollector, Manifest, ManifestEntry, Provenance
from toolchain.model.original import OriginalRef
from toolchain.recipes import Recipe, RecipeRef, load_recipe
from toolchain.run.determinism import process_is_pinned
from toolchain.run.journal import JournaledSample
from toolchain.run.outdir import SampleWriter
from toolchain.run.session import Plan, RunKeywords, RunOptions, Session, run_session
from toolchain.source import Listing, Source, SourceOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "GenerateResult",
    "SampleResult",
    "SampleTask",
    "generate_benchmark",
]


@dataclass(frozen=True, kw_only=True)
class GenerateResult:
    """What a finished ``generate`` produced."""

    out: Path
    manifest: Manifest
    redone: int = 0
    """Samples a resumed run made again because their original had changed."""
    ignored: Mapping[str, int] = field(default_factory=dict)
    """Files of the original that are not samples, by kind (``.gif``, ``hidden``, ...): the
    listing's ``ignored_kinds``."""
    notes: tuple[str, ...] = ()
    """What the user should know: journal records a resumed run did not trust (and made
    again), a run key that could not be stored, ..."""

    @property
    def root(self) -> Digest:
        return self.manifest.root

    def to_json(self) -> dict[str, object]:
        """The result as ``--json`` prints it (``notes`` only when there are some)."""
        doc: dict[str, object] = {
            "out": str(self.out),
            "recipe": self.manifest.recipe.to_json(),
            "ignored": dict(sorted(self.ignored.items())),
            "root": str(self.root),
            "samples": len(self.manifest.entries),
        }
        if self.notes:
            doc["notes"] = list(self.notes)
        return doc


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleTask:
    """One sample to make: its id, output path, the original's bytes, its carried columns."""

    sample_id: str
    path: str
    data: bytes = field(repr=False)
    columns: Mapping[str, ColumnValue]


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleResult:
    entry: ManifestEntry
    source_file: Digest
    """SHA-256 of the original's file bytes (journaled: a resumed run re-checks it)."""
    png: bytes | None = field(default=None, repr=False)
    """The PNG, when the collecting process writes it (workers without the folder)."""


@dataclass(frozen=True)
class _SampleJob:
    """The per-sample pipeline; picklable, sent once to each worker."""

    recipe: RecipeRef | Recipe
    writer: SampleWriter | None
    salt: bytes
    """The benchmark's source-commitment salt (from the recipe identity)."""

    def __call__(self, task: SampleTask) -> SampleResult:
        sid = task.sample_id
        source_file = file_digest(task.data)
        original = _decode(task)
        source = source_digest(original, self.salt)
        pixels = _transform(self.recipe, sid, original)
        png = encode_png(pixels)
        entry = ManifestEntry(
            id=sid,
            path=task.path,
            pixels=pixel_digest(pixels),
            file=file_digest(png),
            source=source,
            columns=task.columns,
        )
        if self.writer is None:
            return SampleResult(entry=entry, source_file=source_file, png=png)
        self.writer.write(task.path, png, sample=sid)
        return SampleResult(entry=entry, source_file=source_file)


def _decode(task: SampleTask) -> npt.NDArray[np.uint8]:
    try:
        return decode(task.data)
    except DecodeError as e:
        e.sample = task.sample_id
        raise


def _transform(
    recipe: RecipeRef | Recipe, sid: str, original: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    rec = recipe.resolve() if isinstance(recipe, RecipeRef) else recipe
    return rec.run(sid, original)


def _original_of(source: Source, declared: OriginalRef | None) -> OriginalRef | None:
    """The identity the manifest records: the source's, its unknown fields filled from the
    caller's ``declared`` one, which may not contradict it."""
    found = source.original_ref
    if declared is None or found is None:
        return found or declared
    differ = found.differs_from(declared, revision=True)
    if differ:
        f = differ[0]
        raise InputError(
            f"provenance.original says {f} {getattr(declared, f)!r}, but the original "
            f"{source.name!r} is {f} {getattr(found, f)!r}",
            hint=f"leave provenance.original's {f} empty (the original's own is recorded), "
            "or pass the original it names",
        )
    return found.filled_from(declared)


def _resolve(recipe: str | Recipe, params: Mapping[str, object] | None) -> Recipe:
    rec = load_recipe(recipe) if isinstance(recipe, str) else recipe
    return rec.with_params(params) if params else rec  # type: ignore[arg-type]


def generate_benchmark(
    original: str | os.PathLike[str] | Any,
    recipe: str | Recipe,
    out: str | os.PathLike[str],
    *,
    params: Mapping[str, object] | None = None,
    provenance: Provenance | None = None,
    options: RunOptions | None = None,
    **run: Unpack[RunKeywords],
) -> GenerateResult:
    """Regenerate the benchmark that ``recipe`` makes from ``original`` into ``out``.

    ``original``: a folder, a ``.tar``, a Hugging Face dataset folder (parquet
    shards or ``save_to_disk``) or a ``datasets.Dataset``. How the run goes:
    ``options``, or its fields as keywords (``workers``, ``executor``, ``scheduler``,
    ``shard``, ``overwrite``, ``resume``, ``format``, ``source_options``, ``progress``;
    see :class:`~toolchain.run.session.RunOptions`), not both.

    The root hash is the same for any ``workers``, ``executor`` or shard split,
    listing order, locale, time zone or checkout path. With ``shard="I/N"`` only
    that shard's samples are made and ``manifest.shard-I-of-N.json`` is written;
    merge the shard manifests with :func:`toolchain.run.shard.merge_manifests`.
    ``resume`` continues a run that was interrupted (Ctrl-C, kill, power loss),
    re-checking every finished sample against the current original; a journal record that
    does not verify under the run's key is not trusted (``GenerateResult.notes``).
    """
    rec = _resolve(recipe, params)
    opts = RunOptions.of(options, run, caller="generate_benchmark")
    steps = _Generate(rec, opts, out=Path(out), provenance=provenance)
    return run_session(steps, original, out, opts)


class _Generate:
    """What ``generate`` supplies to the run: the plan (the recipe's selection of the
    original), the per-sample job, and the manifest it builds."""

    command = "generate"
    resumable = True
    listing: Listing
    planned: PlannedOutputs
    """The run's samples (its shard's, if any) and their output paths, in id order."""
    samples_used: int
    """The recipe's selection (of all shards)."""
    original: OriginalRef | None
    """The original's identity, as the manifest records it."""

    def source_options(self, given: SourceOptions) -> SourceOptions:
        return given

    def __init__(
        self, rec: Recipe, options: RunOptions, *, out: Path, provenance: Provenance | None
    ):
        in_process = options.executor == "local" and options.workers == 1 and process_is_pinned()
        self.recipe = rec
        self.ref: RecipeRef | Recipe = rec if in_process else rec.reference()
        self.identity = rec.identity()
        self.options = options
        self.out = out
        self.provenance = provenance or Provenance()
        self.finished = EntryCollector()  # packed: a few hundred bytes a sample
        self.redone = 0

    def inputs(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def plan(self, source: Source) -> Plan:
        self.original = _original_of(source, self.provenance.original)
        listing = source.listing()
        if not listing.ids:
            raise SourceError(
                f"the original {source.name!r} holds no images ({listing.ignored} other files)",
                hint="point --original at the folder, tar or dataset that holds the images",
            )
        chosen = plan_outputs(self.recipe.choose(listing.ids))
        pairs = chosen
        if self.options.shard is not None:
            pairs = PlannedOutputs(s for s in chosen.ids if self.options.selects(s))
        self.listing, self.samples_used, self.planned = listing, len(chosen), pairs
        return Plan(kind="generate", made_from={"recipe": self.identity.to_json()}, pairs=pairs)

    def produce(
        self, session: Session, source: Source, finished: Mapping[str, JournaledSample]
    ) -> None:
        job = _SampleJob(
            recipe=self.ref, writer=session.writer, salt=source_salt(self.identity.to_json())
        )
        tasks = self._tasks(session, source, finished)
        session.execute(job, tasks, lambda result: self._collect(session, result))

    def _tasks(
        self, session: Session, source: Source, done: Mapping[str, JournaledSample]
    ) -> Iterator[SampleTask]:
        """Every planned sample not finished; a finished one is re-checked against its original
        (its bytes; its carried columns are taken from it, never from the journal)."""
        for sample in source.iter_samples(self.planned.ids):
            prior = done.get(sample.id)
            if prior is not None:
                if prior.source_file == file_digest(sample.data):
                    self.finished.add(dataclasses.replace(prior.entry, columns=sample.columns))
                    session.tick(len(self.finished))
                    continue
                self.redone += 1  # the original changed since: make it again
            path = output_path_for(sample.id)
            session.handing_out(path, sample.id)
            yield SampleTask(
                sample_id=sample.id,
                path=path,
                data=sample.data,
                columns=sample.columns,
            )

    def _collect(self, session: Session, result: SampleResult) -> None:
        session.keep(result.entry, result.source_file, result.png)
        self.finished.add(result.entry)
        session.tick(len(self.finished))

    def commit(self, session: Session, source: Source) -> GenerateResult:
        prov, shard = self.provenance, self.options.shard
        manifest = Manifest.build(
            recipe=self.identity,
            entries=self.finished,
            fingerprint=session.fingerprint,
            encoder=ENCODER,
            columns=self.listing.columns,
            provenance=Provenance(
                original_name=prov.original_name
                or (self.original.repo if self.original else "")
                or source.name,
                original_terms=prov.original_terms,
                recipe_license=prov.recipe_license,
                samples_used=self.samples_used,
                samples_in_original=len(self.listing.ids),
                original=self.original,
            ),
            shard=str(shard) if shard else None,
        )
        session.commit(manifest)
        return GenerateResult(
            out=self.out,
            manifest=manifest,
            redone=self.redone,
            ignored=dict(self.listing.ignored_kinds),
            notes=tuple(session.notes),
        )
