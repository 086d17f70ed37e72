"""``demo``: regenerate and verify the ``gaussian-noise`` benchmark from the photographs
scikit-image ships in its wheel, located without importing (or running) scikit-image."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from toolchain._internal.progress import Progress
from toolchain.audit.verify import VerifyReport, verify_benchmark
from toolchain.errors import SourceError
from toolchain.model.manifest import Provenance
from toolchain.run.generate import GenerateResult, generate_benchmark

__all__ = ["DEMO_RECIPE", "DemoResult", "demo_original", "run_demo"]

DEMO_RECIPE = "gaussian-noise"


def demo_original() -> Path:
    """The folder of sample photographs inside the installed scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            "the demo's original (scikit-image's sample photographs) is not installed",
            hint="pip install 'benchmark-regen[demo]', or run `nox -s demo`",
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not data.is_dir():
        raise SourceError(f"scikit-image is installed but has no data folder at {data}")
    return data


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    original: Path
    generated: GenerateResult
    verified: VerifyReport

    def to_json(self) -> dict[str, object]:
        return {
            "original": str(self.original),
            "out": str(self.generated.out),
            "recipe": self.generated.manifest.recipe.to_json(),
            "root": str(self.generated.root),
            "samples": len(self.generated.manifest.entries),
            "samples_in_original": self.generated.manifest.provenance.samples_in_original,
            "verified": self.verified.ok,
        }


def run_demo(
    out: str | os.PathLike[str],
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> DemoResult:
    """Generate the demo benchmark into ``out`` and verify it."""
    original = demo_original()
    version = metadata.version("scikit-image")
    generated = generate_benchmark(
        original,
        DEMO_RECIPE,
        out,
        workers=workers,
        overwrite=overwrite,
        progress=progress,
        provenance=Provenance(
            original_name=f"scikit-image {version} sample images (skimage/data)",
            original_terms="https://scikit-image.org/docs/stable/api/skimage.data.html",
            recipe_license="Apache-2.0",
        ),
    )
    return DemoResult(original=original, generated=generated, verified=verify_benchmark(out))
