"""Tests mirror the package: every module under ``toolchain/`` has its own test module.

The rule (docs/architecture.md states it too), one test module per module:

* ``toolchain/A/B/C.py`` is tested by ``test_A_B_C.py``: the path below ``toolchain/``,
  its parts joined with ``_``, each part's leading underscores dropped
  (``_internal/safefs.py`` → ``test_internal_safefs.py``, ``source/_common.py`` →
  ``test_source_common.py``, ``_entry.py`` → ``test_entry.py``);
* a package's ``__init__.py`` is tested under the package's own name
  (``recipes/__init__.py`` → ``test_recipes.py``; ``toolchain/__init__.py``, the public
  API, → ``test_toolchain.py``);
* the command line, ``toolchain/cli/...``, is tested through Click in
  ``tests/integration/`` (``cli/diff.py`` → ``tests/integration/test_cli_diff.py``);
  every other module in ``tests/unit/``.

A test module may test more than its module (the pipeline runs through many), and
there may be test modules of no module (``test_imports.py``, ``test_hostile_*.py``,
end-to-end suites in ``tests/integration/``). Exempt are only the modules in
:data:`EXEMPT`, each for the reason given there; modules whose tests arrive with a
rewrite in progress are in :data:`PENDING`, which must shrink, never grow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import toolchain

PACKAGE = Path(toolchain.__file__).parent
TESTS = Path(__file__).resolve().parents[1]

EXEMPT: dict[str, str] = {
    "__main__.py": "runs the CLI when imported; `python -m toolchain` is exercised end to end "
    "by tests/integration/test_determinism.py",
    "_internal/__init__.py": "a docstring only",
    "_internal/progress.py": "one type alias (the progress callback), no code",
    "cli/__init__.py": "re-exports `cli` from cli/main.py (tests/integration/test_cli_main.py)",
    "hf/__init__.py": "a docstring and an empty __all__",
    **{
        f"{wing}/__init__.py": "a docstring only"
        for wing in ("model", "codec", "run", "audit", "hub", "container", "cluster")
    },
}
"""Modules with no test module of their own, and why (paths relative to ``toolchain/``)."""

PENDING: dict[str, str] = {}
"""Modules whose test module is on its way; an entry whose test module exists fails."""


def modules() -> list[str]:
    """Every module of the package, as its path relative to ``toolchain/``."""
    return sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))


def expected_test_module(module: str) -> Path:
    """The test module that the rule gives ``module`` (a path relative to ``toolchain/``)."""
    parts = list(Path(module).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] or ["toolchain"]
    name = "test_" + "_".join(p.lstrip("_") for p in parts) + ".py"
    return TESTS / ("integration" if parts[0] == "cli" else "unit") / name


def test_the_rule_on_the_examples() -> None:
    expect = {
        "run/generate.py": "unit/test_run_generate.py",
        "diff/apply.py": "unit/test_diff_apply.py",
        "source/folder.py": "unit/test_source_folder.py",
        "source/_common.py": "unit/test_source_common.py",
        "_internal/safefs.py": "unit/test_internal_safefs.py",
        "run/executor/_worker.py": "unit/test_run_executor_worker.py",
        "run/executor/__init__.py": "unit/test_run_executor.py",
        "recipes/__init__.py": "unit/test_recipes.py",
        "__init__.py": "unit/test_toolchain.py",
        "cli/diff.py": "integration/test_cli_diff.py",
        "cli/__init__.py": "integration/test_cli.py",
    }
    assert {m: expected_test_module(m).relative_to(TESTS).as_posix() for m in expect} == expect


def test_every_module_has_its_test_module() -> None:
    missing = [
        f"toolchain/{m} -> {expected_test_module(m).relative_to(TESTS.parent)}"
        for m in modules()
        if m not in EXEMPT and m not in PENDING and not expected_test_module(m).is_file()
    ]
    assert not missing, "modules without their test module:\n  " + "\n  ".join(missing)


def test_no_two_modules_share_a_test_module() -> None:
    seen: dict[Path, str] = {}
    for m in modules():
        other = seen.setdefault(expected_test_module(m), m)
        assert other == m, (
            f"toolchain/{other} and toolchain/{m} map to {expected_test_module(m).name}"
        )


def test_exemptions_are_current_and_hold_no_code() -> None:
    """An exempt ``__init__.py`` that gains a function or class needs its test module."""
    for m in [*EXEMPT, *PENDING]:
        assert (PACKAGE / m).is_file(), f"toolchain/{m} is gone: drop its entry"
    for m in EXEMPT:
        if m.endswith("__init__.py"):
            tree = ast.parse((PACKAGE / m).read_text())
            code = [
                n.name
                for n in ast.walk(tree)
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            ]
            assert not code, f"toolchain/{m} now defines {code}: give it {expected_test_module(m)}"


def test_pending_entries_are_dropped_once_their_tests_arrive() -> None:
    arrived = [m for m in PENDING if expected_test_module(m).is_file()]
    assert not arrived, f"{arrived} have their test modules now: drop them from PENDING"
