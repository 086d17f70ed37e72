"""Every module imports on its own, in a fresh interpreter, and the layering rules hold.

The first test is pip-tools' circular-import test in spirit: importing any module
first (not after its usual importers) must work, so an import circle cannot hide
behind import order. The layering rules are the ones docs/architecture.md draws.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import toolchain

PACKAGE = Path(toolchain.__file__).parent
MODULES = sorted(
    ".".join(("toolchain", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
    if p.name != "__main__.py"  # runs the CLI when imported: it is the script, not a module
)
ENTRY = {"toolchain._entry"}  # the console script: pins the process, then loads the CLI


def test_every_module_is_listed() -> None:
    assert "toolchain.cli.main" in MODULES and "toolchain.outdir" in MODULES
    assert len(MODULES) > 40


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def _imports(module: str) -> set[str]:
    """Every ``toolchain...`` module ``module`` imports, at any depth in the file."""
    path = PACKAGE.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("toolchain")}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.startswith("toolchain")
        ):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in MODULES}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


CORE = [
    m
    for m in MODULES
    if not any(_under(m, p) for p in ("toolchain.cli", "toolchain.container", "toolchain.matrix"))
    and m not in ("toolchain._internal.docker_backend", "toolchain._internal.image_layout")
    and m not in ENTRY
]


@pytest.mark.parametrize("module", CORE)
def test_core_never_imports_the_cli_or_the_container(module: str) -> None:
    bad = {
        m
        for m in _imports(module)
        if _under(m, "toolchain.cli")
        or _under(m, "toolchain.container")
        or m == "toolchain._internal.docker_backend"
    }
    assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("module", [m for m in MODULES if _under(m, "toolchain.diff")])
def test_diff_never_touches_docker(module: str) -> None:
    text = " ".join(sorted(_imports(module)))
    assert "docker" not in text and "container" not in text


@pytest.mark.parametrize("module", [m for m in MODULES if _under(m, "toolchain.cli")])
def test_cli_layers(module: str) -> None:
    """options ← one module per command group ← main: no command imports another, or main."""
    imported = {m for m in _imports(module) if _under(m, "toolchain.cli")}
    if module == "toolchain.cli.options":
        assert not imported
    elif module not in ("toolchain.cli", "toolchain.cli.main"):
        assert imported <= {"toolchain.cli.options"}, f"{module} imports {sorted(imported)}"


@pytest.mark.parametrize(
    "module", [m for m in MODULES if m.startswith("toolchain._internal.executor.")]
)
def test_executors_do_not_import_each_other(module: str) -> None:
    """Each executor imports the shared worker code, never another executor (the package's
    ``make_executor`` is the one place that names them)."""
    siblings = {"toolchain._internal.executor.local", "toolchain._internal.executor.dask"}
    assert not (_imports(module) & (siblings - {module})), module
