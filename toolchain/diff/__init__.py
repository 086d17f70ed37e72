"""The diff path: a benchmark published as per-sample deltas sealed under keys only the
original derives, rebuilt bit for bit (``diff create``, ``apply``, ``check``, ``inspect``,
``audit``). Format and modules: ``docs/diff-format.md``."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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
    "ApplyResult": "apply",
    "get_benchmark": "apply",
    "AuditReport": "audit",
    "audit_diff": "audit",
    "CheckReport": "check",
    "check_diff": "check",
    "CreateResult": "create",
    "create_diff": "create",
    "DiffInfo": "inspect",
    "inspect_diff": "inspect",
}
"""Each name's module, loaded on first use: applying a diff does not import the others."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'toolchain.diff' has no attribute {name!r}")
    return getattr(import_module(f"toolchain.diff.{module}"), name)
