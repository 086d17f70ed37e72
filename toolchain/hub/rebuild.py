"""A publication's benchmark rebuilt: its original (given, or its recorded Hub repo fetched),
then the diff applied or the recipe run, and the result verified against the published root."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from toolchain._internal import safefs
from toolchain.audit.verify import VerifyReport, verify_benchmark
from toolchain.diff.apply import get_benchmark
from toolchain.errors import InputError, RecipeError, SourceError
from toolchain.hub import _client
from toolchain.hub.publication import DIFF_DIR, RECIPE_NAME, Publication
from toolchain.model.hashing import Digest
from toolchain.model.layout import MANIFEST_NAME
from toolchain.model.manifest import Manifest
from toolchain.recipes import Recipe, load_recipe, parse_params
from toolchain.run.generate import generate_benchmark
from toolchain.source import SourceOptions
from toolchain.source.hf import detect, is_dataset, split_patterns

__all__ = ["original_of", "rebuild"]

ORIGINAL_HINT = "or pass original= (CLI: --original PATH) with your own copy"
PINNED = "run it in the pinned container (docker/Dockerfile), whose decoders match the publisher's"


def _is_dataset_dict(obj: object) -> bool:
    return any(
        c.__name__ == "DatasetDict" and c.__module__.startswith("datasets")
        for c in type(obj).__mro__
    )


def original_of(manifest: Manifest, original: Any = None) -> tuple[Any, SourceOptions]:
    """The original to rebuild from, and how to read it: ``original`` if given (a folder, tar,
    parquet, ``Dataset`` or ``DatasetDict``), else the Hub repo the manifest records, fetched."""
    ref = manifest.provenance.original
    split = ref.split if ref is not None and ref.split else None
    config = ref.config if ref is not None and ref.config else None
    if original is None:
        if ref is None or not ref.repo:
            raise SourceError(
                "the publication does not record where its original is on the Hub "
                f"({manifest.provenance.original_name or 'no name recorded'})",
                hint="pass original= (CLI: --original PATH): your copy of it",
            )
        path = _client.fetch(
            ref.repo,
            revision=ref.revision or None,
            what="the original",
            error=SourceError,
            hint=ORIGINAL_HINT,
            allow_patterns=split_patterns(split, config),  # not the other splits' shards
        )
        return path, SourceOptions(split=split, config=config)
    if _is_dataset_dict(original):
        names = sorted(original)
        pick = split if split in names else (names[0] if len(names) == 1 else None)
        if pick is None:
            raise SourceError(
                f"the DatasetDict has splits {', '.join(names)}; the publication "
                + (f"was made from split {split!r}" if split else "records no split"),
                hint="pass the split it was made from: original=dataset_dict[SPLIT]",
            )
        return original[pick], SourceOptions(split=pick)
    if is_dataset(original):  # one without a split of its own is taken for the recorded one
        return original, SourceOptions(split=split if original.split is None else None)
    if isinstance(original, str | os.PathLike) and detect(original) is not None:
        return original, SourceOptions(split=split, config=config)
    return original, SourceOptions()


def rebuild(
    folder: Path,
    pub: Publication,
    manifest: Manifest,
    out: Path,
    *,
    original: Any = None,
    trust_recipe: bool = False,
    workers: int = 1,
    format: str = "folder",
) -> VerifyReport:
    """Rebuild the benchmark of the publication in ``folder`` into ``out`` (new or empty), and
    verify it: an :class:`InputError` unless every sample is exact and the root is ``pub``'s."""
    if pub.kind == "regenerate" and not trust_recipe:
        raise RecipeError(
            f"this publication is rebuilt by running {folder / RECIPE_NAME}, Python code, "
            "on your machine",
            hint="read it; then pass trust_recipe=True (CLI: --trust-recipe)",
        )
    source, options = original_of(manifest, original)
    if pub.kind == "diff":
        _apply(folder, pub, source, options, out, workers=workers, format=format)
    else:
        with tempfile.TemporaryDirectory(prefix="benchmark-regen-recipe-") as scratch:
            rec = _recipe(folder, pub, manifest, Path(scratch))
            columns = [c.name for c in manifest.columns]
            opts = SourceOptions(
                split=options.split, config=options.config, columns=columns
            )  # exactly the carried columns: the root covers them
            made = generate_benchmark(
                source,
                rec,
                out,
                provenance=manifest.provenance,
                source_options=opts,
                format=format,
                workers=workers,
            )
        if made.root != pub.root:
            raise InputError(
                f"regenerating gave root {made.root}, but the publication's is {pub.root}",
                hint=f"check that your original is the publisher's; {PINNED}",
            )
    return _verify(out, pub.root)


def _apply(
    folder: Path,
    pub: Publication,
    source: Any,
    options: SourceOptions,
    out: Path,
    *,
    workers: int,
    format: str,
) -> None:
    carried = pub.file(f"{DIFF_DIR}/{MANIFEST_NAME}")
    if carried is None or carried.sha256 != pub.manifest.sha256:
        raise InputError(
            f"{folder}: the diff carries another manifest than {MANIFEST_NAME}",
            hint="download the publication again; if this persists, tell its publisher",
        )
    result = get_benchmark(
        source, folder / DIFF_DIR, out, source_options=options, format=format, workers=workers
    )
    if not result.ok:
        failed = result.failures()
        counts = ", ".join(f"{n} {s}" for s, n in result.status_counts().items() if n)
        raise InputError(
            f"the diff did not rebuild the benchmark ({counts}); first: {failed[0].message}",
            sample=failed[0].id,
            hint=f"for the full report run `benchmark-regen diff apply --original ORIGINAL "
            f"--diff {folder / DIFF_DIR} --out DIR`; {PINNED}",
        )


def _recipe(folder: Path, pub: Publication, manifest: Manifest, scratch: Path) -> Recipe:
    """The publication's recipe, from a copy of ``recipe.py`` checked against the manifest."""
    ident = manifest.recipe
    data = (folder / RECIPE_NAME).read_bytes()  # checked against publication.json already
    if Digest.of(data.replace(b"\r\n", b"\n")) != ident.source:
        raise RecipeError(
            f"{folder / RECIPE_NAME} is not the recipe the manifest records (recipe.source)",
            hint="download the publication again; if this persists, tell its publisher",
        )
    safefs.write_file(scratch, RECIPE_NAME, data)
    rec = load_recipe(f"{scratch / RECIPE_NAME}:{pub.recipe}")
    rec = rec.with_params(parse_params(rec, [f"{k}={v}" for k, v in ident.params.items()]))
    if rec.identity() != ident:
        raise RecipeError(
            f"{folder / RECIPE_NAME} holds recipe {rec.identity()}, but the manifest's is {ident}",
            hint="download the publication again; if this persists, tell its publisher",
        )
    return rec


def _verify(out: Path, root: Digest) -> VerifyReport:
    report = verify_benchmark(out)
    if not report.ok or report.manifest.root != root:
        first = report.problems[0] if report.problems else None
        detail = f"; first: {first.path}: {first.problem} ({first.detail})" if first else ""
        raise InputError(
            f"the rebuilt benchmark in {out} does not verify against root {root}{detail}",
            hint=f"run `benchmark-regen verify {out}` for the full report",
        )
    return report
