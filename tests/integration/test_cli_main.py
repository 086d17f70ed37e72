"""toolchain.cli.main: the root group: commands, --help, --version, and the one place where
library errors become exit codes and messages (JSON too)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from tests.cli import run_cli
from toolchain.cli import cli
from toolchain.errors import ExitCode, OutputError


def test_version_and_help() -> None:
    r = run_cli("--version")
    assert r.exit_code == 0 and "benchmark-regen, version" in r.output
    r = run_cli("--help")
    assert r.exit_code == 0 and "Examples:" in r.output and "Exit codes" in r.output
    for cmd in ("generate", "verify", "env", "demo"):
        r = run_cli(cmd, "--help")
        assert r.exit_code == 0 and "Examples:" in r.output, cmd


def test_every_command_group_is_registered() -> None:
    assert set(cli.commands) == {
        "compare", "dask-worker", "demo", "diff", "env", "generate", "image", "jobs", "key",
        "manifest", "recipes", "sign", "verify",
    }  # fmt: skip


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=" ".join)
def test_every_command_documents_the_exit_codes(path: tuple[str, ...]) -> None:
    r = run_cli(*path, "--help")
    assert r.exit_code == 0, r.output
    assert "Exit codes: 0 ok, 1 check failed" in " ".join(r.output.split())


def test_a_library_error_is_one_message_with_its_hint_and_exit_code(tmp_path: Path) -> None:
    r = run_cli("verify", tmp_path)
    assert r.exit_code == ExitCode.BAD_INPUT
    assert r.stdout == ""
    assert r.stderr.startswith("error: ") and "\n  hint: " in r.stderr
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output


def test_an_error_with_json_is_a_json_object_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OutputError("no space left on device", hint="free some space", sample="a.png")

    monkeypatch.setattr("toolchain.audit.verify.verify_benchmark", full)
    r = run_cli("verify", tmp_path, "--json")
    assert r.exit_code == ExitCode.ENVIRONMENT
    assert json.loads(r.stdout) == {
        "error": {
            "exit_code": 4, "hint": "free some space", "kind": "OutputError",
            "message": "no space left on device", "sample": "a.png",
        }
    }  # fmt: skip
    assert "error: sample 'a.png': no space left on device" in r.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("toolchain.audit.verify.verify_benchmark", interrupted)
    r = run_cli("verify", tmp_path, *(["--json"] if as_json else []))
    assert r.exit_code == ExitCode.INTERRUPTED == 130
    assert "interrupted" in r.stderr
    if as_json:
        assert json.loads(r.stdout)["error"]["kind"] == "Interrupted"
    else:
        assert r.stdout == ""


def test_anything_else_is_a_bug_and_is_not_dressed_up_as_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("toolchain.audit.verify.verify_benchmark", bug)
    r = run_cli("verify", tmp_path, "--json")
    assert isinstance(r.exception, ZeroDivisionError)
    assert r.stdout == ""
