"""toolchain.run.executor.dask: the checks around a Dask cluster, against a fake client,
and a real LocalCluster (slow).

A scheduler that does not answer is tested end to end (it takes the 20 s connect timeout) in
tests/integration/test_dask_cluster.py, and a whole generate run on a LocalCluster in
tests/integration/test_scale.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import make_image
from toolchain.cli import cli
from toolchain.errors import ClusterError, DeterminismError, ExecutorError
from toolchain.run.executor.dask import DaskExecutor
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

    def result(self) -> tuple[Any, str, str]:
        return self.value


@dataclass
class FakeClient:
    """Answers like ``distributed.Client``; a task runs at once, on ``worker_of(task)``."""

    fingerprints: Mapping[str, Mapping[str, str]]
    worker_of: Callable[[Task], str] = lambda _t: "tcp://w1:1"
    submitted: list[int] = field(default_factory=list)

    def run(self, fn: Callable[[], Any], workers: list[str] | None = None) -> dict[str, Any]:
        names = workers if workers is not None else list(self.fingerprints)
        return {w: dict(self.fingerprints[w]) for w in names}

    def scatter(self, items: list[Any], *, broadcast: bool, hash: bool) -> list[Any]:
        return list(items)

    def submit(self, fn: Any, job: Callable[[Task], Any], task: Task, *, pure: bool) -> Done:
        self.submitted.append(task.n)
        worker = self.worker_of(task)
        return Done((job(task), fingerprint_digest(self.fingerprints[worker]), worker))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeClient], None]:
    """Make every DaskExecutor talk to the given fake client."""

    def use(client: FakeClient) -> None:
        monkeypatch.setattr(DaskExecutor, "_client", lambda self, stack: client)

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

    with DaskExecutor(workers=1, scheduler="tcp://head:8786").run(Negate(), tasks()) as run:
        assert run.fingerprint == FP
        got = iter(run)
        assert next(got) == 0
        assert len(pulled) <= 2 * 4 + 1  # four tasks per worker ahead, not the whole input
        assert list(got) == [-i for i in range(1, 20)]
    assert client.submitted == list(range(20))


def test_a_cluster_without_workers_is_a_cluster_error_naming_it(fake: Any) -> None:
    fake(FakeClient({}))
    with pytest.raises(ClusterError, match="at tcp://head:8786 has no workers") as e:
        _run(DaskExecutor(workers=1, scheduler="tcp://head:8786"), _tasks(1))
    assert "benchmark-regen dask-worker" in (e.value.hint or "")


def test_an_unpinned_worker_is_refused_before_any_task(fake: Any) -> None:
    client = FakeClient({"tcp://w1:1": FP, "tcp://w2:1": {**FP, "pinned": "false"}})
    fake(client)
    with pytest.raises(DeterminismError, match="worker tcp://w2:1 is not running in the pinned"):
        _run(DaskExecutor(workers=1, scheduler="tcp://head:8786"), _tasks(3))
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


@pytest.mark.slow
def test_a_local_cluster_gives_results_in_task_order_from_pinned_workers() -> None:
    with DaskExecutor(workers=2, scheduler=None).run(Negate(), _tasks(12)) as run:
        assert list(run) == [-i for i in range(12)]
        assert run.fingerprint["pinned"] == "true"
        assert run.fingerprint["env.OPENBLAS_NUM_THREADS"] == "1"


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
