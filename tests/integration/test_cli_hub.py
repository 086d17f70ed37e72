"""CLI: ``publish`` writes and lists a Hub dataset repo (a push offline is exit 4, never a
traceback); ``get`` rebuilds it by name from an offline Hub cache holding exactly the files
``publish --dry-run`` listed, and prints the root that ``verify`` then confirms."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.cli import no_traceback, run_cli
from tests.hf_cases import hf_offline
from tests.hub_cases import BENCH_REPO, HubWorld, hub_with, lay_out, make_world
from tests.hub_snapshots import hub_offline
from toolchain.errors import ExitCode
from toolchain.model.manifest import load_manifest

__all__ = ["hf_offline", "hub_offline"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> HubWorld:
    return make_world(tmp_path_factory.mktemp("world"))


def _publish(world: HubWorld, out: Path, *extra: str) -> list[str]:
    return ["publish", "--benchmark", str(world.bench), "--original", str(world.snapshot),
            "--split", "validation", "--out", str(out), "--key", str(world.key),
            *extra]  # fmt: skip


def test_dry_run_lists_the_files_get_then_reads(
    world: HubWorld, tmp_path: Path, hub_offline: Path
) -> None:
    out = tmp_path / "pub"
    r = no_traceback(run_cli(*_publish(world, out, "--push", BENCH_REPO, "--dry-run", "--json"),
                             pinned=True))  # fmt: skip
    assert r.exit_code == ExitCode.OK, r.output
    doc = json.loads(r.output)
    assert doc["commit"] is None and doc["kind"] == "diff" and doc["repo"] == BENCH_REPO
    staging = tmp_path / "staging"  # the repo as uploaded: the listed files, nothing else
    for f in doc["files"]:
        data = (out / f["path"]).read_bytes()
        assert len(data) == f["size"] and hashlib.sha256(data).hexdigest() == f["sha256"][7:]
        (staging / f["path"]).parent.mkdir(parents=True, exist_ok=True)
        (staging / f["path"]).write_bytes(data)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        f["path"] for f in doc["files"]
    ]
    shutil.copytree(world.cache, hub_offline, symlinks=True, dirs_exist_ok=True)
    lay_out(hub_offline, BENCH_REPO, staging, "9a" * 20)
    r = no_traceback(run_cli("get", BENCH_REPO, "--out", tmp_path / "bench",
                             "--pubkey", f"{world.key}.pub", pinned=True))  # fmt: skip
    assert r.exit_code == ExitCode.OK, r.output
    root = str(load_manifest(world.bench / "manifest.json").root)
    assert r.output.splitlines()[-1] == root and "signature OK" in r.output
    r = run_cli("verify", tmp_path / "bench", "-q")
    assert r.exit_code == ExitCode.OK, r.output


def test_publish_prints_the_files_and_the_next_step(world: HubWorld, tmp_path: Path) -> None:
    r = no_traceback(run_cli(*_publish(world, tmp_path / "pub", "--name", BENCH_REPO),
                             pinned=True))  # fmt: skip
    assert r.exit_code == ExitCode.OK, r.output
    assert "a diff publication of root sha256:" in r.output
    assert "publication.json" in r.output and f"upload it with --push {BENCH_REPO}" in r.output


def test_push_offline_is_exit_4_with_the_reason(
    world: HubWorld, tmp_path: Path, hub_offline: Path
) -> None:
    r = no_traceback(run_cli(*_publish(world, tmp_path / "pub", "--push", BENCH_REPO),
                             pinned=True))  # fmt: skip
    assert r.exit_code == ExitCode.ENVIRONMENT
    assert "cannot push" in r.output and "offline mode is on" in r.output
    r = no_traceback(run_cli(*_publish(world, tmp_path / "pub2", "--push", BENCH_REPO, "--json"),
                             pinned=True))  # fmt: skip
    assert json.loads(r.stdout)["error"]["kind"] == "OutputError"


def test_get_errors_are_exit_3(world: HubWorld, tmp_path: Path, hub_offline: Path) -> None:
    hub_with(world, hub_offline)
    r = no_traceback(run_cli("get", BENCH_REPO, "--revision", "v2", "--out", tmp_path / "a"))
    assert r.exit_code == ExitCode.BAD_INPUT and "at revision v2" in r.output
    other = tmp_path / "other.key"
    run_cli("key", "generate", "--out", other)
    r = no_traceback(
        run_cli("get", BENCH_REPO, "--pubkey", f"{other}.pub", "--out", tmp_path / "b")
    )
    assert r.exit_code == ExitCode.BAD_INPUT and "signed by another key" in r.output
    r = no_traceback(run_cli("get", str(world.regen_publication), "--out", tmp_path / "c"))
    assert r.exit_code == ExitCode.BAD_INPUT and "--trust-recipe" in r.output
    r = no_traceback(run_cli("get", str(world.bench), "--out", tmp_path / "d"))
    assert r.exit_code == ExitCode.BAD_INPUT and "not a publication" in r.output
    assert not any((tmp_path / n).exists() for n in "abcd")


def test_get_regenerates_when_trusted(world: HubWorld, tmp_path: Path, hub_offline: Path) -> None:
    hub_with(world, hub_offline, world.regen_publication)
    r = no_traceback(run_cli("get", BENCH_REPO, "--trust-recipe", "--out", tmp_path / "b",
                             "--json", pinned=True))  # fmt: skip
    assert r.exit_code == ExitCode.OK, r.output
    doc = json.loads(r.output)
    assert doc["kind"] == "regenerate"
    assert doc["root"] == str(load_manifest(world.regen_bench / "manifest.json").root)


@pytest.mark.parametrize("command", ["publish", "get"])
def test_help_has_examples(command: str) -> None:
    r = run_cli(command, "--help")
    assert r.exit_code == 0 and "Examples:" in r.output and f"benchmark-regen {command}" in r.output
