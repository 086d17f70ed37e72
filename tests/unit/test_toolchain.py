"""toolchain (the package): the public API, loaded lazily so that importing it loads no numpy."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import pytest

import toolchain

PUBLIC_API = {
    # the verbs, as the README shows them (the CLI's commands)
    "create_diff",
    "generate_benchmark",
    "get_benchmark",
    "load_benchmark",
    "load_manifest",
    "publish",
    "recipe",
    "run_demo",
    "runtime_fingerprint",
    "verify_benchmark",
    # what they take and give
    "ApplyResult",
    "CreateResult",
    "GenerateResult",
    "Manifest",
    "Recipe",
    "RunOptions",
    "SourceOptions",
    "VerifyReport",
    "load_recipe",
    # the exception tree
    "errors",
}


def test_the_public_api_is_exactly_the_intended_names() -> None:
    assert set(toolchain.__all__) == PUBLIC_API | {"__version__"}
    # dir() lists every public name, loaded yet or not, and nothing imported by the way
    assert {n for n in dir(toolchain) if not n.startswith("_")} == PUBLIC_API
    import_module("toolchain.run.generate")  # binds the submodule ``run`` on the package
    assert hasattr(toolchain, "run") and "run" not in dir(toolchain)
    assert "recipes" not in dir(toolchain) and "annotations" not in dir(toolchain)


def test_every_public_name_resolves_to_its_module_object() -> None:
    for name in toolchain.__all__:
        assert getattr(toolchain, name) is not None, name
    for name, module in toolchain._LAZY.items():
        assert getattr(toolchain, name) is getattr(import_module(module), name), name
    assert set(toolchain._LAZY) <= set(toolchain.__all__)
    assert toolchain.recipe is import_module("toolchain.recipes").recipe
    assert toolchain.errors is import_module("toolchain.errors")


def test_the_api_mirrors_the_cli() -> None:
    for name in ("generate_benchmark", "verify_benchmark", "create_diff", "get_benchmark",
                 "run_demo", "runtime_fingerprint", "load_manifest", "load_benchmark",
                 "publish"):  # fmt: skip
        assert callable(getattr(toolchain, name)), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'toolchain' has no attribute 'nope'"):
        toolchain.nope  # noqa: B018
    assert not hasattr(toolchain, "_private_thing")


def test_importing_the_package_imports_no_numpy() -> None:
    """The determinism guard must run before numpy loads (see toolchain._entry)."""
    code = (
        "import sys, toolchain; from toolchain import recipe, errors;"
        "print(sorted(m for m in ('numpy', 'PIL', 'click') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_version_is_the_distributions() -> None:
    from importlib.metadata import version

    assert toolchain.__version__ == version("benchmark-regen")
