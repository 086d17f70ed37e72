"""``verify``: recompute every hash of a benchmark folder against its manifest.

A folder verifies only when the manifest parses, its root hash matches its
entries, every listed file exists and decodes to exactly the listed pixels
(and has the listed file bytes), and no unlisted file is present. Anything
else is reported per sample; the verdict is ``ok`` only when all of it holds.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toolchain.decode import decode
from toolchain.errors import DecodeError, SignatureError
from toolchain.hashing import Digest, file_digest, pixel_digest
from toolchain.layout import COVERAGE_NAME, MANIFEST_NAME, SIGNATURE_NAME
from toolchain.manifest import Manifest, parse_manifest
from toolchain.outdir import read_output, unexpected_files
from toolchain.sign import SignatureCheck, check_manifest_signature, read_manifest_bytes

__all__ = ["Problem", "SampleProblem", "VerifyReport", "verify_benchmark"]


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


def _check_entry(root: Path, path: str, pixels: Digest, file: Digest) -> tuple[Problem, str] | None:
    try:
        data = read_output(root, path)
    except FileNotFoundError:
        return Problem.MISSING, "file is missing"
    except OSError as e:
        return Problem.MISSING, f"cannot read: {e.strerror or e}"
    try:
        got = pixel_digest(decode(data))
    except DecodeError as e:
        return Problem.UNDECODABLE, e.message
    if got != pixels:
        return Problem.PIXELS_DIFFER, f"pixels {got.short} != manifest {pixels.short}"
    if file_digest(data) != file:
        return Problem.FILE_DIFFERS, "same pixels, different PNG bytes (another encoder)"
    return None


def verify_benchmark(
    out: str | os.PathLike[str],
    *,
    manifest: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    pubkey: str | os.PathLike[str] | None = None,
    signature: str | os.PathLike[str] | None = None,
) -> VerifyReport:
    """Check the benchmark in ``out`` against ``manifest`` (default ``out/manifest.json``).

    Returns a report; ``report.ok`` is the verdict. Raises
    :class:`~toolchain.errors.ManifestError` when the manifest itself is unreadable.

    With ``pubkey``, the manifest must also carry a valid signature by that key
    (``signature``, default ``manifest.sig`` beside the manifest); otherwise the
    report fails with ``signature_problem`` saying why (``docs/signing.md``).
    """
    out_path = Path(out)
    manifest_path = Path(manifest) if manifest else out_path / MANIFEST_NAME
    sig_check: SignatureCheck | None = None
    sig_problem: str | None = None
    # Read the bytes once: the bytes whose signature is checked are the bytes parsed.
    data = read_manifest_bytes(manifest_path)
    m = parse_manifest(data)
    if pubkey is not None:
        sig_path = Path(signature) if signature else manifest_path.with_name(SIGNATURE_NAME)
        try:
            sig_check = check_manifest_signature(data, sig_path, pubkey)
        except SignatureError as e:
            sig_problem = e.diagnostics()
    problems: list[SampleProblem] = []
    for i, entry in enumerate(m.entries, 1):
        found = _check_entry(out_path, entry.path, entry.pixels, entry.file)
        if found:
            problems.append(
                SampleProblem(path=entry.path, sample=entry.id, problem=found[0], detail=found[1])
            )
        if progress:
            progress(i, len(m.entries))
    partial = (out_path / COVERAGE_NAME).exists()
    if out_path.is_dir():
        for rel, why in unexpected_files(out_path, (e.path for e in m.entries)):
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
