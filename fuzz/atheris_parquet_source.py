"""atheris harness: a Hugging Face parquet original (``ParquetSource``) on arbitrary bytes
as its one ``.parquet`` file.

Run: ``nox -s fuzz`` or ``python fuzz/atheris_parquet_source.py -runs=200000``.
The first byte of an input holds switches (bit 0: ``--columns -sample_id``, which a
benchmark's own parquet needs as an original), the rest is the file. It is opened as
``--original x.parquet`` is: its schema and Hugging Face features read, its samples
listed, and up to 8 of them read with their columns; a typed error is the only accepted
refusal.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
with atheris.instrument_imports(include=["toolchain"]):
    import toolchain.source.hf.base
    import toolchain.source.hf.features  # noqa: F401  (both imported lazily by the source)
    from toolchain.source.hf.parquet import ParquetSource

from _common import main, pyarrow_aborts_on, refused, tiny_run

os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
FILE = Path(tempfile.mkdtemp(prefix="fuzz-parquet-source-")) / "x.parquet"
SAMPLES_READ = 8


def _source(data: bytes) -> ParquetSource:
    FILE.write_bytes(data[1:])
    return ParquetSource(FILE, columns="-sample_id" if data[:1] and data[0] & 1 else None)


def test_one_input(data: bytes) -> None:
    FILE.write_bytes(data[1:])
    if pyarrow_aborts_on(FILE):
        return  # the known upstream abort (_common.pyarrow_aborts_on)
    with refused(), _source(data) as source:
        ids = list(source.listing().ids)[:SAMPLES_READ]
        for sample in source.iter_samples(ids):
            assert isinstance(sample.data, bytes)
        if ids:
            source.columns_of(ids[-1])


def _hub_parquet(work: Path) -> bytes:
    """A parquet file as ``datasets`` writes one: an Image feature and a ClassLabel."""
    import datasets
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    images = []
    for i in range(3):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (4 + i, 6, 3), dtype=np.uint8)).save(buf, "PNG")
        images.append({"bytes": buf.getvalue(), "path": f"{i}.png"})
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])}
    )
    ds = datasets.Dataset.from_dict({"image": images, "label": [0, 1, 1]}, features=features)
    ds.to_parquet(str(work / "hub.parquet"))
    return (work / "hub.parquet").read_bytes()


def _seeds() -> list[bytes]:
    work = Path(tempfile.mkdtemp(prefix="fuzz-seed-"))
    _, bench = tiny_run(work, fmt="parquet")
    seeds = [b"\1" + next((bench / "data").glob("*.parquet")).read_bytes(),
             b"\0" + _hub_parquet(work)]  # fmt: skip
    for seed in seeds:  # each seed is an original with samples
        with _source(seed) as source:
            assert len(list(source.iter_samples(source.listing().ids))) > 0
    return seeds


if __name__ == "__main__":
    main(test_one_input, seeds=_seeds())
