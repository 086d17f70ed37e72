"""The version matrix as container images: one pinned image per lockfile, the demo and
``adversarial`` run in each, so the OS libraries are compared too (docs/compare.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain.container.build import build_image
from toolchain.container.run import run_in_container
from toolchain.container.wheelhouse import build_wheelhouse
from toolchain.demo import demo_original
from toolchain.errors import ContainerError

__all__ = ["MatrixImageRun", "run_matrix_images"]


@dataclass(frozen=True, kw_only=True)
class MatrixImageRun:
    """One environment of the matrix, run in its own image."""

    name: str
    image: str
    outputs: tuple[Path, ...]


def run_matrix_images(
    lockfiles: Sequence[Path],
    out: Path,
    *,
    log: Callable[[str], None] = print,
) -> list[MatrixImageRun]:
    """Build an image per lockfile, then run the demo and ``adversarial`` in each.

    The original is the host's demo folder, mounted read-only at /original in
    every image, so every environment reads the same bytes.
    """
    original = demo_original()
    runs = []
    for lock in lockfiles:
        name = lock.stem if lock.parent.name == "matrix" else "locked"
        tag = f"benchmark-regen:matrix-{name}"
        log(f"matrix: building {tag} from {lock}")
        wheels = build_wheelhouse(dest=out / ".wheelhouse" / name, lockfile=lock)
        ref = build_image(tag=tag, wheelhouse=wheels)
        outputs = []
        for bench, argv in (
            ("demo", ["demo", "--quiet", "--out"]),
            ("adversarial", ["generate", "--recipe", "adversarial", "--quiet",
                             "--original", str(original), "--out"]),
        ):  # fmt: skip
            dest = out / f"{name}-image" / bench
            dest.mkdir(parents=True, exist_ok=True)
            code = run_in_container(
                [*argv, str(dest)], image=ref.id, original=original, out=dest, stream=log
            )
            # The demo verifies its own output (exit 1 = not bit-exact: still a finding).
            if code not in (0, 1):
                raise ContainerError(f"{bench} in {tag} exited with {code}")
            outputs.append(dest)
        runs.append(MatrixImageRun(name=name, image=ref.id, outputs=tuple(outputs)))
    return runs
