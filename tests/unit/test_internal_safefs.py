"""toolchain._internal.safefs: no link followed, no FIFO waited on, no size unbounded, every
write atomic, every temp file tagged, every entry walked by its kind."""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hostile import no_hang
from toolchain._internal import safefs
from toolchain._internal.safefs import UnsafePath


def _within(seconds: float, fn: Callable[[], object]) -> object:
    """``fn()``'s result or exception; fails if it blocks (on a FIFO, say)."""
    got: list[object] = []

    def run() -> None:
        try:
            got.append(fn())
        except BaseException as e:
            got.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "blocked"
    return got[0]


# -- reads -------------------------------------------------------------------------------


def test_read_file_reads_a_regular_file_below_the_root(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/b/c.png").write_bytes(b"x" * 3000)
    assert safefs.read_file(tmp_path, "a/b/c.png", limit=3000) == b"x" * 3000
    with pytest.raises(FileNotFoundError):
        safefs.read_file(tmp_path, "a/b/missing.png", limit=10)


def test_a_file_is_read_in_reads_of_its_size_and_whole_if_it_grew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small, large = b"s" * 3000, bytes(range(256)) * 5000  # one read; more than 1 MiB
    (tmp_path / "small").write_bytes(small)
    (tmp_path / "large").write_bytes(large)
    asked: list[int] = []
    read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: (asked.append(n), read(fd, n))[1])
    assert safefs.read_file(tmp_path, "small", limit=1 << 30) == small
    assert asked == [3001, 1]  # its size and one more byte: no 1 MiB buffer for 3 kB
    assert safefs.read_file(tmp_path, "large", limit=1 << 30) == large
    # Grown since its size was taken: read on to the end, still bounded by the limit.
    taken = safefs._check_regular
    monkeypatch.setattr(safefs, "_check_regular", lambda fd, limit, **kw: taken(fd, 1 << 30) - 2000)
    assert safefs.read_file(tmp_path, "small", limit=1 << 30) == small
    with pytest.raises(UnsafePath, match="grew over the 2500-byte limit while read"):
        safefs.read_file(tmp_path, "small", limit=2500)


def test_read_file_never_follows_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real/f.png").write_bytes(b"secret")
    (tmp_path / "leaf.png").symlink_to(tmp_path / "real/f.png")
    (tmp_path / "dirlink").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePath, match="is a symlink: not followed"):
        safefs.read_file(tmp_path, "leaf.png", limit=100)
    with pytest.raises(UnsafePath, match="'dirlink' is a symlink or a file, not a folder"):
        safefs.read_file(tmp_path, "dirlink/f.png", limit=100)


@pytest.mark.parametrize("rel", ["", "../x", "a/../b", "a//b", "./a", "/etc/passwd", "a/"])
def test_only_plain_relative_paths(tmp_path: Path, rel: str) -> None:
    with pytest.raises(UnsafePath, match="not a plain relative path") as e:
        safefs.read_file(tmp_path, rel, limit=10)
    assert e.value.errno == errno.EINVAL


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.png")
    err = _within(5, lambda: safefs.read_file(tmp_path, "fifo.png", limit=10))
    assert isinstance(err, UnsafePath) and "not a regular file" in str(err)
    err = _within(5, lambda: safefs.read_path(tmp_path / "fifo.png", limit=10))
    assert isinstance(err, UnsafePath) and "not a regular file" in str(err)


def test_a_folder_or_a_socket_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(UnsafePath, match="not a regular file"):
        safefs.read_path(tmp_path / "d", limit=10)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "s"))
        with pytest.raises(OSError):  # a socket cannot even be opened
            safefs.read_file(tmp_path, "s", limit=10)


def test_size_limits_are_checked_before_reading(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"y" * 1001)
    with pytest.raises(UnsafePath, match="1001 bytes, over the 1000-byte limit") as e:
        safefs.read_file(tmp_path, "big", limit=1000)
    assert e.value.errno == errno.EFBIG
    with pytest.raises(UnsafePath, match="over the 1000-byte limit"):
        safefs.read_path(tmp_path / "big", limit=1000)
    assert safefs.read_path(tmp_path / "big", limit=1001) == b"y" * 1001


def test_open_path_streams_a_regular_file_within_its_limit(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"z" * 3000)
    with safefs.open_path(tmp_path / "f", limit=3000) as f:
        assert f.read(10) == b"z" * 10 and f.read() == b"z" * 2990
    with pytest.raises(UnsafePath, match="over the 2999-byte limit"):
        safefs.open_path(tmp_path / "f", limit=2999)
    os.mkfifo(tmp_path / "fifo")
    assert isinstance(_within(5, lambda: safefs.open_path(tmp_path / "fifo", limit=9)), UnsafePath)


def test_open_path_refuses_a_file_that_grows_past_its_limit(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"a" * 100)
    with safefs.open_path(tmp_path / "f", limit=150) as f:
        with open(tmp_path / "f", "ab") as grow:
            grow.write(b"b" * 100)
        with pytest.raises(UnsafePath, match="grew over its size limit"):
            f.read()


def test_open_file_streams_a_regular_file_below_the_root_never_through_a_link(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/f").write_bytes(b"z" * 3000)
    with safefs.open_file(tmp_path, "a/f", limit=3000) as f:
        assert f.read(10) == b"z" * 10 and f.read() == b"z" * 2990
    with pytest.raises(UnsafePath, match="over the 2999-byte limit"):
        safefs.open_file(tmp_path, "a/f", limit=2999)
    (tmp_path / "leaf").symlink_to(tmp_path / "a/f")
    with pytest.raises(UnsafePath, match="is a symlink: not followed"):
        safefs.open_file(tmp_path, "leaf", limit=3000)
    (tmp_path / "dirlink").symlink_to(tmp_path / "a")
    with pytest.raises(UnsafePath, match="'dirlink' is a symlink or a file, not a folder"):
        safefs.open_file(tmp_path, "dirlink/f", limit=3000)
    os.mkfifo(tmp_path / "fifo")
    err = _within(5, lambda: safefs.open_file(tmp_path, "fifo", limit=9))
    assert isinstance(err, UnsafePath) and "not a regular file" in str(err)


def test_read_path_follows_the_link_the_user_named(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"key")
    (tmp_path / "link").symlink_to(tmp_path / "f")
    assert safefs.read_path(tmp_path / "link", limit=10) == b"key"


# -- writes ------------------------------------------------------------------------------


def test_write_file_creates_folders_and_replaces_atomically(tmp_path: Path) -> None:
    safefs.write_file(tmp_path, "a/b/c.png", b"one")
    safefs.write_file(tmp_path, "a/b/c.png", b"two", durable=True)
    assert (tmp_path / "a/b/c.png").read_bytes() == b"two"
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["c.png"]


def test_write_file_takes_the_bytes_in_pieces(tmp_path: Path) -> None:
    safefs.write_file(tmp_path, "m.json", (bytes([i]) * 1000 for i in range(50)), durable=True)
    assert (tmp_path / "m.json").read_bytes() == b"".join(bytes([i]) * 1000 for i in range(50))


def test_a_failing_piece_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    safefs.write_file(tmp_path, "m.json", b"old")

    def pieces() -> Iterator[bytes]:
        yield b"new"
        raise RuntimeError("the writer failed half way")

    with pytest.raises(RuntimeError):
        safefs.write_file(tmp_path, "m.json", pieces())
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    assert (tmp_path / "m.json").read_bytes() == b"old"


def test_before_rename_runs_once_the_data_is_written_and_before_it_shows(tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def hook() -> None:
        names = sorted(p.name for p in tmp_path.iterdir())
        seen.append(names)
        assert "m.json" not in names and any(n.endswith("-m.json") for n in names)

    safefs.write_file(tmp_path, "m.json", [b"a", b"b"], before_rename=hook)
    assert len(seen) == 1 and (tmp_path / "m.json").read_bytes() == b"ab"

    def fails() -> None:
        raise OSError(errno.ENOSPC, "no space for the companions")

    with pytest.raises(OSError, match="no space"):
        safefs.write_file(tmp_path, "m.json", b"new", before_rename=fails)
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    assert (tmp_path / "m.json").read_bytes() == b"ab"


def test_temp_files_are_named_after_their_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert safefs.temp_prefix() == safefs.TMP_PREFIX == ".tmp-"
    assert safefs.temp_prefix("3-of-8") == ".tmp-3-of-8-"
    renamed: list[str] = []
    real = os.replace

    def spy(src: str, dst: str, **kw: object) -> None:
        renamed.append(src)
        real(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(safefs.os, "replace", spy)
    safefs.write_file(tmp_path, "x.png", b"1", tag="3-of-8")
    safefs.write_file(tmp_path, "y" * 250 + ".png", b"2")
    first, second = renamed
    assert first.startswith(".tmp-3-of-8-") and first.endswith("-x.png")
    assert second.startswith(".tmp-") and len(second) == 255  # cut to a legal name


def test_a_link_at_the_target_is_replaced_and_its_target_untouched(tmp_path: Path) -> None:
    (tmp_path / "victim").write_bytes(b"precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/x.png").symlink_to(tmp_path / "victim")
    safefs.write_file(tmp_path / "out", "x.png", b"new")
    assert (tmp_path / "victim").read_bytes() == b"precious"
    assert not (tmp_path / "out/x.png").is_symlink()


def test_a_linked_folder_on_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out/sub").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePath, match="'sub' is a symlink or a file"):
        safefs.write_file(tmp_path / "out", "sub/x.png", b"data")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_fifo_or_folder_at_the_target_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "f.png")
    (tmp_path / "d.png").mkdir()
    for name in ("f.png", "d.png"):
        err = _within(5, lambda name=name: safefs.write_file(tmp_path, name, b"x"))
        assert isinstance(err, UnsafePath) and "exists and is not a file" in str(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "f.png"]


def test_a_failed_write_removes_its_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safefs.os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        safefs.write_file(tmp_path, "x.png", b"data")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_open_append_appends_and_refuses_links(tmp_path: Path) -> None:
    fd = safefs.open_append(tmp_path, "state/journal.jsonl")
    try:
        os.write(fd, b"one\n")
    finally:
        os.close(fd)
    fd = safefs.open_append(tmp_path, "state/journal.jsonl")
    try:
        os.write(fd, b"two\n")
    finally:
        os.close(fd)
    assert (tmp_path / "state/journal.jsonl").read_bytes() == b"one\ntwo\n"
    (tmp_path / "victim").write_bytes(b"")
    (tmp_path / "state/link").symlink_to(tmp_path / "victim")
    with pytest.raises(UnsafePath, match="is a symlink: not followed"):
        safefs.open_append(tmp_path, "state/link")


# -- removal, walking --------------------------------------------------------------------


def test_remove_file_removes_a_link_never_its_target(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"keep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert safefs.remove_file(tmp_path, "link") is True
    assert (tmp_path / "target").read_bytes() == b"keep"
    assert safefs.remove_file(tmp_path, "link") is False
    assert safefs.remove_file(tmp_path, "no/such/file") is False
    (tmp_path / "d").mkdir()
    with pytest.raises(UnsafePath, match="is a folder"):
        safefs.remove_file(tmp_path, "d")


def test_read_in_and_remove_in_work_in_the_open_folder_not_at_its_path(
    tmp_path: Path,
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"here")
    (tmp_path / "d" / "link").symlink_to(tmp_path / "d" / "f")
    fd = os.open(tmp_path / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        (tmp_path / "d").rename(tmp_path / "moved")  # the path now names nothing
        assert safefs.read_in(fd, "f", limit=10) == b"here"
        with pytest.raises(UnsafePath, match="symlink"):
            safefs.read_in(fd, "link", limit=10)
        with pytest.raises(UnsafePath, match="not a plain relative path"):
            safefs.read_in(fd, "../moved/f", limit=10)
        assert safefs.remove_in(fd, "link") is True and safefs.remove_in(fd, "link") is False
        assert (tmp_path / "moved" / "f").read_bytes() == b"here"
    finally:
        os.close(fd)


def test_read_path_and_mode_gives_the_bits_of_the_file_read(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(b"secret")
    (tmp_path / "key").chmod(0o640)
    assert safefs.read_path_and_mode(tmp_path / "key", limit=10) == (b"secret", 0o640)


def test_walk_lists_every_kind_sorted_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "b/c").mkdir(parents=True)
    (tmp_path / "b/c/f.png").write_bytes(b"")
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "linkdir").symlink_to(tmp_path / "b")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")
    assert list(safefs.walk(tmp_path)) == [
        ("a.png", "file"),
        ("b", "dir"),
        ("b/c", "dir"),
        ("b/c/f.png", "file"),
        ("dangling", "link"),
        ("fifo", "other"),
        ("linkdir", "link"),
    ]


def test_fsync_dir_is_a_no_op_where_a_folder_cannot_be_opened(tmp_path: Path) -> None:
    safefs.fsync_dir(tmp_path)
    safefs.fsync_dir(tmp_path / "missing")


def test_open_append_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    """A FIFO planted where the lock or journal goes is refused, never opened blocking."""
    import threading

    os.mkfifo(tmp_path / "journal.jsonl")
    got: list[BaseException | None] = []

    def run() -> None:
        try:
            safefs.open_append(tmp_path, "journal.jsonl")
            got.append(None)
        except BaseException as e:
            got.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "blocked on a FIFO"
    assert isinstance(got[0], safefs.UnsafePath)


# -- what a message tells ----------------------------------------------------------------


def test_the_size_of_a_file_reached_through_a_link_is_never_told(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"s" * 4321)
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    for read in (safefs.read_path, safefs.open_path):
        with pytest.raises(UnsafePath, match="over the 1000-byte limit") as e:
            read(tmp_path / "link", limit=1000)
        assert "4321" not in str(e.value) and e.value.errno == errno.EFBIG
        with pytest.raises(UnsafePath, match="is 4321 bytes, over"):  # named directly
            read(tmp_path / "secret", limit=1000)
    (tmp_path / "real").mkdir()
    (tmp_path / "real/f").write_bytes(b"s" * 4321)
    (tmp_path / "via").symlink_to(tmp_path / "real", True)  # a linked folder on the way
    with pytest.raises(UnsafePath) as e:
        safefs.read_path(tmp_path / "via/f", limit=1000)
    assert "4321" not in str(e.value)


def test_an_opened_path_has_its_descriptor(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    with safefs.open_path(tmp_path / "f", limit=3) as f:
        assert os.pread(f.fileno(), 3, 0) == b"abc"


# -- folders held open -------------------------------------------------------------------


def test_open_folder_walks_without_following_links_and_makes_what_is_missing(
    tmp_path: Path,
) -> None:
    with safefs.open_folder(tmp_path, "a/b", create=True) as folder:
        assert folder.names() == [] and folder.where == "a/b"
    assert (tmp_path / "a/b").is_dir()
    with pytest.raises(FileNotFoundError), safefs.open_folder(tmp_path, "c"):
        pass
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "a/link").symlink_to(tmp_path / "elsewhere", True)
    with (
        pytest.raises(UnsafePath, match="'a/link' is a symlink"),
        safefs.open_folder(tmp_path, "a/link", create=True),
    ):
        pass
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_folders_temp_files_are_exclusive_random_and_renamed_in_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    with safefs.open_folder(tmp_path, "data", create=True) as folder:
        (tmp_path / "data/x.bin").symlink_to(victim)  # a link at the target: replaced
        tmp, f = folder.create_temp("x.bin", tag="3-of-8")
        with f:
            f.write(b"ours")
        other, g = folder.create_temp("x.bin")
        g.close()
        assert tmp.startswith(".tmp-3-of-8-") and tmp.endswith("-x.bin") and other != tmp
        # the folder, held open, is where everything happens, whatever is swapped in later
        os.rename(tmp_path / "data", tmp_path / "moved")
        (tmp_path / "data").symlink_to(tmp_path / "elsewhere", True)
        folder.replace(tmp, "x.bin")
        assert folder.remove(other) and not folder.remove(other)
        assert folder.names() == ["x.bin"]
        with pytest.raises(UnsafePath, match="not a name in the folder"):
            folder.create_temp("sub/x.bin")
        with pytest.raises(UnsafePath, match="not a plain relative path"):
            folder.replace(other, "../x.bin")
    assert (tmp_path / "moved/x.bin").read_bytes() == b"ours"
    assert victim.read_bytes() == b"precious"


def test_a_temp_name_is_never_opened_if_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a guessed random name: the create is exclusive, so a planted link there fails it."""
    (tmp_path / "victim").write_bytes(b"precious")
    monkeypatch.setattr(safefs.secrets, "token_hex", lambda n: "0" * 2 * n)
    (tmp_path / ".tmp-0000000000000000-x.bin").symlink_to(tmp_path / "victim")
    with (
        safefs.open_folder(tmp_path.parent, tmp_path.name) as folder,
        pytest.raises(FileExistsError),
    ):
        folder.create_temp("x.bin")
    assert (tmp_path / "victim").read_bytes() == b"precious"


def test_remove_folder_removes_an_empty_folder_never_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "elsewhere/b").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere", True)
    with pytest.raises(UnsafePath, match="'link' is a symlink"):
        safefs.remove_folder(tmp_path, "link/b")
    with pytest.raises(NotADirectoryError):
        safefs.remove_folder(tmp_path, "link")
    assert (tmp_path / "elsewhere/b").is_dir()
    with pytest.raises(OSError, match="not empty"):
        safefs.remove_folder(tmp_path, "a")
    assert safefs.remove_folder(tmp_path, "a/b") is True
    assert safefs.remove_folder(tmp_path, "a/b") is False


def test_open_regular_seeks_a_file_and_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"0123456789")
    with safefs.open_regular(tmp_path / "f") as f:
        f.seek(4)
        assert f.read(3) == b"456"
    os.mkfifo(tmp_path / "fifo")
    with no_hang(10), pytest.raises(safefs.UnsafePath, match="not a regular file"):
        safefs.open_regular(tmp_path / "fifo")
