"""``verify``: recompute every hash of a benchmark folder against its manifest, and report
each problem per sample (``docs/output-folder.md``, "What verify checks")."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain._internal.progress import Progress
from toolchain.audit.sign import SignatureCheck, check_manifest_signature
from toolchain.codec.decode import decode
from toolchain.errors import DecodeError, SignatureError, os_error_text
from toolchain.model.hashing import Digest, file_digest, pixel_digest
from toolchain.model.layout import COVERAGE_NAME, MANIFEST_NAME, SIGNATURE_NAME
from toolchain.model.manifest import (
    Manifest,
    load_manifest,
    parse_manifest,
    read_manifest_bytes,
)
from toolchain.run.outdir import Paths, benchmark_format, read_output, unexpected_files

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["Problem", "SampleProblem", "VerifyReport", "check_output", "verify_benchmark"]


class Problem(enum.StrEnum):
    PIXELS_DIFFER = "pixels-differ"
    FILE_DIFFERS = "file-differs"
    MISSING = "missing"
    UNDECODABLE = "undecodable"
    EXTRA = "extra"


@dataclass(frozen=True, kw_only=True)
class SampleProblem:
    path: str
    problem: Problem
    sample: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, str | None]:
        return {
            "detail": self.detail,
            "path": self.path,
            "problem": str(self.problem),
            "sample": self.sample,
        }


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """The outcome of :func:`verify_benchmark`."""

    out: Path
    manifest: Manifest
    checked: int
    problems: tuple[SampleProblem, ...] = field(default=())
    root_consistent: bool = True
    partial: bool = False
    """The folder holds a partial result (``diff apply --partial``)."""
    signature: SignatureCheck | None = None
    """The verified signature, when a public key was given and it checked out."""
    signature_problem: str | None = None
    """Why the signature check failed, when a public key was given (the verdict fails)."""
    notes: tuple[str, ...] = ()
    """What the verdict does not say by itself (an old manifest format, ...)."""

    @property
    def failures(self) -> tuple[SampleProblem, ...]:
        """The problems that fail the verdict (for a v1 manifest, file bytes do not)."""
        if self.manifest.version == 1:
            return tuple(p for p in self.problems if p.problem is not Problem.FILE_DIFFERS)
        return self.problems

    @property
    def ok(self) -> bool:
        return (
            self.root_consistent
            and not self.failures
            and not self.partial
            and self.manifest.shard is None
            and self.signature_problem is None
        )

    def by_kind(self, kind: Problem) -> list[SampleProblem]:
        return [p for p in self.problems if p.problem is kind]

    def to_json(self) -> dict[str, object]:
        doc = self._to_json()
        if self.signature is not None:
            doc["signature"] = self.signature.to_json()
        elif self.signature_problem is not None:
            doc["signature"] = {"ok": False, "problem": self.signature_problem}
        return doc

    def _to_json(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "ok": self.ok,
            "partial": self.partial,
            "problems": [p.to_json() for p in self.problems],
            "root": str(self.manifest.root),
            "root_consistent": self.root_consistent,
            "notes": list(self.notes),
            "samples": len(self.manifest.entries),
            "shard": self.manifest.shard,
        }


def _check_folder(root: Path, m: Manifest, progress: Progress | None) -> list[SampleProblem]:
    problems: list[SampleProblem] = []
    for i, entry in enumerate(m.entries, 1):
        try:
            data = read_output(root, entry.path)
        except FileNotFoundError:
            found: tuple[Problem, str] | None = (Problem.MISSING, "file is missing")
        except OSError as e:
            found = (Problem.MISSING, f"cannot read: {os_error_text(e)}")
        else:
            found = _check_bytes(data, entry.pixels, entry.file)
        if found:
            problems.append(
                SampleProblem(path=entry.path, sample=entry.id, problem=found[0], detail=found[1])
            )
        if progress:
            progress(i, len(m.entries))
    return problems


def _check_parquet(
    root: Path, m: Manifest, progress: Progress | None
) -> tuple[list[SampleProblem], list[str]]:
    """Stream the shards row by row; each manifest entry must be there exactly once."""
    from toolchain.hf.parquet import parquet_files, read_parquet

    by_path = {e.path: e for e in m.entries}
    seen: set[str] = set()
    problems: list[SampleProblem] = []
    shards = [p.relative_to(root).as_posix() for p in parquet_files(root)]
    for row in read_parquet(root):
        entry = by_path.get(row.path)
        if entry is None or row.path in seen:
            why = "not in the manifest" if entry is None else "appears twice in the shards"
            problems.append(SampleProblem(path=row.path, problem=Problem.EXTRA, detail=why))
            continue
        seen.add(row.path)
        found = _check_bytes(row.png, entry.pixels, entry.file)
        if found is None and (row.id != entry.id or dict(row.columns) != dict(entry.columns)):
            found = (
                Problem.PIXELS_DIFFER,
                f"the row's id or columns ({row.id!r}, {dict(row.columns)}) differ from the "
                f"manifest's ({entry.id!r}, {dict(entry.columns)})",
            )
        if found:
            problems.append(
                SampleProblem(path=entry.path, sample=entry.id, problem=found[0], detail=found[1])
            )
        if progress:
            progress(len(seen), len(m.entries))
    for e in m.entries:
        if e.path not in seen:
            problems.append(
                SampleProblem(
                    path=e.path, sample=e.id, problem=Problem.MISSING, detail="not in the shards"
                )
            )
    return problems, shards


def _check_bytes(data: bytes, pixels: Digest, file: Digest) -> tuple[Problem, str] | None:
    return check_output(data, pixels, file)[1]


def check_output(
    data: bytes, pixels: Digest, file: Digest
) -> tuple[npt.NDArray[np.uint8] | None, tuple[Problem, str] | None]:
    """One output file's bytes decoded (bounded by ``decode``) and checked against its
    manifest digests: the pixels (``None`` if undecodable), and what is wrong, if anything."""
    try:
        decoded = decode(data)
    except DecodeError as e:
        return None, (Problem.UNDECODABLE, e.message)
    got = pixel_digest(decoded)
    if got != pixels:
        return decoded, (Problem.PIXELS_DIFFER, f"pixels {got.short} != manifest {pixels.short}")
    if file_digest(data) != file:
        return decoded, (Problem.FILE_DIFFERS, "same pixels, different PNG bytes (another encoder)")
    return decoded, None


def verify_benchmark(
    out: str | os.PathLike[str],
    *,
    manifest: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    pubkey: str | os.PathLike[str] | None = None,
    signature: str | os.PathLike[str] | None = None,
) -> VerifyReport:
    """Check the benchmark in ``out`` against ``manifest`` (default ``out/manifest.json``).

    Returns a report; ``report.ok`` is the verdict. Raises
    :class:`~toolchain.errors.ManifestError` when the manifest itself is unreadable.
    With ``pubkey``, the manifest must also carry a valid signature by that key
    (``signature``, default ``manifest.sig`` beside it), else ``signature_problem`` says why.
    """
    out_path = Path(out)
    manifest_path = Path(manifest) if manifest else out_path / MANIFEST_NAME
    sig_check: SignatureCheck | None = None
    sig_problem: str | None = None
    if pubkey is None:
        m = load_manifest(manifest_path)  # streamed: memory does not grow with the manifest
    else:
        # Read the bytes once: the bytes whose signature is checked are the bytes parsed.
        data = read_manifest_bytes(manifest_path)
        m = parse_manifest(data)
        sig_path = Path(signature) if signature else manifest_path.with_name(SIGNATURE_NAME)
        try:
            sig_check = check_manifest_signature(data, sig_path, pubkey)
        except SignatureError as e:
            sig_problem = e.diagnostics()
    if benchmark_format(out_path) == "parquet":
        problems, shards = _check_parquet(out_path, m, progress)
    else:
        problems, shards = _check_folder(out_path, m, progress), []
    partial = (out_path / COVERAGE_NAME).exists()
    if out_path.is_dir():
        for rel, why in unexpected_files(out_path, Paths(m.entries), data=shards):
            problems.append(SampleProblem(path=rel, problem=Problem.EXTRA, detail=why))
    notes: list[str] = []
    if m.version == 1:
        enc = m.encoder_identity
        notes.append(
            "this is a format v1 manifest: its file hashes are of PNGs written by Pillow "
            f"{enc['pillow']} (zlib {enc['zlib']}); this version writes other PNG bytes, so "
            "only the pixel hashes (the contract) are required to match"
        )
    return VerifyReport(
        out=out_path,
        manifest=m,
        checked=len(m.entries),
        notes=tuple(notes),
        problems=tuple(problems),
        root_consistent=m.root_is_consistent(),
        partial=partial,
        signature=sig_check,
        signature_problem=sig_problem,
    )
