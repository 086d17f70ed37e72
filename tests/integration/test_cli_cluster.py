"""toolchain.cli.cluster: ``dask-worker`` refuses what would break determinism or reach its
scheduler unauthenticated, then execs a pinned ``dask worker`` (the real one runs in
test_dask_cluster.py); ``cluster certs`` writes a cluster's certificates."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.cli import run_cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tcp://h:8786", "--nthreads", "4"], "one task at a time"),
        (["tcp://h:8786", "--nthreads=2"], "one task at a time"),
        (["tcp://h:8786", "--nworkers", "auto"], "give a number"),
        ([], "give the scheduler address"),
    ],
)
def test_dask_worker_refuses_threads(args: list[str], message: str) -> None:
    r = run_cli("dask-worker", *args)
    assert r.exit_code == 2 and message in r.output


def test_dask_worker_hands_its_arguments_to_the_pinned_exec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[tuple[str, ...], bool]] = []
    monkeypatch.setattr(
        "toolchain.cluster.dask_worker.exec_pinned_worker",
        lambda args, insecure: seen.append((args, insecure)),
    )
    args = ["tls://head:8786", "--nworkers", "4", "--nthreads", "1", "--name", "w"]
    r = run_cli("dask-worker", *args)
    assert r.exit_code == 0, r.output
    assert seen == [(tuple(args), False)]  # unknown options pass through untouched
    r = run_cli("dask-worker", "tcp://head:8786", "--insecure", "--nworkers", "2")
    assert r.exit_code == 0, r.output
    assert seen[1] == (("tcp://head:8786", "--nworkers", "2"), True)  # ours, not dask's


def test_dask_worker_help_is_its_own() -> None:
    r = run_cli("dask-worker", "--help")
    assert r.exit_code == 0 and "--nthreads 1" in r.output and "Examples:" in r.output


def test_dask_worker_refuses_plain_tcp_to_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.execve", lambda *a: pytest.fail("exec'd anyway"))
    r = run_cli("dask-worker", "tcp://10.0.0.1:8786", "--nworkers", "2")
    assert r.exit_code == 3, r.output
    assert "plain TCP to another machine" in r.output and "cluster certs" in r.output
    assert "Traceback" not in r.output


def test_cluster_certs_writes_a_ca_and_the_nodes(tmp_path: Path) -> None:
    from toolchain.cli.cluster import cluster

    out = tmp_path / "certs"
    r = CliRunner().invoke(cluster, ["certs", "--out", str(out), "--node", "n1", "--node", "n2"])
    assert r.exit_code == 0, r.output
    assert f"certificates for scheduler, client, n1, n2 into {out}" in r.output
    assert (out / "n2.key").stat().st_mode & 0o777 == 0o600
    r = CliRunner().invoke(cluster, ["certs", "--out", str(out), "--node", "n3", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["files"] == ["n3.pem", "n3.key"]
    r = CliRunner().invoke(cluster, ["certs", "--out", str(tmp_path / "x"), "--days", "400"])
    assert r.exit_code == 2 and "--days" in r.output


def test_cluster_certs_defaults_are_the_librarys() -> None:
    """The CLI spells the validity bounds out (so --help needs no cryptography): the same."""
    from toolchain.cli.cluster import certs
    from toolchain.run.executor.tls import CERT_DAYS, MAX_CERT_DAYS

    (days,) = [p for p in certs.params if p.name == "days"]
    assert days.default == CERT_DAYS
    assert isinstance(days.type, click.IntRange) and days.type.max == MAX_CERT_DAYS


def test_cluster_certs_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    r = run_cli("cluster", "certs", "--out", out, "--node", "n1")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir())[:2] == ["ca.key", "ca.pem"]
    r = run_cli("cluster", "certs", "--out", out)  # a CA is there: name the nodes to add
    assert r.exit_code == 3 and "name the nodes to add with --node" in r.stderr
    r = run_cli("cluster", "certs", "--out", out, "--node", "n1")
    assert r.exit_code == 4 and "never overwritten" in r.stderr
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    r = run_cli("cluster", "certs", "--out", shared)
    assert r.exit_code == 4 and "not private to this user" in r.stderr
    assert "Traceback" not in r.output
