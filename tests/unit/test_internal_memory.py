"""glibc's allocator tuned for long runs: freed heap pages go back to the system."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolchain._internal import memory
from toolchain._internal.memory import Trimmer, tune_allocator


def _rss_anon_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon")


def test_a_tick_returns_the_free_pages_between_live_blocks() -> None:
    if not tune_allocator() or not Path("/proc/self/status").exists():
        pytest.skip("glibc on Linux only")
    # 300 KB blocks (below the 32 MiB mmap threshold: on the heap), each followed by a
    # small block that stays: freeing the large ones leaves holes glibc keeps resident.
    large, small = [], []
    touch = b"\1" * len(range(0, 300_000, 4096))
    for _ in range(200):
        block = bytearray(300_000)
        block[::4096] = touch  # every page resident
        large.append(block)
        small.append(bytearray(600))
    del large
    freed = _rss_anon_mib()
    trimmer = Trimmer(seconds=3600)
    trimmer.tick()  # the first tick trims
    trimmed = _rss_anon_mib()
    assert trimmed < freed - 40, (freed, trimmed)  # of about 57 MiB freed
    assert len(small) == 200


def test_ticks_trim_at_most_once_a_period(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    class FakeLibc:
        def malloc_trim(self, pad: int) -> int:
            calls.append(pad)
            return 1

    monkeypatch.setattr(memory, "_libc", lambda: FakeLibc())
    trimmer = Trimmer(seconds=3600)
    for _ in range(50):
        trimmer.tick()
    assert calls == [0]


def test_without_glibc_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_libc", lambda: None)
    memory.tune_allocator.cache_clear()
    try:
        assert memory.tune_allocator() is False
        Trimmer().tick()  # no error
    finally:
        memory.tune_allocator.cache_clear()
        memory.tune_allocator()
