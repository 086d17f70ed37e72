"""SIGTERM and SIGHUP stop a run as Ctrl-C does (a ``KeyboardInterrupt`` in the main thread,
exit 128 + the signal's number), and pool workers leave to their parent what it handles."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import FrameType

__all__ = [
    "TERMINATING",
    "Received",
    "Terminated",
    "blocked",
    "handled_here",
    "ignore_in_worker",
    "stop_like_ctrl_c",
]

TERMINATING: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)
"""What ``scancel``, a Slurm time limit, ``timeout``, ``docker stop`` and a closed terminal send."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by one of :data:`TERMINATING`; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Received:
    """Which terminating signal stopped the command, if one did (the first that came)."""

    signum: signal.Signals | None = None

    def exit_code(self, default: int) -> int:
        """128 + the signal's number (143 for SIGTERM, 129 for SIGHUP), else ``default``."""
        return int(default) if self.signum is None else 128 + int(self.signum)


@contextlib.contextmanager
def stop_like_ctrl_c() -> Iterator[Received]:
    """While the block runs, :data:`TERMINATING` raise :class:`Terminated` in the main thread.

    The previous handlers come back on exit. A signal this process inherited as ignored
    (``nohup``) stays ignored; outside the main thread (where Python cannot install
    handlers) nothing changes.
    """
    received = Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if received.signum is None:
            received.signum = signal.Signals(signum)
        raise Terminated(signum)

    previous = {}
    for signum in TERMINATING:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)


def handled_here() -> tuple[int, ...]:
    """The signals this process handles itself, so its pool workers must ignore them:
    SIGINT always (Ctrl-C reaches the whole process group), and each of
    :data:`TERMINATING` that has a Python handler here (``scancel`` signals every process)."""
    return (
        int(signal.SIGINT),
        *(int(s) for s in TERMINATING if callable(signal.getsignal(s))),
    )


@contextlib.contextmanager
def blocked(signums: Iterable[int]) -> Iterator[None]:
    """Hold ``signums`` back from this thread while the block runs.

    Processes started in the block inherit the mask, so none of them reaches a worker
    between its start and :func:`ignore_in_worker` (CPython's resource tracker starts
    the same way). This process still gets them: in another thread, or after the block.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(signums))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ignore_in_worker(signums: Iterable[int]) -> None:
    """In a pool worker started inside :func:`blocked`: ignore ``signums``, then unblock them."""
    wanted = set(signums)
    for signum in wanted:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, wanted)
