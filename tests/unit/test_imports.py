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
    assert "toolchain.cli.main" in MODULES and "toolchain.run.outdir" in MODULES
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
            subs = {f"{node.module}.{a.name}" for a in node.names}
            found |= subs
            if not subs <= set(MODULES):  # a name of the module itself, not only submodules
                found.add(node.module)
    return {m for m in found if m in MODULES}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


FLOORS: list[tuple[str, ...]] = [
    ("toolchain.errors", "toolchain._internal"),
    ("toolchain.model",),
    ("toolchain.codec",),
    ("toolchain.source",),
    ("toolchain.recipes",),
    ("toolchain.hf",),
    ("toolchain.run",),
    ("toolchain.audit",),
    ("toolchain.diff",),
    ("toolchain.hub", "toolchain.demo"),
    ("toolchain.container",),
    ("toolchain.cluster",),
    ("toolchain",),
    ("toolchain.cli",),
    ("toolchain._entry",),
]
"""The wings, lowest first (docs/architecture.md): a module imports only its own wing and
the wings below it."""


def floor(module: str) -> int:
    """The floor of ``module``: that of the longest wing prefix it is under."""
    best, level = "", -1
    for i, wings in enumerate(FLOORS):
        for wing in wings:
            if _under(module, wing) and len(wing) > len(best):
                best, level = wing, i
    return level


def test_every_module_stands_on_a_floor() -> None:
    assert [m for m in MODULES if floor(m) < 0] == []
    assert floor("toolchain.model.manifest") < floor("toolchain.run.generate")
    assert floor("toolchain") > floor("toolchain.diff.apply")


@pytest.mark.parametrize("module", MODULES)
def test_no_import_runs_up_a_floor(module: str) -> None:
    up = sorted(m for m in _imports(module) if floor(m) > floor(module))
    assert not up, f"{module} (floor {floor(module)}) imports from higher floors: {up}"


def test_no_import_circle_even_inside_a_function() -> None:
    """Every import, at any depth (a deferred one in a function too), forms no cycle."""
    graph = {m: _imports(m) - {m} for m in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = [*path[path.index(n) :], n]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m)


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


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("toolchain.run.executor.")])
def test_executors_do_not_import_each_other(module: str) -> None:
    """Each executor imports the shared worker code, never another executor (the package's
    ``make_executor`` is the one place that names them)."""
    siblings = {"toolchain.run.executor.local", "toolchain.run.executor.dask"}
    assert not (_imports(module) & (siblings - {module})), module
