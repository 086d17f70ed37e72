"""Canonical PNG encoder figures for issue #11, measured in one run on real photographs.

Four sets of samples, each decoded canonically (``toolchain.codec.decode.decode``) and pushed
through a recipe (``identity``, and ``gaussian-noise`` as in the demo):

* ``native``: every image in scikit-image's sample folder (the demo's original) plus
  scikit-learn's ``china.jpg`` and ``flower.jpg`` at their own size;
* ``1080p``: 21 realistic 1920x1080 JPEG originals (quality 90) made from the colour
  photographs: 11 centre crops to 16:9 upscaled with Pillow's LANCZOS filter, and
  10 mosaics of 24 native-resolution 320x270 crops at fixed offsets.

Encoders: Pillow at ``compress_level`` 6 (what ``toolchain.codec.encode`` wrote before) and 1;
ours (``toolchain.codec.png.encode_png``: Up or Average per image, layout 2); and a
grid of one fixed PNG filter for every row (None, Sub, Up, Average, Paeth; numpy) x
libdeflate level (``deflate`` wheel). Up on every row (layout 1) is always measured, at
``--levels``; the other filters at ``--grid-levels``.
Each figure is the sum over the set of the best of ``--repeat`` runs per image, the
encoders interleaved image by image so that a busy machine slows them alike. Sizes
are file bytes; ratios are against Pillow level 6 (size) and level 1 (time).

Decode: Pillow's PNG decoder on Pillow's files and on ours, ``toolchain.codec.decode.decode``
(the canonical path), and ours (``decode_png``) on ours.

``diff apply`` model, per 1080p gaussian-noise sample: decode the JPEG original +
rebuild (original + int16 delta) + pixel SHA-256 + our encode + file SHA-256, against
the naive floor decode + Pillow level-1 PNG + file SHA-256.

Run:  python benchmarks/bench_png.py [--sklearn PATH] [--repeat 2] [--levels 1,2,...]
      [--grid-filters none,sub,up,avg,paeth] [--grid-levels 1,6,9] [--json]
``--sklearn`` is a folder holding china.jpg and flower.jpg, or a scikit-learn wheel;
without it an installed scikit-learn is used, else those two photographs are left out.
The full default grid (levels 10 to 12 are slow) took 26 min on 2 busy cores; for a
few minutes: ``--levels 1,6 --grid-filters sub --grid-levels 1``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import deflate
import numpy as np
import numpy.typing as npt
from PIL import Image

from toolchain.codec.decode import decode
from toolchain.codec.png import ENCODER, decode_png, encode_png
from toolchain.demo import demo_original
from toolchain.model.hashing import file_digest, pixel_digest
from toolchain.recipes import load_recipe

Pixels = npt.NDArray[np.uint8]
Samples = dict[str, Pixels]

COLOUR_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
    "china.jpg",
    "flower.jpg",
)
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
FILTERS = ("none", "sub", "up", "avg", "paeth")
TILE_W, TILE_H = 320, 270


# ---------------------------------------------------------------- the samples


def sklearn_photos(path: str | None) -> dict[str, bytes]:
    """china.jpg and flower.jpg from a folder, a wheel, or an installed scikit-learn."""
    if path is None:
        spec = importlib.util.find_spec("sklearn")
        if spec is None or not spec.submodule_search_locations:
            return {}
        path = str(Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images")
    p = Path(path)
    if p.is_dir():
        return {n: (p / n).read_bytes() for n in SKLEARN_PHOTOS}
    with zipfile.ZipFile(p) as wheel:
        return {n: wheel.read(f"sklearn/datasets/images/{n}") for n in SKLEARN_PHOTOS}


def native_originals(sklearn: str | None) -> dict[str, bytes]:
    folder = demo_original()
    files = {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    }
    files.update(sklearn_photos(sklearn))
    return files


def hd_originals(native: Samples) -> dict[str, bytes]:
    """21 deterministic 1920x1080 JPEG originals (quality 90) from the colour photographs."""
    colour = [native[n] for n in COLOUR_PHOTOS if n in native]
    out: dict[str, Pixels] = {}
    for name in COLOUR_PHOTOS:
        if name not in native:
            continue
        a = native[name]
        h, w = a.shape[:2]
        ch = min(h, w * 9 // 16)
        cw = ch * 16 // 9
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        crop = Image.fromarray(a[y0 : y0 + ch, x0 : x0 + cw])
        out[f"upscale-{name}"] = np.asarray(
            crop.resize((1920, 1080), Image.Resampling.LANCZOS), dtype=np.uint8
        )
    for k in range(10):
        m = np.empty((1080, 1920, 3), dtype=np.uint8)
        for j in range(24):
            a = colour[(7 * k + j) % len(colour)]
            h, w = a.shape[:2]
            y0 = (37 * k + 53 * j) % (h - TILE_H + 1)
            x0 = (71 * k + 29 * j) % (w - TILE_W + 1)
            r, c = divmod(j, 6)
            m[r * TILE_H : (r + 1) * TILE_H, c * TILE_W : (c + 1) * TILE_W] = a[
                y0 : y0 + TILE_H, x0 : x0 + TILE_W
            ]
        out[f"mosaic-{k}"] = m
    files = {}
    for name, px in out.items():
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, format="JPEG", quality=90)
        files[f"{name}.jpg"] = buf.getvalue()
    return files


def sample_sets(sklearn: str | None) -> tuple[dict[str, Samples], dict[str, bytes]]:
    """The four sets of recipe outputs, and the 1080p JPEG originals (for the diff model)."""
    native_files = native_originals(sklearn)
    native = {n: decode(b) for n, b in native_files.items()}
    hd_files = hd_originals(native)
    hd = {n: decode(b) for n, b in hd_files.items()}
    noise = load_recipe("gaussian-noise")
    identity = load_recipe("identity")
    sets = {}
    for set_name, samples in (("native", native), ("1080p", hd)):
        for recipe, label in ((identity, "identity"), (noise, "gaussian-noise")):
            sets[f"{set_name}/{label}"] = {n: recipe.apply(n, px) for n, px in samples.items()}
    return sets, hd_files


# ---------------------------------------------------------------- the encoders


def pillow_png(pixels: Pixels, level: int) -> bytes:
    arr = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=level, optimize=False)
    return buf.getvalue()


def filtered(pixels: Pixels, kind: str) -> Pixels:
    """The whole image with one PNG filter on every row, filter bytes included.

    None, Sub, Up and Average run in uint8 arithmetic (wrapping mod 256, as PNG does;
    the Average predictor floor((a + b) / 2) as (a & b) + ((a ^ b) >> 1)); Paeth in int16.
    """
    h, w, c = pixels.shape
    x = np.ascontiguousarray(pixels).reshape(h, w * c)
    raw = np.empty((h, 1 + w * c), dtype=np.uint8)
    raw[:, 0] = FILTERS.index(kind)
    f = raw[:, 1:]
    left = np.zeros_like(x)
    left[:, c:] = x[:, :-c]
    up = np.zeros_like(x)
    up[1:] = x[:-1]
    if kind == "none":
        f[...] = x
    elif kind == "sub":
        np.subtract(x, left, out=f)
    elif kind == "up":
        np.subtract(x, up, out=f)
    elif kind == "avg":
        np.subtract(x, (left & up) + ((left ^ up) >> 1), out=f)
    else:
        a, b = left.astype(np.int16), up.astype(np.int16)
        cc = np.zeros_like(a)
        cc[1:, c:] = x[:-1, :-c]
        p = a + b - cc
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - cc)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, cc))
        np.subtract(x, pred.astype(np.uint8), out=f)
    return raw


def grid_png(pixels: Pixels, kind: str, level: int) -> bytes:
    """A PNG with one filter for every row and libdeflate at ``level``, one IDAT chunk."""
    h, w, c = pixels.shape
    colour = {1: 0, 3: 2, 4: 6}[c]

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = deflate.crc32(payload, deflate.crc32(kind))
        return len(payload).to_bytes(4, "big") + kind + payload + crc.to_bytes(4, "big")

    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes((8, colour, 0, 0, 0))
    idat = bytes(deflate.zlib_compress(filtered(pixels, kind), level))
    sig = b"\x89PNG\r\n\x1a\n"
    return sig + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


Encoder = Callable[[Pixels], bytes]


def encoders(levels: Sequence[int], grid_filters: Sequence[str], grid_levels: Sequence[int]):
    table: dict[str, Encoder] = {
        "pillow level 6": lambda a: pillow_png(a, 6),
        "pillow level 1": lambda a: pillow_png(a, 1),
        f"ours ({ENCODER.filter}, level {ENCODER.level})": encode_png,
    }
    for kind in FILTERS:
        # Up (layout 1's filter on every row) is always measured, at ``levels``.
        lv = levels if kind == "up" else grid_levels
        if kind != "up" and kind not in grid_filters:
            continue
        for level in lv:
            table[f"{kind}, libdeflate {level}"] = lambda a, k=kind, lv=level: grid_png(a, k, lv)
    return table


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def measure_encoders(
    samples: Samples, table: dict[str, Encoder], repeat: int
) -> dict[str, tuple[float, int]]:
    totals = dict.fromkeys(table, (0.0, 0))
    for px in samples.values():
        for name, enc in table.items():
            t, out = best_time(lambda e=enc, p=px: e(p), repeat)
            assert isinstance(out, bytes)
            s, n = totals[name]
            totals[name] = (s + t, n + len(out))
    return totals


def pillow_decode(data: bytes) -> Pixels:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


def measure_decoders(samples: Samples, repeat: int) -> dict[str, float]:
    files = [(px, pillow_png(px, 6), encode_png(px)) for px in samples.values()]
    runs: dict[str, Callable[[Pixels, bytes, bytes], object]] = {
        "pillow, on pillow level-6 files": lambda px, theirs, ours: pillow_decode(theirs),
        "toolchain.codec.decode, on pillow level-6 files": lambda px, theirs, ours: decode(theirs),
        "pillow, on our files": lambda px, theirs, ours: pillow_decode(ours),
        "ours (decode_png), on our files": lambda px, theirs, ours: decode_png(ours),
    }
    totals = dict.fromkeys(runs, 0.0)
    for px, theirs, ours in files:
        got = decode_png(ours)
        assert got is not None and np.array_equal(got, px), "decode_png does not round-trip"
        for name, fn in runs.items():
            t, _ = best_time(lambda f=fn, a=px, b=theirs, c=ours: f(a, b, c), repeat)
            totals[name] += t
    return totals


CHUNKINGS = {"8 KiB IDATs": 8192, "64 KiB IDATs": 65536, "1 MiB IDATs": 1 << 20, "one IDAT": 0}


def measure_chunking(samples: Samples, repeat: int) -> dict[str, dict[str, float]]:
    """Our zlib stream cut into IDAT chunks of a fixed size: container bytes, and the time
    to cut and CRC them (writer) plus join their payloads back (reader)."""
    streams = [encode_png(px) for px in samples.values()]
    streams = [s[41:-16] for s in streams]  # the zlib stream inside the one IDAT chunk
    out = {}
    for label, size in CHUNKINGS.items():
        overhead, seconds = 0, 0.0
        for z in streams:
            step = size or len(z)
            pieces = [z[i : i + step] for i in range(0, len(z), step)]
            overhead += 12 * len(pieces)

            def cut_and_join(z: bytes = z, step: int = step) -> bytes | memoryview:
                view = memoryview(z)
                parts = [view[i : i + step] for i in range(0, len(z), step)]
                crcs = [deflate.crc32(p, deflate.crc32(b"IDAT")) for p in parts]
                assert len(crcs) == len(parts)
                return parts[0] if len(parts) == 1 else b"".join(parts)  # one IDAT: no copy

            seconds += best_time(cut_and_join, repeat)[0]
        out[label] = {"idat_overhead_bytes": overhead, "cut_crc_join_s": round(seconds, 4)}
    return out


def measure_diff_model(originals: dict[str, bytes], repeat: int) -> dict[str, float]:
    """Per 1080p gaussian-noise sample: the diff-apply work with our encoder vs the floor."""
    noise = load_recipe("gaussian-noise")
    totals = {"diff apply (ours)": 0.0, "floor (decode + pillow level 1 + sha256)": 0.0}
    for name, jpeg in originals.items():
        base = decode(jpeg)
        delta = noise.apply(name, base).astype(np.int16) - base

        def ours(j: bytes = jpeg, d: npt.NDArray[np.int16] = delta) -> None:
            px = (decode(j) + d).astype(np.uint8)
            pixel_digest(px)
            file_digest(encode_png(px))

        def floor(j: bytes = jpeg) -> None:
            hashlib.sha256(pillow_png(decode(j), 1)).digest()

        for label, fn in zip(totals, (ours, floor), strict=True):
            totals[label] += best_time(fn, repeat)[0]
    return totals


# ---------------------------------------------------------------- the report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sklearn", default=None, help="folder or wheel with china/flower.jpg")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--levels", default="1,2,3,4,5,6,7,8,9,10,11,12", help="levels for Up")
    ap.add_argument("--grid-filters", default="none,sub,avg,paeth")
    ap.add_argument("--grid-levels", default="1,4,6,9", help="levels for the other filters")
    ap.add_argument("--sets", default="", help="comma-separated subset of the sample sets")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ints = lambda s: [int(v) for v in s.split(",") if v]  # noqa: E731
    sets, hd_files = sample_sets(args.sklearn)
    if args.sets:
        sets = {k: v for k, v in sets.items() if k in args.sets.split(",")}
    table = encoders(ints(args.levels), args.grid_filters.split(","), ints(args.grid_levels))
    report: dict[str, object] = {"encoder": ENCODER.to_json(), "sets": {}}
    for set_name, samples in sets.items():
        print(f"measuring {set_name} ({len(samples)} samples)...", file=sys.stderr, flush=True)
        enc = measure_encoders(samples, table, args.repeat)
        dec = measure_decoders(samples, args.repeat)
        p6, p1 = enc["pillow level 6"], enc["pillow level 1"]
        report["sets"][set_name] = {  # type: ignore[index]
            "samples": len(samples),
            "pixels_mib": round(sum(a.nbytes for a in samples.values()) / 2**20, 1),
            "encode": {
                name: {
                    "s": round(t, 3),
                    "kib": round(n / 1024),
                    "size_vs_pillow6": round(n / p6[1], 3),
                    "time_vs_pillow1": round(t / p1[0], 3),
                }
                for name, (t, n) in enc.items()
            },
            "decode_s": {k: round(v, 3) for k, v in dec.items()},
        }
    if "1080p/gaussian-noise" in sets:
        report["chunking"] = measure_chunking(sets["1080p/gaussian-noise"], args.repeat)
        model = measure_diff_model(hd_files, args.repeat)
        ours_s, floor_s = model.values()
        report["diff_apply_model"] = {
            **{k: round(v, 3) for k, v in model.items()},
            "ours_over_floor": round(ours_s / floor_s, 3),
        }
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    print(f"encoder: {ENCODER}")
    for set_name, r in report["sets"].items():  # type: ignore[attr-defined]
        print(f"\n{set_name}: {r['samples']} samples, {r['pixels_mib']} MiB of pixels")
        print(f"  {'encoder':34s} {'time s':>8s} {'KiB':>8s} {'size/P6':>8s} {'time/P1':>8s}")
        for name, e in r["encode"].items():
            print(
                f"  {name:34s} {e['s']:8.3f} {e['kib']:8d} "
                f"{e['size_vs_pillow6']:8.3f} {e['time_vs_pillow1']:8.3f}"
            )
        for name, s in r["decode_s"].items():
            print(f"  decode: {name:42s} {s:8.3f} s")
    if "chunking" in report:
        print("\n1080p gaussian-noise, IDAT chunking of our stream:")
        for label, c in report["chunking"].items():  # type: ignore[attr-defined]
            print(f"  {label:14s} +{c['idat_overhead_bytes']:6d} B  {c['cut_crc_join_s']:.4f} s")
    if "diff_apply_model" in report:
        m = report["diff_apply_model"]
        print(f"\n1080p gaussian-noise, diff apply model: {m}")


if __name__ == "__main__":
    main()
