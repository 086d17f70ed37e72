"""The pinned container: build the image, run benchmark-regen inside it.

The image holds CPython 3.11 and exactly the wheels of
``lockfiles/requirements.txt`` plus the project's own wheel, so a root hash
computed inside it does not depend on the host's libraries. Building is a
pipeline of small steps::

    build_wheelhouse   lockfile ──pip download (hashes)──▶ wheelhouse/ + project wheel
    build_image        wheelhouse ──install-venv.sh in the base──▶ /opt/venv
                       /opt/venv ──deterministic tar──▶ layer ──config──▶ docker load
                       image ──runtime fingerprint──▶ label ──▶ final image ID

Two routes share ``docker/install-venv.sh`` and the values below:

* ``method="assemble"`` (default) runs the install in a container of the base
  image and writes the top layer and the config itself, with sorted entries
  and fixed times, so the same inputs give the same image ID;
* ``method="dockerfile"`` runs ``docker build`` on ``docker/Dockerfile`` for
  engines with a registry; its image ID changes with every build (the classic
  builder stamps times into layers and config).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from toolchain._internal.docker_backend import (
    BuildRequest,
    ContainerBackend,
    DockerSDKBackend,
    ImageInfo,
    Mount,
    RunRequest,
)
from toolchain._internal.image_layout import (
    LayerEntry,
    entries_from_tree,
    image_config,
    write_archive,
    write_layer,
)
from toolchain.determinism import PINNED
from toolchain.errors import ContainerError

__all__ = [
    "BASE_IMAGE_DEBIAN",
    "CONTAINER_DIFF",
    "CONTAINER_ORIGINAL",
    "CONTAINER_OUT",
    "DEFAULT_TAG",
    "IMAGE_ENV",
    "ImageRef",
    "Wheelhouse",
    "build_image",
    "build_wheelhouse",
    "image_fingerprint",
    "run_in_container",
]

DEFAULT_TAG = "benchmark-regen:latest"
BASE_IMAGE_DEBIAN = "benchmark-regen-base:bookworm"
"""The offline base made by ``docker/make-base.sh`` (no registry needed)."""

CONTAINER_ORIGINAL = "/original"
CONTAINER_OUT = "/out"
CONTAINER_DIFF = "/diff"

SOURCE_DATE_EPOCH = 1767225600
"""2026-01-01T00:00:00Z: every time written into the image, unless overridden."""

# The runtime config of the image. docker/Dockerfile declares the same values;
# tests/unit/test_container.py checks that the two agree.
IMAGE_UID = 10001
IMAGE_USER = f"{IMAGE_UID}:{IMAGE_UID}"
IMAGE_WORKDIR = "/work"
IMAGE_ENTRYPOINT = ("benchmark-regen",)
IMAGE_CMD = ("--help",)
PASSWD_LINE = f"regen:x:{IMAGE_UID}:{IMAGE_UID}:benchmark-regen:/home/regen:/usr/sbin/nologin"
GROUP_LINE = f"regen:x:{IMAGE_UID}:"
IMAGE_ENV: Mapping[str, str] = {
    "PATH": "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/home/regen",
    # Belt and braces: the CLI re-executes itself pinned anyway, but a process
    # started in the image without it (a Dask worker, `python -c`) is pinned
    # too. The values come from the determinism guard, the one source of truth.
    **{name: setting.value for name, setting in PINNED.items() if setting.value},
    "PYTHONDONTWRITEBYTECODE": "1",
}
MOUNTS_LABEL = f"{CONTAINER_ORIGINAL}:ro {CONTAINER_OUT}:rw {CONTAINER_DIFF}:ro"

# Fingerprint keys that describe the CPU of the machine that ran the probe,
# not the image: left out of the image label so that the same inputs give the
# same image ID on any x86-64 build machine.
_HOST_KEYS = frozenset({"numpy.simd.in_use"})

_PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "MANIFEST.in")
_MANYLINUX = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)]

Stream = Callable[[str], None]


@contextmanager
def _engine(backend: ContainerBackend | None) -> Iterator[ContainerBackend]:
    """The caller's backend, or a Docker SDK one that is closed afterwards."""
    if backend is not None:
        yield backend
        return
    with DockerSDKBackend() as owned:
        yield owned


def _print_out(line: str) -> None:
    print(line, flush=True)


def _print_err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True, kw_only=True)
class ImageRef:
    """A built image: its content-derived ID and the tag pointing at it."""

    id: str
    tag: str

    def __str__(self) -> str:
        return f"{self.tag}@{self.id}"


@dataclass(frozen=True, kw_only=True)
class Wheelhouse:
    """A folder of hash-checked wheels plus the requirements file that installs them."""

    path: Path
    requirements: Path
    project_wheel: Path
    lockfile_sha256: str


# --- wheelhouse --------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run_tool(argv: Sequence[str], *, what: str, env: Mapping[str, str] | None = None) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ContainerError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def _build_project_wheel(project_dir: Path, dest: Path, *, epoch: int) -> Path:
    """The project's wheel, built from a clean copy (no build/ or egg-info left behind).

    SOURCE_DATE_EPOCH fixes the zip entry times, so the same sources and the
    same setuptools give the same wheel bytes.
    """
    for old in dest.glob("benchmark_regen-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="benchmark-regen-src-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in _PROJECT_FILES:
            if (project_dir / name).is_file():
                shutil.copy2(project_dir / name, src / name)
        shutil.copytree(
            project_dir / "toolchain",
            src / "toolchain",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0"}
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest)]
        if importlib.util.find_spec("setuptools") is not None:
            # The environment's own setuptools: no index needed, and the same
            # setuptools gives the same wheel bytes.
            argv.append("--no-build-isolation")
        _run_tool([*argv, str(src)], what="building the project wheel", env=env)
    wheels = sorted(dest.glob("benchmark_regen-*.whl"))
    if len(wheels) != 1:
        raise ContainerError(f"building the project wheel left {len(wheels)} wheels in {dest}")
    return wheels[0]


def build_wheelhouse(
    *,
    dest: Path | None = None,
    lockfile: Path | None = None,
    project_dir: Path | None = None,
    epoch: int = SOURCE_DATE_EPOCH,
) -> Wheelhouse:
    """Download the locked wheels (hash-checked) and build the project wheel into ``dest``.

    The image build has no network, so everything it installs comes from
    here. ``dest/requirements.txt`` is the lockfile plus one hashed line for
    the project wheel, installed with ``--require-hashes``. Wheels already in
    ``dest`` with the right hash are not downloaded again.
    """
    project_dir = project_dir or _repo_root()
    lockfile = lockfile or project_dir / "lockfiles" / "requirements.txt"
    dest = dest or project_dir / "wheelhouse"
    if not lockfile.is_file():
        raise ContainerError(f"lockfile {lockfile} not found", hint="run `nox -s lock`")
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [a for p in [*_MANYLINUX, "manylinux2014_x86_64"] for a in ("--platform", p)]
    pip = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
    target = ["--python-version", "3.11", "--implementation", "cp", *platforms]
    abis = ["--abi", "cp311", "--abi", "abi3", "--abi", "none"]
    locked = ["--require-hashes", "--only-binary", ":all:", "--no-deps", "-r", str(lockfile)]
    _run_tool([*pip, *target, *abis, *locked, "-d", str(dest)], what="downloading the wheels")
    wheel = _build_project_wheel(project_dir, dest, epoch=epoch)
    version = wheel.name.split("-")[1]
    requirements = dest / "requirements.txt"
    lock_text = lockfile.read_text()
    requirements.write_text(
        lock_text.rstrip("\n")
        + f"\nbenchmark-regen=={version} \\\n    --hash=sha256:{_sha256(wheel)}\n"
    )
    return Wheelhouse(
        path=dest,
        requirements=requirements,
        project_wheel=wheel,
        lockfile_sha256=hashlib.sha256(lock_text.encode()).hexdigest(),
    )


# --- image -------------------------------------------------------------------


def _revision(project_dir: Path) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    except OSError:
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def _build_context(wheelhouse: Wheelhouse, project_dir: Path, tmp: Path) -> Path:
    """Dockerfile + install-venv.sh + the wheelhouse (wheels and requirements only)."""
    context = tmp / "context"
    (context / "wheelhouse").mkdir(parents=True)
    for name in ("Dockerfile", "install-venv.sh"):
        shutil.copy2(project_dir / "docker" / name, context / name)
    for item in sorted(wheelhouse.path.iterdir()):
        if item.suffix == ".whl" or item.name == "requirements.txt":
            target = context / "wheelhouse" / item.name
            try:
                os.link(item, target)  # same file system: no 90 MB copy
            except OSError:
                shutil.copy2(item, target)
    return context


def _merge_env(base_env: Sequence[str], extra: Mapping[str, str]) -> list[str]:
    """Docker's ENV semantics: existing names are replaced in place, new ones appended."""
    env = dict(item.split("=", 1) for item in base_env if "=" in item)
    env.update(extra)
    return [f"{name}={value}" for name, value in env.items()]


def _labels(
    *, revision: str, lockfile_sha256: str, base_ref: str, fingerprint: str | None
) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.title": "benchmark-regen",
        "org.opencontainers.image.revision": revision,
        "io.benchmark-regen.lockfile-sha256": lockfile_sha256,
        "io.benchmark-regen.mounts": MOUNTS_LABEL,
        # The name, not the ID: `docker import` stamps the import time into the
        # base's ID, while its layers (named by content in rootfs.diff_ids)
        # are the same on every run of make-base.sh.
        "io.benchmark-regen.base-image": base_ref,
    }
    if fingerprint is not None:
        labels["io.benchmark-regen.fingerprint"] = fingerprint
    return labels


def _install_venv(
    backend: ContainerBackend, *, base: str, context: Path, stage: Path, stream: Stream
) -> None:
    """Run install-venv.sh in a container of the base; /opt/venv is a host folder."""
    venv, etc = stage / "venv", stage / "etc"
    venv.mkdir()
    etc.mkdir()
    script = (
        "sh /context/install-venv.sh /context/wheelhouse /opt/venv"
        " && cat /etc/passwd > /stage-etc/passwd && cat /etc/group > /stage-etc/group"
    )
    code = backend.run(
        RunRequest(
            image=base,
            argv=("-c", script),
            entrypoint=("/bin/sh",),
            mounts=(
                Mount(source=context, target="/context", read_only=True),
                Mount(source=venv, target="/opt/venv", read_only=False),
                Mount(source=etc, target="/stage-etc", read_only=False),
            ),
            user=f"{os.getuid()}:{os.getgid()}",
            env={"HOME": "/tmp"},  # noqa: S108 (inside the container, not here)
        ),
        on_stdout=stream,
        on_stderr=stream,
    )
    if code != 0:
        raise ContainerError(f"installing the wheels into {base} failed (exit {code})")


def _app_layer(stage: Path) -> list[LayerEntry]:
    """The top layer: /opt/venv, the user, and the mount points."""
    passwd = (stage / "etc" / "passwd").read_text().rstrip("\n") + f"\n{PASSWD_LINE}\n"
    group = (stage / "etc" / "group").read_text().rstrip("\n") + f"\n{GROUP_LINE}\n"
    entries = [
        LayerEntry(path="etc", kind="dir", mode=0o755),
        LayerEntry(path="etc/passwd", kind="file", mode=0o644, data=passwd.encode()),
        LayerEntry(path="etc/group", kind="file", mode=0o644, data=group.encode()),
        LayerEntry(path="opt", kind="dir", mode=0o755),
        LayerEntry(path="home", kind="dir", mode=0o755),
        LayerEntry(path=CONTAINER_ORIGINAL[1:], kind="dir", mode=0o755),
        LayerEntry(path=CONTAINER_DIFF[1:], kind="dir", mode=0o755),
    ]
    for owned in (CONTAINER_OUT, IMAGE_WORKDIR, "/home/regen"):
        entries.append(
            LayerEntry(path=owned[1:], kind="dir", mode=0o755, uid=IMAGE_UID, gid=IMAGE_UID)
        )
    return entries + entries_from_tree(stage / "venv", "opt/venv")


def image_fingerprint(
    image: str, *, backend: ContainerBackend | None = None
) -> tuple[str, dict[str, str]]:
    """The runtime fingerprint measured in ``image`` and the digest used as its label.

    The probe runs pinned (as the CLI does) and returns the full fingerprint;
    the label digest leaves out keys that describe the probing CPU
    (``numpy.simd.in_use``), so it is a property of the image alone.
    """
    with _engine(backend) as backend:
        probe = (
            "import json, subprocess, sys\n"
            "from toolchain.determinism import pinned_environ\n"
            "code = 'import json; from toolchain.fingerprint import runtime_fingerprint as f; "
            "print(json.dumps(dict(f()), sort_keys=True))'\n"
            "sys.exit(subprocess.call([sys.executable, '-c', code], env=pinned_environ()))\n"
        )
        out: list[str] = []
        err: list[str] = []
        code = backend.run(
            RunRequest(image=image, argv=("-c", probe), entrypoint=("python",)),
            on_stdout=out.append,
            on_stderr=err.append,
        )
        if code != 0 or not out:
            raise ContainerError(
                f"measuring the runtime fingerprint in {image} failed (exit {code}):\n"
                + "\n".join(err[-10:])
            )
        from toolchain.fingerprint import fingerprint_digest

        fp: dict[str, str] = json.loads(out[-1])
        return fingerprint_digest({k: v for k, v in fp.items() if k not in _HOST_KEYS}), fp


def _assemble(
    backend: ContainerBackend,
    *,
    base: ImageInfo,
    base_ref: str,
    context: Path,
    tag: str,
    labels: Mapping[str, str],
    epoch: int,
    tmp: Path,
    stream: Stream,
) -> str:
    stage = tmp / "stage"
    stage.mkdir()
    _install_venv(backend, base=base_ref, context=context, stage=stage, stream=stream)
    layer = tmp / "layer.tar"
    diff_id = write_layer(_app_layer(stage), layer, mtime=epoch)
    stream(f"app layer {diff_id} ({layer.stat().st_size // (1 << 20)} MiB)")
    shutil.rmtree(stage)

    def load(final_labels: Mapping[str, str]) -> str:
        runtime = {
            "Entrypoint": list(IMAGE_ENTRYPOINT),
            "Cmd": list(IMAGE_CMD),
            "Env": _merge_env(base.env, IMAGE_ENV),
            "Labels": dict(sorted(final_labels.items())),
            "User": IMAGE_USER,
            "WorkingDir": IMAGE_WORKDIR,
        }
        history = [f"base layer {i} of {base_ref}" for i in range(len(base.diff_ids))]
        history.append("benchmark-regen: /opt/venv (docker/install-venv.sh), user, mounts")
        config = image_config(
            diff_ids=[*base.diff_ids, diff_id],
            runtime=runtime,
            history=history,
            epoch=epoch,
            architecture=base.architecture,
            os_name=base.os,
        )
        archive = tmp / "image.tar"
        image_id = write_archive(
            archive,
            config=config,
            layers=[*((d, None) for d in base.diff_ids), (diff_id, layer)],
            tag=tag,
        )
        backend.load(archive)
        archive.unlink()
        return image_id

    unlabelled = load(labels)
    digest, _ = image_fingerprint(unlabelled, backend=backend)
    stream(f"runtime fingerprint {digest}")
    final = load({**labels, "io.benchmark-regen.fingerprint": digest})
    if final != unlabelled:
        backend.remove_image(unlabelled)
    return final


def build_image(
    *,
    tag: str = DEFAULT_TAG,
    base_image: str | None = None,
    method: Literal["assemble", "dockerfile"] = "assemble",
    backend: ContainerBackend | None = None,
    wheelhouse: Wheelhouse | None = None,
    project_dir: Path | None = None,
    no_cache: bool = False,
    epoch: int = SOURCE_DATE_EPOCH,
    stream: Stream = _print_err,
) -> ImageRef:
    """Build the pinned image and tag it; return its ID.

    ``base_image`` defaults to the offline Debian base (``make-base.sh``)
    for ``assemble`` and to the Dockerfile's digest-pinned default for
    ``dockerfile``. See the module docstring for the two methods.
    """
    with _engine(backend) as backend:
        project_dir = project_dir or _repo_root()
        if method == "assemble":
            base_image = base_image or BASE_IMAGE_DEBIAN
        base = backend.inspect(base_image) if base_image else None
        if base_image and base is None:
            raise ContainerError(
                f"base image {base_image} is not in the engine at {backend.engine()}",
                hint="make the offline base with `bash docker/make-base.sh`"
                if base_image == BASE_IMAGE_DEBIAN
                else f"pull it first (`docker pull {base_image}`)",
            )
        wheelhouse = wheelhouse or build_wheelhouse(project_dir=project_dir, epoch=epoch)
        revision = _revision(project_dir)
        with tempfile.TemporaryDirectory(prefix="benchmark-regen-image-") as tmp_name:
            tmp = Path(tmp_name)
            context = _build_context(wheelhouse, project_dir, tmp)
            if method == "assemble":
                assert base is not None and base_image is not None
                labels = _labels(
                    revision=revision,
                    lockfile_sha256=wheelhouse.lockfile_sha256,
                    base_ref=base_image,
                    fingerprint=None,
                )
                image_id = _assemble(
                    backend, base=base, base_ref=base_image, context=context, tag=tag,
                    labels=labels, epoch=epoch, tmp=tmp, stream=stream,
                )  # fmt: skip
            else:
                build_args = {"REVISION": revision, "LOCKFILE_SHA256": wheelhouse.lockfile_sha256}
                if base_image:
                    build_args["BASE_IMAGE"] = base_image
                image_id = backend.build(
                    BuildRequest(
                        context=context,
                        dockerfile="Dockerfile",
                        tag=tag,
                        build_args=build_args,
                        no_cache=no_cache,
                    ),
                    on_line=stream,
                )
        backend.tag(image_id, tag)
        return ImageRef(id=image_id, tag=tag)


# --- run ---------------------------------------------------------------------


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
    stream: Stream = _print_out,
    stream_err: Stream = _print_err,
) -> int:
    """Run ``benchmark-regen *argv`` in ``image``; return its exit code.

    ``original`` and ``diff`` are mounted read-only at /original and /diff,
    ``out`` (created if missing) read-write at /out; host paths in ``argv``
    that point into them are rewritten to the container paths. The container
    runs as the invoking uid:gid (so the output belongs to the caller), with
    no network and no capabilities.
    """
    with _engine(backend) as backend:
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
            env=dict(env or {}),
        )
        return backend.run(request, on_stdout=stream, on_stderr=stream_err)
