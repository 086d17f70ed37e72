"""toolchain.run.signals: SIGTERM and SIGHUP raised as a KeyboardInterrupt in the main thread,
remembered for the exit code and undone on exit; what a worker started in ``blocked`` ignores.

The signals are real ones, sent to this process (``signal.raise_signal``) or to a child.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from toolchain.run.signals import (
    TERMINATING,
    Received,
    Terminated,
    blocked,
    handled_here,
    stop_like_ctrl_c,
)

HANG = 60
"""Seconds after which a child counts as hung: a guard, never a measure of speed."""


@contextmanager
def disposition(signum: int, handler: signal.Handlers) -> Iterator[None]:
    """``signum`` set to ``handler`` in this process while the block runs."""
    old = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, old)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_terminating_signal_interrupts_like_ctrl_c_and_names_its_exit_code(
    signum: signal.Signals, code: int
) -> None:
    before = signal.getsignal(signum)
    with stop_like_ctrl_c() as received:
        assert received.exit_code(130) == 130  # nothing came yet
        with pytest.raises(KeyboardInterrupt) as e:
            signal.raise_signal(signum)
    assert isinstance(e.value, Terminated) and e.value.signum == signum
    assert received.signum == signum and received.exit_code(130) == code == 128 + signum
    assert signal.getsignal(signum) == before  # the previous handler is back


def test_the_first_signal_is_the_one_remembered() -> None:
    with stop_like_ctrl_c() as received:
        for signum in (signal.SIGHUP, signal.SIGTERM):
            with pytest.raises(Terminated):
                signal.raise_signal(signum)
    assert received.signum == signal.SIGHUP and received.exit_code(130) == 129


def test_ctrl_c_is_left_alone() -> None:
    with stop_like_ctrl_c() as received, pytest.raises(KeyboardInterrupt) as e:
        signal.raise_signal(signal.SIGINT)
    assert not isinstance(e.value, Terminated)
    assert received.signum is None and received.exit_code(130) == 130


def test_a_signal_inherited_as_ignored_stays_ignored() -> None:
    """``nohup`` ignores SIGHUP for the command it starts: the command must not undo that."""
    with disposition(signal.SIGHUP, signal.SIG_IGN), stop_like_ctrl_c() as received:
        signal.raise_signal(signal.SIGHUP)  # ignored: nothing is raised
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert callable(signal.getsignal(signal.SIGTERM))
    assert received.signum is None


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen: list[object] = []

    def run() -> None:
        with stop_like_ctrl_c() as received:
            seen.append(received)
            seen.extend(signal.getsignal(s) for s in TERMINATING)

    before = [signal.getsignal(s) for s in TERMINATING]
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(HANG)
    assert seen[0] == Received() and seen[1:] == before


def test_a_parent_hands_its_workers_what_it_handles() -> None:
    assert handled_here() == (signal.SIGINT,)
    with stop_like_ctrl_c():
        assert set(handled_here()) == {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    with disposition(signal.SIGHUP, signal.SIG_IGN), stop_like_ctrl_c():
        assert set(handled_here()) == {signal.SIGINT, signal.SIGTERM}


_CHILD = """
import os, sys, time
from toolchain.run.signals import ignore_in_worker
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
ignore_in_worker([15])
print("alive", flush=True)
"""


def _child(release: Path) -> subprocess.Popen[str]:
    """A Python that waits for ``release``, then ignores SIGTERM as a worker does."""
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(release)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )


def test_a_child_started_blocked_gets_no_signal_before_it_ignores_it(tmp_path: Path) -> None:
    """A SIGTERM sent while the child still starts (before :func:`ignore_in_worker`) waits in
    its mask and is then dropped: it survives. Started unblocked, the same SIGTERM kills it."""
    release = tmp_path / "release"
    with blocked([signal.SIGTERM]):
        survivor = _child(release)
    unblocked = _child(release)
    for child in (survivor, unblocked):
        child.send_signal(signal.SIGTERM)
    unblocked.communicate(timeout=HANG)
    assert unblocked.returncode == -signal.SIGTERM
    release.touch()
    out, _ = survivor.communicate(timeout=HANG)
    assert survivor.returncode == 0 and out == "alive\n"


def test_the_block_is_lifted_afterwards() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    with blocked([signal.SIGTERM, signal.SIGHUP]):
        assert {signal.SIGTERM, signal.SIGHUP} <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


def test_ignore_in_worker_ignores_and_unblocks() -> None:
    """In a fresh interpreter started blocked: the signals end ignored and unblocked (a later
    one is dropped, not held until some code unblocks it)."""
    code = (
        "import signal\n"
        "from toolchain.run.signals import ignore_in_worker\n"
        "ours = (signal.SIGTERM, signal.SIGHUP)\n"
        "held = set(signal.pthread_sigmask(signal.SIG_BLOCK, [])) >= set(ours)\n"
        "ignore_in_worker(ours)\n"
        "ignored = all(signal.getsignal(s) is signal.SIG_IGN for s in ours)\n"
        "print(held, ignored, sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))\n"
    )
    with blocked([signal.SIGTERM, signal.SIGHUP]):
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
            cwd=Path(__file__).parents[2],
        )  # fmt: skip
    out, _ = proc.communicate(timeout=HANG)
    assert proc.returncode == 0 and out == "True True []\n"
