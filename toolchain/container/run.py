"""Run benchmark-regen in the image: the mounts, host paths in the argv rewritten to
container paths, and the confinement."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain.container.config import (
    CONTAINER_DIFF,
    CONTAINER_ORIGINAL,
    CONTAINER_OUT,
    DEFAULT_TAG,
    KEY_MOUNT,
)
from toolchain.container.docker import (
    ContainerBackend,
    LineSink,
    Mount,
    RunRequest,
    open_backend,
    print_err,
    print_out,
)
from toolchain.errors import ContainerError
from toolchain.run.runkey import ensure_key_folder

__all__ = ["run_in_container"]


@dataclass(frozen=True, kw_only=True)
class _PathMap:
    host: Path
    container: str


def _mount_for(host: Path, target_dir: str, *, read_only: bool) -> tuple[Mount, _PathMap]:
    """A folder is mounted at ``target_dir``; a file (a tar, a .bdiff) inside it."""
    host = host.resolve()
    if host.is_dir():
        return Mount(source=host, target=target_dir, read_only=read_only), _PathMap(
            host=host, container=target_dir
        )
    if host.is_file():
        target = f"{target_dir}/{host.name}"
        return Mount(source=host, target=target, read_only=read_only), _PathMap(
            host=host, container=target
        )
    raise ContainerError(f"{host} does not exist, so it cannot be mounted at {target_dir}")


def _rewrite(arg: str, maps: Sequence[_PathMap]) -> str:
    """Replace a host path (alone, or after ``--opt=``) by its container path."""
    prefix, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if not value:
        return arg
    candidate = Path(value)
    if not (candidate.is_absolute() or os.sep in value or candidate.exists()):
        return arg  # not a path: a recipe name, a number, a flag
    resolved = candidate.resolve()
    for m in maps:
        if resolved == m.host:
            return f"{prefix}{sep}{m.container}"
        if resolved.is_relative_to(m.host):
            return f"{prefix}{sep}{m.container}/{resolved.relative_to(m.host).as_posix()}"
    return arg


def run_in_container(
    argv: Sequence[str],
    *,
    image: str = DEFAULT_TAG,
    original: Path | None = None,
    out: Path | None = None,
    diff: Path | None = None,
    backend: ContainerBackend | None = None,
    env: Mapping[str, str] | None = None,
    stream: LineSink = print_out,
    stream_err: LineSink = print_err,
) -> int:
    """Run ``benchmark-regen *argv`` in ``image``; return its exit code.

    ``original`` and ``diff`` are mounted read-only at /original and /diff,
    ``out`` (created if missing) read-write at /out; host paths in ``argv``
    that point into them are rewritten to the container paths. With ``out``, the
    user's run-key folder is mounted as :data:`KEY_MOUNT` says, so that a resumed
    run in a new container trusts the journal of the one before. The container runs
    as the invoking uid:gid (so the output and the keys belong to the caller), with
    no network and no capabilities.
    """
    with open_backend(backend) as backend:
        mounts: list[Mount] = []
        maps: list[_PathMap] = []
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        for host, target, read_only in (
            (original, CONTAINER_ORIGINAL, True),
            (diff, CONTAINER_DIFF, True),
            (out, CONTAINER_OUT, False),
        ):
            if host is not None:
                mount, path_map = _mount_for(host, target, read_only=read_only)
                mounts.append(mount)
                maps.append(path_map)
        run_env = dict(env or {})
        keys = ensure_key_folder() if out is not None else None
        if keys is not None:
            mounts.append(Mount(source=keys, target=KEY_MOUNT.target, read_only=False))
            run_env.update(KEY_MOUNT.env)
        if backend.inspect(image) is None:
            raise ContainerError(
                f"image {image} is not in the engine at {backend.engine()}",
                hint="build it with `benchmark-regen image build`",
            )
        request = RunRequest(
            image=image,
            argv=tuple(_rewrite(arg, maps) for arg in argv),
            mounts=tuple(mounts),
            user=f"{os.getuid()}:{os.getgid()}",
            network="none",
            cap_drop=("ALL",),
            env=run_env,
        )
        return backend.run(request, on_stdout=stream, on_stderr=stream_err)
