"""toolchain.run.determinism: the pinned environment, its marker, and the process checks (in real
subprocesses: a process is pinned by how it was started, not by what it does later).

The guard end to end (re-exec, golden roots, the positive control) is in
tests/integration/test_determinism.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolchain.errors import DeterminismError
from toolchain.run import determinism
from toolchain.run.determinism import (
    MARKER,
    NPY_FEATURES,
    PINNED,
    pinned_environ,
    pinned_spawn_context,
    probe_simd_dispatch,
    process_is_pinned,
)

BASE = {"PATH": os.environ.get("PATH", ""), "HOME": "/home/x", "TZ": "Europe/Paris",
        "OMP_NUM_THREADS": "8"}  # fmt: skip


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_every_setting_has_a_value_and_a_reason() -> None:
    for name, setting in PINNED.items():
        assert setting.reason, name
        assert setting.value or name == "OPENBLAS_CORETYPE", name
    assert PINNED["OPENBLAS_NUM_THREADS"].value == "1" and PINNED["TZ"].value == "UTC"


def test_pinned_environ_applies_every_setting_and_keeps_the_rest() -> None:
    env = pinned_environ(BASE)
    for name, setting in PINNED.items():
        assert env.get(name) == (setting.value or None), name
    assert env["PATH"] == BASE["PATH"] and env["HOME"] == "/home/x"
    assert NPY_FEATURES in env and len(env[MARKER]) == 16
    assert BASE["TZ"] == "Europe/Paris"  # the base is not modified


def test_an_already_pinned_environment_is_kept_without_probing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = pinned_environ(BASE)

    def no_probe(python: str | None = None) -> list[str]:
        raise AssertionError("probed again")

    monkeypatch.setattr(determinism, "probe_simd_dispatch", no_probe)
    assert pinned_environ(env) == env
    changed = {**env, "TZ": "Asia/Tokyo"}
    assert pinned_environ(changed)["TZ"] == "UTC"  # re-pinned (and its marker kept valid)


def test_the_marker_covers_every_pinned_value() -> None:
    env = pinned_environ(BASE)
    for name in [*PINNED, NPY_FEATURES]:
        tampered = {**env, name: env.get(name, "") + "x"}
        assert determinism._marker(tampered) != env[MARKER], name


CHECK = "from toolchain.run.determinism import process_is_pinned; print(process_is_pinned())"


def test_process_is_pinned_only_when_started_with_the_pinned_environment() -> None:
    env = pinned_environ(BASE)
    assert _python(CHECK, env).stdout.strip() == "True"
    assert _python(CHECK, {k: v for k, v in env.items() if k != MARKER}).stdout.strip() == "False"
    assert _python(CHECK, {**env, "OMP_NUM_THREADS": "4"}).stdout.strip() == "False"
    assert _python(CHECK, {**env, MARKER: "0" * 16}).stdout.strip() == "False"
    assert _python(CHECK, dict(BASE)).stdout.strip() == "False"


def test_pinned_processes_apply_their_process_settings() -> None:
    code = (
        "import os, time, json; from toolchain.run.determinism import reexec_pinned;"
        "reexec_pinned([]);"  # already pinned: applies the settings and returns
        "m = os.umask(0); print(json.dumps([oct(m), time.tzname[0]]))"
    )
    out = _python(code, pinned_environ(BASE))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["0o22", "UTC"]


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ("", "True"),  # the command's own process: pinned before numpy
        ("import numpy;", "False"),  # numpy came first: its settings may not be the pinned
    ],
)
def test_started_pinned_only_when_pinned_before_numpy(first: str, expected: str) -> None:
    code = (
        f"{first}from toolchain.run.determinism import reexec_pinned, started_pinned;"
        "reexec_pinned([]); print(started_pinned())"
    )
    out = _python(code, pinned_environ(BASE))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def test_a_library_caller_did_not_start_pinned() -> None:
    assert not determinism.started_pinned()  # pytest: pinned (if at all) after numpy


def test_numpy_before_the_guard_is_refused() -> None:
    code = "import numpy; from toolchain.run.determinism import reexec_pinned; reexec_pinned([])"
    out = _python(code, dict(BASE))
    assert out.returncode != 0
    assert "numpy was imported before the determinism guard ran" in out.stderr


def test_spawn_context_pins_the_environment_only_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.delenv(MARKER, raising=False)
    before = dict(os.environ)
    with pinned_spawn_context() as ctx:
        assert ctx.get_start_method() == "spawn"
        assert os.environ["OMP_NUM_THREADS"] == "1" and process_is_pinned()
    assert dict(os.environ) == before and not process_is_pinned()


def test_children_spawned_in_the_context_do_not_get_the_main_module() -> None:
    import multiprocessing.spawn as mp_spawn

    original = mp_spawn.get_preparation_data
    here = original("x")
    # pytest's own entry point is __main__ here: by name (python -m pytest) or by path.
    assert {"init_main_from_name", "init_main_from_path"} & set(here)
    with pinned_spawn_context(), pinned_spawn_context():  # nested: undone by the outer one
        data = mp_spawn.get_preparation_data("x")
        assert not {"init_main_from_name", "init_main_from_path"} & set(data)
        assert data["sys_path"] == here["sys_path"] and data["name"] == "x"
    assert mp_spawn.get_preparation_data is original


UNGUARDED = """
import time
from toolchain.run.determinism import pinned_spawn_context
print("body", flush=True)
with pinned_spawn_context() as ctx:
    p = ctx.Process(target=time.sleep, args=(0,))
    p.start()
p.join()
print("child exit", p.exitcode)
"""


def test_a_plain_script_without_a_main_guard_is_not_run_again_by_its_child(tmp_path: Path) -> None:
    """Without the guard multiprocessing would run the script again in the child, which
    then fails ("An attempt has been made to start a new process before...")."""
    script = tmp_path / "script.py"
    script.write_text(UNGUARDED)
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["body", "child exit 0"], out.stdout + out.stderr


def test_the_simd_probe_reads_this_cpus_dispatch_targets() -> None:
    try:
        from numpy._core import _multiarray_umath as m
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as m

    found = probe_simd_dispatch()
    assert set(found) <= set(m.__cpu_dispatch__)
    assert all(m.__cpu_features__.get(f) for f in found)
    with pytest.raises(DeterminismError, match="cannot probe numpy's SIMD features"):
        probe_simd_dispatch("/nonexistent/python3")


@pytest.fixture
def probe_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache for the SIMD probe, and its in-process memo cleared around the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    probe_simd_dispatch.cache_clear()
    yield tmp_path / "cache" / "benchmark-regen" / "numpy-simd"
    probe_simd_dispatch.cache_clear()


def _no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the probe ran a subprocess")

    monkeypatch.setattr(subprocess, "run", refuse)


def test_the_probe_answer_is_cached_for_the_next_start(
    probe_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if determinism._probe_key() is None:
        pytest.skip("no CPU description to key the cache on (not Linux, or emulated)")
    first = probe_simd_dispatch()
    [cached] = probe_cache.iterdir()
    assert json.loads(cached.read_bytes()) == first
    probe_simd_dispatch.cache_clear()
    _no_subprocess(monkeypatch)
    assert probe_simd_dispatch() == first  # read from the cache, no subprocess


@pytest.mark.parametrize("content", [b"", b"{", b'{"AVX2": 1}', b'["AVX2", "X; rm"]', b"[1]"])
def test_a_damaged_probe_cache_is_probed_again(probe_cache: Path, content: bytes) -> None:
    key = determinism._probe_key()
    if key is None:
        pytest.skip("no CPU description to key the cache on (not Linux, or emulated)")
    truth = probe_simd_dispatch()
    probe_simd_dispatch.cache_clear()
    (probe_cache / f"{key}.json").write_bytes(content)
    assert probe_simd_dispatch() == truth
    assert json.loads((probe_cache / f"{key}.json").read_bytes()) == truth  # written anew


def test_the_probe_key_changes_with_numpy_and_is_none_for_an_emulated_cpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib.machinery
    import platform

    key = determinism._probe_key()
    if key is None:
        pytest.skip("no CPU description to key the cache on (not Linux, or emulated)")
    other = tmp_path / "numpy" / "__init__.py"
    other.parent.mkdir()
    other.write_text("")
    spec = importlib.machinery.ModuleSpec("numpy", None, origin=str(other))
    with monkeypatch.context() as m:
        m.setattr(determinism.importlib.util, "find_spec", lambda name: spec)
        assert determinism._probe_key() not in (None, key)  # another numpy: another key
    arm = platform.machine().lower() in ("aarch64", "arm64")
    monkeypatch.setattr(determinism.platform, "machine", lambda: "x86_64" if arm else "aarch64")
    assert determinism._probe_key() is None  # cpuinfo of another architecture: emulated
