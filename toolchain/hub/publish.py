"""``publish``: a benchmark and its original → a folder that is a Hub dataset repo (the diff, or
the recipe file), written whole or not at all, and optionally pushed (``docs/hub.md``)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchain._internal import safefs
from toolchain._internal.atomic import TMP_PREFIX, fsync_dir
from toolchain._internal.progress import Progress
from toolchain.audit.sign import load_private_key, sign_manifest_bytes
from toolchain.audit.verify import verify_benchmark
from toolchain.diff.create import create_diff
from toolchain.errors import InputError, ManifestError, OutputError, RecipeError, os_error_text
from toolchain.hub import _client
from toolchain.hub.metadata import PLACEHOLDER_REPO, render_croissant, render_readme
from toolchain.hub.publication import (
    DIFF_DIR,
    PUBLICATION_NAME,
    RECIPE_NAME,
    UNLISTED,
    Publication,
    PublishedFile,
    list_files,
)
from toolchain.model.hashing import Digest
from toolchain.model.layout import (
    CARD_NAME,
    CROISSANT_NAME,
    MANIFEST_NAME,
    SIGNATURE_NAME,
)
from toolchain.model.manifest import Manifest, is_canonical, parse_manifest
from toolchain.recipes import BUILTIN_RECIPES, load_recipe
from toolchain.run.outdir import read_output
from toolchain.source import SourceOptions

__all__ = ["PublishResult", "publish"]

MAX_RECIPE_BYTES = 16 << 20


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    out: Path
    kind: str
    root: Digest
    repo: str
    """The repo id the card names (``ORG/NAME`` when none was given)."""
    files: tuple[PublishedFile, ...]
    """Every file of the folder, sorted by path."""
    commit: str | None = None
    """The Hub commit, once pushed."""

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "files": [f.to_json() for f in self.files],
            "kind": self.kind,
            "out": str(self.out),
            "repo": self.repo,
            "root": str(self.root),
        }


def publish(
    benchmark: str | os.PathLike[str],
    original: str | os.PathLike[str] | Any,
    out: str | os.PathLike[str],
    *,
    key: str | os.PathLike[str] | None = None,
    regenerate_only: bool = False,
    recipe: str | os.PathLike[str] | None = None,
    name: str | None = None,
    push: str | None = None,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    key_on: str = "file",
    entries: str = "auto",
    workers: int = 1,
    source_options: SourceOptions | None = None,
    progress: Progress | None = None,
) -> PublishResult:
    """Write ``out`` (new, or an empty folder): ``benchmark`` published for users of ``original``.

    By default it holds the diff (``diff/``, a parquet dataset) that rebuilds the benchmark
    from the original; with ``regenerate_only``, the recipe file instead (``recipe``:
    ``path/to/recipe.py[:NAME]``, whose SHA-256 must be the manifest's ``recipe.source``).
    Also ``manifest.json``, ``manifest.sig`` (with the private ``key``), ``publication.json``,
    ``croissant.json`` and ``README.md``, whose first code block loads it by ``name``. Same
    inputs, same bytes; a failure leaves nothing at ``out``. ``key_on`` and ``entries``: as
    for :func:`~toolchain.diff.create.create_diff`.

    ``push``: the Hub dataset repo (``org/name``) to upload to, as one commit on ``revision``
    (``private`` if it is created); not with ``dry_run``, which writes and lists only.
    """
    target = Path(out)
    repo = _repo(name, push)
    _refuse_target(target)
    kind = "regenerate" if regenerate_only else "diff"
    opts = source_options or SourceOptions()
    work = target.with_name(f"{TMP_PREFIX}{secrets.token_hex(8)}-{target.name}")
    try:
        work.mkdir(parents=True)
        if kind == "diff":
            create_diff(
                original,
                benchmark,
                work / DIFF_DIR,
                format="parquet",
                key_on=key_on,
                entries=entries,
                workers=workers,
                progress=progress,
                source_options=opts,
            )
            manifest_bytes = (work / DIFF_DIR / MANIFEST_NAME).read_bytes()  # as carried
            manifest, attr = parse_manifest(manifest_bytes), ""
        else:
            manifest_bytes = _verified_manifest_bytes(Path(benchmark))
            manifest = parse_manifest(manifest_bytes)
            recipe_bytes, attr = _recipe_file(recipe, manifest)
            _check_original(original, opts, manifest)
            safefs.write_file(work, RECIPE_NAME, recipe_bytes)
        safefs.write_file(work, MANIFEST_NAME, manifest_bytes)
        if key is not None:
            signature = sign_manifest_bytes(manifest_bytes, load_private_key(key))
            safefs.write_file(work, SIGNATURE_NAME, signature)
        files = tuple(list_files(work, skip=UNLISTED))
        pub = Publication(
            kind=kind,
            root=manifest.root,
            samples=len(manifest.entries),
            recipe=attr,
            files=files,
        )
        described = {
            CROISSANT_NAME: render_croissant(repo, pub, manifest, files),
            PUBLICATION_NAME: pub.render(),
            CARD_NAME: render_readme(repo, pub, manifest),
        }
        for rel, data in described.items():
            safefs.write_file(work, rel, data)
        _commit(work, target)
    except OSError as e:
        shutil.rmtree(work, ignore_errors=True)
        raise OutputError(f"cannot write {target}: {os_error_text(e)}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    every = files + tuple(
        PublishedFile(path=rel, size=len(data), sha256=Digest.of(data))
        for rel, data in described.items()
    )
    listing = tuple(sorted(every, key=lambda f: f.path.encode("utf-8")))
    commit = None
    if push is not None and not dry_run:
        commit = _client.upload(
            target,
            push,
            private=private,
            revision=revision,
            message=f"benchmark-regen publish: {manifest.recipe} (root {manifest.root.short})",
        )
    return PublishResult(
        out=target, kind=kind, root=manifest.root, repo=repo, files=listing, commit=commit
    )


def _repo(name: str | None, push: str | None) -> str:
    if name is not None and push is not None and name != push:
        raise InputError(
            f"the card would name {name} but the folder is pushed to {push}",
            hint="give one of them (--push names the card too)",
        )
    repo = name or push or PLACEHOLDER_REPO
    if repo != PLACEHOLDER_REPO and not _client.is_repo_id(repo):
        raise InputError(f"{repo!r} is not a Hub repo id", hint="write it as ORG/NAME")
    return repo


def _refuse_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(
            f"--out {target} exists and is not an empty folder",
            hint="a publication is written into a new, empty folder",
        )


def _commit(work: Path, target: Path) -> None:
    """Move the finished folder into place (an empty ``target`` folder is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        target.rmdir()
    os.replace(work, target)
    fsync_dir(target.parent)


def _verified_manifest_bytes(benchmark: Path) -> bytes:
    report = verify_benchmark(benchmark)
    if not report.ok:
        raise InputError(
            f"the benchmark in {benchmark} does not verify ({len(report.problems)} problems)",
            hint=f"run `benchmark-regen verify {benchmark}` and fix it before publishing",
        )
    data = read_output(benchmark, MANIFEST_NAME)
    if not is_canonical(parse_manifest(data), data):
        raise ManifestError(
            f"{benchmark / MANIFEST_NAME} is not in canonical form",
            hint="use the manifest exactly as generate wrote it",
        )
    return data


def _recipe_file(recipe: str | os.PathLike[str] | None, manifest: Manifest) -> tuple[bytes, str]:
    """The recipe file's bytes, checked against the manifest, and the recipe's name in it."""
    ident = manifest.recipe
    if recipe is None:
        builtin = ident.name in BUILTIN_RECIPES and (
            load_recipe(ident.name).identity().source == ident.source
        )
        raise RecipeError(
            f"the benchmark's recipe {ident.name!r} is built into benchmark-regen: there is no "
            "recipe file to publish"
            if builtin
            else "--regenerate-only publishes the recipe file: none was given",
            hint="publish the diff instead (drop --regenerate-only)"
            if builtin
            else "give the file the benchmark was generated with: --recipe path/to/recipe.py",
        )
    spec = os.fspath(recipe)
    where, _, attr = spec.rpartition(":")
    path, attr = (Path(where), attr) if where.endswith(".py") else (Path(spec), "")
    if path.suffix != ".py":
        raise RecipeError(f"recipe {path} is not a .py file", hint="give path/to/recipe.py[:NAME]")
    try:
        data = safefs.read_path(path, limit=MAX_RECIPE_BYTES)
    except OSError as e:
        raise RecipeError(f"cannot read recipe {path}: {os_error_text(e)}") from None
    digest = Digest.of(data.replace(b"\r\n", b"\n"))
    if digest != ident.source:
        raise RecipeError(
            f"{path} has SHA-256 {digest.hex} (line ends as LF), but the benchmark was made by a "
            f"recipe file with SHA-256 {ident.source.hex} (the manifest's recipe.source)",
            hint="give the very file the benchmark was generated with",
        )
    loaded = load_recipe(f"{path}:{attr}" if attr else str(path))
    got = loaded.identity()
    if (got.name, got.version, got.seed, got.select) != (
        ident.name,
        ident.version,
        ident.seed,
        ident.select,
    ):
        raise RecipeError(
            f"{path} holds recipe {got}, but the benchmark was made by {ident}",
            hint="name the benchmark's recipe in the file: --recipe path/to/recipe.py:NAME",
        )
    return data, loaded.ref.rpartition(":")[2]


def _check_original(original: Any, options: SourceOptions, manifest: Manifest) -> None:
    """Every sample of the benchmark is in ``original`` (so the publication names the right one)."""
    with options.open(original) as source:
        present = source.listing().ids  # sorted and packed: `in` is a binary search
    absent = [e.id for e in manifest.entries if e.id not in present]
    if absent:
        raise InputError(
            f"{len(absent)} samples of the benchmark are not in the original, e.g. {absent[0]!r}",
            hint="give the original the benchmark was generated from",
        )
