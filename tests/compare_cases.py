"""Benchmarks that drift in one known way, for the ``compare`` and report tests.

Each builder makes a *real* benchmark folder by running ``generate`` with one
stage of the pipeline swapped for a variant that a library upgrade could
bring, so the classifier is tested on digests a real drift produces:

* decoder drift: JPEGs decoded as raw YCbCr and converted by Pillow's own
  YCbCr->RGB code instead of libjpeg-turbo's (a different colour conversion);
* generator drift: the float32 adversarial recipe of version 1.0
  (``tests/float_adversarial.py``; the built-in 2.0 is exact and cannot drift)
  with its GEMMs accumulated in float64 and rounded once (a different BLAS
  kernel's rounding), recorded as a different ``blas.coretype`` (on this machine
  OPENBLAS_CORETYPE=Sandybridge instead of Haswell changes that recipe's
  outputs; the thread count does not);
* encoder-only drift: every PNG re-encoded at another zlib level.

Recorded as such, the YCbCr decoder is another build of ``pillow.libjpeg_turbo``. Other
helpers change one thing by hand: :func:`altered_pixels` (one pixel hash, on paper),
:func:`edited_original` (one photograph of the original), :func:`tampered` and
:func:`reencoded_in_place` (an output file after the fact), :func:`rewrite_parquet` (a
parquet benchmark's rows), :func:`one_value_changed` (one value of one output, recorded).

The swaps are monkeypatches, so generation must run in this process: the
``pinned_here`` context makes the test process count as pinned for its duration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import tests.float_adversarial as float_adversarial_mod
import toolchain.run.generate as generate_mod
from toolchain.codec.decode import decode
from toolchain.codec.encode import encode_png
from toolchain.hf.parquet import BenchmarkRow, parquet_columns, parquet_files, read_parquet
from toolchain.hf.parquet import write_parquet as write_parquet_rows
from toolchain.model.hashing import Digest, file_digest, pixel_digest
from toolchain.model.manifest import MANIFEST_NAME, Manifest, load_manifest, write_manifest
from toolchain.run.determinism import pinned_environ
from toolchain.run.fingerprint import runtime_fingerprint
from toolchain.run.generate import generate_benchmark

FLOAT_RECIPE = "tests.float_adversarial:float_adversarial"
"""The non-portable float32 recipe (adversarial 1.0) that generator drift is built from."""
GENERATOR_SAMPLES = ("camera.png", "chelsea.png", "coffee.png")
"""Of these, only chelsea.png drifts under the float64 gradient (159 values).
"""


@contextlib.contextmanager
def pinned_here(mp: pytest.MonkeyPatch) -> Iterator[None]:
    """Run ``generate`` in this process (so monkeypatches apply) by pinning its environ."""
    saved_umask = os.umask(0o022)
    os.umask(saved_umask)
    from toolchain.run.fingerprint import runtime_digest

    for k, v in pinned_environ().items():
        mp.setenv(k, v)
    runtime_fingerprint.cache_clear()
    runtime_digest.cache_clear()  # the digest is cached apart: it must follow the fingerprint
    try:
        yield
    finally:
        mp.undo()
        runtime_fingerprint.cache_clear()
        runtime_digest.cache_clear()
        os.umask(saved_umask)


def ycbcr_decode(data: bytes) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Like ``decode``, but colour JPEGs go through Pillow's YCbCr->RGB conversion."""
    img = Image.open(io.BytesIO(data))
    if img.format == "JPEG" and img.mode == "RGB":
        img.draft("YCbCr", img.size)  # same scale, raw YCbCr out of libjpeg
        return np.ascontiguousarray(np.asarray(img.convert("RGB")))
    return decode(data)


def _float64_gradient(
    x: Any, w1: Any, w2: Any, label: int | None
) -> tuple[int, np.ndarray[Any, np.dtype[np.float32]]]:
    """The float32 adversarial model's pass with every GEMM accumulated in float64."""
    f32 = np.float32
    pre = (x.astype(np.float64) @ w1.astype(np.float64)).astype(f32)
    hidden = np.maximum(pre, f32(0))
    logits = (hidden.sum(axis=0, dtype=np.float64) @ w2.astype(np.float64)).astype(f32)
    y = int(np.argmax(logits)) if label is None else label
    rivals = logits.copy()
    rivals[y] = -np.inf
    j = int(np.argmax(rivals))
    d_hidden = ((w2[:, j] - w2[:, y])[None, :] * (pre > 0)).astype(np.float64)
    return y, (d_hidden @ w1.T.astype(np.float64)).astype(f32)


def with_fingerprint(folder: Path, changes: Mapping[str, str]) -> None:
    """Rewrite the folder's manifest with some fingerprint values changed."""
    m = load_manifest(folder / MANIFEST_NAME)
    write_manifest(
        dataclasses.replace(m, fingerprint={**m.fingerprint, **changes}), folder / MANIFEST_NAME
    )


def in_process(original: Path, recipe: str, out: Path, mp: pytest.MonkeyPatch) -> Path:
    """The undrifted twin of a drifted run: same process, so the same fingerprint."""
    with pinned_here(mp):
        generate_benchmark(original, recipe, out)
    return out


YCBCR_BUILD = {"pillow.libjpeg_turbo": "3.0.3+ycbcr"}
"""How :func:`decoder_drift` records its decoder: another build of libjpeg-turbo."""


def decoder_drift(original: Path, out: Path, mp: pytest.MonkeyPatch) -> Path:
    with pinned_here(mp):
        mp.setattr(generate_mod, "decode", ycbcr_decode)
        generate_benchmark(original, "identity", out)
    with_fingerprint(out, YCBCR_BUILD)
    return out


def generator_drift(original: Path, out: Path, mp: pytest.MonkeyPatch) -> Path:
    with pinned_here(mp):
        mp.setattr(float_adversarial_mod, "_margin_gradient", _float64_gradient)
        generate_benchmark(original, FLOAT_RECIPE, out)
    with_fingerprint(out, {"blas.coretype": "Sandybridge"})
    return out


def encoder_drift(reference: Path, out: Path, *, level: int = 1) -> Path:
    """A copy of ``reference`` with every PNG re-encoded at zlib ``level``."""
    shutil.copytree(reference, out)
    m = load_manifest(out / MANIFEST_NAME)
    entries = []
    for e in m.entries:
        buf = io.BytesIO()
        Image.open(out / e.path).save(buf, format="PNG", compress_level=level)
        (out / e.path).write_bytes(buf.getvalue())
        entries.append(dataclasses.replace(e, file=file_digest(buf.getvalue())))
    fp = {**m.fingerprint, "pillow.zlib_ng": "absent"}
    write_manifest(
        dataclasses.replace(m, entries=tuple(entries), fingerprint=fp), out / MANIFEST_NAME
    )
    return out


def altered_pixels(src: Path, dest: Path, sample: str) -> Path:
    """Write to ``dest`` the manifest of the benchmark ``src`` with another pixel hash for
    ``sample`` (the root recomputed): that sample's generator drift, on paper."""
    m = load_manifest(src / MANIFEST_NAME)
    entries = [
        dataclasses.replace(e, pixels=Digest.of(b"other")) if e.id == sample else e
        for e in m.entries
    ]
    altered = Manifest.build(recipe=m.recipe, entries=entries, fingerprint=m.fingerprint,
                             provenance=m.provenance, columns=m.columns,
                             encoder=m.encoder)  # fmt: skip
    write_manifest(altered, dest)
    return dest


def _invert_patch(
    pixels: np.ndarray[Any, np.dtype[np.uint8]],
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """A copy with a 60x40 patch inverted, 20 pixels in from the top left corner."""
    out = pixels.copy()
    out[20:60, 20:80] = 255 - out[20:60, 20:80]
    return out


def edited_original(original: Path, out: Path, sample: str) -> Path:
    """A copy of the original tree with photograph ``sample`` edited: a 60x40 patch inverted,
    saved again in its own format (what a curator's fix looks like)."""
    shutil.copytree(original, out)
    img = Image.open(out / sample)
    fmt = img.format
    edited = Image.fromarray(_invert_patch(np.asarray(img)))
    edited.save(out / sample, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out


def tampered(reference: Path, out: Path, sample_path: str) -> Path:
    """A copy of ``reference`` whose output ``sample_path`` has a 60x40 patch inverted and is
    written again; the manifest is left as it was (an edit after publication)."""
    shutil.copytree(reference, out)
    pixels = decode((out / sample_path).read_bytes())
    (out / sample_path).write_bytes(encode_png(_invert_patch(pixels)))
    return out


def reencoded_in_place(reference: Path, out: Path, sample_path: str, *, level: int = 1) -> Path:
    """A copy of ``reference`` whose output ``sample_path`` is re-encoded by Pillow at zlib
    ``level``: the same pixels, other bytes; the manifest is left as it was."""
    shutil.copytree(reference, out)
    buf = io.BytesIO()
    Image.open(out / sample_path).save(buf, format="PNG", compress_level=level)
    (out / sample_path).write_bytes(buf.getvalue())
    return out


def rewrite_parquet(
    bench: Path, change: Callable[[list[BenchmarkRow]], list[BenchmarkRow]]
) -> None:
    """Write a parquet benchmark's shards again, with ``change`` applied to its rows (in id
    order); the manifest is left as it was."""
    columns = parquet_columns(bench)
    rows = change(list(read_parquet(bench)))
    for shard in parquet_files(bench):
        shard.unlink()
    write_parquet_rows(bench, rows, columns)


def tampered_row(row: BenchmarkRow) -> BenchmarkRow:
    """``row`` with a 60x40 patch of its image inverted."""
    return dataclasses.replace(row, png=encode_png(_invert_patch(decode(row.png))))


def upscaled_original(demo_dir: Path, out: Path, *, name: str = "coffee.png",
                      size: tuple[int, int] = (3000, 2000)) -> Path:  # fmt: skip
    """A folder holding one real photograph upscaled (Lanczos) to ``size``: 6 MP by default."""
    out.mkdir(parents=True)
    Image.open(demo_dir / name).convert("RGB").resize(size, Image.Resampling.LANCZOS).save(
        out / name
    )
    return out


def one_value_changed(reference: Path, out: Path, sample_path: str,
                      at: tuple[int, int, int]) -> Path:  # fmt: skip
    """A copy of ``reference`` in which one value (row, column, channel) of output
    ``sample_path`` is one level off, written and recorded (digests and root made again):
    the smallest drift a benchmark can show."""
    shutil.copytree(reference, out)
    pixels = decode((out / sample_path).read_bytes()).copy()
    y, x, c = at
    pixels[y, x, c] = pixels[y, x, c] + 1 if pixels[y, x, c] < 255 else 254
    png = encode_png(pixels)
    (out / sample_path).write_bytes(png)
    m = load_manifest(out / MANIFEST_NAME)
    entries = [
        dataclasses.replace(e, pixels=pixel_digest(pixels), file=file_digest(png))
        if e.path == sample_path else e
        for e in m.entries
    ]  # fmt: skip
    (out / MANIFEST_NAME).unlink()
    write_manifest(Manifest.build(recipe=m.recipe, entries=entries, fingerprint=m.fingerprint,
                                  provenance=m.provenance, columns=m.columns,
                                  encoder=m.encoder), out / MANIFEST_NAME)  # fmt: skip
    return out
