"""benchmark-regen: reproducibility-locked regeneration of image benchmarks.

The public API mirrors the CLI::

    import toolchain

    @toolchain.recipe(name="my-bench", version="1.0", seed=2024)
    def transform(pixels, rng):
        return pixels

    result = toolchain.generate_benchmark("original/", transform, "out/")
    report = toolchain.verify_benchmark("out/")

Importing this package does not import numpy: the determinism guard needs to
run before numpy loads, so the heavy modules load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from toolchain import errors
from toolchain.recipes import Recipe, load_recipe, recipe

if TYPE_CHECKING:
    from toolchain.audit.verify import VerifyReport, verify_benchmark
    from toolchain.demo import run_demo
    from toolchain.diff import create_diff, get_benchmark
    from toolchain.hub.load import load_benchmark
    from toolchain.model.manifest import Manifest, load_manifest
    from toolchain.run.fingerprint import runtime_fingerprint
    from toolchain.run.generate import GenerateResult, generate_benchmark
    from toolchain.source import SourceOptions

__all__ = [
    "GenerateResult",
    "Manifest",
    "Recipe",
    "SourceOptions",
    "VerifyReport",
    "__version__",
    "create_diff",
    "errors",
    "generate_benchmark",
    "get_benchmark",
    "load_benchmark",
    "load_manifest",
    "load_recipe",
    "recipe",
    "run_demo",
    "runtime_fingerprint",
    "verify_benchmark",
]

__version__ = "0.1.0"

_LAZY = {
    "GenerateResult": "toolchain.run.generate",
    "generate_benchmark": "toolchain.run.generate",
    "Manifest": "toolchain.model.manifest",
    "load_manifest": "toolchain.model.manifest",
    "VerifyReport": "toolchain.audit.verify",
    "verify_benchmark": "toolchain.audit.verify",
    "run_demo": "toolchain.demo",
    "runtime_fingerprint": "toolchain.run.fingerprint",
    "create_diff": "toolchain.diff",
    "load_benchmark": "toolchain.hub.load",
    "SourceOptions": "toolchain.source",
    "get_benchmark": "toolchain.diff",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'toolchain' has no attribute {name!r}")
    return getattr(import_module(module), name)
