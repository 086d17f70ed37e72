"""The Python API from a plain script, ``python script.py``, in a real subprocess: the
README's snippets without ``if __name__ == "__main__":`` run once, at any worker count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compare_cases import pinned_here
from tests.integration.test_determinism import GOLDEN_DEMO_ROOT
from toolchain.demo import demo_original
from toolchain.errors import ExitCode
from toolchain.run.determinism import MARKER, pinned_environ
from toolchain.run.generate import generate_benchmark

BODY = "the script's body runs"

# The README's snippets, pasted one after the other, unguarded.
README_SCRIPT = """\
import toolchain

print({body!r}, flush=True)
result = toolchain.generate_benchmark({original!r}, "gaussian-noise", "bench/", workers={workers})
report = toolchain.verify_benchmark("bench/")
assert report.ok and report.manifest.root == result.root
toolchain.create_diff({original!r}, "bench/", "bench.bdiff", workers={workers})
got = toolchain.get_benchmark({original!r}, "bench.bdiff", "got/", workers={workers})
assert got.ok and toolchain.verify_benchmark("got/").manifest.root == result.root
print("root", result.root)
"""

RECIPE = """\
import sys

import toolchain

@toolchain.recipe(name="flip", version="1", seed=5)
def flip(pixels, rng):
    return pixels[:, ::-1].copy()

"""

UNGUARDED_RECIPE_SCRIPT = (
    RECIPE
    + """\
print({body!r}, flush=True)
try:
    toolchain.generate_benchmark({original!r}, flip, "bench/", workers={workers})
except toolchain.errors.Error as e:
    print(e, file=sys.stderr)
    sys.exit(e.exit_code)
"""
)

GUARDED_RECIPE_SCRIPT = (
    RECIPE
    + """\
def main():
    print({body!r}, flush=True)
    result = toolchain.generate_benchmark({original!r}, flip, "bench/", workers={workers})
    print("root", result.root)


if __name__ == "__main__":
    main()
"""
)


def _run_script(
    tmp_path: Path, text: str, *, pinned: bool = False
) -> subprocess.CompletedProcess[str]:
    """``python script.py`` in ``tmp_path``, as a user runs it (not pinned), or pinned."""
    script = tmp_path / "script.py"
    script.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=pinned_environ(env) if pinned else env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("pinned", [False, True], ids=["user", "pinned"])
@pytest.mark.parametrize("workers", [1, 2])
def test_the_readme_snippets_run_once_and_make_the_golden_root(
    tmp_path: Path, workers: int, pinned: bool
) -> None:
    text = README_SCRIPT.format(body=BODY, original=str(demo_original()), workers=workers)
    proc = _run_script(tmp_path, text, pinned=pinned)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(BODY) == 1, proc.stdout
    assert f"root {GOLDEN_DEMO_ROOT}" in proc.stdout


def test_a_recipe_in_an_unguarded_script_is_refused_before_any_worker_starts(
    tmp_path: Path, small_original: Path
) -> None:
    text = UNGUARDED_RECIPE_SCRIPT.format(body=BODY, original=str(small_original), workers=2)
    proc = _run_script(tmp_path, text)
    assert proc.returncode == ExitCode.BAD_INPUT, proc.stderr
    assert proc.stdout.count(BODY) == 1
    assert "recipe 'flip' (the function flip) is defined in the script being run" in proc.stderr
    assert "script.py" in proc.stderr and "own module" in proc.stderr
    assert 'if __name__ == "__main__":' in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "bench").exists()  # refused before out was prepared


def test_a_recipe_in_a_guarded_script_runs_in_the_workers(
    tmp_path: Path, small_original: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = GUARDED_RECIPE_SCRIPT.format(body=BODY, original=str(small_original), workers=2)
    proc = _run_script(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(BODY) == 1
    # The same recipe, loaded from the same file, made here in this process.
    with pinned_here(monkeypatch):
        expected = generate_benchmark(small_original, f"{tmp_path / 'script.py'}:flip",
                                      tmp_path / "expected")  # fmt: skip
    assert f"root {expected.root}" in proc.stdout
    assert len(expected.manifest.entries) == 8


def test_an_unguarded_script_recipe_runs_here_when_no_worker_is_spawned(
    tmp_path: Path, small_original: Path
) -> None:
    """Pinned, at one worker, the run is made in the script's own process: nothing to load."""
    text = UNGUARDED_RECIPE_SCRIPT.format(body=BODY, original=str(small_original), workers=1)
    proc = _run_script(tmp_path, text, pinned=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(BODY) == 1
    assert (tmp_path / "bench/manifest.json").is_file()
