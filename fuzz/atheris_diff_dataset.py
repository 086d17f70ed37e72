"""atheris harness: the diff dataset reader (``diff create --format parquet``) on arbitrary
``diff.json``, ``manifest.json`` and index/payload shard.

Run: ``nox -s fuzz`` or ``python fuzz/atheris_diff_dataset.py -runs=200000``.
One input is the three files packed (``_common.pack``) plus a first byte of switches:
bit 0 makes ``diff.json`` declare the manifest's real length, so that a changed manifest
is parsed rather than refused for its size. The folder is opened with ``open_diff_dataset``
and every payload read; a typed error is the only accepted refusal.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
with atheris.instrument_imports(include=["toolchain"]):
    import toolchain.source.hf.layout  # noqa: F401  (imported lazily by the reader)
    from toolchain.diff.dataset import HEADER_NAME, MANIFEST_NAME, open_diff_dataset

from _common import main, pack, pyarrow_aborts_on, refused, tiny_run, unpack

SHARD = "data/train-00000-of-00001.parquet"
FOLDER = Path(tempfile.mkdtemp(prefix="fuzz-diff-dataset-"))
(FOLDER / "data").mkdir()


def _files(data: bytes) -> tuple[bytes, bytes, bytes]:
    switches, header, manifest, shard = data[:1] or b"\0", *unpack(data[1:], 3)
    if switches[0] & 1:
        try:
            doc = json.loads(header)
            if isinstance(doc, dict):
                header = json.dumps({**doc, "manifest_length": len(manifest)}).encode()
        except (ValueError, RecursionError):
            pass
    return header, manifest, shard


def test_one_input(data: bytes) -> None:
    for name, content in zip((HEADER_NAME, MANIFEST_NAME, SHARD), _files(data), strict=True):
        (FOLDER / name).write_bytes(content)
    if pyarrow_aborts_on(FOLDER / SHARD):
        return  # the known upstream abort (_common.pyarrow_aborts_on)
    with refused():
        reader = open_diff_dataset(FOLDER)
        for _ in reader.iter_sealed():
            pass


def _seed() -> bytes:
    work = Path(tempfile.mkdtemp(prefix="fuzz-seed-"))
    tiny_run(work, diff="parquet")
    files = [(work / "diff" / name).read_bytes() for name in (HEADER_NAME, MANIFEST_NAME, SHARD)]
    seed = b"\0" + pack(*files)
    with open_diff_dataset(work / "diff") as reader:  # the seed is a valid diff dataset
        assert len(list(reader.iter_sealed())) == len(reader.manifest.entries) > 0
    return seed


if __name__ == "__main__":
    main(test_one_input, seeds=[_seed()])
