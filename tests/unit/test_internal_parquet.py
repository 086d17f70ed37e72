"""_internal/parquet.py: the one parquet opener, and what it refuses before pyarrow reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import no_hang
from toolchain._internal.parquet import open_parquet
from toolchain.errors import DiffFormatError, Error, InputError, SourceError


@pytest.fixture
def good(tmp_path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "good.parquet"
    pq.write_table(pa.table({"n": list(range(10)), "s": ["x"] * 10}), path, row_group_size=4)
    return path


def _refused(path: Path, error: type[Error] = InputError, **kw: str) -> Error:
    with no_hang(10), pytest.raises(error) as e:
        open_parquet(path, error=error, what=path.name, **kw)
    assert e.value.hint
    return e.value


def test_a_good_file_opens_and_closes(good: Path) -> None:
    pf = open_parquet(good, error=InputError, what="good.parquet")
    try:
        assert pf.metadata.num_row_groups == 3
        assert pf.read_row_group(2, use_threads=False).column("n").to_pylist() == [8, 9]
    finally:
        pf.close()
    assert pf.closed


def test_a_symlink_to_a_good_file_is_followed(good: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.parquet"  # the Hub cache links snapshots/ into blobs/
    link.symlink_to(good)
    pf = open_parquet(str(link), error=SourceError, what="link.parquet", buffer_size=1 << 20)
    try:
        assert pf.read().num_rows == 10
    finally:
        pf.close()


def test_a_column_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """Found by fuzz/atheris_parquet_source.py: pyarrow's UnicodeDecodeError is a refusal."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"zq": [1, 2]}), tmp_path / "ok.parquet", store_schema=False)
    data = (tmp_path / "ok.parquet").read_bytes().replace(b"zq", b"\xffq")
    (tmp_path / "bad.parquet").write_bytes(data)
    err = _refused(tmp_path / "bad.parquet")
    assert "bad.parquet: not a readable parquet file" in err.message


def test_pyarrow_opens_the_file_that_was_checked(
    good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO swapped in at the path after the check is never opened: pyarrow opens the
    checked file through /proc/self/fd."""
    import toolchain._internal.parquet as mod

    path = tmp_path / "x.parquet"
    path.write_bytes(good.read_bytes())
    real = mod._fd_path

    def swap(fd: int, p: str | os.PathLike[str]) -> str:
        path.unlink()
        os.mkfifo(path)
        return real(fd, p)

    monkeypatch.setattr(mod, "_fd_path", swap)
    with no_hang(10):
        pf = open_parquet(path, error=InputError, what="x.parquet")
    try:
        assert pf.read().num_rows == 10
    finally:
        pf.close()


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.parquet")
    err = _refused(tmp_path / "fifo.parquet")
    assert err.message == (
        "fifo.parquet: not a readable parquet file "
        "(not a regular file, but a FIFO, device or folder)"
    )


def test_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.parquet").mkdir()
    assert "not a regular file" in _refused(tmp_path / "dir.parquet").message


def test_a_missing_file_says_what_the_system_said(tmp_path: Path) -> None:
    err = _refused(tmp_path / "gone.parquet", SourceError, hint="download it again")
    assert err.message == "gone.parquet: not a readable parquet file (No such file or directory)"
    assert err.hint == "download it again"


@pytest.mark.parametrize("cut", [1, 50, "all but 11"])
def test_a_truncated_file_is_refused(good: Path, cut: int | str) -> None:
    data = good.read_bytes()
    good.write_bytes(data[:11] if cut == "all but 11" else data[: -int(cut)])
    err = _refused(good)
    assert "not a readable parquet file (corrupt or truncated footer: the file does not end" in (
        err.message
    )


def test_a_corrupt_footer_is_refused_with_what_pyarrow_said(good: Path) -> None:
    data = bytearray(good.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    data[-8 - footer : -8] = b"\xff" * footer  # the magic is intact, the metadata is not
    good.write_bytes(bytes(data))
    err = _refused(good, DiffFormatError)
    assert err.message.startswith(
        "diff container: good.parquet: not a readable parquet file (corrupt or truncated footer: "
    )
    assert "does not end" not in err.message and err.message.endswith(")")  # pyarrow's words


def test_not_parquet_at_all(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"PAR1" + b"\0" * 100)
    assert "does not end with the parquet magic" in _refused(tmp_path / "x.parquet").message
    (tmp_path / "y.parquet").write_bytes(b"\0" * 100 + b"PAR1")
    assert "corrupt or truncated footer" in _refused(tmp_path / "y.parquet").message


def test_importing_the_opener_imports_no_pyarrow() -> None:
    code = "import sys, toolchain._internal.parquet; sys.exit('pyarrow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
