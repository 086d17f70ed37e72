"""A diff's files as an attacker leaves them (issue #23, 3): never a hang, never a traceback.

* a FIFO as the ``.bdiff`` (``diff inspect``, ``check``, ``apply``), or as ``diff.json``,
  ``manifest.json`` or the shard of a diff dataset: each hung until killed; now the file
  is refused as not a regular file, exit 3, under a hang guard (a timer that raises, so a
  hang fails the test instead of stalling it; no wall time is asserted);
* JSON nested 5,000 deep in ``diff.json`` printed a traceback (exit 1); in a carried or
  stored manifest too it is now ``not valid JSON (nested too deep)``, exit 3;
* ``diff.json``'s integers are JSON numbers of any sign and size: ``"file_length": -1``
  printed a traceback from ``struct.pack``; each is now bounded, naming the field;
* a shard's pages with any byte flipped: a typed error, never pyarrow's own.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.cli import diff_apply_args, no_traceback, run_cli
from tests.diff_cases import build, pinned, tiny_original
from tests.hostile import no_hang
from toolchain.diff import create_diff
from toolchain.diff.dataset import open_diff_dataset
from toolchain.diff.format import KeyOn, write_diff
from toolchain.errors import DiffFormatError, ExitCode

HANG = 30
"""Seconds after which a command counts as hung (each of these takes well under one)."""
DEEP = b"[" * 5000 + b"]" * 5000


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """An original, its identity benchmark, and its diff as a ``.bdiff`` and as a dataset."""
    root = tmp_path_factory.mktemp("difffiles")
    original = tiny_original(root / "original")
    bench, diff = build(original, "identity", root / "work")
    dataset = root / "work" / "dataset"
    with pinned():
        create_diff(original, bench, dataset, format="parquet")
    return original, bench, diff, dataset


def _commands(original: Path, diff: Path, out: Path) -> dict[str, list[str | Path]]:
    return {
        "inspect": ["diff", "inspect", diff],
        "check": ["diff", "check", "--original", original, "--diff", diff],
        "apply": diff_apply_args(original, diff, out),
    }


def _refused(args: list[str | Path], *words: str) -> str:
    with no_hang(HANG):
        r = no_traceback(run_cli(*args, pinned=True))
    assert r.exit_code == ExitCode.BAD_INPUT, r.output
    for w in words:
        assert w in r.output, r.output
    return r.output


@pytest.mark.parametrize("command", ["inspect", "check", "apply"])
def test_a_fifo_as_the_bdiff_never_hangs(
    case: tuple[Path, Path, Path, Path], tmp_path: Path, command: str
) -> None:
    original = case[0]
    fifo = tmp_path / "x.bdiff"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    _refused(_commands(original, fifo, out)[command], "x.bdiff", "not a regular file")
    assert not out.exists()


@pytest.mark.parametrize(
    "piece", ["diff.json", "manifest.json", "data/train-00000-of-00001.parquet"]
)
@pytest.mark.parametrize("command", ["inspect", "check", "apply"])
def test_a_fifo_in_a_diff_dataset_never_hangs(
    case: tuple[Path, Path, Path, Path], tmp_path: Path, piece: str, command: str
) -> None:
    original, dataset = case[0], case[3]
    copy = Path(shutil.copytree(dataset, tmp_path / "dataset"))
    (copy / piece).unlink()
    os.mkfifo(copy / piece)
    out = tmp_path / "out"
    _refused(_commands(original, copy, out)[command], piece, "not a regular file")
    assert not out.exists()


@pytest.mark.parametrize("command", ["inspect", "apply"])
def test_deep_json_in_diff_json_is_bad_input(
    case: tuple[Path, Path, Path, Path], tmp_path: Path, command: str
) -> None:
    original, dataset = case[0], case[3]
    copy = Path(shutil.copytree(dataset, tmp_path / "dataset"))
    (copy / "diff.json").write_bytes(DEEP)
    _refused(_commands(original, copy, tmp_path / "out")[command],
             "diff.json: not valid JSON (nested too deep)")  # fmt: skip


def test_deep_json_as_a_carried_manifest_is_bad_input(
    case: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    """A container with correct digests around a manifest nested 5,000 deep."""
    diff = tmp_path / "deep.bdiff"
    write_diff(diff, key_on=KeyOn.FILE, manifest_bytes=DEEP, entries=[], entry_count=0)
    _refused(["diff", "inspect", diff], "carried manifest: not valid JSON (nested too deep")
    _refused(diff_apply_args(case[0], diff, tmp_path / "out"), "nested too deep")


def test_deep_json_in_a_datasets_manifest_is_bad_input(
    case: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    """Its digest in diff.json no longer matches: that is named first (corruption)."""
    copy = Path(shutil.copytree(case[3], tmp_path / "dataset"))
    size = (copy / "manifest.json").stat().st_size
    (copy / "manifest.json").write_bytes(DEEP[: size // 2] + DEEP[-(size - size // 2) :])
    _refused(["diff", "inspect", copy], "header digest mismatch")


def test_deep_json_in_a_benchmarks_manifest_is_bad_input(
    case: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    bench = Path(shutil.copytree(case[1], tmp_path / "bench"))
    text = (bench / "manifest.json").read_bytes()
    (bench / "manifest.json").write_bytes(
        text.replace(b'"fingerprint": {', b'"fingerprint": {"x": ' + DEEP + b", ", 1)
    )
    _refused(["verify", bench], "manifest.json: not valid JSON (nested too deep")


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("file_length", -1, "file length -1 does not fit"),
        ("file_length", 0, "file length 0 does not fit"),
        ("file_length", 1 << 64, f"file length {1 << 64} does not fit"),
        ("file_length", 1 << 70, f"file length {1 << 70} does not fit"),
        ("entry_count", -1, "entry count -1 is not in 0..16777216"),
        ("entry_count", 1 << 70, f"entry count {1 << 70} is not in 0..16777216"),
        ("manifest_length", -1, "manifest length -1 is implausible"),
        ("manifest_length", 1 << 70, f"manifest length {1 << 70} is implausible"),
        ("version", 1 << 70, f"unknown container version {1 << 70}"),
        ("aead", -1, "unknown AEAD or codec code"),
        ("codec", 1 << 70, "unknown AEAD or codec code"),
    ],
)
@pytest.mark.parametrize("command", ["inspect", "apply"])
def test_header_integers_out_of_range_are_named(
    case: tuple[Path, Path, Path, Path],
    tmp_path: Path,
    key: str,
    value: int,
    words: str,
    command: str,
) -> None:
    original, dataset = case[0], case[3]
    copy = Path(shutil.copytree(dataset, tmp_path / "dataset"))
    doc = json.loads((copy / "diff.json").read_text())
    doc[key] = value
    (copy / "diff.json").write_text(json.dumps(doc))
    out = tmp_path / "out"
    _refused(_commands(original, copy, out)[command], words)
    assert not out.exists()


def test_every_flipped_byte_of_a_shards_pages_is_a_typed_error(
    case: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    """Each byte of the shard's pages (before its footer) flipped in turn: the dataset
    opens and reads, or is refused with a DiffFormatError. A page shorter than its header
    says, or a sample id that is not UTF-8, escaped as pyarrow's OSError or a
    UnicodeDecodeError (found by fuzz/atheris_diff_dataset.py)."""
    copy = Path(shutil.copytree(case[3], tmp_path / "dataset"))
    shard = copy / "data" / "train-00000-of-00001.parquet"
    good = shard.read_bytes()
    footer = len(good) - 8 - int.from_bytes(good[-8:-4], "little")
    refusals: set[str] = set()
    for at in range(4, footer):
        data = bytearray(good)
        data[at] ^= 0xFF
        shard.write_bytes(bytes(data))
        try:
            with open_diff_dataset(copy) as reader:
                for _ in reader.iter_sealed():
                    pass
        except DiffFormatError as e:
            refusals.add(e.message)
    assert any(": cannot be read (" in r for r in refusals), sorted(refusals)
