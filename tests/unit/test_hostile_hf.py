"""Trust at every edge for Hugging Face data and parquet output (issue #23), as an attacker
would try it, through the CLI:

* item 1: links a co-user plants in a shared ``--out`` during ``generate`` or ``diff apply``
  ``--format parquet`` (at ``data/``, at the shards' old guessable temp names, at the final
  shard name, at the card and ``croissant.json``) never make the run write outside ``--out``;
* item 2: a ``save_to_disk`` folder whose metadata names splits or data files outside it
  (``../sibling``, an absolute path, a split folder linked outside) is refused, exit 3;
* item 3: a FIFO as an ``.arrow`` file or parquet shard of an original, or as a parquet
  benchmark's shard (``verify``), never hangs (each run in a child under a timeout); JSON
  nested 5,000 deep in ``dataset_dict.json``, ``state.json``, ``dataset_info.json``, the
  ``huggingface`` schema metadata of an original's and of a benchmark's shard, or beside our
  manifest in ``metadata.jsonl``, is a clear error, never a traceback; a ``uint64`` value
  over the int64 range is refused at the source naming its column and row;
* item 8: a message never tells the size of a file reached through a link, and an
  over-long name (300 bytes) is bad input (exit 3), not a failing disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli import diff_apply_args, generate_args, no_traceback, run_cli
from tests.diff_cases import build, tiny_original
from tests.hf_cases import class_records, hf_offline, make_dataset, to_hub_parquet
from toolchain.errors import ExitCode
from toolchain.run.outdir import SampleWriter

__all__ = ["hf_offline"]

pytestmark = pytest.mark.usefixtures("hf_offline")

HANG = 120
"""Seconds after which a child counts as hung (each run here takes a few seconds)."""


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): path -> content digest / link target."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                found[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                found[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                found[rel] = "dir" if p.is_dir() else "other"
    return found


def cli_within(seconds: float, *args: str | Path) -> subprocess.CompletedProcess[str] | None:
    """``benchmark-regen ARGS`` in a child process; None if it is still running after
    ``seconds`` (it is killed): a hang guard that holds even if a C library blocks."""
    env = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    try:
        return subprocess.run(
            [sys.executable, "-m", "toolchain", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None


def refused(result: Any, code: ExitCode, *words: str) -> str:
    """The error text of a refused CLI run (in-process or a child), checked."""
    if isinstance(result, subprocess.CompletedProcess):
        rc, text = result.returncode, result.stdout + result.stderr
    else:
        no_traceback(result)
        rc, text = result.exit_code, result.output
    assert rc == code, text
    assert "Traceback" not in text
    for word in words:
        assert word in text, text
    return text


# -- item 1: parquet output into a shared --out ---------------------------------------------


def _guessed_temp_names(out: Path, victim: Path, vdir: Path) -> None:
    """The shards' old temp names, ``.tmp-<pid>-<split>-<n>.parquet``, in a planted ``data/``."""
    (out / "data").mkdir()
    for n in range(4):
        (out / "data" / f".tmp-{os.getpid()}-train-{n}.parquet").symlink_to(victim)


def _final_shard_name(out: Path, victim: Path, vdir: Path) -> None:
    (out / "data").mkdir()
    (out / "data" / "train-00000-of-00001.parquet").symlink_to(victim)


PLANTS: dict[str, Callable[[Path, Path, Path], None]] = {
    "data folder": lambda out, victim, vdir: (out / "data").symlink_to(vdir, True),
    "guessed shard temp names": _guessed_temp_names,
    "final shard name": _final_shard_name,
    "card": lambda out, victim, vdir: (out / "README.md").symlink_to(victim),
    "croissant": lambda out, victim, vdir: (out / "croissant.json").symlink_to(victim),
}


@pytest.fixture(scope="module")
def shared_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("shared")
    original = tiny_original(work / "original")
    _, diff = build(original, "identity", work)
    return original, diff


@pytest.mark.parametrize("command", ["generate", "diff apply"])
@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_parquet_output_never_writes_through_a_link_planted_mid_run(
    tmp_path: Path,
    plant: str,
    command: str,
    shared_case: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A co-user of the shared ``--out`` plants links once the run has written a sample."""
    original, diff = shared_case
    victim = tmp_path / "victim"
    victim.write_text("precious")
    vdir = tmp_path / "victim-dir"
    vdir.mkdir()
    out = tmp_path / "shared"
    real_write = SampleWriter.write
    planted: list[str] = []

    def write_then_plant(self: SampleWriter, rel: str, data: bytes, **kw: Any) -> None:
        real_write(self, rel, data, **kw)
        if not planted:
            PLANTS[plant](out, victim, vdir)
            planted.append(rel)

    monkeypatch.setattr(SampleWriter, "write", write_then_plant)
    outside = {k: v for k, v in tree(tmp_path).items() if not k.startswith("shared")}
    if command == "generate":
        result = run_cli(*generate_args(original, out, format="parquet"), pinned=True)
    else:
        result = run_cli(*diff_apply_args(original, diff, out, format="parquet"), pinned=True)
    monkeypatch.undo()
    assert planted
    if plant in ("data folder", "final shard name"):  # our folder or name is taken: refused
        refused(result, ExitCode.ENVIRONMENT, "data")
        assert not (out / "manifest.json").exists()
    else:
        assert no_traceback(result).exit_code == 0, result.output
        if plant == "guessed shard temp names":
            for link in (out / "data").glob(".tmp-*"):
                link.unlink()  # the co-user's links: verify would rightly list them
        assert run_cli("verify", out).exit_code == 0
        assert not any(p.is_symlink() for p in out.rglob("*"))
    assert victim.read_text() == "precious" and list(vdir.iterdir()) == []
    now = {k: v for k, v in tree(tmp_path).items() if not k.startswith("shared")}
    assert now == outside  # nothing was written outside --out


# -- item 2: a save_to_disk folder names nothing outside itself ---------------------------------


def _saved(tmp_path: Path) -> tuple[Path, Path]:
    """A DatasetDict folder (train, test) and, beside it, another dataset (the sibling)."""
    import datasets

    rows = class_records(4)
    folder = tmp_path / "dict"
    datasets.DatasetDict(
        {"train": make_dataset(rows[:2]), "test": make_dataset(rows[2:])}
    ).save_to_disk(str(folder))
    sibling = tmp_path / "sibling"
    make_dataset(class_records(8)).save_to_disk(str(sibling))
    return folder, sibling


def _set_splits(folder: Path, sibling: Path, splits: list[str]) -> None:
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": splits}))


def _set_data_file(folder: Path, sibling: Path, name: str) -> None:
    state = json.loads((folder / "train" / "state.json").read_text())
    state["_data_files"] = [{"filename": name}]
    (folder / "train" / "state.json").write_text(json.dumps(state))


def _link_split(folder: Path, sibling: Path) -> None:
    shutil.rmtree(folder / "train")
    (folder / "train").symlink_to(sibling, True)


OUTSIDE: dict[str, tuple[Callable[[Path, Path], None], str | None]] = {
    # (how the folder is made hostile, the --split the user passes)
    "split ../sibling": (lambda f, s: _set_splits(f, s, ["../sibling"]), None),
    "split as an absolute path": (lambda f, s: _set_splits(f, s, [str(s)]), None),
    "data file ../../sibling/...": (
        lambda f, s: _set_data_file(f, s, "../../sibling/data-00000-of-00001.arrow"),
        "train",
    ),
    "data file as an absolute path": (
        lambda f, s: _set_data_file(f, s, str(s / "data-00000-of-00001.arrow")),
        "train",
    ),
    "split folder linked outside": (_link_split, "train"),
}


@pytest.mark.parametrize("case", sorted(OUTSIDE))
def test_metadata_naming_a_path_outside_the_original_is_refused(tmp_path: Path, case: str) -> None:
    folder, sibling = _saved(tmp_path)
    make_hostile, split = OUTSIDE[case]
    make_hostile(folder, sibling)
    out = tmp_path / "out"
    result = run_cli(*generate_args(folder, out, split=split), pinned=True)
    text = refused(result, ExitCode.BAD_INPUT)
    assert "sibling" in text or "outside" in text
    assert not (out / "manifest.json").exists()


# -- item 3: never a hang --------------------------------------------------------------------


def _fifo_in_place_of(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def test_a_fifo_as_an_arrow_file_of_an_original_never_hangs(tmp_path: Path) -> None:
    original = tmp_path / "saved"
    make_dataset(class_records(4)).save_to_disk(str(original))
    _fifo_in_place_of(original / "data-00000-of-00001.arrow")
    result = cli_within(HANG, *generate_args(original, tmp_path / "out"))
    assert result is not None, "generate hung on a FIFO"
    refused(result, ExitCode.BAD_INPUT, "data-00000-of-00001.arrow", "not a regular file")


def test_a_fifo_as_a_parquet_shard_of_an_original_never_hangs(tmp_path: Path) -> None:
    original = tmp_path / "hub"
    shards = to_hub_parquet(make_dataset(class_records(4)), original, "train", shards=2)
    _fifo_in_place_of(shards[1])
    result = cli_within(HANG, *generate_args(original, tmp_path / "out"))
    assert result is not None, "generate hung on a FIFO"
    refused(result, ExitCode.BAD_INPUT, "data/train-00001-of-00002.parquet", "not a regular file")


def test_a_fifo_as_a_parquet_benchmarks_shard_never_hangs_verify(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    bench = tmp_path / "bench"
    assert run_cli(*generate_args(original, bench, format="parquet"), pinned=True).exit_code == 0
    (shard,) = (bench / "data").iterdir()
    _fifo_in_place_of(shard)
    result = cli_within(HANG, "verify", bench)
    assert result is not None, "verify hung on a FIFO"
    refused(result, ExitCode.BAD_INPUT, f"data/{shard.name}", "not a regular file")


# -- item 3: never a traceback ----------------------------------------------------------------

DEEP = b"[" * 5000 + b"]" * 5000
"""JSON nested 5,000 deep: Python's parser raises RecursionError on it."""


@pytest.mark.parametrize(
    "name", ["dataset_dict.json", "train/state.json", "train/dataset_info.json"]
)
def test_deep_json_in_a_saved_datasets_metadata_is_bad_input(tmp_path: Path, name: str) -> None:
    folder, _ = _saved(tmp_path)
    (folder / name).write_bytes(DEEP)
    result = run_cli(*generate_args(folder, tmp_path / "out", split="train"), pinned=True)
    refused(result, ExitCode.BAD_INPUT, name, "nested too deep")


def _with_deep_metadata(path: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"huggingface": DEEP}), path)


def test_deep_huggingface_metadata_in_an_originals_shard_is_bad_input(tmp_path: Path) -> None:
    original = tmp_path / "hub"
    (shard,) = to_hub_parquet(make_dataset(class_records(4)), original, "train")
    _with_deep_metadata(shard)
    result = run_cli(*generate_args(original, tmp_path / "out"), pinned=True)
    refused(result, ExitCode.BAD_INPUT, "data/train-00000-of-00001.parquet", "nested too deep")


def test_deep_huggingface_metadata_in_a_benchmarks_shard_is_bad_input(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    bench = tmp_path / "bench"
    assert run_cli(*generate_args(original, bench, format="parquet"), pinned=True).exit_code == 0
    (shard,) = (bench / "data").iterdir()
    _with_deep_metadata(shard)
    refused(run_cli("verify", bench), ExitCode.BAD_INPUT, f"data/{shard.name}", "nested too deep")


def test_a_deep_metadata_jsonl_beside_our_manifest_is_not_ours(tmp_path: Path) -> None:
    """``--overwrite`` reads ``metadata.jsonl`` to tell whether we wrote it."""
    original = tiny_original(tmp_path / "original")
    out = tmp_path / "out"
    assert run_cli(*generate_args(original, out), pinned=True).exit_code == 0
    (out / "metadata.jsonl").write_bytes(DEEP + b"\n")
    result = run_cli(*generate_args(original, out, overwrite=True), pinned=True)
    refused(result, ExitCode.ENVIRONMENT, "metadata.jsonl", "not part of its benchmark")
    assert (out / "metadata.jsonl").read_bytes() == DEEP + b"\n"


@pytest.mark.parametrize("format", ["parquet", "folder"])
def test_a_uint64_over_the_int64_range_is_refused_at_the_source(
    tmp_path: Path, format: str
) -> None:
    """The benchmark's int columns are int64; 2**64-1 broke the parquet writer (a traceback)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = make_dataset(class_records(4))
    features = datasets.Features({**ds.features, "big": datasets.Value("uint64")})
    table = ds.data.table.append_column("big", pa.array([1, 2, 2**64 - 1, 3], pa.uint64()))
    original = tmp_path / "hub"
    (original / "data").mkdir(parents=True)
    pq.write_table(
        table.replace_schema_metadata(features.arrow_schema.metadata),
        original / "data" / "train-00000-of-00001.parquet",
    )
    out = tmp_path / "out"
    result = run_cli(*generate_args(original, out, format=format), pinned=True)
    refused(result, ExitCode.BAD_INPUT, "row 2", "'big'", str(2**64 - 1), "--columns -big")
    result = run_cli(*generate_args(original, out, format=format, columns="-big"), pinned=True)
    assert no_traceback(result).exit_code == 0


# -- item 8: what a message tells; over-long names -------------------------------------------


def test_a_message_never_tells_the_size_of_a_file_reached_through_a_link(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    bench = tmp_path / "bench"
    assert run_cli(*generate_args(original, bench), pinned=True).exit_code == 0
    secret = tmp_path / "secret.bin"
    with open(secret, "wb") as f:
        f.truncate(3 << 30)  # sparse: over the manifest's 1 GiB limit, of a telling size
    (tmp_path / "manifest.json").symlink_to(secret)
    text = refused(run_cli("verify", bench, "--manifest", tmp_path / "manifest.json"),
                   ExitCode.BAD_INPUT, "over the")  # fmt: skip
    assert str(3 << 30) not in text
    text = refused(run_cli("verify", bench, "--manifest", secret), ExitCode.BAD_INPUT)
    assert str(3 << 30) in text  # named directly: the size is the user's own business


LONG = "x" * 300 + ".png"
"""A path component of 300 bytes: over every file system's 255."""


def test_an_over_long_name_in_an_hf_original_is_bad_input(tmp_path: Path) -> None:
    rows = class_records(3)
    rows[1]["path"] = f"cat/{LONG}"
    original = tmp_path / "hub"
    to_hub_parquet(make_dataset(rows), original, "train")
    result = run_cli(*generate_args(original, tmp_path / "out"), pinned=True)
    refused(result, ExitCode.BAD_INPUT, "longer than the file system allows")


def test_an_over_long_name_in_a_tar_original_is_bad_input(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    archive = tmp_path / "original.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(original / "a" / "one.png", arcname=f"a/{LONG}")
        tar.add(original / "b" / "three.png", arcname="b/three.png")
    result = run_cli(*generate_args(archive, tmp_path / "out"), pinned=True)
    refused(result, ExitCode.BAD_INPUT, "longer than the file system allows")


def test_an_over_long_out_is_bad_input(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    result = run_cli(*generate_args(original, tmp_path / LONG), pinned=True)
    refused(result, ExitCode.BAD_INPUT, "longer than the file system allows")
