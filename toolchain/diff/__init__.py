"""The diff path: ``diff create`` / ``diff apply``, keyed on the original, bit-exact.

A publisher who may not redistribute an original dataset publishes one
``.bdiff`` file instead of the benchmark. It carries the benchmark's manifest
and, per sample, the delta between the benchmark and the decoded original,
compressed and sealed under a key that only the original's bytes can derive.
Anyone holding the original rebuilds the benchmark bit for bit; anyone else
learns the manifest and the sizes. The format is in ``docs/diff-format.md``.

Modules: :mod:`.format` (container), :mod:`.codec` (delta packing + zstd),
:mod:`.crypto` (HKDF, AES-GCM-SIV), :mod:`.locate` (finding originals),
:mod:`.create`, :mod:`.apply`, :mod:`.check`, :mod:`.inspect`, :mod:`.audit`.
"""

from __future__ import annotations

from toolchain.diff.apply import ApplyResult, get_benchmark
from toolchain.diff.audit import AuditReport, audit_diff
from toolchain.diff.check import CheckReport, check_diff
from toolchain.diff.create import CreateResult, create_diff
from toolchain.diff.inspect import DiffInfo, inspect_diff

__all__ = [
    "ApplyResult",
    "AuditReport",
    "CheckReport",
    "CreateResult",
    "DiffInfo",
    "audit_diff",
    "check_diff",
    "create_diff",
    "get_benchmark",
    "inspect_diff",
]
