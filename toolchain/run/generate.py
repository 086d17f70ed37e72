"""``generate``: regenerate a benchmark from the user's copy of the original.

The pipeline, in order (each step a small function below)::

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

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolchain.codec.decode import decode
from toolchain.codec.encode import ENCODER, check_pixels, encode_png
from toolchain.errors import (
    DecodeError,
    DeterminismError,
    Error,
    InputError,
    Interrupted,
    RecipeError,
    SourceError,
)
from toolchain.model.columns import ColumnValue
from toolchain.model.hashing import Digest, file_digest, pixel_digest, source_digest, source_salt
from toolchain.model.manifest import EntryCollector, Manifest, ManifestEntry, Provenance
from toolchain.recipes import Recipe, RecipeRef, load_recipe
from toolchain.run.determinism import process_is_pinned
from toolchain.run.executor import Executor, make_executor
from toolchain.run.fingerprint import fingerprint_digest
from toolchain.run.journal import JournaledSample, plan_digest
from toolchain.run.outdir import (
    FORMATS,
    OutDir,
    SampleWriter,
    open_out,
    plan_outputs,
    read_output,
)
from toolchain.run.shard import Shard, parse_shard
from toolchain.source import Source, SourceOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "GenerateResult",
    "Progress",
    "SampleResult",
    "SampleTask",
    "generate_benchmark",
]

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each finished sample."""


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

    @property
    def root(self) -> Digest:
        return self.manifest.root

    def to_json(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "recipe": self.manifest.recipe.to_json(),
            "ignored": dict(sorted(self.ignored.items())),
            "root": str(self.root),
            "samples": len(self.manifest.entries),
        }


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
    try:
        result = rec.apply(sid, original)
    except Error:
        raise
    except Exception as e:
        raise RecipeError(
            f"the recipe raised {type(e).__name__}: {e}",
            sample=sid,
            hint="fix the recipe; rerunning it on this sample alone reproduces the error",
        ) from None
    return check_pixels(result, sample=sid)


def _resolve(recipe: str | Recipe, params: Mapping[str, object] | None) -> Recipe:
    rec = load_recipe(recipe) if isinstance(recipe, str) else recipe
    return rec.with_params(params) if params else rec  # type: ignore[arg-type]


def _finished(outdir: OutDir, planned: Mapping[str, str]) -> dict[str, JournaledSample]:
    """Journaled samples of this run whose output file still has the journaled bytes."""
    done: dict[str, JournaledSample] = {}
    for s in outdir.journal.samples():
        if planned.get(s.entry.id) != s.entry.path:
            continue
        try:
            data = read_output(outdir.root, s.entry.path)
        except OSError:
            continue
        if file_digest(data) == s.entry.file:
            done[s.entry.id] = s
    return done


def generate_benchmark(
    original: str | os.PathLike[str] | Any,
    recipe: str | Recipe,
    out: str | os.PathLike[str],
    *,
    params: Mapping[str, object] | None = None,
    workers: int = 1,
    provenance: Provenance | None = None,
    overwrite: bool = False,
    resume: bool = False,
    shard: Shard | str | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    progress: Progress | None = None,
    source_options: SourceOptions | None = None,
    format: str = "folder",
) -> GenerateResult:
    """Regenerate the benchmark that ``recipe`` makes from ``original`` into ``out``.

    ``original``: a folder, a ``.tar``, a Hugging Face dataset folder (parquet
    shards or ``save_to_disk``) or a ``datasets.Dataset``; ``source_options`` say
    how to read it (split, image column, carried columns). ``format``: ``folder``
    (one PNG per sample) or ``parquet`` (Hugging Face shards of the same PNGs).

    The root hash is the same for any ``workers``, ``executor`` or shard split,
    listing order, locale, time zone or checkout path. With ``shard="I/N"`` only
    that shard's samples are made and ``manifest.shard-I-of-N.json`` is written;
    merge the shard manifests with :func:`toolchain.run.shard.merge_manifests`.
    ``resume`` continues a run that was interrupted (Ctrl-C, kill, power loss),
    re-checking every finished sample against the current original.
    """
    rec = _resolve(recipe, params)
    part = parse_shard(shard) if isinstance(shard, str) else shard
    in_process = executor == "local" and workers == 1 and process_is_pinned()
    ref: RecipeRef | Recipe = rec if in_process else rec.reference()
    identity = rec.identity()
    _check_format(format)
    with (
        make_executor(executor, workers=workers, scheduler=scheduler) as pool,
        (source_options or SourceOptions()).open(original) as source,
    ):
        pool.prestart()  # the workers import while the original is listed
        listing = source.listing()
        if not listing.ids:
            raise SourceError(
                f"the original {source.name!r} holds no images ({listing.ignored} other files)",
                hint="point --original at the folder, tar or dataset that holds the images",
            )
        chosen = rec.choose(listing.ids)
        plan = plan_outputs(chosen)
        if part is not None:
            plan = [(sid, path) for sid, path in plan if part.contains(sid)]
        header = {
            "kind": "generate",
            "plan": plan_digest(plan),
            "recipe": identity.to_json(),
            "samples": len(plan),
            "shard": str(part or ""),
        }
        with open_out(
            out,
            header=header,
            slug=part.slug if part else "all",
            original=_path_of(original),
            overwrite=overwrite,
            resume=resume,
            plan=plan,
        ) as outdir:
            job = _SampleJob(
                recipe=ref,
                writer=outdir.writer if pool.shares_files else None,
                salt=source_salt(identity.to_json()),
            )
            run = _Run(outdir, dict(plan), progress)
            done = _finished(outdir, run.planned) if resume else {}
            tasks = run.tasks(source, [sid for sid, _ in plan], done)
            entries = run.execute(job, tasks, pool)
            del done
            prov = provenance or Provenance()
            manifest = Manifest.build(
                recipe=identity,
                entries=entries,
                fingerprint=run.fingerprint,
                encoder=ENCODER,
                columns=listing.columns,
                provenance=Provenance(
                    original_name=prov.original_name or source.name,
                    original_terms=prov.original_terms,
                    recipe_license=prov.recipe_license,
                    samples_used=len(chosen),
                    samples_in_original=len(listing.ids),
                ),
                shard=str(part) if part else None,
            )
            if part is None:
                outdir.commit(manifest, format=format, split=source.split_name)
            else:
                outdir.commit(manifest)
    return GenerateResult(
        out=Path(out), manifest=manifest, redone=run.redone, ignored=dict(listing.ignored_kinds)
    )


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise InputError(
            f"unknown output format {format!r}", hint=f"use one of: {', '.join(FORMATS)}"
        )


def _path_of(original: object) -> Path | None:
    """The original's path, for the --out overlap check (a ``Dataset`` object has none)."""
    return Path(original) if isinstance(original, str | os.PathLike) else None


class _Run:
    """The collecting side of one run: feeds tasks, journals results, counts progress."""

    def __init__(self, outdir: OutDir, planned: Mapping[str, str], progress: Progress | None):
        self.outdir = outdir
        self.planned = planned
        self.progress = progress
        self.finished = EntryCollector()  # packed: a few hundred bytes a sample
        self.fingerprint: Mapping[str, str] = {}
        self.redone = 0

    def _tick(self) -> None:
        if self.progress:
            self.progress(len(self.finished), len(self.planned))

    def tasks(
        self, source: Source, ids: Sequence[str], done: Mapping[str, JournaledSample]
    ) -> Iterator[SampleTask]:
        """Every planned sample not finished; a finished one is re-checked against its original."""
        for sample in source.iter_samples(ids):
            prior = done.get(sample.id)
            if prior is not None:
                if prior.source_file == file_digest(sample.data):
                    self.finished.add(prior.entry)
                    self._tick()
                    continue
                self.redone += 1  # the original changed since: make it again
            self.outdir.journal.note_writing(self.planned[sample.id], sample.id)
            yield SampleTask(
                sample_id=sample.id,
                path=self.planned[sample.id],
                data=sample.data,
                columns=sample.columns,
            )

    def execute(
        self, job: _SampleJob, tasks: Iterator[SampleTask], executor: Executor
    ) -> EntryCollector:
        journal = self.outdir.journal
        previous = journal.recorded_fingerprint()
        journal.open()
        try:
            with executor.run(job, tasks) as run:
                digest = fingerprint_digest(run.fingerprint)
                if previous is not None and previous != digest:
                    raise DeterminismError(
                        "the interrupted run was made in a different environment "
                        f"(fingerprint {previous}, now {digest})",
                        hint="resume in the same pinned environment, or --overwrite to start over",
                    )
                journal.note_fingerprint(digest)
                self.fingerprint = run.fingerprint
                for result in run:
                    if result.png is not None:
                        self.outdir.writer.write(
                            result.entry.path, result.png, sample=result.entry.id
                        )
                    journal.append(result.entry, result.source_file)
                    self.finished.add(result.entry)
                    self._tick()
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted after {len(self.finished)} of {len(self.planned)} samples; "
                "no manifest was written",
                hint="run the same command again with --resume to finish the rest",
            ) from None
        finally:
            journal.close()
        return self.finished
