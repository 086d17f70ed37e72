"""``load_benchmark`` and ``get``: a benchmark folder, a publication folder or a Hub repo id →
a verified benchmark, as a :class:`datasets.Dataset` or a folder (``docs/hub.md``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from toolchain._internal import safefs
from toolchain._internal.deps import require
from toolchain.audit.sign import SignatureCheck, check_manifest_signature
from toolchain.audit.verify import verify_benchmark
from toolchain.errors import InputError, OutputError, os_error_text
from toolchain.hf.card import data_files
from toolchain.hf.parquet import parquet_files
from toolchain.hub import _client, cache
from toolchain.hub.publication import Publication, is_publication, read_publication
from toolchain.hub.rebuild import rebuild
from toolchain.model.columns import ColumnSpec
from toolchain.model.hashing import Digest
from toolchain.model.layout import MANIFEST_NAME, SIGNATURE_NAME
from toolchain.model.manifest import MAX_MANIFEST_BYTES, Manifest, parse_manifest
from toolchain.run.outdir import benchmark_format

__all__ = ["GetResult", "get_publication", "load_benchmark", "locate"]


def locate(name: str | os.PathLike[str], *, revision: str | None = None) -> tuple[str, Path]:
    """What ``name`` is, and where: ``("benchmark", folder)``, ``("publication", folder)``, or
    a Hub repo id (``org/name``) → ``("publication", its snapshot)``, fetched at ``revision``.
    A local path wins over a repo id of the same spelling."""
    path = Path(name)
    if isinstance(name, os.PathLike) or path.exists():
        if revision is not None:
            raise InputError(
                f"revision applies to Hub repos, and {name} is a local folder",
                hint="drop revision, or give the repo id ORG/NAME",
            )
        return ("publication" if is_publication(path) else "benchmark"), path
    if not _client.is_repo_id(name):
        raise InputError(
            f"{name!r} is neither a folder nor a Hub repo id",
            hint="give a benchmark or publication folder, or a Hub dataset repo as ORG/NAME",
        )
    folder = _client.fetch(
        name,
        revision=revision,
        what="the publication",
        error=InputError,
        hint="or pass the publication's folder",
    )
    if not is_publication(folder):
        raise InputError(
            f"the Hub dataset {name} is not a benchmark-regen publication (no publication.json)",
            hint="publish it with `benchmark-regen publish`; a plain dataset loads with "
            "datasets.load_dataset",
        )
    return "publication", folder


def load_benchmark(
    name: str | os.PathLike[str],
    *,
    split: str | None = None,
    columns: Sequence[ColumnSpec] | None = None,
    original: Any = None,
    revision: str | None = None,
    pubkey: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    trust_recipe: bool = False,
    workers: int = 1,
) -> Any:
    """The benchmark ``name``, verified, as a ``datasets.Dataset`` (class labels named).

    ``name``: a benchmark folder (verified on every call; ``split`` names the split loaded,
    ``columns`` a folder benchmark's class labels, ``cache_dir`` is the ``datasets`` cache),
    a publication folder, or a publication's Hub repo id ``org/name`` (at ``revision``).
    A publication is rebuilt from ``original`` (a folder, tar, parquet, ``Dataset`` or
    ``DatasetDict``; by default the Hub repo its manifest records) into ``cache_dir``
    (default: ``benchmark-regen/`` beside the Hub cache), verified and sealed; later calls
    check the seal and rebuild nothing. ``trust_recipe``: run a ``regenerate``
    publication's ``recipe.py``. With ``pubkey``, the ``manifest.sig`` must verify. Any
    failure is an :class:`~toolchain.errors.Error`, and no Dataset.
    """
    kind, path = locate(name, revision=revision)
    if kind == "benchmark":
        return _load_folder(path, split=split, columns=columns, cache_dir=cache_dir, pubkey=pubkey)
    return _load_publication(
        path,
        original=original,
        pubkey=pubkey,
        cache_dir=cache_dir,
        trust_recipe=trust_recipe,
        workers=workers,
    )


@dataclass(frozen=True, kw_only=True)
class GetResult:
    out: Path
    root: Digest
    samples: int
    kind: str
    """How it was rebuilt: ``diff`` or ``regenerate``."""
    publication: Path
    signature: SignatureCheck | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "out": str(self.out),
            "publication": str(self.publication),
            "root": str(self.root),
            "samples": self.samples,
            "signature": None if self.signature is None else self.signature.to_json(),
        }


def get_publication(
    name: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    original: Any = None,
    revision: str | None = None,
    pubkey: str | os.PathLike[str] | None = None,
    trust_recipe: bool = False,
    workers: int = 1,
) -> GetResult:
    """Rebuild the publication ``name`` (a folder or ``org/name``) into the benchmark folder
    ``out`` (new or empty) and verify it; arguments as for :func:`load_benchmark`."""
    kind, folder = locate(name, revision=revision)
    if kind != "publication":
        raise InputError(
            f"{name} is a benchmark folder, not a publication",
            hint=f"check it with `benchmark-regen verify {name}`",
        )
    _, manifest_bytes, check = _open(folder, pubkey)
    pub = read_publication(folder)  # every file, before any is used
    manifest = _manifest(manifest_bytes, pub)
    report = rebuild(
        folder,
        pub,
        manifest,
        Path(out),
        original=original,
        trust_recipe=trust_recipe,
        workers=workers,
    )
    return GetResult(
        out=Path(out),
        root=report.manifest.root,
        samples=len(report.manifest.entries),
        kind=pub.kind,
        publication=folder,
        signature=check,
    )


def _open(folder: Path, pubkey: str | os.PathLike[str] | None) -> tuple[Publication, bytes, Any]:
    """``publication.json``, the manifest's bytes (as listed there) and, with ``pubkey``, its
    verified signature."""
    pub = read_publication(folder, check=(SIGNATURE_NAME,))
    try:
        data = safefs.read_path(folder / MANIFEST_NAME, limit=MAX_MANIFEST_BYTES)
    except OSError as e:
        raise InputError(f"cannot read {folder / MANIFEST_NAME}: {os_error_text(e)}") from None
    if Digest.of(data) != pub.manifest.sha256:
        raise InputError(
            f"{folder / MANIFEST_NAME} is not the manifest publication.json lists: it is damaged "
            "or was changed after publishing",
            hint="download the publication again; if this persists, tell its publisher",
        )
    check = None
    if pubkey is not None:
        check = check_manifest_signature(data, folder / SIGNATURE_NAME, pubkey)
    return pub, data, check


def _manifest(data: bytes, pub: Publication) -> Manifest:
    manifest = parse_manifest(data)
    if manifest.root != pub.root or len(manifest.entries) != pub.samples:
        raise InputError(
            "publication.json does not describe its manifest (root or sample count differ)",
            hint="download the publication again; if this persists, tell its publisher",
        )
    return manifest


def _load_publication(
    folder: Path,
    *,
    original: Any,
    pubkey: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
    trust_recipe: bool,
    workers: int,
) -> Any:
    pub, manifest_bytes, _ = _open(folder, pubkey)
    ds_mod = require("datasets")
    digest = Digest.of(manifest_bytes)
    version = str(ds_mod.__version__)
    entry = cache.entry_path(cache.cache_root(cache_dir), pub.root)
    if cache.is_sealed(entry, manifest=digest, root=pub.root, datasets=version):
        return ds_mod.load_from_disk(str(entry / cache.DATASET_DIR))
    manifest = _manifest(manifest_bytes, pub)
    try:
        with cache.building(entry) as work:
            bench = work / cache.BENCHMARK_DIR
            if not _reuse(entry / cache.BENCHMARK_DIR, pub.root, bench):
                pub = read_publication(folder)  # every file, before any is used
                rebuild(
                    folder,
                    pub,
                    manifest,
                    bench,
                    original=original,
                    trust_recipe=trust_recipe,
                    workers=workers,
                    format="parquet",
                )
            _save_dataset(ds_mod, bench, work / cache.DATASET_DIR)
            cache.write_seal(work, manifest=digest, root=pub.root, datasets=version)
            try:
                cache.install(work, entry)
            except OSError:  # another process installed the entry first: fine if sealed
                if not cache.is_sealed(entry, manifest=digest, root=pub.root, datasets=version):
                    raise
    except OSError as e:
        raise OutputError(
            f"cannot write the cache {entry}: {os_error_text(e)}",
            hint="free some space, or pass cache_dir= (a writable folder)",
        ) from None
    return ds_mod.load_from_disk(str(entry / cache.DATASET_DIR))


def _reuse(old: Path, root: Digest, target: Path) -> bool:
    """Keep the benchmark of an entry whose seal broke if it still verifies (moved into
    ``target``); a damaged one is rebuilt."""
    if not old.is_dir():
        return False
    try:
        report = verify_benchmark(old)
    except InputError:
        return False
    if not report.ok or report.manifest.root != root:
        return False
    os.replace(old, target)
    return True


def _save_dataset(ds_mod: ModuleType, bench: Path, target: Path) -> None:
    """The verified parquet benchmark ``bench`` (one split) as a dataset saved to ``target``."""
    files = parquet_files(bench)
    name = files[0].name.split("-")[0]
    with tempfile.TemporaryDirectory(prefix=".tmp-datasets-", dir=target.parent) as build:
        ds = ds_mod.load_dataset(
            "parquet", data_files={name: [str(f) for f in files]}, split=name, cache_dir=build
        )
        ds.save_to_disk(str(target))


def _load_folder(
    out: Path,
    *,
    split: str | None,
    columns: Sequence[ColumnSpec] | None,
    cache_dir: str | os.PathLike[str] | None,
    pubkey: str | os.PathLike[str] | None,
) -> Any:
    """A benchmark folder, verified (and its signature, with ``pubkey``), then loaded."""
    report = verify_benchmark(out) if pubkey is None else verify_benchmark(out, pubkey=pubkey)
    if not report.ok:
        first = report.problems[0] if report.problems else None
        detail = f"; first: {first.path}: {first.problem} ({first.detail})" if first else ""
        sig = getattr(report, "signature_problem", None)
        raise InputError(
            f"the benchmark in {out} does not verify ({len(report.problems)} problems{detail})"
            + (f"; signature: {sig}" if sig else ""),
            hint=f"run `benchmark-regen verify {out}` for the full report",
        )
    ds_mod = require("datasets")
    cache_path = str(cache_dir) if cache_dir is not None else None
    if benchmark_format(Path(out)) == "parquet":
        files = parquet_files(out, split=split)
        name = split or files[0].name.split("-")[0]
        return ds_mod.load_dataset(
            "parquet", data_files={name: [str(f) for f in files]}, split=name, cache_dir=cache_path
        )
    name = split or "train"
    ds = ds_mod.load_dataset(
        "imagefolder",
        data_dir=str(out),
        data_files={name: list(data_files("folder", name))},
        split=name,
        cache_dir=cache_path,
    )
    specs = (
        tuple(columns) if columns is not None else tuple(getattr(report.manifest, "columns", ()))
    )
    for spec in specs:
        if spec.type == "class_label" and spec.name in ds.column_names:
            ds = ds.cast_column(spec.name, ds_mod.ClassLabel(names=list(spec.names)))
    return ds
