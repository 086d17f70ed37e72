"""The Dask executor: per-sample tasks on a Dask cluster reached over mutual TLS, its workers'
environment checked, and a secret random sample of their results recomputed here
(docs/scale-out.md)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Generic, TypeVar

from toolchain.errors import ClusterError, DeterminismError, Error, ExecutorError
from toolchain.model.drift import describe_differences, fingerprint_differences
from toolchain.run.determinism import (
    MARKER,
    NPY_FEATURES,
    PINNED,
    pinned_spawn_context,
    process_is_pinned,
)
from toolchain.run.executor._worker import (
    OrderedRun,
    check_same_environment,
    portable_error,
    start_worker,
)
from toolchain.run.executor.tls import (
    TLSCredentials,
    check_scheduler_address,
    load_client_credentials,
    run_credentials,
)
from toolchain.run.fingerprint import fingerprint_digest, runtime_digest
from toolchain.run.signals import blocked, handled_here, ignore_in_worker

__all__ = ["CONNECT_TIMEOUT", "RECHECK", "DaskExecutor"]

T = TypeVar("T")
R = TypeVar("R")
_WINDOW_PER_WORKER = 4
CONNECT_TIMEOUT = 20
"""Seconds to wait for a scheduler to answer."""
RECHECK = 0.05
"""The share of tasks recomputed here when the workers are not ours (``scheduler`` given)."""
_START_TIMEOUT = 300.0
_START_HINT = (
    "start a scheduler (`dask scheduler --host HOST --tls-ca-file ...`) and pinned workers "
    "(`benchmark-regen dask-worker tls://HOST:8786 --tls-ca-file ...`), or check the address; "
    "see docs/scale-out.md"
)


def _dask_fingerprint() -> dict[str, str]:
    """The worker's fingerprint, pinned or not (the client names what differs)."""
    from toolchain.run.determinism import apply_process_settings
    from toolchain.run.fingerprint import runtime_fingerprint

    apply_process_settings()
    return dict(runtime_fingerprint())


def _dask_task(job: Callable[[Any], Any], task: Any) -> tuple[Any, str, str]:
    from distributed import get_worker

    start_worker()
    return job(task), runtime_digest(), str(get_worker().address)


def _label(task: object) -> str:
    sample = getattr(task, "sample_id", None)
    return f"sample {sample!r}" if sample else "a task"


# -- recomputing here ------------------------------------------------------------------


def _helper_main(conn: Connection, ignored: tuple[int, ...]) -> None:
    """A pinned process that recomputes tasks for the spot check: its fingerprint, then the
    job, then one outcome per task; it exits quietly when the parent is gone."""
    ignore_in_worker(ignored)
    try:
        try:
            conn.send((True, dict(start_worker())))
        except Exception as exc:
            conn.send((False, portable_error(exc)))
            return
        job = conn.recv()
        while (task := conn.recv()) is not None:
            conn.send((True, _outcome(job, task)))
    except (EOFError, OSError):
        os._exit(0)


def _outcome(job: Callable[[T], R], task: T) -> tuple[bool, R | Error]:
    """``(True, result)``, or ``(False, error)`` when the job refuses the task."""
    try:
        return True, job(task)
    except Error as e:
        return False, e


class _Helper:
    """One spawned, pinned process that runs the job for the spot check."""

    def __init__(self) -> None:
        ignored = handled_here()
        with pinned_spawn_context() as ctx, blocked(ignored):
            self._conn, child = ctx.Pipe(duplex=True)
            self._proc = ctx.Process(target=_helper_main, args=(child, ignored), daemon=True)
            self._proc.start()
            child.close()

    def receive(self, timeout: float | None = None) -> Any:
        ready = wait([self._conn, self._proc.sentinel], timeout)
        if self._conn in ready:
            try:
                ok, value = self._conn.recv()
            except (EOFError, OSError):
                pass  # it died while it answered: said below
            else:
                if not ok:
                    raise value
                return value
        if not ready:
            raise ExecutorError(
                f"the process that recomputes the spot check did not start within "
                f"{_START_TIMEOUT:.0f} s",
                hint="check that numpy imports in this Python (`benchmark-regen env`)",
            )
        self._proc.join(2.0)  # its pipe may close a moment before it is reaped
        raise ExecutorError(
            f"the process that recomputes the spot check died (exit code {self._proc.exitcode})",
            hint="it runs the same job as the workers; see the error above, or --recheck 0",
        )

    def send(self, message: object) -> None:
        with contextlib.suppress(OSError):  # a dead helper: receive() says so
            self._conn.send(message)

    def close(self) -> None:
        self._proc.kill()
        self._proc.join()
        self._conn.close()


Recompute = Callable[[T], tuple[bool, "R | Error"]]


@contextlib.contextmanager
def _recomputer(job: Callable[[T], R], fingerprint: Mapping[str, str]) -> Iterator[Recompute[T, R]]:
    """:func:`_outcome` of ``job``, run on this machine in a pinned process whose fingerprint
    is the workers' (this one when it can, else a spawned one); another environment cannot
    recheck them."""
    wanted = fingerprint_digest(fingerprint)
    if process_is_pinned() and fingerprint_digest(start_worker()) == wanted:
        yield lambda task: _outcome(job, task)
        return
    helper = _Helper()
    try:
        here = helper.receive(_START_TIMEOUT)
        if fingerprint_digest(here) != wanted:
            raise DeterminismError(
                "the spot check recomputes results on this machine, whose environment "
                "differs from the Dask workers' "
                f"({describe_differences(fingerprint_differences(fingerprint, here))})",
                hint="run this command in the workers' pinned environment (the same image), or "
                "pass --recheck 0 to trust the workers' results unchecked",
            )
        helper.send(job)

        def recompute(task: T) -> tuple[bool, R | Error]:
            helper.send(task)
            outcome: tuple[bool, R | Error] = helper.receive()
            return outcome

        yield recompute
    finally:
        helper.close()


class _SpotCheck(Generic[T, R]):
    """Recompute a secret random share of the tasks here and compare with the workers'.

    Task ``i`` is chosen when HMAC-SHA256(seed, i) falls below ``fraction``; the seed is
    made per run and never leaves this process, so no worker can tell which of its results
    will be checked. When none was chosen, the one kept by reservoir sampling (uniform over
    the run, with the same seed) is checked at the end, so every run checks at least one.
    """

    def __init__(self, recompute: Recompute[T, R], *, fraction: float, seed: bytes):
        self._recompute = recompute
        self._threshold = int(fraction * (1 << 64))
        self._seed = seed
        self.checked = 0
        self._kept: tuple[T, R, Callable[[], str]] | None = None

    def _draw(self, label: bytes, index: int) -> int:
        mac = hmac.new(self._seed, label + index.to_bytes(8, "big"), hashlib.sha256)
        return int.from_bytes(mac.digest()[:8], "big")

    def chosen(self, index: int) -> bool:
        """Whether task ``index`` is rechecked as it arrives."""
        return self._draw(b"check", index) < self._threshold

    def offer(self, index: int, task: T, value: R, worker: Callable[[], str]) -> None:
        """Task ``index``'s result, from the worker ``worker()`` names, before it is used."""
        if self.chosen(index):
            self._compare(task, value, worker)
            self._kept = None
        elif not self.checked and self._draw(b"keep", index) < (1 << 64) // (index + 1):
            name = worker()  # asked now, while the scheduler still knows the result
            self._kept = (task, value, lambda: name)

    def finish(self) -> None:
        """After the last task: check the kept one if no task was chosen."""
        if not self.checked and self._kept is not None:
            task, value, worker = self._kept
            self._kept = None
            self._compare(task, value, worker)

    def _compare(self, task: T, value: R, worker: Callable[[], str]) -> None:
        self.checked += 1
        ok, mine = self._recompute(task)
        why = f"; here it fails: {mine.message}" if isinstance(mine, Error) and not ok else ""
        if not ok or mine != value:
            raise DeterminismError(
                f"Dask worker {worker()} returned a result for {_label(task)} that differs "
                f"from the one this machine computes{why} (spot check {self.checked}); the "
                "run stopped before writing a manifest",
                hint="a rogue or broken worker: take it out of the cluster, then run again "
                "with --overwrite (every sample it returned may be altered, and --resume "
                "would keep them)",
            )


class DaskExecutor:
    """Run on the cluster at ``scheduler``, or on a ``LocalCluster`` of ``workers`` processes.

    ``scheduler``: ``tls://HOST:PORT`` (the default scheme; this client's certificate from
    ``certs``, else from Dask's configuration), or ``tcp://`` to a loopback address (to
    another host only with ``insecure``). ``recheck``: the share of tasks recomputed here
    (default :data:`RECHECK` with a ``scheduler``, 0 on the run's own cluster).
    ``recheck_seed``: the spot check's secret (default: random, made per run).
    """

    def __init__(
        self,
        *,
        workers: int,
        scheduler: str | None,
        insecure: bool = False,
        recheck: float | None = None,
        certs: str | os.PathLike[str] | None = None,
        recheck_seed: bytes | None = None,
    ):
        fraction = (RECHECK if scheduler else 0.0) if recheck is None else float(recheck)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"recheck must be between 0 and 1, not {recheck!r}")
        self.workers = workers
        self.scheduler = scheduler
        self.insecure = insecure
        self.recheck = fraction
        self.certs = None if certs is None else Path(certs)
        self._seed = recheck_seed
        self._reach: tuple[str | None, TLSCredentials | None] | None = None
        self.address: str | None = None
        """The scheduler's address while a run is connected to it."""

    @property
    def shares_files(self) -> bool:
        """Dask workers may run on other machines: the collecting process writes."""
        return False

    def prestart(self) -> None:
        """Check how the scheduler would be reached (:meth:`reach`) before the run prepares
        anything; nothing starts: the cluster is reached (or made) when a run begins."""
        self.reach()

    def reach(self) -> tuple[str | None, TLSCredentials | None]:
        """The scheduler's address (``tls://`` when it has no scheme; none: the run's own
        cluster) and this client's TLS credentials (none for ``tcp://``), checked once: a
        plain ``tcp://`` to another host without ``insecure``, or a ``tls://`` scheduler
        without a certificate, is an :class:`~toolchain.errors.InputError`."""
        if self._reach is None:
            address = self.scheduler and check_scheduler_address(
                self.scheduler, insecure=self.insecure
            )
            tls = None
            if address and address.startswith("tls://"):
                tls = load_client_credentials(self.certs)
            self._reach = (address or None, tls)
        return self._reach

    def close(self) -> None:
        """Nothing held between runs."""

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _client(self, stack: contextlib.ExitStack) -> Any:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError(
                "--executor dask needs the 'distributed' package",
                hint="pip install 'benchmark-regen[dask]'",
            ) from None
        address, tls = self.reach()
        if address:
            security = tls.security() if tls else None
            try:
                return stack.enter_context(
                    Client(
                        address,
                        security=security,
                        set_as_default=False,
                        timeout=CONNECT_TIMEOUT,
                    )
                )
            except (OSError, TimeoutError) as e:
                refused = " or it does not accept our certificate" if security else ""
                raise ClusterError(
                    f"no Dask scheduler answers at {address}{refused} ({type(e).__name__}: {e})",
                    hint=_START_HINT,
                ) from None
        import dask

        stack.enter_context(pinned_spawn_context())
        # The nanny sets its own PYTHONHASHSEED (and thread variables) before it
        # spawns a worker; make those the pinned values.
        pinned = {k: os.environ[k] for k in (*PINNED, MARKER, NPY_FEATURES) if k in os.environ}
        stack.enter_context(dask.config.set({"distributed.nanny.pre-spawn-environ": pinned}))
        # Mutual TLS on loopback with throwaway credentials: no other process, of this user
        # or another, can connect to the run's scheduler, nannies or workers.
        security = run_credentials().security()
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                protocol="tls://",
                host="127.0.0.1",
                security=security,
                dashboard_address=None,
                # No dashboard, and the scheduler's small HTTP server on a free port: the
                # default (8787) may be taken by another cluster on this machine.
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                silence_logs=50,
            )
        )
        return stack.enter_context(Client(cluster, security=security, set_as_default=False))

    @contextlib.contextmanager
    def run(self, job: Callable[[T], R], tasks: Iterable[T]) -> Iterator[OrderedRun[R]]:
        where = self.reach()[0] or "a local Dask cluster"
        with contextlib.ExitStack() as stack:
            client = self._client(stack)  # says which extra to install when Dask is missing
            stack.callback(setattr, self, "address", None)
            self.address = str(client.scheduler.address)
            from distributed.client import FutureCancelledError
            from distributed.scheduler import KilledWorker

            fingerprints = client.run(_dask_fingerprint)
            if not fingerprints:
                raise ClusterError(f"the Dask cluster at {where} has no workers", hint=_START_HINT)
            fingerprint = check_same_environment(fingerprints)
            n_workers = len(fingerprints)
            spot: _SpotCheck[T, R] | None = None
            if self.recheck:
                recompute = stack.enter_context(_recomputer(job, fingerprint))
                seed = self._seed if self._seed is not None else secrets.token_bytes(32)
                spot = _SpotCheck(recompute, fraction=self.recheck, seed=seed)
            [job_future] = client.scatter([job], broadcast=True, hash=False)
            reference = OrderedRun[R](iter(()), fingerprint).digest

            def ran_on(future: Any, reported: str) -> Callable[[], str]:
                """The worker the scheduler saw finish ``future`` (not what it says of itself)."""

                def name() -> str:
                    held = client.who_has([future]).get(future.key) or ()
                    return ", ".join(sorted(map(str, held))) or reported

                return name

            def results() -> Iterator[tuple[R, str]]:
                window: deque[tuple[Any, T]] = deque()
                source = iter(tasks)
                index = 0

                def submit(task: T) -> None:
                    window.append((client.submit(_dask_task, job_future, task, pure=False), task))

                for task in source:
                    submit(task)
                    if len(window) >= _WINDOW_PER_WORKER * n_workers:
                        break
                while window:
                    future, task = window.popleft()
                    try:
                        value, digest, worker = future.result()
                    except KilledWorker:
                        raise ExecutorError(
                            f"Dask lost every worker it gave {_label(task)} to (KilledWorker)",
                            hint="a worker runs out of memory or crashes on it; run again "
                            "with --resume after fixing the workers",
                        ) from None
                    except (OSError, FutureCancelledError) as e:
                        raise ClusterError(
                            f"lost the Dask scheduler at {where} ({type(e).__name__}: {e})",
                            hint="run again with --resume once the cluster is back",
                        ) from None
                    if digest != reference:
                        late = client.run(_dask_fingerprint, workers=[worker]).get(worker, {})
                        diff = fingerprint_differences(fingerprint, late)
                        raise DeterminismError(
                            f"Dask worker {worker} joined in a different environment "
                            f"({describe_differences(diff) or 'fingerprint ' + digest})",
                            hint="every worker must run the same pinned environment "
                            "(the same image, or `benchmark-regen dask-worker`)",
                        )
                    if spot is not None:
                        spot.offer(index, task, value, ran_on(future, worker))
                    index += 1
                    del future
                    yield value, digest
                    nxt = next(source, None)
                    if nxt is not None:
                        submit(nxt)
                if spot is not None:
                    spot.finish()

            yield OrderedRun(results(), fingerprint)
