"""toolchain.run.executor.dask: the checks around a Dask cluster and the spot check, against
a fake client, and a real LocalCluster over TLS (slow).

A scheduler that does not answer, TLS to a real scheduler and a real rogue worker are tested
end to end in tests/integration/test_dask_cluster.py, and a whole generate run on a
LocalCluster in tests/integration/test_scale.py.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import make_image
from toolchain.cli import cli
from toolchain.errors import ClusterError, DecodeError, DeterminismError, ExecutorError, InputError
from toolchain.run.executor import dask as dask_executor
from toolchain.run.executor.dask import RECHECK, DaskExecutor
from toolchain.run.fingerprint import fingerprint_digest

FP = {"pinned": "true", "numpy": "2.4.6", "pillow": "12.0.0"}


@dataclass(frozen=True)
class Task:
    sample_id: str
    n: int


@dataclass(frozen=True)
class Negate:
    def __call__(self, t: Task) -> int:
        return -t.n


@dataclass
class Done:
    value: tuple[Any, str, str]
    key: str
    ran_on: str

    def result(self) -> tuple[Any, str, str]:
        return self.value


@dataclass
class FakeClient:
    """Answers like ``distributed.Client``; a task runs at once, on ``worker_of(task)``,
    which returns ``tamper(worker, result)`` and says it is ``claims.get(worker, worker)``."""

    fingerprints: Mapping[str, Mapping[str, str]]
    worker_of: Callable[[Task], str] = lambda _t: "tcp://w1:1"
    tamper: Callable[[str, Any], Any] = lambda _w, value: value
    worker_job: Callable[[Task], Any] | None = None
    """What the workers run instead of the job they were given."""
    claims: Mapping[str, str] = field(default_factory=dict)
    submitted: list[int] = field(default_factory=list)
    scheduler: Any = field(default_factory=lambda: SimpleNamespace(address="tls://head:8786"))
    futures: dict[str, Done] = field(default_factory=dict)

    def run(self, fn: Callable[[], Any], workers: list[str] | None = None) -> dict[str, Any]:
        names = workers if workers is not None else list(self.fingerprints)
        return {w: dict(self.fingerprints[w]) for w in names}

    def scatter(self, items: list[Any], *, broadcast: bool, hash: bool) -> list[Any]:
        return list(items)

    def submit(self, fn: Any, job: Callable[[Task], Any], task: Task, *, pure: bool) -> Done:
        self.submitted.append(task.n)
        worker = self.worker_of(task)
        value = self.tamper(worker, (self.worker_job or job)(task))
        digest = fingerprint_digest(self.fingerprints[worker])
        done = Done((value, digest, self.claims.get(worker, worker)), f"k{task.n}", worker)
        self.futures[done.key] = done
        return done

    def who_has(self, futures: list[Done]) -> dict[str, list[str]]:
        return {f.key: [f.ran_on] for f in futures}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeClient], list[list[int]]]:
    """Make every DaskExecutor talk to the given fake client, and recompute in this process."""

    @contextlib.contextmanager
    def here(job: Callable[[Any], Any], fingerprint: Mapping[str, str]) -> Iterator[Any]:
        recomputed.append([])

        def outcome(task: Any) -> Any:
            recomputed[-1].append(task.n)
            return dask_executor._outcome(job, task)

        yield outcome

    recomputed: list[list[int]] = []

    def use(client: FakeClient) -> list[list[int]]:
        monkeypatch.setattr(DaskExecutor, "_client", lambda self, stack: client)
        monkeypatch.setattr(dask_executor, "_recomputer", here)
        return recomputed

    return use


def _tasks(n: int) -> Iterator[Task]:
    return (Task(sample_id=f"s{i}.png", n=i) for i in range(n))


def _run(executor: DaskExecutor, tasks: Iterator[Task]) -> list[int]:
    with executor.run(Negate(), tasks) as run:
        return list(run)


def test_results_in_task_order_with_a_window_of_tasks_in_flight(fake: Any) -> None:
    client = FakeClient({"tcp://w1:1": FP, "tcp://w2:1": FP})
    fake(client)
    pulled: list[int] = []

    def tasks() -> Iterator[Task]:
        for t in _tasks(20):
            pulled.append(t.n)
            yield t

    executor = DaskExecutor(workers=1, scheduler="tcp://head:8786", insecure=True, recheck=0)
    with executor.run(Negate(), tasks()) as run:
        assert run.fingerprint == FP
        got = iter(run)
        assert next(got) == 0
        assert len(pulled) <= 2 * 4 + 1  # four tasks per worker ahead, not the whole input
        assert list(got) == [-i for i in range(1, 20)]
    assert client.submitted == list(range(20))


def test_a_cluster_without_workers_is_a_cluster_error_naming_it(fake: Any) -> None:
    fake(FakeClient({}))
    with pytest.raises(ClusterError, match="at tcp://head:8786 has no workers") as e:
        _run(DaskExecutor(workers=1, scheduler="tcp://head:8786", insecure=True), _tasks(1))
    assert "benchmark-regen dask-worker" in (e.value.hint or "")


def test_an_unpinned_worker_is_refused_before_any_task(fake: Any) -> None:
    client = FakeClient({"tcp://w1:1": FP, "tcp://w2:1": {**FP, "pinned": "false"}})
    fake(client)
    with pytest.raises(DeterminismError, match="worker tcp://w2:1 is not running in the pinned"):
        _run(DaskExecutor(workers=1, scheduler="tcp://head:8786", insecure=True), _tasks(3))
    assert client.submitted == []


def test_a_worker_that_joins_in_another_environment_is_named_with_the_fields(
    fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = {**FP, "numpy": "1.26.4"}
    client = FakeClient(
        {"tcp://w1:1": FP, "tcp://late:1": late},
        worker_of=lambda t: "tcp://late:1" if t.n == 2 else "tcp://w1:1",
    )
    # the late worker was not there when the fingerprints were first collected
    first = {"tcp://w1:1": FP}
    real_run = client.run
    monkeypatch.setattr(
        client, "run", lambda fn, workers=None: real_run(fn, workers) if workers else first
    )
    fake(client)
    with (
        pytest.raises(DeterminismError) as e,
        DaskExecutor(workers=1, scheduler=None).run(Negate(), _tasks(5)) as run,
    ):
        seen = []
        for value in run:
            seen.append(value)
    assert seen == [0, -1]
    assert "Dask worker tcp://late:1 joined in a different environment" in e.value.message
    assert "numpy: '2.4.6' vs '1.26.4'" in e.value.message


_INTRUDER = """
import sys
import dask
from distributed import Client
from distributed.security import Security
address, how = sys.argv[1], sys.argv[2]
security = Security.temporary() if how == "own-certificate" else None
with dask.config.set({"distributed.comm.timeouts.connect": "5s"}), Client(
    address, security=security, timeout=5, set_as_default=False
) as c:
    print("RAN CODE IN A WORKER:", c.submit(sum, [1, 2]).result())
"""


def _intruders(targets: Mapping[str, str]) -> dict[str, tuple[int, str]]:
    """Other processes (another user's, say) connect to the targets, ``{how: address}``, at
    once, and try to run code there: their exit codes and outputs."""
    procs = {}
    for how, address in targets.items():
        argv = [sys.executable, "-c", _INTRUDER, address, how]
        procs[how] = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    done = {}
    for how, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=120)  # a hang guard, not a time assertion
        finally:
            proc.kill()
        done[how] = (proc.wait(), out)
    return done


@pytest.mark.slow
def test_the_runs_own_cluster_speaks_tls_to_its_own_processes_only() -> None:
    """The LocalCluster of ``--executor dask`` without ``--scheduler``: results in task order
    from pinned workers, over mutual TLS on loopback; a client without the run's certificate
    (none, plain TCP, or a certificate of its own) cannot connect, let alone run code."""
    executor = DaskExecutor(workers=2, scheduler=None)
    with executor.run(Negate(), _tasks(12)) as run:
        address = executor.address
        assert address is not None and address.startswith("tls://127.0.0.1:")
        intruders = _intruders(
            {
                "no-certificate": address,
                "plain-tcp": address.replace("tls://", "tcp://"),
                "own-certificate": address,
            }
        )
        assert list(run) == [-i for i in range(12)]
        assert run.fingerprint["pinned"] == "true"
        assert run.fingerprint["env.OPENBLAS_NUM_THREADS"] == "1"
    assert executor.address is None
    for how, (code, out) in intruders.items():
        assert code != 0 and "RAN CODE" not in out, (how, out)


# -- how the scheduler is reached --------------------------------------------------------


def test_plain_tcp_to_another_host_is_refused_before_anything_starts(fake: Any) -> None:
    client = FakeClient({"tcp://w1:1": FP})
    fake(client)
    executor = DaskExecutor(workers=1, scheduler="tcp://10.1.2.3:8786")
    with pytest.raises(InputError, match="plain TCP to another machine") as e:
        executor.prestart()
    assert "benchmark-regen cluster certs" in (e.value.hint or "")
    assert e.value.exit_code == 3
    with pytest.raises(InputError), executor.run(Negate(), _tasks(1)):
        pass
    assert client.submitted == []
    # On loopback, or with insecure, plain TCP is the user's choice.
    assert DaskExecutor(workers=1, scheduler="tcp://127.0.0.1:8786").reach() == (
        "tcp://127.0.0.1:8786",
        None,
    )
    insecure = DaskExecutor(workers=1, scheduler="tcp://10.1.2.3:8786", insecure=True)
    assert insecure.reach() == ("tcp://10.1.2.3:8786", None)


def test_an_address_without_scheme_is_tls_and_needs_a_certificate(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs this client's certificate"):
        DaskExecutor(workers=1, scheduler="head:8786").prestart()
    from toolchain.cluster.certs import make_certs

    make_certs(tmp_path / "certs")
    executor = DaskExecutor(workers=1, scheduler="head:8786", certs=tmp_path / "certs")
    address, tls = executor.reach()
    assert address == "tls://head:8786"
    assert tls is not None and tls.own.name == "client"
    assert tls.security().require_encryption


# -- the spot check ----------------------------------------------------------------------


def _flip(value: int) -> int:
    return value + 1000


def test_the_default_share_is_rechecked_for_remote_workers_only() -> None:
    assert DaskExecutor(workers=1, scheduler="tcp://127.0.0.1:1").recheck == RECHECK == 0.05
    assert DaskExecutor(workers=1, scheduler=None).recheck == 0.0
    assert DaskExecutor(workers=1, scheduler=None, recheck=0.5).recheck == 0.5
    assert DaskExecutor(workers=1, scheduler="tcp://127.0.0.1:1", recheck=0).recheck == 0.0
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            DaskExecutor(workers=1, scheduler=None, recheck=bad)


def test_a_rogue_worker_is_named_as_the_scheduler_saw_it(fake: Any) -> None:
    """One worker of two returns altered results (and claims to be the honest one): every
    result rechecked, the run stops at its first result, naming the rogue's address."""
    client = FakeClient(
        {"tcp://w1:1": FP, "tcp://rogue:1": FP},
        worker_of=lambda t: "tcp://rogue:1" if t.n % 3 == 2 else "tcp://w1:1",
        tamper=lambda w, v: _flip(v) if w == "tcp://rogue:1" else v,
        claims={"tcp://rogue:1": "tcp://w1:1"},
    )
    fake(client)
    executor = DaskExecutor(workers=1, scheduler="tcp://127.0.0.1:1", recheck=1.0)
    seen: list[int] = []
    with pytest.raises(DeterminismError) as e, executor.run(Negate(), _tasks(9)) as run:
        seen.extend(run)
    assert seen == [0, -1]  # the altered result of task 2 is never handed on
    assert "Dask worker tcp://rogue:1 returned a result for sample 's2.png'" in e.value.message
    assert "before writing a manifest" in e.value.message
    assert "--overwrite" in (e.value.hint or "")
    assert e.value.exit_code == 4


def test_the_spot_check_is_seeded_secret_and_near_its_share(fake: Any) -> None:
    client = FakeClient({"tcp://w1:1": FP})
    recomputed = fake(client)

    def checked(seed: bytes | None, share: float = 0.25) -> list[int]:
        executor = DaskExecutor(
            workers=1, scheduler="tcp://127.0.0.1:1", recheck=share, recheck_seed=seed
        )
        assert _run(executor, _tasks(400)) == [-i for i in range(400)]
        return recomputed[-1]

    first = checked(b"a" * 32)
    assert checked(b"a" * 32) == first  # seeded: reproducible
    assert checked(b"b" * 32) != first  # another seed, other tasks
    assert 60 <= len(first) <= 140  # a quarter of 400, give or take
    assert checked(None) != checked(None)  # per run, a secret seed of its own
    assert len(checked(b"a" * 32, share=1.0)) == 400


def _reseeded(executor: DaskExecutor, seed: int) -> DaskExecutor:
    return DaskExecutor(
        workers=1,
        scheduler=executor.scheduler,
        recheck=executor.recheck,
        recheck_seed=seed.to_bytes(32, "big"),
    )


def _rogue() -> FakeClient:
    """A cluster of one worker that alters every result."""
    return FakeClient(
        {"tcp://rogue:1": FP}, worker_of=lambda t: "tcp://rogue:1", tamper=lambda w, v: _flip(v)
    )


def test_at_least_one_task_is_rechecked_and_a_rogue_caught_at_the_end(fake: Any) -> None:
    """A share so small that no task is chosen: one task, kept by reservoir sampling, is
    rechecked after the last; a worker that altered every result is caught there."""
    recomputed = fake(FakeClient({"tcp://w1:1": FP}))
    tiny = DaskExecutor(workers=1, scheduler="tcp://127.0.0.1:1", recheck=1e-12)
    assert _run(tiny, _tasks(20)) == [-i for i in range(20)]
    assert len(recomputed[-1]) == 1
    kept = set()
    for seed in range(30):  # the kept task is spread over the run, not always the last
        _run(_reseeded(tiny, seed), _tasks(20))
        (one,) = recomputed[-1]
        kept.add(one)
    assert len(kept) > 5

    fake(_rogue())
    seen: list[int] = []
    with (
        pytest.raises(DeterminismError, match="Dask worker tcp://rogue:1 returned"),
        tiny.run(Negate(), _tasks(20)) as run,
    ):
        seen.extend(run)
    assert len(seen) == 20  # every result came, and still the run stopped before its end


def test_recheck_0_trusts_the_workers(fake: Any) -> None:
    recomputed = fake(_rogue())
    executor = DaskExecutor(workers=1, scheduler="tcp://127.0.0.1:1", recheck=0)
    assert _run(executor, _tasks(5)) == [1000 - i for i in range(5)]
    assert recomputed == []


@dataclass(frozen=True)
class Refuse:
    """Refuses every task (a worker may still claim a result for it)."""

    def __call__(self, t: Task) -> int:
        raise DecodeError("not an image", sample=t.sample_id)


def test_a_result_for_a_task_this_machine_refuses_is_a_mismatch(fake: Any) -> None:
    fake(
        FakeClient({"tcp://rogue:1": FP}, worker_of=lambda t: "tcp://rogue:1", worker_job=Negate())
    )
    executor = DaskExecutor(workers=1, scheduler="tcp://127.0.0.1:1", recheck=1.0)
    with (
        pytest.raises(DeterminismError, match=r"tcp://rogue:1 .* here it fails: not an image"),
        executor.run(Refuse(), _tasks(2)) as run,
    ):
        list(run)


def test_the_recheck_needs_this_machine_to_be_the_workers_environment() -> None:
    """The recomputing process must have the workers' fingerprint (else it would flag honest
    workers); it is spawned pinned when this process is not, and gone afterwards."""
    before = set(multiprocessing.active_children())
    with (
        pytest.raises(DeterminismError, match="differs from the Dask workers'") as e,
        dask_executor._recomputer(Negate(), {**FP, "numpy": "0.0.0"}),
    ):
        pass
    assert "--recheck 0" in (e.value.hint or "")
    assert set(multiprocessing.active_children()) <= before


def test_without_distributed_the_executor_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with (
        pytest.raises(ExecutorError, match="needs the 'distributed' package") as e,
        DaskExecutor(workers=1, scheduler="tcp://127.0.0.1:1").run(abs, []) as run,
    ):
        list(run)
    assert e.value.hint == "pip install 'benchmark-regen[dask]'"
    assert not isinstance(e.value, ClusterError) and e.value.exit_code == 4


def test_generate_executor_dask_without_distributed_exits_4_with_the_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    make_image(tmp_path / "o/a.png")
    r = CliRunner().invoke(cli, ["generate", "--recipe", "identity", "--original",
                                 str(tmp_path / "o"), "--out", str(tmp_path / "out"),
                                 "--executor", "dask"])  # fmt: skip
    assert r.exit_code == 4, repr(r.exception)
    assert "benchmark-regen[dask]" in r.output


@dataclass(frozen=True)
class NegateNatural:
    """Negates natural numbers, refuses negative ones."""

    def __call__(self, t: Task) -> int:
        if t.n < 0:
            raise DecodeError("negative", sample=t.sample_id)
        return -t.n


def test_the_recheck_runs_in_a_pinned_process_of_the_workers_environment() -> None:
    """Spawned and pinned when this process is not; in this process when it is pinned."""
    from tests.compare_cases import pinned_here
    from toolchain.run.executor import worker_fingerprint
    from toolchain.run.fingerprint import runtime_fingerprint

    with dask_executor._recomputer(NegateNatural(), worker_fingerprint()) as recompute:
        assert recompute(Task("a.png", 3)) == (True, -3)
        ok, error = recompute(Task("b.png", -1))
        assert not ok and isinstance(error, DecodeError) and error.sample == "b.png"
    with pinned_here(pytest.MonkeyPatch()):
        before = set(multiprocessing.active_children())
        with dask_executor._recomputer(NegateNatural(), runtime_fingerprint()) as recompute:
            assert recompute(Task("a.png", 4)) == (True, -4)
            assert set(multiprocessing.active_children()) == before  # no process spawned


@dataclass(frozen=True)
class Die:
    """Ends the process that runs it, as a crash would."""

    def __call__(self, t: Task) -> int:
        os._exit(3)


def test_a_recomputing_process_that_dies_is_an_executor_error_not_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from toolchain.run.executor import worker_fingerprint

    monkeypatch.setattr(dask_executor, "process_is_pinned", lambda: False)  # always spawned
    with (
        pytest.raises(ExecutorError, match=r"recomputes the spot check died \(exit code 3\)"),
        dask_executor._recomputer(Die(), worker_fingerprint()) as recompute,
    ):
        recompute(Task("a.png", 1))
