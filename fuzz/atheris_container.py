"""atheris harness: the ``.bdiff`` reader and the payload codec on arbitrary bytes.

Run: ``nox -s fuzz`` or ``python fuzz/atheris_container.py -runs=200000``.
Bytes are written to a temp file and opened with ``open_diff`` (header, carried
manifest, index, then every payload); a typed ``DiffFormatError`` is the only
accepted refusal. The same bytes are also fed to ``unpack_payload`` for each
payload kind, where the codec's own ``PayloadError`` (mapped to an error per
sample by ``diff apply``) is the only accepted refusal.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
with atheris.instrument_imports(include=["toolchain"]):
    import numpy as np

    from toolchain.diff.codec import PayloadError, unpack_payload
    from toolchain.diff.format import PayloadKind
    from toolchain.diff.reader import open_diff
    from toolchain.errors import DiffFormatError

import contextlib

from _common import main

_FD, _PATH = tempfile.mkstemp(suffix=".bdiff")
os.close(_FD)
ORIGINAL = np.zeros((4, 4, 3), np.uint8)


def test_one_input(data: bytes) -> None:
    Path(_PATH).write_bytes(data)
    try:
        reader = open_diff(_PATH)
        for _ in reader.iter_sealed():
            pass
    except DiffFormatError:
        pass
    for kind in PayloadKind:
        with contextlib.suppress(PayloadError):
            unpack_payload(kind, data, ORIGINAL)


def _seeds() -> list[bytes]:
    """A real container built on the fly (a tiny original, the identity recipe)."""
    import io

    from PIL import Image

    from toolchain.diff.create import create_diff
    from toolchain.run.generate import generate_benchmark

    work = Path(tempfile.mkdtemp(prefix="fuzz-seed-"))
    rng = np.random.default_rng(0)
    for i in range(2):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(buf, "PNG")
        (work / "orig").mkdir(exist_ok=True)
        (work / "orig" / f"{i}.png").write_bytes(buf.getvalue())
    generate_benchmark(work / "orig", "gaussian-noise", work / "bench")
    create_diff(work / "orig", work / "bench", work / "seed.bdiff")
    return [(work / "seed.bdiff").read_bytes()]


if __name__ == "__main__":
    main(test_one_input, seeds=_seeds())
