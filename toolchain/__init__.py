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

from typing import TYPE_CHECKING as _TYPE_CHECKING

from toolchain import errors
from toolchain._internal.lazy import lazy_attributes as _lazy_attributes
from toolchain._internal.release import VERSION as _VERSION

if _TYPE_CHECKING:
    from toolchain.audit.verify import VerifyReport, verify_benchmark
    from toolchain.demo import run_demo
    from toolchain.diff.apply import ApplyResult, get_benchmark
    from toolchain.diff.create import CreateResult, create_diff
    from toolchain.hub.load import load_benchmark
    from toolchain.hub.publish import publish
    from toolchain.model.manifest import Manifest, load_manifest
    from toolchain.recipes import Recipe, load_recipe, recipe
    from toolchain.run.fingerprint import runtime_fingerprint
    from toolchain.run.generate import GenerateResult, generate_benchmark
    from toolchain.run.session import RunOptions
    from toolchain.source import SourceOptions

__all__ = [
    "ApplyResult",
    "CreateResult",
    "GenerateResult",
    "Manifest",
    "Recipe",
    "RunOptions",
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
    "publish",
    "recipe",
    "run_demo",
    "runtime_fingerprint",
    "verify_benchmark",
]

__version__ = _VERSION

_LAZY = {
    "ApplyResult": "toolchain.diff.apply",
    "CreateResult": "toolchain.diff.create",
    "GenerateResult": "toolchain.run.generate",
    "Manifest": "toolchain.model.manifest",
    "Recipe": "toolchain.recipes",
    "RunOptions": "toolchain.run.session",
    "SourceOptions": "toolchain.source",
    "VerifyReport": "toolchain.audit.verify",
    "create_diff": "toolchain.diff.create",
    "generate_benchmark": "toolchain.run.generate",
    "get_benchmark": "toolchain.diff.apply",
    "load_benchmark": "toolchain.hub.load",
    "load_manifest": "toolchain.model.manifest",
    "load_recipe": "toolchain.recipes",
    "publish": "toolchain.hub.publish",
    "recipe": "toolchain.recipes",
    "run_demo": "toolchain.demo",
    "runtime_fingerprint": "toolchain.run.fingerprint",
    "verify_benchmark": "toolchain.audit.verify",
}
"""The public names loaded on first use, and the module that owns each."""


# dir() is the public API, loaded or not: not the submodules that imports bind on the package.
__getattr__, __dir__ = _lazy_attributes(globals(), _LAZY)
