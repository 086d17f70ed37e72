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
from toolchain.decode import decode
from toolchain.determinism import process_is_pinned
from toolchain.encode import check_pixels, encode_png, output_path_for
from toolchain.errors import DecodeError, Error, Interrupted, OutputError, RecipeError, SourceError
from toolchain.hashing import Digest, file_digest, pixel_digest
from toolchain.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    Provenance,
    write_manifest,
)
from toolchain.recipes import Recipe, load_recipe
from toolchain.source import Source, open_source

__all__ = ["METADATA_NAME", "GenerateResult", "Progress", "generate_benchmark", "plan_outputs"]

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


def _prepare_out(out: Path, *, overwrite: bool) -> None:
    """Make ``out`` an empty folder; an old benchmark is removed only with ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputError(
                f"--out {out} is not empty",
                hint="choose an empty folder, or pass --overwrite to replace a benchmark there",
            )
        if not (out / MANIFEST_NAME).exists() and not (out / METADATA_NAME).exists():
            raise OutputError(
                f"--out {out} is not empty and does not hold a benchmark; refusing to delete it",
                hint="choose an empty folder",
            )
        # The manifest goes first: a half-deleted folder must never look valid.
        (out / MANIFEST_NAME).unlink(missing_ok=True)
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
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


def _write_metadata(out: Path, entries: Sequence[ManifestEntry]) -> None:
    """``metadata.jsonl`` for ``datasets.load_dataset("imagefolder", data_dir=OUT)``."""
    lines = [
        json.dumps({"file_name": e.path, "sample_id": e.id}, sort_keys=True, ensure_ascii=True)
        for e in entries
    ]
    atomic_write(out / METADATA_NAME, ("\n".join(lines) + "\n").encode("ascii"))


def generate_benchmark(
    original: str | os.PathLike[str],
    recipe: str | Recipe,
    out: str | os.PathLike[str],
    *,
    params: Mapping[str, object] | None = None,
    workers: int = 1,
    provenance: Provenance | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> GenerateResult:
    """Regenerate the benchmark that ``recipe`` makes from ``original`` into ``out``.

    The result's root hash is the same for any ``workers`` value, listing
    order, locale, time zone or checkout path.
    """
    rec = load_recipe(recipe) if isinstance(recipe, str) else recipe
    if params:
        rec = rec.with_params(params)  # type: ignore[arg-type]
    source = open_source(original)
    out_path = Path(out)
    listing = source.listing()
    chosen = rec.choose(listing.ids)
    tasks = plan_outputs(chosen)
    _prepare_out(out_path, overwrite=overwrite)
    loadable = _loadable(rec)
    if not loadable and (workers > 1 or not process_is_pinned()):
        raise RecipeError(
            f"recipe {rec.name!r} is defined where the pinned worker processes cannot import "
            "it (inside a function, or in an interactive session)",
            hint="define it at the top level of a .py file and pass path/to/file.py:NAME",
        )
    job = _SampleJob(
        source=source,
        recipe_ref=rec.ref if loadable else "",
        params=dict(rec.params),
        out=out_path.resolve(),
        inline_recipe=None if loadable else rec,
    )
    entries: list[ManifestEntry] = []
    try:
        with run_ordered(job, tasks, workers=workers) as run:
            for entry in run:
                entries.append(entry)
                if progress:
                    progress(len(entries), len(tasks))
            fingerprint = run.fingerprint
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after {len(entries)} of {len(tasks)} samples; no manifest was written",
            hint="run the same command again",
        ) from None
    finally:
        source.close()
    prov = provenance or Provenance(original_name=source.name)
    prov = Provenance(
        original_name=prov.original_name or source.name,
        original_terms=prov.original_terms,
        recipe_license=prov.recipe_license,
        samples_used=len(entries),
        samples_in_original=len(listing.ids),
    )
    manifest = Manifest.build(
        recipe=rec.identity(),
        entries=entries,
        fingerprint=fingerprint,
        provenance=prov,
    )
    try:
        _write_metadata(out_path, manifest.entries)
        write_manifest(manifest, out_path / MANIFEST_NAME)
    except OSError as e:
        raise OutputError(f"cannot write the manifest: {e.strerror or e}") from None
    return GenerateResult(out=out_path, manifest=manifest)
