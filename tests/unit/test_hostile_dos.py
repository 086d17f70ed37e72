"""Denial of service and races on the reading side (issue #15, items 6 and 7).

* a FIFO at a sample path makes nothing hang: ``generate``, ``diff check`` and ``verify``
  name it and go on or stop, within a timeout;
* a benchmark sample symlinked to ``/dev/zero`` is refused by ``verify`` with bounded
  memory (and a manifest that *is* ``/dev/zero`` too);
* a ``.tar.gz`` stored in reverse order costs about what a forward one costs (one
  streaming pass, not a re-decompression per member), counted in bytes read;
* an original swapped for a symlink to an outside file while runs read it, again and
  again: the outside file is never read, and every refusal names the sample.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.conftest import make_image
from tests.diff_cases import build, pinned, tiny_original
from tests.hostile import bytes_read, no_hang, peak_allocation
from toolchain.audit.verify import Problem, verify_benchmark
from toolchain.cli import cli
from toolchain.codec.decode import decode
from toolchain.diff import check_diff, get_benchmark
from toolchain.diff.locate import Found
from toolchain.errors import ExitCode, ManifestError, SourceError
from toolchain.run.generate import generate_benchmark
from toolchain.source import open_source

HANG = 30
"""Seconds after which a call counts as hung (each of these takes well under one)."""


# -- FIFOs -----------------------------------------------------------------------------------


def test_a_fifo_as_an_original_sample_never_hangs_generate(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    os.mkfifo(original / "a" / "pipe.png")
    with no_hang(HANG), pinned(), pytest.raises(SourceError) as e:
        generate_benchmark(original, "identity", tmp_path / "out")
    assert e.value.sample == "a/pipe.png" and "not a regular file" in e.value.message
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_fifo_at_a_sample_path_never_hangs_diff_check(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    _, diff = build(original, "identity", tmp_path / "work")
    (original / "a" / "one.png").unlink()
    os.mkfifo(original / "a" / "one.png")
    with no_hang(HANG):
        try:
            report = check_diff(original, diff)
        except SourceError as e:
            assert e.sample == "a/one.png" and "not a regular file" in e.message
        else:
            found = {x.id: x.found for x in report.entries}
            assert found["a/one.png"] in (Found.MISSING, Found.DIFFERENT) and not report.ok
    with no_hang(HANG), pinned():
        r = CliRunner().invoke(cli, ["diff", "check", "--original", str(original),
                                     "--diff", str(diff)])  # fmt: skip
    assert r.exit_code in (ExitCode.CHECK_FAILED, ExitCode.BAD_INPUT), r.output
    assert "a/one.png" in r.output and "Traceback" not in r.output


def test_a_fifo_in_the_benchmark_never_hangs_verify(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    bench, _ = build(original, "identity", tmp_path / "work")
    (bench / "a" / "one.png").unlink()
    os.mkfifo(bench / "a" / "one.png")
    os.mkfifo(bench / "extra.png")
    with no_hang(HANG):
        report = verify_benchmark(bench)
    assert not report.ok
    problems = {(p.path, p.problem): p.detail for p in report.problems}
    assert "not a regular file" in problems[("a/one.png", Problem.MISSING)]
    assert "not a regular file" in problems[("extra.png", Problem.EXTRA)]
    with no_hang(HANG):
        r = CliRunner().invoke(cli, ["verify", str(bench)])
    assert r.exit_code == ExitCode.CHECK_FAILED and "Traceback" not in r.output


# -- /dev/zero ------------------------------------------------------------------------------


def test_verify_refuses_a_sample_linked_to_dev_zero_with_bounded_memory(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    bench, _ = build(original, "identity", tmp_path / "work")
    (bench / "a" / "one.png").unlink()
    (bench / "a" / "one.png").symlink_to("/dev/zero")
    holder: list[object] = []

    def run() -> None:
        with no_hang(HANG):
            holder.append(verify_benchmark(bench))

    peak = peak_allocation(run)
    report = holder[0]
    assert not report.ok  # type: ignore[attr-defined]
    problems = {(p.path, p.problem): p.detail for p in report.problems}  # type: ignore[attr-defined]
    assert "symlink" in problems[("a/one.png", Problem.MISSING)]
    assert peak < 16 << 20, f"{peak >> 20} MiB allocated"
    # The manifest itself: a link to /dev/zero (followed, as the user named it) is no file.
    (bench / "manifest.json").unlink()
    (bench / "manifest.json").symlink_to("/dev/zero")
    with no_hang(HANG), pytest.raises(ManifestError, match="not a regular file"):
        verify_benchmark(bench)
    assert peak_allocation(lambda: verify_benchmark(bench)) < 16 << 20


# -- tar member order ------------------------------------------------------------------------


def _tar_gz(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _read_everything(path: Path) -> int:
    """What generate and apply do with an original: list it, stream every sample, then
    read each one by id (the locate-by-content path); the bytes read doing it."""

    def everything() -> None:
        with open_source(path) as source:
            ids = source.listing().ids
            assert sum(len(s.data) for s in source.iter_samples(ids)) > 0
            for sid in ids:
                source.read(sid)

    return bytes_read(everything)


def test_a_reverse_ordered_tar_gz_costs_what_a_forward_one_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    members = []
    for i in range(300):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buf, "PNG")
        members.append((f"c{i % 7}/{i:04d}.png", buf.getvalue()))
    forward = _tar_gz(tmp_path / "forward.tar.gz", sorted(members))
    reverse = _tar_gz(tmp_path / "reverse.tar.gz", sorted(members, reverse=True))
    with no_hang(120):
        read_forward = _read_everything(forward)
        read_reverse = _read_everything(reverse)
    # A few passes over the archive (the listing, the stream, the copy read by id); a
    # re-decompression per member would read it hundreds of times.
    assert read_forward < 8 * forward.stat().st_size, f"{read_forward} bytes read"
    assert read_reverse < 1.5 * read_forward, f"{read_forward} forward, {read_reverse} reverse"


# -- item 7: a file swapped for a symlink while runs read it ---------------------------------


TRIES = 100
"""At most this many runs; at least 20, until one met the link (about half of them do)."""


@pytest.fixture
def swapping(tmp_path: Path) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
    """An original whose a/one.png flips between itself and a link to an outside image."""
    original = tiny_original(tmp_path / "original")
    secret = tmp_path / "secret.png"
    make_image(secret, seed=666)  # same size and mode as a/one.png, other pixels
    real = tmp_path / "real.png"
    shutil.copy(original / "a/one.png", real)
    target = original / "a/one.png"
    stop = threading.Event()
    flips = [0]

    def flipper() -> None:
        while not stop.is_set():
            link = target.with_name(f".link-{flips[0]}")
            link.symlink_to(secret)
            os.replace(link, target)
            copy = target.with_name(f".copy-{flips[0]}")
            os.link(real, copy)
            os.replace(copy, target)
            flips[0] += 1

    thread = threading.Thread(target=flipper, daemon=True)
    thread.start()
    try:
        yield original, decode(real.read_bytes()), decode(secret.read_bytes())
        assert thread.is_alive()  # it flipped all along
    finally:
        stop.set()
        thread.join(10)
    assert flips[0] > 10


def _outcome(run: object, out: Path, real: np.ndarray, secret: np.ndarray) -> str:
    try:
        with no_hang(HANG), pinned():
            run()  # type: ignore[operator]
    except SourceError as e:
        # Named as the sample, or in the message (a link found when the original is listed).
        assert e.sample == "a/one.png" or "'a/one.png'" in e.message, e.diagnostics()
        assert "Traceback" not in e.diagnostics()
        return "refused"
    got = decode((out / "a/one.png").read_bytes())
    assert not np.array_equal(got, secret), "the outside file was read"
    assert np.array_equal(got, real)
    return "made"


def test_generate_never_reads_a_file_swapped_for_a_symlink(
    swapping: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    original, real, secret = swapping
    seen: list[str] = []
    for i in range(TRIES):
        out = tmp_path / f"out-{i}"

        def run(out: Path = out) -> None:
            generate_benchmark(original, "identity", out)

        seen.append(_outcome(run, out, real, secret))
        if i >= 20 and "refused" in seen:
            break
    assert "refused" in seen, f"the race was not exercised in {len(seen)} runs"


def test_apply_never_reads_a_file_swapped_for_a_symlink(
    swapping: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    original, real, secret = swapping
    # The diff of a benchmark made from the real original (taken before flips matter).
    clean = tiny_original(tmp_path / "clean")
    _, diff = build(clean, "identity", tmp_path / "work")
    seen: list[str] = []
    for i in range(TRIES):
        out = tmp_path / f"out-{i}"

        def run(out: Path = out) -> None:
            result = get_benchmark(original, diff, out)
            if not result.ok:  # the link was there when the original was looked for
                raise SourceError("not opened", sample="a/one.png")

        seen.append(_outcome(run, out, real, secret))
        if i >= 20 and "refused" in seen:
            break
    assert "refused" in seen, f"the race was not exercised in {len(seen)} runs"
