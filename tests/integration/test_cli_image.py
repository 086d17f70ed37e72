"""toolchain.cli.image: ``image build`` through Click, without an engine (the build itself
is tested against a fake engine in tests/unit/test_container.py and for real in
tests/integration/test_container.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from toolchain.cli import cli
from toolchain.errors import ExitCode

NOWHERE = "unix:///nonexistent/benchmark-regen-test.sock"


def test_image_group_lists_build(runner: CliRunner) -> None:
    r = runner.invoke(cli, ["image", "--help"])
    assert r.exit_code == 0 and "build" in r.output
    r = runner.invoke(cli, ["image", "build", "--help"])
    assert r.exit_code == 0 and "Examples:" in r.output and "--dockerfile" in r.output


@pytest.mark.parametrize("extra", [[], ["--dockerfile", "--base-image", "python:3.11-slim"]])
def test_build_without_an_engine_names_it_and_exits_4(extra: list[str]) -> None:
    runner = CliRunner(env={"DOCKER_HOST": NOWHERE})
    r = runner.invoke(cli, ["image", "build", "--tag", "benchmark-regen:test", *extra])
    assert r.exit_code == ExitCode.ENVIRONMENT, r.output
    assert f"no Docker engine answers at {NOWHERE}" in r.stderr
    assert "hint: " in r.stderr and "Traceback" not in r.output
    r = runner.invoke(cli, ["image", "build", "--json", *extra])
    assert r.exit_code == ExitCode.ENVIRONMENT
    assert json.loads(r.stdout)["error"]["kind"] == "ContainerError"
