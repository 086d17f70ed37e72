"""Shared glue of the atheris harnesses (run by ``nox -s fuzz``, i.e. ``fuzz/run.py``;
not part of the package).

Each harness feeds bytes to one parser we own. A typed
:class:`toolchain.errors.Error` with a message is the one accepted way to refuse an
input (:func:`refused`); any other exception propagates, and atheris reports it as a
crash with the input. Seeds are real files made by the tool itself (:func:`tiny_run`),
so that they never go stale when a format changes.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import atheris

from toolchain.errors import Error

RUNS_DEFAULT = 200_000


@contextlib.contextmanager
def refused(*kinds: type[Error]) -> Iterator[None]:
    """Accept a refusal of one of ``kinds`` (default: any :class:`Error`) that says why;
    anything else is a finding."""
    accepted: tuple[type[Error], ...] = kinds or (Error,)
    try:
        yield
    except accepted as e:
        if not e.message.strip():
            raise AssertionError(f"{type(e).__name__} without a message") from e


def pyarrow_aborts_on(path: Path) -> bool:
    """Does reading the column-chunk metadata of parquet file ``path`` abort the process?

    pyarrow 26's ``RowGroupMetaData.column`` and ``ColumnChunkMetaData.compression`` do
    not translate the C++ exception their checks throw (size statistics of the wrong
    length, an unknown codec): the
    process aborts, and under atheris the exception unwinds through our frames to the
    fuzzer. That is the one known case docs/security.md lists as not defended; it is
    probed in a forked child, and such an input is skipped rather than counted as a
    finding of ours. The child exits 0 (read) or 3 (refused by a Python exception); an
    abort, or the fuzzer's report of the exception that unwound past us, is any other end.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            signal.signal(signal.SIGABRT, signal.SIG_DFL)
            import pyarrow.parquet as pq

            md = pq.ParquetFile(str(path), memory_map=False).metadata
            for g in range(md.num_row_groups):
                rg = md.row_group(g)
                for c in range(rg.num_columns):
                    rg.column(c).to_dict()  # every property: .compression aborts too
        except BaseException:
            code = 3  # refused the ordinary way: the harness sees it
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return not (os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 3))


def tiny_run(work: Path, *, fmt: str = "folder", diff: str | None = None) -> tuple[Path, Path]:
    """A small original (three PNGs in two class folders: a label column) and the
    ``gaussian-noise`` benchmark of it in ``fmt``, made in this process; with ``diff``
    (``bdiff`` or ``parquet``), also its diff at ``work/diff``. Returns (original, benchmark)."""
    import numpy as np
    from PIL import Image

    from toolchain.diff.create import create_diff
    from toolchain.run.generate import generate_benchmark

    rng = np.random.default_rng(0)
    original = work / "original"
    for i, name in enumerate(("cat/0.png", "cat/1.png", "dog/2.png")):
        (original / name).parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (6 + i, 5, 3), dtype=np.uint8)).save(buf, "PNG")
        (original / name).write_bytes(buf.getvalue())
    bench = work / "bench"
    generate_benchmark(original, "gaussian-noise", bench, format=fmt)
    if diff is not None:
        create_diff(original, bench, work / "diff", format=diff)
    return original, bench


def pack(*parts: bytes) -> bytes:
    """Several files as one input: each as a 4-byte big-endian length and its bytes."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def unpack(data: bytes, count: int) -> list[bytes]:
    """The inverse of :func:`pack` for any bytes: ``count`` parts, missing ones empty,
    a length past the end cut short; what is left over goes to the last part."""
    parts, at = [], 0
    for _ in range(count):
        n = int.from_bytes(data[at : at + 4], "big")
        parts.append(data[at + 4 : at + 4 + n])
        at += 4 + n
    parts[-1] += data[at:]
    return parts


def main(test_one_input: Callable[[bytes], None], *, seeds: list[bytes] | None = None) -> None:
    """Fuzz ``test_one_input`` with libFuzzer's arguments from the command line
    (``-runs=N`` by default, or ``-max_total_time=S``), starting from ``seeds``."""
    argv = list(sys.argv)
    if not any(a.startswith(("-runs=", "-max_total_time=")) for a in argv[1:]):
        argv.append(f"-runs={RUNS_DEFAULT}")
    if seeds:
        # Run the seeds once first, so a broken seed fails loudly rather than silently,
        # and start from them as the corpus unless one is given.
        for s in seeds:
            test_one_input(s)
        if not any(not a.startswith("-") for a in argv[1:]):
            corpus = Path(tempfile.mkdtemp(prefix="fuzz-corpus-"))
            for i, s in enumerate(seeds):
                (corpus / f"seed-{i}").write_bytes(s)
            argv.append(str(corpus))
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
