"""The runtime fingerprint: everything that can change a pixel, as flat strings (no host
names, paths or times); its fields are listed in docs/determinism.md."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib
import json
import os
import platform
import sys
from collections.abc import Mapping
from functools import cache
from typing import Any

from toolchain._internal.release import VERSION
from toolchain.run.determinism import PINNED, process_is_pinned

__all__ = ["fingerprint_digest", "runtime_digest", "runtime_fingerprint"]

_PIL_LIBS = ("jpg", "zlib", "webp", "libtiff", "littlecms2", "freetype2")


def _zstandard_version() -> str:
    """The zstd binding's version, or ``absent``."""
    try:
        import zstandard
    except ImportError:
        return "absent"
    return str(zstandard.__version__)


class _DlPhdrInfo(ctypes.Structure):
    # The first two fields of glibc's (and musl's) struct dl_phdr_info; the rest is unused.
    _fields_ = [("dlpi_addr", ctypes.c_void_p), ("dlpi_name", ctypes.c_char_p)]


_DL_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(_DlPhdrInfo), ctypes.c_size_t, ctypes.c_void_p
)


def _loaded_libraries() -> list[str]:
    """Paths of the shared objects loaded in this process, from the dynamic loader itself.

    ``dl_iterate_phdr`` needs no /proc: under qemu-user in a chroot without
    /proc (how an arm64 root is often run on an x86-64 machine),
    /proc/self/maps reads empty, which left the BLAS probe with nothing.
    /proc/self/maps remains the fallback where the C library lacks the call.
    """
    names: list[str] = []

    def visit(info: Any, _size: int, _data: Any) -> int:
        name = info.contents.dlpi_name
        if name:
            names.append(os.fsdecode(name))
        return 0

    try:
        iterate = ctypes.CDLL(None).dl_iterate_phdr
    except (OSError, AttributeError):
        return _maps_libraries()
    iterate.argtypes = [_DL_CALLBACK, ctypes.c_void_p]
    iterate.restype = ctypes.c_int
    iterate(_DL_CALLBACK(visit), None)
    return names or _maps_libraries()


def _maps_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            return [ln.split()[-1] for ln in f if "/" in ln]
    except OSError:
        return []


def _openblas_info() -> dict[str, str]:
    """Vendor, core type and threads of the loaded OpenBLAS, read via its C API."""
    info: dict[str, str] = {}
    libs = sorted({p for p in _loaded_libraries() if "openblas" in os.path.basename(p).lower()})
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_", ""):
            for suffix in ("64_", ""):
                core = getattr(lib, f"{prefix}get_corename{suffix}", None)
                if core is None:
                    continue
                core.restype = ctypes.c_char_p
                info["blas.coretype"] = (core() or b"").decode()
                threads = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                if threads is not None:
                    info["blas.threads"] = str(threads())
                config = getattr(lib, f"{prefix}get_config{suffix}", None)
                if config is not None:
                    config.restype = ctypes.c_char_p
                    info["blas.config"] = " ".join((config() or b"").decode().split())
                return info
    return info


def _numpy_info() -> dict[str, str]:
    import numpy as np

    info = {"numpy": np.__version__}
    try:
        m = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:  # numpy 1.x
        m = importlib.import_module("numpy.core._multiarray_umath")
    info["numpy.simd.baseline"] = " ".join(m.__cpu_baseline__)
    info["numpy.simd.in_use"] = " ".join(f for f in m.__cpu_dispatch__ if m.__cpu_features__.get(f))
    with contextlib.suppress(Exception):
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        info["blas.vendor"] = f"{blas.get('name', '?')} {blas.get('version', '?')}"
    return info


def _pillow_info() -> dict[str, str]:
    import PIL
    from PIL import features

    info = {"pillow": PIL.__version__}
    for lib in _PIL_LIBS:
        with contextlib.suppress(Exception):
            info[f"pillow.{lib}"] = str(features.version(lib) or "absent")
    for feature in ("libjpeg_turbo", "zlib_ng"):
        with contextlib.suppress(Exception):
            info[f"pillow.{feature}"] = str(features.version(feature) or "absent")
    return info


@cache
def runtime_fingerprint() -> Mapping[str, str]:
    """The fingerprint of *this* process (call it where pixels are computed)."""
    fp: dict[str, str] = {
        "python": platform.python_version(),
        "python.implementation": sys.implementation.name,
        "platform.machine": platform.machine(),
        "platform.system": platform.system(),
        "toolchain": VERSION,
        "pinned": str(process_is_pinned()).lower(),
    }
    fp.update(_numpy_info())
    fp.update(_openblas_info())
    fp.update(_pillow_info())
    fp["zstandard"] = _zstandard_version()
    # NPY_DISABLE_CPU_FEATURES itself is not recorded: it lists what *this* CPU
    # had to switch off; what matters, and is recorded, is numpy.simd.in_use.
    for name in sorted(PINNED):
        fp[f"env.{name}"] = os.environ.get(name, "")
    fp["env.umask"] = _current_umask()
    return dict(sorted(fp.items()))


def _current_umask() -> str:
    mask = os.umask(0)
    os.umask(mask)
    return f"{mask:04o}"


@cache
def runtime_digest() -> str:
    """:func:`fingerprint_digest` of :func:`runtime_fingerprint`, computed once per process."""
    return fingerprint_digest(runtime_fingerprint())


def fingerprint_digest(fp: Mapping[str, str]) -> str:
    """A short, order-independent digest of a fingerprint, for comparison."""
    blob = json.dumps(dict(fp), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
