"""``generate``: regenerate a benchmark from the user's copy of the original.

The pipeline, in order (each step a small function below)::

    open source → list → select → plan outputs → prepare --out
        → per sample: read → decode → hash source → transform → check → encode → hash → write
        → metadata.jsonl → manifest.json (the commit point, written last)

A sample's output depends only on its bytes, the recipe and the sample id:
not on the worker that ran it, the order, the time or the machine's locale.
Until ``manifest.json`` is written the folder is not a benchmark: nothing
half-written can pass ``verify``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain._internal.atomic import atomic_write
from toolchain._internal.executor import run_ordered
from toolchain._internal.journal import STATE_DIR, Journal, clean_temp_files
from toolchain.decode import decode
from toolchain.determinism import process_is_pinned
from toolchain.encode import check_pixels, encode_png, output_path_for
from toolchain.errors import (
    DecodeError,
    DeterminismError,
    Error,
    Interrupted,
    OutputError,
    RecipeError,
    SourceError,
)
from toolchain.fingerprint import fingerprint_digest
from toolchain.hashing import Digest, file_digest, pixel_digest
from toolchain.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    Provenance,
    write_manifest,
)
from toolchain.recipes import Recipe, load_recipe
from toolchain.shard import Shard, parse_shard
from toolchain.source import Source, open_source

__all__ = [
    "METADATA_NAME",
    "GenerateResult",
    "Progress",
    "generate_benchmark",
    "plan_outputs",
    "shard_manifest_name",
]

METADATA_NAME = "metadata.jsonl"
Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each finished sample."""


@dataclass(frozen=True, kw_only=True)
class GenerateResult:
    """What a finished ``generate`` produced."""

    out: Path
    manifest: Manifest

    @property
    def root(self) -> Digest:
        return self.manifest.root

    def to_json(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "recipe": self.manifest.recipe.to_json(),
            "root": str(self.root),
            "samples": len(self.manifest.entries),
        }


@dataclass(frozen=True, kw_only=True)
class _Task:
    sample_id: str
    path: str


@dataclass(frozen=True)
class _SampleJob:
    """The per-sample pipeline; picklable, sent once to each worker."""

    source: Source
    recipe_ref: str
    params: Mapping[str, object]
    out: Path
    inline_recipe: Recipe | None = None

    def _recipe(self) -> Recipe:
        cached: Recipe | None = self.__dict__.get("_loaded")
        if cached is None:
            base = self.inline_recipe or load_recipe(self.recipe_ref)
            cached = base.with_params(dict(self.params))  # type: ignore[arg-type]
            object.__setattr__(self, "_loaded", cached)
        return cached

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state.pop("_loaded", None)
        if self.recipe_ref:
            state["inline_recipe"] = None  # workers load it by reference
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)

    def __call__(self, task: _Task) -> ManifestEntry:
        sid = task.sample_id
        data = self.source.read(sid)
        try:
            original = decode(data)
        except DecodeError as e:
            e.sample = sid
            raise
        source_pixels = pixel_digest(original)
        try:
            result = self._recipe().apply(sid, original)
        except Error:
            raise
        except Exception as e:
            raise RecipeError(
                f"the recipe raised {type(e).__name__}: {e}",
                sample=sid,
                hint="fix the recipe; rerunning it on this sample alone reproduces the error",
            ) from None
        pixels = check_pixels(result, sample=sid)
        png = encode_png(pixels)
        try:
            atomic_write(self.out / task.path, png)
        except OSError as e:
            raise OutputError(
                f"cannot write {task.path}: {e.strerror or e}",
                sample=sid,
                hint="check free space and permissions of --out",
            ) from None
        return ManifestEntry(
            id=sid,
            path=task.path,
            pixels=pixel_digest(pixels),
            file=file_digest(png),
            source_pixels=source_pixels,
        )


def _loadable(rec: Recipe) -> bool:
    """Can a fresh process load this very recipe from its reference?"""
    if not rec.ref:
        return False
    try:
        return load_recipe(rec.ref).fn.__code__ is rec.fn.__code__
    except RecipeError:
        return False


def plan_outputs(ids: Sequence[str]) -> list[_Task]:
    """Map sample ids to output paths; refuse two ids that would share an output."""
    tasks: list[_Task] = []
    seen: dict[str, str] = {}
    for sid in ids:
        path = output_path_for(sid)
        key = path.casefold()
        if key in seen:
            raise SourceError(
                f"samples {seen[key]!r} and {sid!r} would both be written to {path!r}",
                hint="rename one of them in the original",
            )
        seen[key] = sid
        tasks.append(_Task(sample_id=sid, path=path))
    return tasks


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".tmp-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(
            f"cannot write to --out {out}: {e.strerror or e}",
            hint="check that the folder is writable and the disk has space",
        ) from None


def _wipe(out: Path) -> None:
    """Remove an old benchmark; the manifest goes first so nothing half-deleted looks valid."""
    if (
        not (out / MANIFEST_NAME).exists()
        and not (out / METADATA_NAME).exists()
        and not (out / STATE_DIR).exists()
    ):
        raise OutputError(
            f"--out {out} is not empty and does not hold a benchmark; refusing to delete it",
            hint="choose an empty folder",
        )
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _prepare_out(
    out: Path,
    journal: Journal | None = None,
    *,
    overwrite: bool,
    resume: bool = False,
    sharded: bool = False,
) -> dict[str, ManifestEntry]:
    """Get ``out`` ready; returns the samples a resumed run has already finished.

    * a fresh run needs an empty (or missing) folder; ``overwrite`` replaces an
      old benchmark; shards of one run share the folder;
    * ``resume`` continues the interrupted run recorded in the journal, after
      re-checking every journaled file against its hash.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    done: dict[str, ManifestEntry] = {}
    if resume and out.is_dir():
        clean_temp_files(out)  # leftovers of a killed run are never trusted
    if resume and journal is not None and journal.exists():
        recorded = journal.recorded_header()
        if recorded is None or {k: recorded.get(k) for k in journal.header} != journal.header:
            raise OutputError(
                f"the interrupted run in {out} is a different run (recipe, parameters, shard "
                "or samples differ)",
                hint="use the same command as the interrupted run, or --overwrite to start over",
            )
        done = journal.finished(out)
    elif journal is not None and journal.exists() and not overwrite:
        raise OutputError(
            f"--out {out} holds an interrupted run",
            hint="add --resume to continue it, or --overwrite to start over",
        )
    elif out.is_dir() and any(out.iterdir()) and not sharded and not resume:
        if not overwrite:
            raise OutputError(
                f"--out {out} is not empty",
                hint="choose an empty folder, or pass --overwrite to replace a benchmark there",
            )
        _wipe(out)
    # Writability first: on a read-only file system even unlinking a missing file fails.
    _check_writable(out)
    # A completed benchmark's manifest must go before any sample is rewritten.
    if not sharded:
        (out / MANIFEST_NAME).unlink(missing_ok=True)
    return done


def _write_metadata(out: Path, entries: Sequence[ManifestEntry]) -> None:
    """``metadata.jsonl`` for ``datasets.load_dataset("imagefolder", data_dir=OUT)``."""
    lines = [
        json.dumps({"file_name": e.path, "sample_id": e.id}, sort_keys=True, ensure_ascii=True)
        for e in entries
    ]
    atomic_write(out / METADATA_NAME, ("\n".join(lines) + "\n").encode("ascii"))


def shard_manifest_name(shard: Shard) -> str:
    return f"manifest.shard-{shard.slug}.json"


def generate_benchmark(
    original: str | os.PathLike[str],
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
) -> GenerateResult:
    """Regenerate the benchmark that ``recipe`` makes from ``original`` into ``out``.

    The root hash is the same for any ``workers``, ``executor`` or shard split,
    listing order, locale, time zone or checkout path. With ``shard="I/N"`` only
    that shard's samples are made and ``manifest.shard-I-of-N.json`` is written;
    merge the shard manifests with :func:`toolchain.shard.merge_manifests`.
    ``resume`` continues a run that was interrupted (Ctrl-C, kill, power loss).
    """
    rec = load_recipe(recipe) if isinstance(recipe, str) else recipe
    if params:
        rec = rec.with_params(params)  # type: ignore[arg-type]
    part = parse_shard(shard) if isinstance(shard, str) else shard
    out_path = Path(out)
    identity = rec.identity()
    with open_source(original) as source:
        listing = source.listing()
        chosen = rec.choose(listing.ids)
        tasks = plan_outputs(chosen)
        if part is not None:
            tasks = [t for t in tasks if part.contains(t.sample_id)]
        journal = Journal(
            out_path,
            part.slug if part else "all",
            {"recipe": identity.to_json(), "samples": len(tasks), "shard": str(part or "")},
        )
        done = _prepare_out(
            out_path, journal, overwrite=overwrite, resume=resume, sharded=part is not None
        )
        loadable = _loadable(rec)
        if not loadable and (workers > 1 or executor != "local" or not process_is_pinned()):
            raise RecipeError(
                f"recipe {rec.name!r} is defined where the pinned worker processes cannot "
                "import it (inside a function, or in an interactive session)",
                hint="define it at the top level of a .py file and pass path/to/file.py:NAME",
            )
        job = _SampleJob(
            source=source,
            recipe_ref=rec.ref if loadable else "",
            params=dict(rec.params),
            out=out_path.resolve(),
            inline_recipe=None if loadable else rec,
        )
        entries = _run(job, tasks, done, journal, workers, executor, scheduler, progress)
    prov = provenance or Provenance()
    prov = Provenance(
        original_name=prov.original_name or source.name,
        original_terms=prov.original_terms,
        recipe_license=prov.recipe_license,
        samples_used=len(chosen),
        samples_in_original=len(listing.ids),
    )
    manifest = Manifest.build(
        recipe=identity,
        entries=entries.values(),
        fingerprint=entries.fingerprint,
        provenance=prov,
        shard=str(part) if part else None,
    )
    try:
        if part is None:
            _write_metadata(out_path, manifest.entries)
            write_manifest(manifest, out_path / MANIFEST_NAME)
        else:
            write_manifest(manifest, out_path / shard_manifest_name(part))
    except OSError as e:
        raise OutputError(f"cannot write the manifest: {e.strerror or e}") from None
    journal.remove()
    return GenerateResult(out=out_path, manifest=manifest)


class _Finished(dict[str, ManifestEntry]):
    """Finished entries by id, plus the fingerprint of the workers that made them."""

    fingerprint: Mapping[str, str]


def _run(
    job: _SampleJob,
    tasks: Sequence[_Task],
    done: Mapping[str, ManifestEntry],
    journal: Journal,
    workers: int,
    executor: str,
    scheduler: str | None,
    progress: Progress | None,
) -> _Finished:
    """Run the pending tasks, journaling each finished sample in task order."""
    finished = _Finished(done)
    pending = [t for t in tasks if t.sample_id not in done]
    total = len(tasks)
    if progress and finished:
        progress(len(finished), total)
    previous = journal.recorded_fingerprint() if finished else None
    journal.open()
    try:
        with run_ordered(
            job, pending, workers=workers, executor=executor, scheduler=scheduler
        ) as run:
            digest = fingerprint_digest(run.fingerprint)
            if previous is not None and previous != digest:
                raise DeterminismError(
                    "the interrupted run was made in a different environment "
                    f"(fingerprint {previous}, now {digest})",
                    hint="resume in the same pinned environment, or --overwrite to start over",
                )
            journal.note_fingerprint(digest)
            for entry in run:
                journal.append(entry)
                finished[entry.id] = entry
                if progress:
                    progress(len(finished), total)
            finished.fingerprint = run.fingerprint
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after {len(finished)} of {total} samples; no manifest was written",
            hint="run the same command again with --resume to finish the rest",
        ) from None
    finally:
        journal.close()
    return finished


def write_merged(manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write a merged manifest; beside it, the ``metadata.jsonl`` of the whole benchmark."""
    target = Path(path)
    try:
        if target.name == MANIFEST_NAME:
            _write_metadata(target.parent, manifest.entries)
        write_manifest(manifest, target)
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
