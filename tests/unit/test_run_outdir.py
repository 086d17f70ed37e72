"""The benchmark folder on disk: preparing --out, the lock, --overwrite, safe writes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import make_image
from tests.diff_cases import pinned
from toolchain.errors import ExitCode, InputError, OutputError
from toolchain.model.columns import ColumnSpec
from toolchain.model.layout import STATE_DIR
from toolchain.model.manifest import load_manifest
from toolchain.run.generate import generate_benchmark
from toolchain.run.outdir import (
    SampleWriter,
    benchmark_format,
    open_out,
    read_output,
    unexpected_files,
)

HEADER = {"kind": "test"}


def test_a_second_run_is_told_which_process_is_writing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from toolchain.run.outdir import open_out\n"
            f"with open_out({str(out)!r}, header={{'kind': 'test'}}):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(OutputError, match=rf"another run \(pid {holder.pid}\) is writing"),
            open_out(out, header=HEADER),
        ):
            pass
    finally:
        holder.kill()
        holder.communicate()
    # The lock dies with its process (kill -9 included): the folder is usable again.
    with open_out(out, header=HEADER) as outdir:
        assert outdir.root == out.resolve()


def test_out_overlapping_the_original_is_refused_before_any_work(tmp_path: Path) -> None:
    original = tmp_path / "orig"
    make_image(original / "a.png")
    for out in (original, original / "bench", tmp_path):
        with pytest.raises(OutputError, match="overlap"):
            generate_benchmark(original, "identity", out, overwrite=True)
    assert sorted(p.name for p in original.iterdir()) == ["a.png"]


def test_overwrite_deletes_only_what_the_manifest_names(tmp_path: Path) -> None:
    original = tmp_path / "orig"
    make_image(original / "a.png")
    make_image(original / "sub" / "b.png", seed=1)
    out = tmp_path / "out"
    generate_benchmark(original, "identity", out)
    (out / "notes.txt").write_text("mine")
    (out / "src").mkdir()
    (out / "src" / "model.py").write_text("mine too")
    with pytest.raises(OutputError, match=r"'notes.txt', 'src/model.py'") as e:
        generate_benchmark(original, "identity", out, overwrite=True)
    assert "deletes only what a benchmark-regen manifest" in e.value.message
    assert (out / "manifest.json").is_file() and (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    (out / "src" / "model.py").unlink()
    (out / "src").rmdir()
    generate_benchmark(original, "identity", out, overwrite=True)
    assert (out / "manifest.json").is_file()


def test_overwrite_refuses_a_folder_whose_manifest_is_not_ours(tmp_path: Path) -> None:
    """The Hugging Face imagefolder layout (metadata.jsonl, a foreign manifest.json) survives."""
    hf = tmp_path / "hfds"
    make_image(hf / "train" / "x.png")
    (hf / "metadata.jsonl").write_text('{"file_name": "train/x.png"}\n')
    (hf / "manifest.json").write_text('{"name": "something else"}\n')
    original = tmp_path / "orig"
    make_image(original / "a.png")
    with pytest.raises(OutputError, match="not a benchmark-regen manifest"):
        generate_benchmark(original, "identity", hf, overwrite=True)
    (hf / "manifest.json").unlink()
    with pytest.raises(OutputError, match="does not hold a benchmark made by benchmark-regen"):
        generate_benchmark(original, "identity", hf, overwrite=True)
    assert (hf / "train" / "x.png").is_file() and (hf / "metadata.jsonl").is_file()


def test_writes_never_follow_a_symlink_in_out(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "class_a").symlink_to(elsewhere, target_is_directory=True)
    (out / "x.png").symlink_to(victim)
    writer = SampleWriter(root=out)
    with pytest.raises(OutputError, match="symlink or a file, not a folder"):
        writer.write("class_a/y.png", b"png")
    assert list(elsewhere.iterdir()) == []
    writer.write("x.png", b"png")  # the link is replaced, its target untouched
    assert victim.read_text() == "precious" and not (out / "x.png").is_symlink()
    # Temp names are random and created exclusively: a planted one is never opened.
    for pid in range(os.getpid() - 2, os.getpid() + 3):
        (out / f".tmp-{pid}-z.png").symlink_to(victim)
    writer.write("z.png", b"png")
    assert victim.read_text() == "precious"


def test_unexpected_files_names_links_fifos_and_leftovers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"x")
    (out / "extra.png").write_bytes(b"x")
    (out / "link.png").symlink_to(out / "a.png")
    os.mkfifo(out / "fifo.png")
    (out / ".tmp-0123-a.png").write_bytes(b"x")
    (out / STATE_DIR).mkdir()
    (out / STATE_DIR / "journal-all.jsonl").write_text("{}\n")
    found = dict(unexpected_files(out, ["a.png"]))
    assert found == {
        ".benchmark-regen/journal-all.jsonl": "state of a run in progress or interrupted",
        ".tmp-0123-a.png": "left over by an interrupted write",
        "extra.png": "not in the manifest",
        "fifo.png": "not a regular file (a FIFO, socket or device)",
        "link.png": "a symlink (benchmark-regen never writes one)",
    }


def _outcome(fn: Callable[[], object], timeout: float = 5) -> BaseException | None:
    got: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
            got.append(None)
        except BaseException as e:
            got.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked on a FIFO"
    return got[0]


def test_generate_refuses_a_fifo_at_its_lock_without_hanging(tmp_path: Path) -> None:
    make_image(tmp_path / "orig/a.png")
    (tmp_path / "out/.benchmark-regen").mkdir(parents=True)
    os.mkfifo(tmp_path / "out/.benchmark-regen/lock-all")

    def run() -> None:
        with pinned():
            generate_benchmark(tmp_path / "orig", "identity", tmp_path / "out")

    assert isinstance(_outcome(run), OutputError)


def test_an_over_long_name_is_bad_input_not_a_failing_disk(tmp_path: Path) -> None:
    """A name comes from the original or a manifest: ENAMETOOLONG is exit 3, not 4."""
    writer = SampleWriter(root=tmp_path)
    for rel in ("x" * 300 + ".png", "a/" + "é" * 150 + "/b.png"):
        with pytest.raises(InputError, match="longer than the file system allows") as e:
            writer.write(rel, b"png", sample="s")
        assert e.value.exit_code == ExitCode.BAD_INPUT and e.value.sample == "s"
    with (
        pytest.raises(InputError, match="longer than the file system allows"),
        open_out(tmp_path / ("y" * 300), header=HEADER),
    ):
        pass


def test_a_value_parquet_cannot_hold_is_bad_input_at_commit(tmp_path: Path) -> None:
    """``diff apply --format parquet`` of a manifest carrying 2**64-1 in an int column."""
    import dataclasses

    make_image(tmp_path / "orig/a/x.png", seed=1)
    make_image(tmp_path / "orig/b/y.png", seed=2)
    with pinned():
        generate_benchmark(tmp_path / "orig", "identity", tmp_path / "bench")
    m = load_manifest(tmp_path / "bench" / "manifest.json")
    big = [dataclasses.replace(e, columns={"n": 2**64 - 1}) for e in m.entries]
    manifest = dataclasses.replace(
        m, entries=tuple(big), columns=(ColumnSpec(name="n", type="int"),)
    )
    out = tmp_path / "out"
    with open_out(out, header=HEADER) as outdir:
        for e in m.entries:
            outdir.writer.write(e.path, read_output(tmp_path / "bench", e.path))
        with pytest.raises(InputError, match=r"as parquet: .* is not an int64 for 'n'"):
            outdir.commit(manifest, format="parquet")
    assert not (out / "manifest.json").exists() and not list(out.glob("data/*.parquet"))


def test_only_parquet_shards_make_a_parquet_benchmark(tmp_path: Path) -> None:
    assert benchmark_format(tmp_path) == "folder"
    (tmp_path / "data").mkdir()
    assert benchmark_format(tmp_path) == "folder"  # an empty data/ is no parquet benchmark
    (tmp_path / "data" / "train-00000-of-00001.parquet").write_bytes(b"")
    assert benchmark_format(tmp_path) == "parquet"


def test_a_linked_data_folder_is_not_a_parquet_benchmark(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "data").symlink_to(tmp_path / "elsewhere", True)
    assert benchmark_format(tmp_path / "out") == "folder"
    (tmp_path / "out" / "data").unlink()
    (tmp_path / "out" / "data").mkdir()
    (tmp_path / "out" / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    assert benchmark_format(tmp_path / "out") == "parquet"


def test_empty_folders_are_removed_never_through_a_link(tmp_path: Path) -> None:
    """Packing into parquet removes the emptied class folders, and nothing a link reaches."""
    from toolchain.run.outdir import _remove_empty_folders

    (tmp_path / "out/a/b").mkdir(parents=True)
    (tmp_path / "elsewhere/empty").mkdir(parents=True)
    (tmp_path / "out/link").symlink_to(tmp_path / "elsewhere", True)
    _remove_empty_folders(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["link"]
    assert (tmp_path / "elsewhere/empty").is_dir()
