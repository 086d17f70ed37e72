"""toolchain.cli.options: NO_COLOR, --json errors, the shared options, container_argv,
the progress line."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.cli import generate_args, run_cli
from tests.terminal import start
from toolchain.cli.options import (
    JSON_REQUESTED,
    _Bar,
    color,
    container_argv,
    json_option,
    original_option,
    progress,
    shard_option,
    style,
)


def test_no_color_and_plain_output(small_original: Path, tmp_path: Path) -> None:
    r = run_cli(*generate_args(small_original, tmp_path / "o"), env={"NO_COLOR": "1"}, color=True)
    assert r.exit_code == 0 and "\x1b[" not in r.output and "root sha256:" in r.output


@pytest.mark.parametrize(("value", "expected"), [("1", False), ("anything", False), ("", None)])
def test_no_color_means_any_non_empty_value(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool | None
) -> None:
    monkeypatch.setenv("NO_COLOR", value)
    assert color() is expected
    assert (style("OK", fg="green") == "OK") is (expected is False)


def test_json_errors_go_to_stdout_as_one_object(tmp_path: Path) -> None:
    r = run_cli("verify", tmp_path, "--json")
    assert r.exit_code == 3
    doc = json.loads(r.stdout)
    assert list(doc) == ["error"]
    assert set(doc["error"]) == {"exit_code", "hint", "kind", "message", "sample"}
    assert doc["error"]["exit_code"] == 3
    plain = run_cli("verify", tmp_path)
    assert plain.stdout == "" and plain.stderr.startswith("error: ")


def test_json_option_notes_the_request_for_the_error_handler() -> None:
    seen: dict[str, object] = {}

    @click.command()
    @json_option
    def cmd(as_json: bool) -> None:
        seen["meta"] = click.get_current_context().meta.get(JSON_REQUESTED)
        seen["as_json"] = as_json

    assert CliRunner().invoke(cmd, ["--json"]).exit_code == 0
    assert seen == {"meta": True, "as_json": True}
    CliRunner().invoke(cmd, [])
    assert seen == {"meta": None, "as_json": False}


def test_original_option_builds_the_source_options(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    @click.command()
    @original_option
    def cmd(original: Path, source_options: object) -> None:
        seen.update(original=original, options=source_options)

    r = CliRunner().invoke(
        cmd, ["--original", str(tmp_path), "--split", "validation", "--columns", "-caption"]
    )
    assert r.exit_code == 0, r.output
    from toolchain.source import SourceOptions

    assert seen == {
        "original": tmp_path,
        "options": SourceOptions(split="validation", columns="-caption"),
    }
    r = CliRunner().invoke(cmd, ["--original", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "does not exist" in r.output


@pytest.mark.parametrize(("value", "ok"), [("0/2", True), ("1/2", True), ("2/2", False),
                                           ("x", False), ("1/0", False)])  # fmt: skip
def test_shard_option_parses_or_is_a_usage_error(value: str, ok: bool) -> None:
    @click.command()
    @shard_option
    def cmd(shard: object) -> None:
        click.echo(f"shard {shard}")

    r = CliRunner().invoke(cmd, ["--shard", value])
    if ok:
        assert r.exit_code == 0 and f"shard {value}" in r.output
    else:
        assert r.exit_code == 2 and "Invalid value for '--shard'" in r.output


def test_container_argv_rebuilds_the_command_without_the_container_options() -> None:
    @click.command("generate")
    @click.option("--recipe")
    @click.option("--param", multiple=True)
    @click.option("--workers", type=int, default=1)
    @click.option("--quiet", "-q", is_flag=True)
    @click.option("--resume", is_flag=True)
    @click.option("--original-name", default="")
    @click.option("--scheduler", default=None)
    @click.option("--in-container", is_flag=True)
    @click.option("--image", "image_tag", default="benchmark-regen:latest")
    def cmd(**kw: object) -> None: ...

    ctx = cmd.make_context("generate", [
        "--recipe", "adversarial", "--param", "eps=4", "--param", "steps=2", "-q",
        "--in-container", "--image", "x:1", "--workers", "2",
    ])  # fmt: skip
    with ctx:
        argv = container_argv(ctx, drop=("in_container", "image_tag"))
    # unset flags, empty strings and None are left out; other defaults are spelt out
    assert argv == [
        "generate", "--recipe", "adversarial", "--param", "eps=4", "--param", "steps=2",
        "--workers", "2", "--quiet",
    ]  # fmt: skip


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal (and keeps what is written to it)."""

    def isatty(self) -> bool:
        return True


def test_progress_is_silent_when_quiet_or_not_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal, even under `pytest -s`
    with progress("x", quiet=True) as bar:
        assert bar is None
    with progress("x", quiet=False) as bar:
        assert bar is None
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with progress("x", quiet=True) as bar:
        assert bar is None
    assert terminal.getvalue() == ""
    with progress("x", quiet=False) as bar:
        assert bar is not None
    assert terminal.getvalue() == ""  # no sample reported: nothing drawn, no last line


def test_progress_shows_count_rate_elapsed_eta_and_a_last_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with progress("generate", quiet=False) as bar:
        assert bar is not None
        bar(1, 4)
        bar(4, 4)
    text = terminal.getvalue()
    lines = text.split("\r")
    assert re.search(r"generate  \[#+-*\]  1/4  25%  [\d.]+/s  0:00 elapsed  eta \d:\d\d", text)
    assert "4/4 100%" in text
    assert re.fullmatch(r"generate: 4 samples in \d+\.\d s \([\d.]+/s\) *\n", lines[-1])
    assert text.count("\n") == 1 and "\x1b" not in text  # plain text: NO_COLOR holds
    assert not [t for t in threading.enumerate() if t.name == "generate progress"]


def test_progress_says_where_it_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with pytest.raises(KeyboardInterrupt), progress("diff apply", quiet=False) as bar:
        assert bar is not None
        bar(2, 5)
        raise KeyboardInterrupt
    last = terminal.getvalue().split("\r")[-1]
    assert re.fullmatch(r"diff apply: stopped after 2 of 5 samples, \d+\.\d s *\n", last)


def test_a_stall_shows_as_time_passing() -> None:
    """No sample finishes while the clock moves on: the ticker still redraws, with the
    elapsed time, the rate and the ETA of the new moment (a fake clock: no wall time)."""
    now = [100.0]
    terminal = FakeTerminal()
    with _Bar("generate", terminal, interval=0.01, clock=lambda: now[0]) as bar:
        now[0] = 102.0
        bar.update(6, 10)
        assert "6/10  60%  3.0/s  0:02 elapsed  eta 0:01" in terminal.getvalue()
        now[0] = 112.0  # a stall of 10 s
        for _ in range(3000):  # until the ticker (a tick every 10 ms) draws the new moment
            if "0:12 elapsed" in terminal.getvalue():
                break
            time.sleep(0.01)
        assert "6/10  60%  0.5/s  0:12 elapsed  eta 0:08" in terminal.getvalue()
        now[0] = 100.0 + 3600 + 125.0  # an hour later: h:mm:ss
        bar.update(10, 10)
        assert "10/10 100%  0.0/s  1:02:05 elapsed  eta 0:00" in terminal.getvalue()
    assert re.search(r"\rgenerate: 10 samples in 1:02:05 \(0\.0/s\) *\n\Z", terminal.getvalue())
    assert not bar._ticker.is_alive()


def test_progress_on_a_real_terminal(small_original: Path, tmp_path: Path) -> None:
    """On a pty: the progress line and the last line, no escape sequence with NO_COLOR;
    nothing with --quiet."""
    import os

    env = {**os.environ, "NO_COLOR": "1"}
    with start(generate_args(small_original, tmp_path / "o"), env=env) as term:
        assert term.wait(300) == 0, term.text
    text = term.text
    assert re.search(r"generate  \[[#-]+\]  [1-8]/8 +\d+%  [\d.]+/s  \d:\d\d elapsed  eta", text)
    assert re.search(r"\rgenerate: 8 samples in \d+\.\d s \([\d.]+/s\) *\r\n", text), text
    assert "\x1b" not in text
    with start(["verify", str(tmp_path / "o"), "--quiet"], env=env) as term:
        assert term.wait(300) == 0, term.text
    assert (
        "elapsed" not in term.text
        and "samples in" not in term.text
        and "\r" not in (term.text.replace("\r\n", "\n"))
    )
