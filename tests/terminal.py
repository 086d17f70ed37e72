"""Run ``benchmark-regen`` on a real pseudo-terminal, as a user at a shell would.

:func:`start` forks the command onto a new pty (``pty.fork``: the child leads its own
session, with the pty as its controlling terminal and stdin, stdout and stderr), so

* ``isatty()`` is true: progress bars and colours behave as on a terminal;
* :meth:`Terminal.ctrl_c` writes ``^C`` to the master side, and the terminal's line
  discipline sends SIGINT to the *foreground process group*: the command and every
  worker it started, exactly as a key press does.

Output is drained continuously (a full pty buffer would block the command).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Terminal", "default_sigint", "live_in_group", "start"]


def live_in_group(pgid: int) -> list[str]:
    """Command lines of the processes of group ``pgid`` that are still running (not zombies)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(f"{name}: {cmdline[:160]}")
    return found


@dataclass
class Terminal:
    pid: int
    fd: int
    output: bytearray = field(default_factory=bytearray)
    returncode: int | None = None

    def _pump(self, timeout: float) -> bool:
        """Read what is there (waiting up to ``timeout``); False once the child closed the pty."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno == errno.EIO:  # every slave descriptor is closed
                return False
            raise
        if not chunk:
            return False
        self.output += chunk
        return True

    def _reap(self) -> bool:
        if self.returncode is not None:
            return True
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        return True

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float) -> bool:
        """Drain output until ``predicate(output)`` holds (True) or the command ends (False)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(bytes(self.output)):
                return True
            if not self._pump(0.05) or self._reap():
                self._pump(0)
                return predicate(bytes(self.output))
        return False

    def ctrl_c(self) -> None:
        """Press Ctrl-C."""
        os.write(self.fd, b"\x03")

    def wait(self, timeout: float) -> int:
        """Drain output until the command exits; kill its process group after ``timeout``."""
        end = time.monotonic() + timeout
        while not self._reap():
            if time.monotonic() > end:
                self.kill()
                raise TimeoutError(f"the command did not exit within {timeout} s")
            self._pump(0.02)
        with contextlib.suppress(OSError):
            while self._pump(0.1):
                pass
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def close(self) -> None:
        if self.returncode is None:
            self.kill()
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


def default_sigint() -> None:
    """Give this (child) process SIGINT's default action, as a user's terminal gives it.

    A test run started in the background (``cmd &`` in a script) inherits SIGINT
    ignored, and an ignored signal stays ignored across exec: a child that should
    stop on Ctrl-C would run to the end. Call it in the child before exec
    (``preexec_fn``, or after ``fork``).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, columns: int = 120
) -> Terminal:
    """``python -m toolchain ARGS`` on a new pty (see the module docstring)."""
    environ = dict(os.environ if env is None else env)
    environ.pop("BENCHMARK_REGEN_PINNED", None)  # the command pins itself, as installed
    argv = [sys.executable, "-m", "toolchain", *args]
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            default_sigint()
            os.execve(sys.executable, argv, environ)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    return Terminal(pid=pid, fd=fd)
