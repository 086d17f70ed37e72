"""Shared builders for the diff tests: small real originals, benchmarks and .bdiff files.

Generation, ``diff create`` and ``diff apply`` run in the test process (no
worker pool to spawn) inside :func:`pinned`, which gives the process the
pinned environment for the duration, as ``tests/compare_cases.py`` does.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.compare_cases import pinned_here
from tests.conftest import make_image
from toolchain.diff import create_diff
from toolchain.diff.format import PayloadKind, SealedEntry
from toolchain.model.hashing import Digest
from toolchain.model.layout import output_path_for
from toolchain.model.manifest import Manifest, ManifestEntry, Provenance, RecipeIdentity
from toolchain.run.generate import generate_benchmark

DEMO_SUBSET = ("astronaut.png", "camera.png", "coffee.png", "horse.png", "logo.png", "rocket.jpg")
"""Six demo photographs: RGB, L, RGBA, PNG and JPEG."""


@contextlib.contextmanager
def pinned() -> Iterator[None]:
    """Make this process count as pinned, so the pipeline runs here without a pool."""
    with pinned_here(pytest.MonkeyPatch()):
        yield


def tiny_original(root: Path) -> Path:
    """Five small images in two folders: RGB and L PNGs, an RGBA PNG, two JPEGs."""
    make_image(root / "a/one.png", seed=1)
    make_image(root / "a/two.jpg", seed=2, size=(48, 40))
    make_image(root / "b/three.png", mode="L", seed=3)
    make_image(root / "b/four.png", mode="RGBA", seed=4, size=(33, 20))
    make_image(root / "five.jpg", seed=5, size=(64, 32))
    return root


def demo_subset(src: Path, root: Path, names: Sequence[str] = DEMO_SUBSET) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(src / name, root / name)
    return root


def build(
    original: Path, recipe: str, work: Path, *, key_on: str = "file", entries: str = "delta"
) -> tuple[Path, Path]:
    """Generate ``recipe`` from ``original`` into ``work/bench``; seal it into ``work/x.bdiff``.

    Deltas by default: what every recipe that is not shipped gets, and what most tests
    are about; ``entries="auto"`` gives a shipped recipe's samples recipe entries.
    """
    bench, diff = work / "bench", work / "x.bdiff"
    with pinned():
        generate_benchmark(original, recipe, bench)
        create_diff(original, bench, diff, key_on=key_on, entries=entries)
    return bench, diff


def missing_and_altered(original: Path, tmp_path: Path) -> Path:
    """A copy of a :func:`tiny_original` without ``five.jpg`` and with ``a/one.png`` altered."""
    copy = Path(shutil.copytree(original, tmp_path / "original"))
    (copy / "five.jpg").unlink()
    altered = copy / "a/one.png"
    data = bytearray(altered.read_bytes())
    data[-20] ^= 0xFF
    altered.write_bytes(bytes(data))
    return copy


def many_entries(n: int) -> tuple[Manifest, list[SealedEntry]]:
    """A manifest of ``n`` made-up entries in seven folders, and a small sealed payload
    for each: the shape of a large diff, without the images."""
    entries = []
    for i in range(n):
        d = Digest.of(str(i).encode())
        sid = f"c{i % 7}/{i:05d}.jpg"
        entries.append(ManifestEntry(id=sid, path=output_path_for(sid), pixels=d, file=d, source=d))
    manifest = Manifest.build(
        recipe=RecipeIdentity(name="r", version="1", seed=1, source=Digest.of(b"src")),
        entries=entries,
        fingerprint={"numpy": "2.4.6"},
        provenance=Provenance(samples_used=n, samples_in_original=n),
    )
    sealed = [
        SealedEntry(index=i, kind=PayloadKind.FULL, fingerprint=bytes(32), sealed=bytes(40))
        for i in range(n)
    ]
    return manifest, sealed
