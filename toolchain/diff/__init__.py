"""The diff path: a benchmark published as per-sample deltas sealed under keys only the
original derives, rebuilt bit for bit (``diff create``, ``apply``, ``check``, ``inspect``,
``audit``). Format and modules: ``docs/diff-format.md``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolchain._internal.lazy import lazy_attributes

if TYPE_CHECKING:
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

_LAZY = {
    "ApplyResult": "toolchain.diff.apply",
    "get_benchmark": "toolchain.diff.apply",
    "AuditReport": "toolchain.diff.audit",
    "audit_diff": "toolchain.diff.audit",
    "CheckReport": "toolchain.diff.check",
    "check_diff": "toolchain.diff.check",
    "CreateResult": "toolchain.diff.create",
    "create_diff": "toolchain.diff.create",
    "DiffInfo": "toolchain.diff.inspect",
    "inspect_diff": "toolchain.diff.inspect",
}
"""Each name's module, loaded on first use: applying a diff does not import the others."""


__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
