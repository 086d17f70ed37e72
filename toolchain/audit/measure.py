"""What is on disk, measured: a benchmark's outputs read once each, in id order, and checked
against their manifest entries (either format); two outputs' pixel statistics and the small
views of their differences that the report shows (``docs/compare.md``)."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain._internal.safefs import UnsafePath
from toolchain.audit.verify import Problem, check_output
from toolchain.errors import os_error_text
from toolchain.model.hashing import Digest, file_digest, pixel_digest
from toolchain.model.manifest import Manifest, ManifestEntry
from toolchain.run.outdir import read_output

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from toolchain.hf.parquet import BenchmarkRow

    Pixels = npt.NDArray[np.uint8]

__all__ = [
    "CROP_MAX",
    "CROP_MIN",
    "SMALL_SIDE",
    "Found",
    "OnDisk",
    "Outputs",
    "PixelStats",
    "PixelView",
    "measure",
    "pixel_stats",
    "pixel_view",
]

CROP_MIN, CROP_MAX, CROP_MARGIN = 48, 192, 8
"""The crop around the changed region: its side in pixels, and the margin kept around it."""
SMALL_SIDE = 320
"""The whole image, small: at most this many pixels along its longer side."""
_BAND_VALUES = 1 << 22
"""Pixel values differenced at a time (an int16 band of 8 MiB), whatever the image size."""


class Found(enum.Enum):
    """What a benchmark's output file of one sample is, against its manifest entry."""

    MATCHES = "matches its manifest"
    MISSING = "missing"
    """Not there: no file, or no row in the shards."""
    REFUSED = "refused"
    """A symlink (never followed), not a regular file, over the size limit, or unreadable."""
    TAMPERED = "tampered"
    """There, but undecodable, or its pixels, bytes, id or columns are not the entry's."""


@dataclass(frozen=True, kw_only=True, eq=False)
class OnDisk:
    """One sample's output as read from disk."""

    found: Found
    recorded: str = ""
    """What the manifest records, where it is not what was found (``pixels 3f2a...``)."""
    seen: str = ""
    """What was found instead (``missing``, ``is a symlink: not followed``, ``pixels 9c1e...``)."""
    pixels: Pixels | None = None
    """The decoded pixels, when the file was read and decodes."""
    digest: Digest | None = None
    """Their pixel digest."""
    file: Digest | None = None
    """The digest of the file's bytes, when it was read."""


class Outputs:
    """A benchmark's output files, each read once, in the manifest's id order, bounded and
    never through a link: a folder's by path, a parquet benchmark's rows as they stream by
    (``hf.parquet.read_parquet``; rows come in id order, so at most one is held ahead)."""

    def __init__(self, folder: Path, manifest: Manifest, *, format: str = "folder"):
        self.folder, self.manifest = folder, manifest
        self._problems: list[str] = []
        self._rows: Iterator[BenchmarkRow] | None = None
        self._ahead: BenchmarkRow | None = None
        self._seen: set[str] = set()
        self._wanted: frozenset[str] = frozenset()
        self._refused = ""
        if format == "parquet":
            from toolchain.hf.parquet import parquet_files, read_parquet

            self._refused = next(filter(None, map(_linked, parquet_files(folder))), "")
            if self._refused:
                return
            self._rows = read_parquet(folder)
            self._wanted = frozenset(e.path for e in manifest.entries)

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        close = getattr(self._rows, "close", None)  # a generator: closes the open shard
        if close is not None:
            close()

    def read(self, entry: ManifestEntry) -> OnDisk:
        """``entry``'s output (entries asked for in id order, each once)."""
        if self._refused:
            return OnDisk(found=Found.REFUSED, recorded="a row of a regular shard",
                          seen=self._refused)  # fmt: skip
        if self._rows is None:
            try:
                data = read_output(self.folder, entry.path)
            except FileNotFoundError:
                return OnDisk(found=Found.MISSING, recorded="a file", seen="missing")
            except UnsafePath as e:  # a link, a FIFO, over the size limit: not followed
                return OnDisk(found=Found.REFUSED, recorded="a regular file", seen=os_error_text(e))
            except OSError as e:
                return OnDisk(found=Found.REFUSED, recorded="a file",
                              seen=f"unreadable: {os_error_text(e)}")  # fmt: skip
            return self._check(entry, data)
        row = self._row_for(entry)
        if row is None:
            return OnDisk(found=Found.MISSING, recorded="a row", seen="not in the shards")
        got = self._check(entry, row.png)
        if got.found is Found.MATCHES and (row.id, dict(row.columns)) != (
            entry.id,
            dict(entry.columns),
        ):
            return OnDisk(found=Found.TAMPERED, pixels=got.pixels, digest=got.digest,
                          file=got.file, recorded=f"id {entry.id!r}, {dict(entry.columns)}",
                          seen=f"id {row.id!r}, {dict(row.columns)}")  # fmt: skip
        return got

    def _check(self, entry: ManifestEntry, data: bytes) -> OnDisk:
        pixels, problem = check_output(data, entry.pixels, entry.file)
        if problem is None:
            return OnDisk(found=Found.MATCHES, pixels=pixels, digest=entry.pixels, file=entry.file)
        if pixels is None:
            return OnDisk(found=Found.TAMPERED, recorded="a PNG", seen=f"undecodable: {problem[1]}")
        file = file_digest(data)
        if problem[0] is Problem.PIXELS_DIFFER:
            got = pixel_digest(pixels)
            return OnDisk(found=Found.TAMPERED, pixels=pixels, digest=got, file=file,
                          recorded=f"pixels {entry.pixels.short}",
                          seen=f"pixels {got.short}")  # fmt: skip
        # Same pixels, other bytes: for a v1 manifest (Pillow's bytes) no failure, as in verify.
        found = Found.MATCHES if self.manifest.version == 1 else Found.TAMPERED
        return OnDisk(found=found, pixels=pixels, digest=entry.pixels, file=file,
                      recorded=f"file {entry.file.short}",
                      seen=f"file {file.short} (same pixels)")  # fmt: skip

    def _row_for(self, entry: ManifestEntry) -> BenchmarkRow | None:
        assert self._rows is not None
        want = entry.id.encode("utf-8")
        while True:
            row, self._ahead = self._ahead or next(self._rows, None), None
            if row is None:
                return None
            if row.path not in self._wanted or row.path in self._seen:
                self._stray(row)
            elif row.path == entry.path:
                self._seen.add(row.path)
                return row
            elif row.id.encode("utf-8") < want:  # its entry was passed (reported missing)
                self._seen.add(row.path)
                self._problems.append(f"the row of {row.path!r} is out of id order")
            else:
                self._ahead = row
                return None

    def _stray(self, row: BenchmarkRow) -> None:
        why = "appears twice" if row.path in self._seen else "is not in the manifest"
        self._problems.append(f"a row of {row.path!r} {why}")

    def finish(self) -> list[str]:
        """What is wrong with the shards as a whole: rows not in the manifest, twice, or out
        of id order (read once every entry was)."""
        if self._rows is not None:
            ahead, self._ahead = self._ahead, None
            for row in (*([ahead] if ahead else []), *self._rows):
                if row.path in self._wanted and row.path not in self._seen:
                    self._seen.add(row.path)
                    self._problems.append(f"the row of {row.path!r} is out of id order")
                else:
                    self._stray(row)
        return self._problems


def _linked(shard: Path) -> str:
    """Why a parquet shard is not read: it, or a folder on its way, is a symlink."""
    for path in (shard.parent, shard):
        if path.is_symlink():
            return f"{path.parent.name}/{path.name} is a symlink: not followed"
    return ""


# -- measuring pixels --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PixelStats:
    """How much two outputs differ, from their decoded pixels."""

    values: int
    """Number of pixel values (H x W x C) compared."""
    differing: int
    max_abs: int
    psnr_db: float | None
    """PSNR in dB (peak 255); ``None`` when the outputs are equal or not comparable."""
    note: str = ""
    """Why the values could not be compared (the shapes differ), else empty."""

    @property
    def fraction(self) -> float:
        return self.differing / self.values if self.values else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "differing": self.differing,
            "fraction": self.fraction,
            "max_abs": self.max_abs,
            "note": self.note,
            "psnr_db": self.psnr_db,
            "values": self.values,
        }

    def __str__(self) -> str:
        if self.note:
            return self.note
        psnr = "inf" if self.psnr_db is None else f"{self.psnr_db:.1f}"
        share = 100 * self.fraction
        percent = "<0.001" if 0 < share < 0.001 else f"{share:.3f}"
        return (
            f"{self.differing} of {self.values} values ({percent}%), "
            f"max |d| {self.max_abs}, PSNR {psnr} dB"
        )


Box = tuple[int, int, int, int]
"""``(top, left, bottom, right)``, bottom and right exclusive."""


@dataclass(frozen=True, kw_only=True, eq=False)
class PixelView:
    """What the report shows of two same-shape outputs that differ, all of it small: the
    changed region cropped from A, B and their difference, and A and the difference whole,
    scaled down. Made while both outputs are in memory, so the report reads no file."""

    height: int
    width: int
    changed: Box
    """The smallest box holding every changed pixel."""
    window: Box
    """The crop: the changed box with a margin, or the part of it around the largest change."""
    crop_a: Pixels
    crop_b: Pixels
    crop_diff: Pixels
    """The largest absolute difference over the channels, per pixel of the crop (H, W)."""
    step: int
    """The small images keep one pixel in ``step`` along each axis."""
    small_a: Pixels
    small_diff: Pixels
    """The largest absolute difference in each ``step`` x ``step`` block: one changed pixel
    still shows in the small image."""
    peak: int
    """The largest absolute difference in the whole image."""


def measure(a: Pixels, b: Pixels) -> tuple[PixelStats, Pixels | None]:
    """The statistics of two outputs and, for the same shape, the largest absolute difference
    over the channels per pixel (H, W)."""
    import numpy as np

    if a.shape != b.shape:
        shapes = f"{'x'.join(map(str, a.shape))} vs {'x'.join(map(str, b.shape))}"
        return PixelStats(values=0, differing=0, max_abs=0, psnr_db=None,
                          note=f"shapes differ: {shapes}"), None  # fmt: skip
    height, width, channels = a.shape
    per_pixel = np.empty((height, width), dtype=np.uint8)
    differing = sse = 0
    rows = max(1, _BAND_VALUES // (width * channels))
    for top in range(0, height, rows):  # in bands: memory does not grow with the image
        d = np.abs(a[top : top + rows].astype(np.int16) - b[top : top + rows])
        differing += int(np.count_nonzero(d))
        # Integer sum of squares: exact, so the PSNR does not depend on summation order.
        sse += int(np.square(d, dtype=np.int32).sum(dtype=np.int64))
        per_pixel[top : top + rows] = d.max(axis=2)
    psnr = None if sse == 0 else 10 * math.log10(255**2 * a.size / sse)
    stats = PixelStats(values=int(a.size), differing=differing,
                       max_abs=int(per_pixel.max(initial=0)), psnr_db=psnr)  # fmt: skip
    return stats, per_pixel


def pixel_stats(a: Pixels, b: Pixels) -> PixelStats:
    """Count, fraction, largest difference and PSNR between two outputs."""
    return measure(a, b)[0]


def _window(per_pixel: Pixels, changed: Box) -> Box:
    import numpy as np

    height, width = per_pixel.shape
    top, left, bottom, right = changed
    side = min(max(max(bottom - top, right - left) + 2 * CROP_MARGIN, CROP_MIN), CROP_MAX)
    if bottom - top <= side and right - left <= side:
        cy, cx = (top + bottom) // 2, (left + right) // 2
    else:  # larger than the crop: the part around the largest change (the first of them)
        cy, cx = (int(v) for v in np.unravel_index(int(np.argmax(per_pixel)), per_pixel.shape))
    h, w = min(side, height), min(side, width)
    y, x = min(max(cy - h // 2, 0), height - h), min(max(cx - w // 2, 0), width - w)
    return y, x, y + h, x + w


def pixel_view(a: Pixels, b: Pixels, per_pixel: Pixels | None = None) -> PixelView | None:
    """The report's view of two outputs, ``None`` when they are equal or their shapes differ.
    ``per_pixel``: what :func:`measure` gave for them, if it ran already."""
    import numpy as np

    if per_pixel is None:
        per_pixel = measure(a, b)[1]
    if per_pixel is None or not per_pixel.any():
        return None
    height, width = per_pixel.shape
    rows, cols = np.flatnonzero(per_pixel.any(axis=1)), np.flatnonzero(per_pixel.any(axis=0))
    changed = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    y0, x0, y1, x1 = window = _window(per_pixel, changed)
    step = -(-max(height, width) // SMALL_SIDE)
    padded = np.zeros((-(-height // step) * step, -(-width // step) * step), dtype=np.uint8)
    padded[:height, :width] = per_pixel
    blocks = padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step)
    return PixelView(
        height=height,
        width=width,
        changed=changed,
        window=window,
        crop_a=np.ascontiguousarray(a[y0:y1, x0:x1]),
        crop_b=np.ascontiguousarray(b[y0:y1, x0:x1]),
        crop_diff=np.ascontiguousarray(per_pixel[y0:y1, x0:x1]),
        step=step,
        small_a=np.ascontiguousarray(a[::step, ::step]),
        small_diff=np.ascontiguousarray(blocks.max(axis=(1, 3))),
        peak=int(per_pixel.max()),
    )
