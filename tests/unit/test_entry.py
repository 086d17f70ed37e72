"""toolchain._entry: the console script pins the process first (re-executing itself), then runs
the CLI; an already pinned process is not re-executed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from toolchain._entry import prints_only
from toolchain.run.determinism import MARKER, pinned_environ

SCRIPT = "import sys; sys.argv[0] = 'benchmark-regen'; from toolchain._entry import main; main()"


def _entry(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_an_unpinned_start_re_executes_pinned_before_the_cli_runs() -> None:
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    env.update(OPENBLAS_NUM_THREADS="8", TZ="Asia/Tokyo")
    proc = _entry("env", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    fp = json.loads(proc.stdout)
    assert fp["pinned"] == "true" and fp["env.OPENBLAS_NUM_THREADS"] == "1"
    assert fp["env.TZ"] == "UTC"


def test_a_pinned_start_runs_the_cli_in_this_very_process() -> None:
    code = (
        "import sys; sys.argv[0] = 'benchmark-regen';"
        "import toolchain.run.determinism as d; d.os.execve = lambda *a: sys.exit('re-executed');"
        "from toolchain._entry import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--version"], env=pinned_environ(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "benchmark-regen, version" in proc.stdout


def test_exit_codes_come_through_the_re_execution() -> None:
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    proc = _entry("verify", "/nonexistent/benchmark", env=env)
    assert proc.returncode == 3 and "error: " in proc.stderr


@pytest.mark.parametrize(
    ("argv", "prints"),
    [([], True), (["--version"], True), (["--help"], True), (["diff", "apply", "-h"], True),
     (["verify", "./out", "--help"], True), (["generate", "--out", "--help"], False),
     (["verify", "./out"], False), (["--help", "verify"], False), (["env", "--json"], False)],
)  # fmt: skip
def test_only_help_and_version_skip_the_pinned_copy(argv: list[str], prints: bool) -> None:
    assert prints_only(argv) is prints


def test_help_and_version_run_in_this_very_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    code = (
        "import sys; sys.argv[0] = 'benchmark-regen';"
        "import toolchain.run.determinism as d; d.os.execve = lambda *a: sys.exit('re-executed');"
        "from toolchain._entry import main; main()"
    )
    for args in (["--version"], ["diff", "apply", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0 and "re-executed" not in proc.stderr, proc.stderr
        assert "benchmark-regen" in proc.stdout
