"""toolchain.cli.main: the root group: commands, --help, --version, and the one place where
library errors, Ctrl-C, SIGTERM and SIGHUP become exit codes and messages (JSON too)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import click
import pytest

from tests.cli import run_cli
from toolchain.cli import cli
from toolchain.errors import ExitCode, Interrupted, OutputError


def test_version_and_help() -> None:
    r = run_cli("--version")
    assert r.exit_code == 0 and "benchmark-regen, version" in r.output
    r = run_cli("--help")
    assert r.exit_code == 0 and "Examples:" in r.output and "Exit codes" in r.output
    for cmd in ("generate", "verify", "env", "demo"):
        r = run_cli(cmd, "--help")
        assert r.exit_code == 0 and "Examples:" in r.output, cmd


def test_every_command_group_is_registered() -> None:
    ctx = click.Context(cli)
    assert set(cli.list_commands(ctx)) == {
        "cluster", "compare", "dask-worker", "demo", "diff", "env", "generate", "get", "image",
        "jobs", "key", "manifest", "publish", "recipes", "sign", "verify",
    }  # fmt: skip
    for name in cli.list_commands(ctx):  # each loads, under its own name
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        assert command is not None
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


SIGNALS = [(signal.SIGTERM, 143), (signal.SIGHUP, 129)]


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize(("signum", "code"), SIGNALS, ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_interrupt_like_ctrl_c_and_exit_128_plus_the_signal(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signum: signal.Signals,
    code: int,
    as_json: bool,
) -> None:
    """A real signal, sent to this process while the command runs; its handler is gone after."""

    def stopped(*args: object, **kwargs: object) -> None:
        signal.raise_signal(signum)

    before = signal.getsignal(signum)
    monkeypatch.setattr("toolchain.audit.verify.verify_benchmark", stopped)
    r = run_cli("verify", tmp_path, *(["--json"] if as_json else []))
    assert r.exit_code == code == 128 + signum
    assert f"{signum.name}: interrupted" in r.stderr and "Traceback" not in r.output
    if as_json:
        assert json.loads(r.stdout)["error"] == {
            "exit_code": code, "kind": "Interrupted", "message": "interrupted",
        }  # fmt: skip
    else:
        assert r.stdout == ""
    assert signal.getsignal(signum) == before


def _interrupted_run(signum: signal.Signals | None) -> object:
    """What a run does when stopped (``toolchain.run.session``): Interrupted, with its hint."""

    def run(*args: object, **kwargs: object) -> None:
        try:
            if signum is None:
                raise KeyboardInterrupt
            signal.raise_signal(signum)
        except KeyboardInterrupt:
            raise Interrupted(
                "interrupted after 1 of 2 samples; no manifest was written",
                hint="run the same command again with --resume to finish the rest",
            ) from None

    return run


@pytest.mark.parametrize(
    ("signum", "code"), [*SIGNALS, (None, 130)], ids=["SIGTERM", "SIGHUP", "Ctrl-C"]
)
def test_an_interrupted_run_keeps_its_resume_hint_and_exits_by_its_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: signal.Signals | None, code: int
) -> None:
    monkeypatch.setattr("toolchain.audit.verify.verify_benchmark", _interrupted_run(signum))
    r = run_cli("verify", tmp_path)
    assert r.exit_code == code
    by = f"{signum.name}: " if signum else ""
    assert r.stderr.startswith(f"error: {by}interrupted after 1 of 2 samples")
    assert "\n  hint: run the same command again with --resume" in r.stderr
    r = run_cli("verify", tmp_path, "--json")
    error = json.loads(r.stdout)["error"]
    assert r.exit_code == error["exit_code"] == code and error["kind"] == "Interrupted"
    assert "--resume" in error["hint"] and error["message"].startswith("interrupted after")


def test_anything_else_is_a_bug_and_is_not_dressed_up_as_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("toolchain.audit.verify.verify_benchmark", bug)
    r = run_cli("verify", tmp_path, "--json")
    assert isinstance(r.exception, ZeroDivisionError)
    assert r.stdout == ""
