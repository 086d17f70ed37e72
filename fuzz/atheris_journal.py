"""atheris harness: the run journal (``state/journal-*.jsonl``) on arbitrary bytes, read as
``--resume`` and ``--overwrite`` read it.

Run: ``nox -s fuzz`` or ``python fuzz/atheris_journal.py -runs=200000``.
The seed is a keyed journal written by :class:`Journal` itself (its run key kept in a
temporary ``XDG_STATE_HOME``, so mutated records are checked against a real key); a typed
error is the only accepted refusal.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="fuzz-state-")
with atheris.instrument_imports(include=["toolchain"]):
    from toolchain.model.hashing import Digest
    from toolchain.model.manifest import load_manifest
    from toolchain.run.journal import Journal

from _common import main, refused, tiny_run

ROOT = Path(tempfile.mkdtemp(prefix="fuzz-journal-"))
REL = "state/journal-fuzz.jsonl"
HEADER = {"plan": "sha256:" + "0" * 64, "recipe": "gaussian-noise"}
(ROOT / "state").mkdir()


def _read(journal: Journal) -> None:
    journal.recorded_header()
    journal.recorded_fingerprint()
    for sample in journal.samples():
        assert sample.entry.id
    journal.trusted()
    journal.paths()


def test_one_input(data: bytes) -> None:
    (ROOT / REL).write_bytes(data)
    with refused():
        _read(Journal(ROOT, REL, HEADER))


def _seed() -> bytes:
    """A keyed journal of a real run's samples: fingerprint, writing and sample lines."""
    _, bench = tiny_run(Path(tempfile.mkdtemp(prefix="fuzz-seed-")))
    journal = Journal(ROOT, REL, HEADER)
    journal.open(keyed=True)
    journal.note_fingerprint("sha256:" + "1" * 64)
    for entry in load_manifest(bench / "manifest.json").entries:
        journal.note_writing(entry.path, entry.id)
        journal.append(entry, Digest.of(entry.id.encode()))
    journal.close()
    seed = (ROOT / REL).read_bytes()
    trusted = Journal(ROOT, REL, HEADER).trusted()  # the seed is a journal a resume trusts
    assert trusted.samples and not trusted.notes, trusted
    return seed


if __name__ == "__main__":
    main(test_one_input, seeds=[_seed()])
