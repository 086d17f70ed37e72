"""The determinism guard: every process that computes pixels starts pinned (:data:`PINNED`).
How it works on process boundaries, and why each setting: docs/determinism.md."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import platform
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from toolchain.errors import DeterminismError

if TYPE_CHECKING:
    import multiprocessing.context

# multiprocessing, subprocess and the cache's writer are imported where they are used: every
# command's first process imports this module before it re-executes itself (_entry.py).

__all__ = [
    "MARKER",
    "PINNED",
    "PinnedSetting",
    "apply_process_settings",
    "openblas_coretype",
    "pinned_environ",
    "pinned_spawn_context",
    "probe_simd_dispatch",
    "process_is_pinned",
    "reexec_pinned",
    "started_pinned",
]

MARKER = "BENCHMARK_REGEN_PINNED"
"""Set in a pinned process's environment to the digest of the pinned values."""


class PinnedSetting(NamedTuple):
    value: str
    reason: str


_CORETYPE = {"x86_64": "Haswell", "amd64": "Haswell", "aarch64": "ARMV8", "arm64": "ARMV8"}


def openblas_coretype(machine: str) -> str:
    """The OpenBLAS kernel pinned on CPU architecture ``machine`` (``x86_64``, ``arm64``, ...)."""
    return _CORETYPE.get(machine.lower(), "")


PINNED: Mapping[str, PinnedSetting] = {
    "OPENBLAS_NUM_THREADS": PinnedSetting(
        "1", "a threaded GEMM splits sums differently, changing float results"
    ),
    "OMP_NUM_THREADS": PinnedSetting("1", "same for any OpenMP-threaded BLAS or library"),
    "MKL_NUM_THREADS": PinnedSetting("1", "same for Intel MKL"),
    "BLIS_NUM_THREADS": PinnedSetting("1", "same for BLIS"),
    "VECLIB_MAXIMUM_THREADS": PinnedSetting("1", "same for Apple Accelerate"),
    "NUMEXPR_NUM_THREADS": PinnedSetting("1", "same for numexpr, used by some corruption code"),
    "MKL_CBWR": PinnedSetting(
        "COMPATIBLE", "MKL otherwise picks code paths by CPU, changing results across machines"
    ),
    "OPENBLAS_CORETYPE": PinnedSetting(
        openblas_coretype(platform.machine()),
        "OpenBLAS otherwise picks its GEMM kernel by CPU; kernels round differently",
    ),
    "PYTHONHASHSEED": PinnedSetting(
        "6640",
        "set iteration order must not vary by run; 6640 is the fixed seed Dask's nanny "
        "gives its workers, so Dask workers are pinned too",
    ),
    "LC_ALL": PinnedSetting("C.UTF-8", "number formatting and sorting must not follow the locale"),
    "LANG": PinnedSetting("C.UTF-8", "same, for programs that read LANG only"),
    "TZ": PinnedSetting("UTC", "nothing may depend on the local time zone"),
}
NPY_FEATURES = "NPY_DISABLE_CPU_FEATURES"
NPY_REASON = (
    "numpy's runtime SIMD dispatch changes results (e.g. AVX-512 exp/sin differ by an ULP), "
    "so every dispatched feature is disabled and only the compiled baseline runs"
)
UMASK = 0o022
UMASK_REASON = "output files get the same permission bits everywhere"

_PROBE = """
import json
try:
    from numpy._core import _multiarray_umath as m
except ImportError:
    from numpy.core import _multiarray_umath as m
print(json.dumps({"dispatch": list(m.__cpu_dispatch__),
                  "features": sorted(k for k, v in m.__cpu_features__.items() if v)}))
"""


@functools.cache
def probe_simd_dispatch(python: str | None = None) -> list[str]:
    """Names of numpy's dispatched SIMD targets that this CPU supports.

    Feature names differ between numpy versions (``AVX2`` in 1.x, ``X86_V3`` in
    2.4), so they are read from the numpy that will run, in a clean subprocess (about
    0.2 s: numpy's import). The answer is kept in the user's cache under a key of
    everything it depends on (:func:`_probe_key`), so later starts skip the subprocess.
    """
    key = _probe_key() if python in (None, sys.executable) else None
    cached = _read_probe_cache(key)
    if cached is not None:
        return cached
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != NPY_FEATURES}
    env["OPENBLAS_NUM_THREADS"] = "1"
    try:
        out = subprocess.run(
            [python or sys.executable, "-c", _PROBE],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        info = json.loads(out)
    except (subprocess.SubprocessError, OSError, json.JSONDecodeError) as e:
        raise DeterminismError(
            f"cannot probe numpy's SIMD features: {e}",
            hint="check that numpy imports in this Python",
        ) from None
    present = set(info["features"])
    found = [f for f in info["dispatch"] if f in present]
    _write_probe_cache(key, found)
    return found


_FEATURE_NAME = re.compile(r"[A-Z0-9_]{1,32}")
_CPU_LINES = ("flags", "features", "isa", "cpu family", "model", "cpu implementer", "cpu part")


def _probe_key() -> str | None:
    """What the probe's answer depends on: this interpreter, the numpy it would import
    (its files' identity, found without importing it), and the CPU as Linux describes it
    (``/proc/cpuinfo``). ``None`` (always probe) where any of that cannot be read, or the
    CPU is emulated (qemu-user shows the host's ``cpuinfo``, not the emulated CPU's)."""
    try:
        spec = importlib.util.find_spec("numpy")
        if spec is None or spec.origin is None:
            return None
        st = os.stat(spec.origin)
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = sorted(
                {ln.strip() for ln in f if ln.lower().split(":", 1)[0].strip() in _CPU_LINES}
            )
    except (OSError, ImportError, ValueError):
        return None
    machine = platform.machine().lower()
    arm = machine in ("aarch64", "arm64")
    if not cpu or arm != any(ln.lower().startswith("features") for ln in cpu):
        return None  # no CPU description, or another architecture's: emulated
    blob = json.dumps(
        [_PROBE, sys.executable, sys.version, machine, spec.origin, st.st_size,
         st.st_mtime_ns, st.st_ino, cpu]
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _probe_cache_file(key: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = base if os.path.isabs(base) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "benchmark-regen", "numpy-simd", f"{key}.json")


def _read_probe_cache(key: str | None) -> list[str] | None:
    """The cached answer for ``key``; ``None`` if there is none or it is not a list of
    feature names (a damaged cache is probed again)."""
    if key is None:
        return None
    try:
        with open(_probe_cache_file(key), "rb") as f:
            doc = json.loads(f.read(65536))
    except (OSError, ValueError, RecursionError):
        return None
    if isinstance(doc, list) and all(
        isinstance(f, str) and _FEATURE_NAME.fullmatch(f) for f in doc
    ):
        return list(doc)
    return None


def _write_probe_cache(key: str | None, features: list[str]) -> None:
    if key is None:
        return
    from pathlib import Path

    from toolchain._internal.atomic import atomic_write

    with contextlib.suppress(OSError):  # a cache that cannot be written costs time only
        atomic_write(Path(_probe_cache_file(key)), json.dumps(features).encode())


def _marker(env: Mapping[str, str]) -> str:
    keys = sorted([*PINNED, NPY_FEATURES])
    blob = json.dumps({k: env.get(k, "") for k in keys}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def pinned_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with every pinned setting applied and marked."""
    env = dict(os.environ if base is None else base)
    for name, setting in PINNED.items():
        if setting.value:
            env[name] = setting.value
        else:
            env.pop(name, None)
    if env.get(MARKER) and env.get(MARKER) == _marker(env) and NPY_FEATURES in env:
        return env  # already pinned by a parent: keep its probe result
    env[NPY_FEATURES] = " ".join(probe_simd_dispatch())
    env[MARKER] = _marker(env)
    return env


def process_is_pinned() -> bool:
    """True when this process was started with the pinned environment."""
    marker = os.environ.get(MARKER)
    return (
        bool(marker)
        and marker == _marker(os.environ)
        and all(os.environ.get(k, "") == s.value for k, s in PINNED.items())
    )


def apply_process_settings() -> None:
    """Settings that live in the process, not the environment: umask, time zone."""
    os.umask(UMASK)
    time.tzset()


_started_pinned = False


def started_pinned() -> bool:
    """True when this process began pinned and was checked to be, before numpy was imported:
    the command's own process (:func:`reexec_pinned`), not a library caller's or a test
    runner's that set the environment itself. A copy of such a process (``fork``) is as
    pinned as a freshly started one."""
    return _started_pinned and process_is_pinned()


def reexec_pinned(argv: list[str]) -> None:
    """Replace this process with a pinned copy of itself, unless it already is pinned.

    Must run before numpy is imported. ``argv`` are the arguments after the
    program name; the copy runs ``python -m toolchain ARGS``.
    """
    if process_is_pinned():
        apply_process_settings()
        global _started_pinned
        _started_pinned = "numpy" not in sys.modules
        return
    if "numpy" in sys.modules:  # pragma: no cover - a programming error
        raise DeterminismError("numpy was imported before the determinism guard ran")
    env = pinned_environ()
    sys.stdout.flush()
    sys.stderr.flush()
    # -P: the working directory is not put on the import path, so a folder named
    # `toolchain` there (another checkout) cannot stand in for the installed package.
    os.execve(sys.executable, [sys.executable, "-P", "-m", "toolchain", *argv], env)


_MAIN_KEYS = ("init_main_from_name", "init_main_from_path")
"""What ``multiprocessing.spawn.get_preparation_data`` records of the parent's ``__main__``
(CPython 3.11): a spawned child imports (and so runs) that module again before it starts."""
_hiding = threading.Lock()
_hidden_depth = 0
_prepare: Callable[[str], dict[str, Any]] | None = None
"""The preparation function that :func:`_main_hidden` wraps (while it does)."""


def _without_main(name: str) -> dict[str, Any]:
    assert _prepare is not None  # set while the block runs
    data = _prepare(name)
    for key in _MAIN_KEYS:
        data.pop(key, None)
    return data


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Children spawned in the block do not import the parent's ``__main__``.

    Every worker entry point lives in an importable ``toolchain`` module, and the job
    reaches a worker pickled by reference to such modules (a script's recipe by its file:
    ``RecipeRef``), so a child needs nothing from ``__main__``. Importing it would run a
    plain script's body again (a library call without ``if __name__ == "__main__":``)
    in every worker. Process-wide while the block runs, like the pinned environment.
    """
    import multiprocessing.spawn

    global _hidden_depth, _prepare
    with _hiding:
        if _hidden_depth == 0:
            _prepare = multiprocessing.spawn.get_preparation_data
            multiprocessing.spawn.get_preparation_data = _without_main
        _hidden_depth += 1
    try:
        yield
    finally:
        with _hiding:
            _hidden_depth -= 1
            if _hidden_depth == 0:
                assert _prepare is not None
                multiprocessing.spawn.get_preparation_data = _prepare  # type: ignore[assignment]


@contextlib.contextmanager
def pinned_spawn_context() -> Iterator[multiprocessing.context.SpawnContext]:
    """A ``spawn`` multiprocessing context whose children start pinned, without
    importing this process's ``__main__`` (they never need it: :func:`_main_hidden`).

    Both hold while the caller starts its processes inside the ``with`` block, and are
    undone afterwards.
    """
    import multiprocessing

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(pinned_environ(saved))
    try:
        with _main_hidden():
            yield multiprocessing.get_context("spawn")
    finally:
        os.environ.clear()
        os.environ.update(saved)
