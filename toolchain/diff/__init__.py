"""The diff path: a benchmark published as per-sample deltas sealed under keys only the
original derives, rebuilt bit for bit (``diff create``, ``apply``, ``check``, ``inspect``,
``audit``). Format and modules: ``docs/diff-format.md``."""

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
