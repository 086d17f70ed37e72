"""The pinned container: build the image, check it against the lock, run benchmark-regen in it.

The image holds CPython 3.11 and exactly the wheels of
``lockfiles/requirements.txt`` plus the project's own wheel, so a root hash
computed inside it does not depend on the host's libraries. It is built for
linux/amd64 and linux/arm64 (under qemu-user-static on an x86-64 machine) as
three layers, split by how often they change::

    base          debootstrap bookworm + python3          lockfiles/debian-base-ARCH.txt
    dependencies  /opt/venv from the hashed lockfile      lockfiles/requirements.txt
    project       the benchmark-regen wheel in /opt/venv  toolchain/, pyproject.toml

plus a canonical config. Building is a pipeline of small steps::

    ensure_base        make-base.sh (debootstrap, package lock) ──▶ base image
    build_wheelhouse   lockfile ──pip download (hashes)──▶ wheels; sdists and the
                       project ──pinned setuptools──▶ wheels; requirements files
    build_image        wheels ──install-venv.sh in the base──▶ /opt/venv
                       /opt/venv ──deterministic tars──▶ dependencies, project layers
                       layers ──config──▶ docker load ──fingerprint──▶ final image ID

Every byte of the image is a function of those inputs, so the image ID,
each layer's diff ID, the OCI manifest and the multi-architecture index are
recorded in ``lockfiles/image.lock`` (:func:`lock_images`) and re-proved by
:func:`check_images` (``benchmark-regen image build --check``), which names
the layer that differs and whether its inputs changed. :func:`save_images`
writes both architectures as one OCI image layout that ``docker load`` reads.

``method="dockerfile"`` runs ``docker build`` on ``docker/Dockerfile`` instead,
for engines with a registry; its image ID changes with every build.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from toolchain.container import lock as image_lock
from toolchain.container.docker import (
    BuildRequest,
    ContainerBackend,
    DockerSDKBackend,
    ImageInfo,
    Mount,
    RunRequest,
)
from toolchain.container.layers import (
    Blob,
    LayerEntry,
    OciImage,
    entries_from_tree,
    image_config,
    oci_index,
    oci_manifest,
    write_archive,
    write_layer,
    write_oci_archive,
)
from toolchain.errors import ContainerError, InputError
from toolchain.run.determinism import PINNED, openblas_coretype

__all__ = [
    "ARCHES",
    "BASE_IMAGE_DEBIAN",
    "CONTAINER_DIFF",
    "CONTAINER_ORIGINAL",
    "CONTAINER_OUT",
    "DEFAULT_TAG",
    "IMAGE_ENV",
    "LAYERS",
    "CheckReport",
    "ImageBuild",
    "ImageRef",
    "Wheelhouse",
    "arch_tag",
    "base_tag",
    "build_image",
    "build_images",
    "build_wheelhouse",
    "check_images",
    "ensure_base",
    "host_arch",
    "image_fingerprint",
    "load_base_rootfs",
    "lock_images",
    "make_base",
    "run_in_container",
    "save_images",
]

DEFAULT_TAG = "benchmark-regen:latest"
ARCHES = ("amd64", "arm64")
"""The architectures of the published image (``lockfiles/image.lock`` holds both)."""
LAYERS = ("base", "dependencies", "project")
"""The image's layers, bottom to top, by rate of change."""


def host_arch() -> str:
    """This machine's architecture in Docker's spelling (``amd64``, ``arm64``)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def base_tag(arch: str) -> str:
    """The offline base made by ``docker/make-base.sh --arch ARCH`` (no registry needed)."""
    return f"benchmark-regen-base:bookworm-{arch}"


def arch_tag(tag: str, arch: str) -> str:
    """The per-architecture tag: ``benchmark-regen:latest`` → ``benchmark-regen:arm64``,
    ``benchmark-regen:test`` → ``benchmark-regen:test-arm64``."""
    repo, sep, name = tag.rpartition(":")
    if not sep or "/" in name:
        repo, name = tag, "latest"
    return f"{repo}:{arch}" if name == "latest" else f"{repo}:{name}-{arch}"


BASE_IMAGE_DEBIAN = base_tag(host_arch())
"""The offline base for this machine's architecture."""

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
IMAGE_CMD = ("image", "about")
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


def image_env(arch: str) -> dict[str, str]:
    """:data:`IMAGE_ENV` for an image of architecture ``arch``: its own OpenBLAS kernel."""
    env = dict(IMAGE_ENV)
    coretype = openblas_coretype(arch)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    return env


MOUNTS_LABEL = f"{CONTAINER_ORIGINAL}:ro {CONTAINER_OUT}:rw {CONTAINER_DIFF}:ro"

# Fingerprint keys that describe the CPU of the machine that ran the probe,
# not the image: left out of the image label so that the same inputs give the
# same image ID on any build machine. numpy's dispatched SIMD set follows the
# CPU; so does OpenBLAS's core type wherever it is detected rather than pinned
# (arm64, and any probe under qemu), and its config string ends with that core.
_HOST_KEYS = frozenset({"numpy.simd.in_use", "blas.coretype", "blas.config"})

BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
BASE_PACKAGES = "python3 python3-venv python3-pip ca-certificates"
BASE_LAYER_SIZE_LABEL = "io.benchmark-regen.base-layer-size"
"""The size of the base's one layer tar: the OCI manifest names it, the engine does not."""
BASE_INPUTS_LABEL = "io.benchmark-regen.base-inputs"
"""The digest of what made the base (make-base.sh, the package lock): a stale base is remade."""
_VARIANTS = {"arm64": "v8"}
_WHEEL_PLATFORMS = {
    "amd64": [*(f"manylinux_2_{m}_x86_64" for m in range(28, 16, -1)), "manylinux2014_x86_64"],
    "arm64": [*(f"manylinux_2_{m}_aarch64" for m in range(28, 16, -1)), "manylinux2014_aarch64"],
}

# What goes into the project wheel. README.md is replaced by a fixed text in
# the wheel (_WHEEL_README): otherwise every edit of the README would change the
# project layer, and with it the committed image ID.
_PROJECT_FILES = ("pyproject.toml", "LICENSE", "setup.cfg", "MANIFEST.in")
_WHEEL_README = (
    "# benchmark-regen\n\nReproducibility-locked regeneration of image benchmarks.\n"
    "See the project's README.md for its documentation.\n"
)
SDIST_ONLY = ("jsonpath-rw",)
"""Locked packages that publish no wheel: built from their hash-checked sdist (noxfile.py)."""

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
    """The checkout that holds docker/ and lockfiles/.

    The package's own parent when it is installed editable (nox); else the
    working directory or one of its parents: `pip install --no-deps .` puts
    the package in site-packages, away from the files the image is built from.
    """
    here = Path.cwd().resolve()
    for candidate in (Path(__file__).resolve().parent.parent, here, *here.parents):
        if (candidate / "docker" / "make-base.sh").is_file() and (
            candidate / "lockfiles" / "requirements.txt"
        ).is_file():
            return candidate
    raise ContainerError(
        f"no benchmark-regen checkout (docker/make-base.sh, lockfiles/) in {here} or above",
        hint="run the image commands from a clone of the repository",
    )


@dataclass(frozen=True, kw_only=True)
class ImageRef:
    """A built image: its content-derived ID and the tag pointing at it."""

    id: str
    tag: str

    def __str__(self) -> str:
        return f"{self.tag}@{self.id}"


@dataclass(frozen=True, kw_only=True)
class ImageBuild:
    """One architecture's image as built: what ``lockfiles/image.lock`` records.

    ``layers`` maps each of :data:`LAYERS` to its diff ID (``sha256:…``, the
    digest of the uncompressed layer tar); ``config`` is the image ID (the
    config's digest); ``manifest`` the OCI manifest's digest.
    """

    arch: str
    ref: ImageRef
    layers: Mapping[str, Blob]
    config: Blob
    manifest: Blob

    @property
    def platform(self) -> dict[str, str]:
        variant = _VARIANTS.get(self.arch)
        return {
            "os": "linux",
            "architecture": self.arch,
            **({"variant": variant} if variant else {}),
        }

    def record(self) -> image_lock.PlatformRecord:
        return image_lock.PlatformRecord(
            base=self.layers["base"].digest,
            dependencies=self.layers["dependencies"].digest,
            project=self.layers["project"].digest,
            image_id=self.config.digest,
            manifest=self.manifest.digest,
        )


@dataclass(frozen=True, kw_only=True)
class Wheelhouse:
    """A folder of hash-checked wheels plus the requirements files that install them.

    ``requirements`` installs everything (the Dockerfile route);
    ``dependencies`` the locked wheels alone and ``project`` the project
    wheel alone (the two layers of the assembled image).
    """

    path: Path
    requirements: Path
    project_wheel: Path
    lockfile_sha256: str
    arch: str = "amd64"
    dependencies: Path | None = None
    project: Path | None = None


# --- the offline base ----------------------------------------------------------


def load_base_rootfs(
    rootfs: Path,
    *,
    tag: str,
    arch: str,
    epoch: int = SOURCE_DATE_EPOCH,
    inputs: str | None = None,
    backend: ContainerBackend | None = None,
) -> ImageRef:
    """Pack a debootstrapped root file system as one deterministic layer and load it as ``tag``.

    Called by ``docker/make-base.sh``. Unlike ``docker import``, which stamps
    the import time into the config, the config here is canonical, so the
    same packages give the same base image ID on any machine. ``inputs``
    (:func:`base_inputs`) is recorded as a label.
    """
    with (
        _engine(backend) as engine,
        tempfile.TemporaryDirectory(prefix="benchmark-regen-base-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        layer = tmp / "layer.tar"
        diff_id = write_layer(entries_from_tree(rootfs, "", keep_owners=True), layer, mtime=epoch)
        labels = {BASE_LAYER_SIZE_LABEL: str(layer.stat().st_size)}
        if inputs is not None:
            labels[BASE_INPUTS_LABEL] = inputs
        runtime = {"Cmd": ["/bin/bash"], "Env": list(BASE_ENV), "Labels": labels}
        config = image_config(
            diff_ids=[diff_id],
            runtime=runtime,
            history=[f"debootstrap --variant=minbase --arch={arch} bookworm ({BASE_PACKAGES})"],
            epoch=epoch,
            architecture=arch,
            variant=_VARIANTS.get(arch),
        )
        archive = tmp / "base.tar"
        image_id = write_archive(archive, config=config, layers=[(diff_id, layer)], tag=tag)
        engine.load(archive)
        engine.tag(image_id, tag)
        return ImageRef(id=image_id, tag=tag)


def make_base(
    arch: str,
    *,
    mirror: str | None = None,
    force: bool = False,
    update_lock: bool = False,
    project_dir: Path | None = None,
    stream: Stream = _print_err,
) -> None:
    """Run ``docker/make-base.sh`` for ``arch`` (debootstrap; needs root).

    The script checks the installed Debian packages against
    ``lockfiles/debian-base-ARCH.txt`` and names the tools a machine lacks;
    its message becomes the error's.
    """
    script = (project_dir or _repo_root()) / "docker" / "make-base.sh"
    if shutil.which("bash") is None:
        raise ContainerError("bash is not installed, and docker/make-base.sh needs it")
    argv = ["bash", str(script), "--arch", arch]
    argv += ["--mirror", mirror] if mirror else []
    argv += ["--force"] if force else []
    argv += ["--update-lock"] if update_lock else []
    env = {**os.environ, "PYTHON": sys.executable}
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            stream(lines[-1])
        code = proc.wait()
    if code != 0:
        said = [ln.removeprefix("make-base.sh: ") for ln in lines[-12:]]
        raise ContainerError(
            f"making the {arch} base failed (docker/make-base.sh exit {code}):\n" + "\n".join(said),
            hint="the lines above say what to install or change",
        )


def ensure_base(
    arch: str,
    *,
    backend: ContainerBackend,
    mirror: str | None = None,
    stream: Stream = _print_err,
) -> ImageInfo:
    """The offline base for ``arch``, made first (``make-base.sh``) when the engine lacks it."""
    tag = base_tag(arch)
    info = backend.inspect(tag)
    if info is None or info.labels.get(BASE_INPUTS_LABEL) != base_inputs(arch):
        why = "is not in the engine" if info is None else "was made from other inputs"
        stream(f"{tag} {why}: making it (docker/make-base.sh)")
        make_base(arch, mirror=mirror, force=True, stream=stream)
        info = backend.inspect(tag)
        if info is None:
            raise ContainerError(f"docker/make-base.sh ran but {tag} is still not in the engine")
    return info


# --- wheelhouse --------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run_tool(argv: Sequence[str], *, what: str, env: Mapping[str, str] | None = None) -> None:
    # umask 022: files a build writes (and a wheel records) get the same modes
    # whatever the caller's umask.
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, env=env, check=False, umask=0o022
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ContainerError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def _requirement_blocks(text: str) -> list[tuple[str, str]]:
    """A hashed lockfile as (normalised name, block text) pairs, in file order."""
    blocks: list[tuple[str, str]] = []
    for line in text.splitlines(keepends=True):
        if line[:1].isalnum():
            name = line.split("==", 1)[0].split("[", 1)[0].strip().lower().replace("_", "-")
            blocks.append((name, line))
        elif blocks:
            blocks[-1] = (blocks[-1][0], blocks[-1][1] + line)
    return blocks


def _build_backend(project_dir: Path, dest: Path) -> Path:
    """The build backend of ``lockfiles/build.txt`` (hash-checked) in a private folder.

    Never the caller's environment: its setuptools may be too old (a fresh
    venv's 65.5 cannot build a PEP 639 ``license`` field), and the wheel bytes
    must not follow whatever happens to be installed.
    """
    lock = project_dir / "lockfiles" / "build.txt"
    if not lock.is_file():
        raise ContainerError(f"{lock} not found: the build backend is pinned there")
    _run_tool(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--require-hashes", "--only-binary", ":all:", "--target", str(dest),
         "-r", str(lock)],
        what="installing the pinned build backend (lockfiles/build.txt)",
    )  # fmt: skip
    return dest


def _backend_env(backend_dir: Path, epoch: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    return {**env, "PYTHONPATH": str(backend_dir), "SOURCE_DATE_EPOCH": str(epoch),
            "PYTHONHASHSEED": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # fmt: skip


def _check_generator(wheel: Path, backend_dir: Path) -> None:
    """The wheel was built by the pinned setuptools, not one that shadowed it."""
    pinned = next(backend_dir.glob("setuptools-*.dist-info")).name.removesuffix(".dist-info")
    pinned = pinned.split("-")[1]
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/WHEEL"))
        text = zf.read(name).decode()
    if f"Generator: setuptools ({pinned})" not in text:
        raise ContainerError(
            f"{wheel.name} was not built by the pinned setuptools {pinned}:\n{text}",
            hint="report this: the private build backend was shadowed",
        )


def project_sources(project_dir: Path) -> list[Path]:
    """The files the project wheel is built from, sorted: toolchain/ and pyproject.toml."""
    files = [project_dir / name for name in _PROJECT_FILES if (project_dir / name).is_file()]
    for path in sorted((project_dir / "toolchain").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append(path)
    return files


def _tree_digest(root: Path, files: Sequence[Path]) -> str:
    """SHA-256 over (relative path, content digest) of ``files``: an input of a layer."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        h.update(f"{path.relative_to(root).as_posix()}\0{_sha256(path)}\n".encode())
    return "sha256:" + h.hexdigest()


def _build_project_wheel(project_dir: Path, dest: Path, *, backend_dir: Path, epoch: int) -> Path:
    """The project's wheel, built by the pinned backend from a clean copy of its sources.

    SOURCE_DATE_EPOCH fixes the zip entry times; the copy holds no build/ or
    egg-info, and a fixed README (see ``_WHEEL_README``).
    """
    for old in dest.glob("benchmark_regen-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="benchmark-regen-src-") as tmp:
        src = Path(tmp) / "src"
        for path in project_sources(project_dir):
            target = src / path.relative_to(project_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            target.chmod(0o644)  # the wheel records modes: not the checkout's, nor the umask
        (src / "README.md").write_text(_WHEEL_README)
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--no-index", "-q", "-w", str(dest), str(src)]  # fmt: skip
        _run_tool(argv, what="building the project wheel", env=_backend_env(backend_dir, epoch))
    wheels = sorted(dest.glob("benchmark_regen-*.whl"))
    if len(wheels) != 1:
        raise ContainerError(f"building the project wheel left {len(wheels)} wheels in {dest}")
    _check_generator(wheels[0], backend_dir)
    return wheels[0]


def _build_sdist_wheels(
    blocks: Sequence[tuple[str, str]], dest: Path, *, backend_dir: Path, epoch: int, tmp: Path
) -> dict[str, tuple[Path, str]]:
    """Wheels for the locked sdist-only packages: {name: (wheel, requirement line)}."""
    built: dict[str, tuple[Path, str]] = {}
    for name, block in blocks:
        if name not in SDIST_ONLY:
            continue
        req = tmp / f"{name}.txt"
        req.write_text(block)
        out = tmp / f"{name}-wheel"
        _run_tool(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "--require-hashes", "--no-binary", name, "-r", str(req), "-w", str(out)],
            what=f"building {name} from its hash-checked sdist",
            env=_backend_env(backend_dir, epoch),
        )  # fmt: skip
        (wheel,) = sorted(out.glob("*.whl"))
        _check_generator(wheel, backend_dir)
        final = dest / wheel.name
        shutil.copyfile(wheel, final)
        spec = block.split("\\", 1)[0].strip()
        built[name] = (final, f"{spec} \\\n    --hash=sha256:{_sha256(final)}\n")
    return built


def build_wheelhouse(
    *,
    dest: Path | None = None,
    lockfile: Path | None = None,
    project_dir: Path | None = None,
    epoch: int = SOURCE_DATE_EPOCH,
    arch: str | None = None,
) -> Wheelhouse:
    """Download the locked wheels (hash-checked) and build the others into ``dest``.

    The image build has no network, so everything it installs comes from
    here: the lockfile's wheels for ``arch`` (default: this machine's), its
    sdist-only packages (:data:`SDIST_ONLY`) and the project, both built with
    the build backend pinned in ``lockfiles/build.txt``. The requirements
    files carry the built wheels' hashes. Wheels already in ``dest`` with the
    right hash are not downloaded again.
    """
    project_dir = project_dir or _repo_root()
    arch = arch or host_arch()
    lockfile = lockfile or project_dir / "lockfiles" / "requirements.txt"
    dest = dest or project_dir / "wheelhouse" / arch
    if not lockfile.is_file():
        raise ContainerError(f"lockfile {lockfile} not found", hint="run `nox -s lock`")
    if arch not in _WHEEL_PLATFORMS:
        raise InputError(f"no wheels for architecture {arch!r}: use one of {', '.join(ARCHES)}")
    dest.mkdir(parents=True, exist_ok=True)
    lock_text = lockfile.read_text()
    blocks = _requirement_blocks(lock_text)
    with tempfile.TemporaryDirectory(prefix="benchmark-regen-wheels-") as tmp_name:
        tmp = Path(tmp_name)
        binary = tmp / "binary.txt"
        binary.write_text("".join(b for n, b in blocks if n not in SDIST_ONLY))
        platforms = [a for p in _WHEEL_PLATFORMS[arch] for a in ("--platform", p)]
        pip = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
        target = ["--python-version", "3.11", "--implementation", "cp", *platforms]
        abis = ["--abi", "cp311", "--abi", "abi3", "--abi", "none"]
        locked = ["--require-hashes", "--only-binary", ":all:", "--no-deps", "-r", str(binary)]
        _run_tool([*pip, *target, *abis, *locked, "-d", str(dest)], what="downloading the wheels")
        backend_dir = _build_backend(project_dir, tmp / "backend")
        sdists = _build_sdist_wheels(blocks, dest, backend_dir=backend_dir, epoch=epoch, tmp=tmp)
        wheel = _build_project_wheel(project_dir, dest, backend_dir=backend_dir, epoch=epoch)
    dependencies_text = "".join(sdists[n][1] if n in sdists else b for n, b in blocks)
    version = wheel.name.split("-")[1]
    project_text = f"benchmark-regen=={version} \\\n    --hash=sha256:{_sha256(wheel)}\n"
    dependencies = dest / "dependencies.txt"
    dependencies.write_text(dependencies_text)
    project = dest / "project.txt"
    project.write_text(project_text)
    requirements = dest / "requirements.txt"
    requirements.write_text(dependencies_text.rstrip("\n") + "\n" + project_text)
    return Wheelhouse(
        path=dest,
        requirements=requirements,
        project_wheel=wheel,
        lockfile_sha256=hashlib.sha256(lock_text.encode()).hexdigest(),
        arch=arch,
        dependencies=dependencies,
        project=project,
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
        if item.suffix in (".whl", ".txt"):
            target = context / "wheelhouse" / item.name
            try:
                os.link(item, target)  # same file system: no 600 MB copy
            except OSError:
                shutil.copy2(item, target)
    return context


def _merge_env(base_env: Sequence[str], extra: Mapping[str, str]) -> list[str]:
    """Docker's ENV semantics: existing names are replaced in place, new ones appended."""
    env = dict(item.split("=", 1) for item in base_env if "=" in item)
    env.update(extra)
    return [f"{name}={value}" for name, value in env.items()]


def _labels(*, lockfile_sha256: str, base_ref: str, fingerprint: str | None) -> dict[str, str]:
    # No git revision: it changes with every commit, even one that changes
    # nothing in the image, and a committed image ID cannot hold it. The
    # project layer's diff ID names the code; `git log lockfiles/image.lock`
    # names the commit that wrote it.
    labels = {
        "org.opencontainers.image.title": "benchmark-regen",
        "io.benchmark-regen.lockfile-sha256": lockfile_sha256,
        "io.benchmark-regen.mounts": MOUNTS_LABEL,
        "io.benchmark-regen.base-image": base_ref,
    }
    if fingerprint is not None:
        labels["io.benchmark-regen.fingerprint"] = fingerprint
    return labels


def _install(
    backend: ContainerBackend,
    *,
    base: str,
    context: Path,
    stage: Path,
    requirements: str,
    compile_dir: str,
    steps: str,
    stream: Stream,
) -> None:
    """Run install-venv.sh in a container of the base; /opt/venv is a host folder."""
    script = (
        f"sh /context/install-venv.sh /context/wheelhouse /opt/venv "
        f"/context/wheelhouse/{requirements} {compile_dir} '{steps}'"
        " && cat /etc/passwd > /stage-etc/passwd && cat /etc/group > /stage-etc/group"
    )
    code = backend.run(
        RunRequest(
            image=base,
            argv=("-c", script),
            entrypoint=("/bin/sh",),
            mounts=(
                Mount(source=context, target="/context", read_only=True),
                Mount(source=stage / "venv", target="/opt/venv", read_only=False),
                Mount(source=stage / "etc", target="/stage-etc", read_only=False),
            ),
            user=f"{os.getuid()}:{os.getgid()}",
            env={"HOME": "/tmp"},  # noqa: S108 (inside the container, not here)
        ),
        on_stdout=stream,
        on_stderr=stream,
    )
    if code != 0:
        raise ContainerError(f"{steps} of {requirements} in {base} failed (exit {code})")


def _system_entries(stage: Path) -> list[LayerEntry]:
    """The user, its home and the mount points (in the dependencies layer: they rarely change)."""
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
    return entries


def _stat_key(entry: LayerEntry) -> tuple[int, int] | None:
    if entry.source is None:
        return None
    st = entry.source.lstat()
    return (st.st_size, st.st_mtime_ns)


def _project_entries(venv: Path, before: Mapping[str, tuple[int, int] | None]) -> list[LayerEntry]:
    """What installing the project added to /opt/venv, with the folders that hold it.

    Installing one more wheel must only add files: a changed file would
    belong to the dependencies layer, so it is refused rather than shadowed.
    """
    after = entries_from_tree(venv, "opt/venv", normalize_modes=True)
    new = [e for e in after if e.path not in before]
    changed = [e.path for e in after if e.path in before and e.kind == "file"
               and _stat_key(e) != before[e.path]]  # fmt: skip
    if changed:
        raise ContainerError(
            "installing the project wheel changed files of the dependencies layer: "
            + ", ".join(changed[:5])
        )
    keep = {e.path for e in new}
    for e in new:
        parts = e.path.split("/")
        keep.update("/".join(parts[:i]) for i in range(2, len(parts)))
    return [e for e in after if e.path in keep]


@dataclass(frozen=True, kw_only=True)
class _Layer:
    name: str
    diff_id: str
    path: Path | None  # None: the engine holds it (the base)
    size: int


def _layers(
    backend: ContainerBackend,
    *,
    base: ImageInfo,
    base_ref: str,
    compile_ref: str,
    context: Path,
    epoch: int,
    tmp: Path,
    stream: Stream,
) -> list[_Layer]:
    """Install the dependencies, then the project, and write each as a layer tar.

    ``compile_ref`` compiles the byte code: the base itself, or for a foreign
    architecture this machine's base (the same python3, natively: emulated
    compilation of every module is the slowest step by far).
    """
    if len(base.diff_ids) != 1 or BASE_LAYER_SIZE_LABEL not in base.labels:
        raise ContainerError(
            f"{base_ref} is not a base made by docker/make-base.sh (one layer, labelled)",
            hint=f"remake it: bash docker/make-base.sh --force --arch {base.architecture}",
        )
    stage = tmp / "stage"
    (stage / "venv").mkdir(parents=True)
    (stage / "etc").mkdir()
    venv = stage / "venv"

    def install(requirements: str, compile_dir: str) -> None:
        steps = ["install compile"] if compile_ref == base_ref else ["install", "compile"]
        for step in steps:
            ref = compile_ref if step == "compile" else base_ref
            _install(backend, base=ref, context=context, stage=stage, requirements=requirements,
                     compile_dir=compile_dir, steps=step, stream=stream)  # fmt: skip

    stream("installing the locked dependencies (docker/install-venv.sh)")
    install("dependencies.txt", "/opt/venv/lib")
    deps_entries = entries_from_tree(venv, "opt/venv", normalize_modes=True)
    deps_tar = tmp / "dependencies.tar"
    deps_id = write_layer(_system_entries(stage) + deps_entries, deps_tar, mtime=epoch)
    stream(f"dependencies layer {deps_id} ({deps_tar.stat().st_size >> 20} MiB)")
    before = {e.path: _stat_key(e) for e in deps_entries}
    stream("installing the project wheel")
    install("project.txt", "/opt/venv/lib/python3.11/site-packages/toolchain")
    project_tar = tmp / "project.tar"
    project_id = write_layer(_project_entries(venv, before), project_tar, mtime=epoch)
    stream(f"project layer {project_id} ({project_tar.stat().st_size >> 10} KiB)")
    shutil.rmtree(stage)
    return [
        _Layer(name="base", diff_id=base.diff_ids[0], path=None,
               size=int(base.labels[BASE_LAYER_SIZE_LABEL])),
        _Layer(name="dependencies", diff_id=deps_id, path=deps_tar,
               size=deps_tar.stat().st_size),
        _Layer(name="project", diff_id=project_id, path=project_tar,
               size=project_tar.stat().st_size),
    ]  # fmt: skip


def image_fingerprint(
    image: str, *, backend: ContainerBackend | None = None
) -> tuple[str, dict[str, str]]:
    """The runtime fingerprint measured in ``image`` and the digest used as its label.

    The probe runs pinned (as the CLI does) and returns the full fingerprint;
    the label digest leaves out keys that describe the probing CPU
    (``_HOST_KEYS``), so it is a property of the image alone.
    """
    with _engine(backend) as backend:
        probe = (
            "import json, subprocess, sys\n"
            "from toolchain.run.determinism import pinned_environ\n"
            "code = 'import json; from toolchain.run.fingerprint import runtime_fingerprint as f; "
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
        from toolchain.run.fingerprint import fingerprint_digest

        fp: dict[str, str] = json.loads(out[-1])
        return fingerprint_digest({k: v for k, v in fp.items() if k not in _HOST_KEYS}), fp


def _assemble(
    backend: ContainerBackend,
    *,
    arch: str,
    base: ImageInfo,
    base_ref: str,
    compile_ref: str,
    context: Path,
    tag: str,
    labels: Mapping[str, str],
    epoch: int,
    tmp: Path,
    stream: Stream,
) -> ImageBuild:
    layers = _layers(backend, base=base, base_ref=base_ref, compile_ref=compile_ref,
                     context=context, epoch=epoch, tmp=tmp, stream=stream)  # fmt: skip

    def load(final_labels: Mapping[str, str]) -> bytes:
        runtime = {
            "Entrypoint": list(IMAGE_ENTRYPOINT),
            "Cmd": list(IMAGE_CMD),
            "Env": _merge_env(base.env, image_env(base.architecture)),
            "Labels": dict(sorted(final_labels.items())),
            "User": IMAGE_USER,
            "WorkingDir": IMAGE_WORKDIR,
        }
        history = [
            f"base: debootstrap bookworm ({BASE_PACKAGES}), docker/make-base.sh",
            "dependencies: /opt/venv from lockfiles/requirements.txt, user, mount points",
            "project: the benchmark-regen wheel",
        ]
        config = image_config(
            diff_ids=[layer.diff_id for layer in layers],
            runtime=runtime,
            history=history,
            epoch=epoch,
            architecture=arch,
            os_name="linux",
            variant=_VARIANTS.get(arch),
        )
        archive = tmp / "image.tar"
        write_archive(archive, config=config, layers=[(x.diff_id, x.path) for x in layers], tag=tag)
        backend.load(archive)
        archive.unlink()
        return config

    unlabelled = Blob.of(load(labels)).digest
    digest, _ = image_fingerprint(unlabelled, backend=backend)
    stream(f"runtime fingerprint {digest}")
    config = load({**labels, "io.benchmark-regen.fingerprint": digest})
    config_blob = Blob.of(config)
    if config_blob.digest != unlabelled:
        backend.remove_image(unlabelled)
    layer_blobs = {x.name: Blob(digest=x.diff_id, size=x.size) for x in layers}
    manifest = oci_manifest(config=config_blob, layers=list(layer_blobs.values()))
    return ImageBuild(
        arch=arch,
        ref=ImageRef(id=config_blob.digest, tag=tag),
        layers=layer_blobs,
        config=config_blob,
        manifest=Blob.of(manifest),
    )


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
    arch: str | None = None,
    mirror: str | None = None,
) -> ImageRef:
    """Build the pinned image for ``arch`` (default: this machine's), tag it, return its ID.

    ``base_image`` defaults to the offline Debian base, made first when the
    engine lacks it, for ``assemble`` and to the Dockerfile's digest-pinned
    default for ``dockerfile``. See the module docstring for the two methods;
    :func:`build_images` returns the layers too.
    """
    if method == "assemble":
        return _build_assembled(
            tag=tag, base_image=base_image, backend=backend, wheelhouse=wheelhouse,
            project_dir=project_dir, epoch=epoch, stream=stream, arch=arch or host_arch(),
            mirror=mirror,
        ).ref  # fmt: skip
    with _engine(backend) as engine:
        project_dir = project_dir or _repo_root()
        if base_image and engine.inspect(base_image) is None:
            raise ContainerError(
                f"base image {base_image} is not in the engine at {engine.engine()}",
                hint=f"pull it first (`docker pull {base_image}`)",
            )
        wheelhouse = wheelhouse or build_wheelhouse(project_dir=project_dir, epoch=epoch)
        build_args = {"REVISION": _revision(project_dir),
                      "LOCKFILE_SHA256": wheelhouse.lockfile_sha256}  # fmt: skip
        if base_image:
            build_args["BASE_IMAGE"] = base_image
        with tempfile.TemporaryDirectory(prefix="benchmark-regen-image-") as tmp_name:
            context = _build_context(wheelhouse, project_dir, Path(tmp_name))
            image_id = engine.build(
                BuildRequest(context=context, dockerfile="Dockerfile", tag=tag,
                             build_args=build_args, no_cache=no_cache),
                on_line=stream,
            )  # fmt: skip
        engine.tag(image_id, tag)
        return ImageRef(id=image_id, tag=tag)


def _build_assembled(
    *,
    tag: str,
    base_image: str | None,
    backend: ContainerBackend | None,
    wheelhouse: Wheelhouse | None,
    project_dir: Path | None,
    epoch: int,
    stream: Stream,
    arch: str,
    mirror: str | None,
) -> ImageBuild:
    with _engine(backend) as engine:
        project_dir = project_dir or _repo_root()
        if base_image:
            base = engine.inspect(base_image)
            if base is None:
                raise ContainerError(
                    f"base image {base_image} is not in the engine at {engine.engine()}",
                    hint=f"pull it first (`docker pull {base_image}`)",
                )
        else:
            base_image = base_tag(arch)
            base = ensure_base(arch, backend=engine, mirror=mirror, stream=stream)
        if base.architecture != arch:
            raise ContainerError(f"{base_image} is a {base.architecture} image, not {arch}")
        compile_ref = base_image
        if arch != host_arch() and arch in ARCHES and host_arch() in ARCHES:
            ensure_base(host_arch(), backend=engine, mirror=mirror, stream=stream)
            compile_ref = base_tag(host_arch())
        if wheelhouse is None:
            stream(f"wheelhouse for {arch} (pip download --require-hashes, pinned setuptools)")
            wheelhouse = build_wheelhouse(project_dir=project_dir, epoch=epoch, arch=arch)
        if wheelhouse.dependencies is None or wheelhouse.project is None:
            raise ContainerError(f"{wheelhouse.path} holds no dependencies.txt / project.txt")
        if wheelhouse.arch != arch:
            raise ContainerError(f"the wheelhouse {wheelhouse.path} is for {wheelhouse.arch}")
        labels = _labels(lockfile_sha256=wheelhouse.lockfile_sha256, base_ref=base_tag(arch),
                         fingerprint=None)  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="benchmark-regen-image-") as tmp_name:
            tmp = Path(tmp_name)
            context = _build_context(wheelhouse, project_dir, tmp)
            built = _assemble(
                engine, arch=arch, base=base, base_ref=base_image, compile_ref=compile_ref,
                context=context, tag=tag, labels=labels, epoch=epoch, tmp=tmp, stream=stream,
            )  # fmt: skip
        engine.tag(built.ref.id, tag)
        if not tag.endswith(f":{arch}") and not tag.endswith(f"-{arch}"):
            engine.tag(built.ref.id, arch_tag(tag, arch))
        return built


def build_images(
    arches: Sequence[str] = (),
    *,
    tag: str = DEFAULT_TAG,
    backend: ContainerBackend | None = None,
    project_dir: Path | None = None,
    epoch: int = SOURCE_DATE_EPOCH,
    mirror: str | None = None,
    stream: Stream = _print_err,
) -> list[ImageBuild]:
    """Build the assembled image for each of ``arches`` (default: this machine's).

    This machine's image is tagged ``tag``; every image is also tagged with
    its architecture (``benchmark-regen:arm64``), which :func:`save_images` reads.
    """
    arches = tuple(dict.fromkeys(arches or (host_arch(),)))
    for arch in arches:
        if arch not in ARCHES:
            raise InputError(f"unknown architecture {arch!r}: use one of {', '.join(ARCHES)}")
    builds = []
    with _engine(backend) as engine:
        for arch in arches:
            stream(f"--- linux/{arch}")
            own_tag = tag if arch == host_arch() else arch_tag(tag, arch)
            builds.append(
                _build_assembled(
                    tag=own_tag,
                    base_image=None,
                    backend=engine,
                    wheelhouse=None,
                    project_dir=project_dir,
                    epoch=epoch,
                    stream=stream,
                    arch=arch,
                    mirror=mirror,
                )
            )
    return builds


# --- the lock ------------------------------------------------------------------


def lock_inputs(project_dir: Path | None = None) -> dict[str, str]:
    """The digests of what goes into each layer, recorded beside the layers' diff IDs.

    When a layer differs from the lock, these say whether its inputs changed
    (refresh the lock) or not (this machine built other bytes from the same
    inputs: a reproducibility bug).
    """
    root = project_dir or _repo_root()
    docker, locks = root / "docker", root / "lockfiles"
    inputs = {
        "dependencies": _tree_digest(root, [locks / "requirements.txt", locks / "build.txt",
                                            docker / "install-venv.sh"]),
        "project": _tree_digest(root, project_sources(root)),
    }  # fmt: skip
    for arch in ARCHES:
        inputs[f"base-{arch}"] = base_inputs(arch, root)
    return inputs


def base_inputs(arch: str, project_dir: Path | None = None) -> str:
    """The digest of what makes the ``arch`` base: make-base.sh and its package lock."""
    root = project_dir or _repo_root()
    files = [root / "docker" / "make-base.sh", root / "lockfiles" / f"debian-base-{arch}.txt"]
    return _tree_digest(root, [f for f in files if f.is_file()])


def _index(builds: Sequence[ImageBuild]) -> bytes:
    ordered = sorted(builds, key=lambda b: ARCHES.index(b.arch))
    return oci_index([(b.manifest, b.platform) for b in ordered])


def lock_path(project_dir: Path | None = None) -> Path:
    return (project_dir or _repo_root()) / "lockfiles" / "image.lock"


def _remake_bases(
    arches: Sequence[str],
    *,
    backend: ContainerBackend | None,
    lock: image_lock.ImageLock | None,
    fresh: bool,
    mirror: str | None,
    stream: Stream,
) -> None:
    """Remake the offline bases that cannot stand for the ones the inputs make today.

    A base is remade when it is missing, was made from other inputs
    (make-base.sh or the package lock changed: its label says), is not the
    locked one (with a lock), or always with ``fresh``.
    """
    with _engine(backend) as engine:
        for arch in arches:
            info = engine.inspect(base_tag(arch))
            locked = lock.platforms.get(arch) if lock is not None else None
            if fresh:
                why = "remade on request"
            elif info is None:
                why = "missing"
            elif info.labels.get(BASE_INPUTS_LABEL) != base_inputs(arch):
                why = "made from other inputs than docker/make-base.sh and its package lock"
            elif locked is not None and info.diff_ids != (locked.base,):
                why = "not the locked base"
            else:
                continue
            stream(f"{base_tag(arch)}: {why}; making it (docker/make-base.sh --force)")
            make_base(arch, mirror=mirror, force=True, stream=stream)


def lock_images(
    *,
    arches: Sequence[str] = ARCHES,
    tag: str = DEFAULT_TAG,
    backend: ContainerBackend | None = None,
    project_dir: Path | None = None,
    mirror: str | None = None,
    fresh_bases: bool = False,
    stream: Stream = _print_err,
) -> image_lock.ImageLock:
    """Build every architecture and write ``lockfiles/image.lock`` from what was built.

    Bases are remade when stale (see ``_remake_bases``), or all with ``fresh_bases``.
    """
    _remake_bases(arches, backend=backend, lock=None, fresh=fresh_bases, mirror=mirror,
                  stream=stream)  # fmt: skip
    builds = build_images(arches, tag=tag, backend=backend, project_dir=project_dir,
                          mirror=mirror, stream=stream)  # fmt: skip
    lock = image_lock.ImageLock(
        index=Blob.of(_index(builds)).digest if set(arches) == set(ARCHES) else None,
        inputs=lock_inputs(project_dir),
        platforms={b.arch: b.record() for b in builds},
    )
    path = lock_path(project_dir)
    path.write_text(image_lock.render(lock))
    return lock


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """``image build --check``: what was built, and every way it differs from the lock."""

    builds: tuple[ImageBuild, ...]
    index: str | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


_LAYER_INPUTS = {
    "base": "lockfiles/debian-base-{arch}.txt or docker/make-base.sh",
    "dependencies": "lockfiles/requirements.txt, lockfiles/build.txt or docker/install-venv.sh",
    "project": "toolchain/ or pyproject.toml",
}


def compare_with_lock(
    builds: Sequence[ImageBuild], lock: image_lock.ImageLock, inputs: Mapping[str, str]
) -> tuple[str, ...]:
    """Every difference between ``builds`` and ``lock``, named by layer, with what to do."""
    problems = []
    refresh = "run `benchmark-regen image lock` and commit lockfiles/image.lock"
    for build in builds:
        locked = lock.platforms.get(build.arch)
        if locked is None:
            problems.append(f"linux/{build.arch}: not in the lock; {refresh}")
            continue
        got = build.record()
        for layer in LAYERS:
            want, have = getattr(locked, layer), getattr(got, layer)
            if want == have:
                continue
            key = f"base-{build.arch}" if layer == "base" else layer
            what = _LAYER_INPUTS[layer].format(arch=build.arch)
            if lock.inputs.get(key) != inputs.get(key):
                why = f"{what} changed since the lock was written; {refresh}"
            else:
                why = (
                    f"its inputs ({what}) are the ones the lock was written from, so this "
                    "machine built other bytes: a reproducibility bug, please report it"
                )
            problems.append(
                f"linux/{build.arch}: the {layer} layer differs (lock {want}, built {have}): {why}"
            )
        if all(getattr(locked, x) == getattr(got, x) for x in LAYERS):
            if locked.image_id != got.image_id:
                problems.append(
                    f"linux/{build.arch}: every layer matches but the image config differs "
                    f"(lock {locked.image_id}, built {got.image_id}): the environment, labels "
                    f"or runtime fingerprint changed; {refresh}"
                )
            elif locked.manifest != got.manifest:
                problems.append(f"linux/{build.arch}: the OCI manifest differs; {refresh}")
    if not problems and {b.arch for b in builds} == set(ARCHES) and lock.index is not None:
        index = Blob.of(_index(builds)).digest
        if index != lock.index:
            problems.append(f"the multi-architecture index differs (lock {lock.index}, "
                            f"built {index}); {refresh}")  # fmt: skip
    return tuple(problems)


def check_images(
    *,
    arches: Sequence[str] = ARCHES,
    tag: str = DEFAULT_TAG,
    backend: ContainerBackend | None = None,
    project_dir: Path | None = None,
    mirror: str | None = None,
    fresh_bases: bool = False,
    stream: Stream = _print_err,
) -> CheckReport:
    """Rebuild ``arches`` and compare every layer, config and the index with the lock.

    A base in the engine that differs from the lock, or was made from other
    inputs, is remade first, so a stale base is never mistaken for a
    reproducibility failure; ``fresh_bases`` remakes them all (debootstrap
    included in the proof).
    """
    path = lock_path(project_dir)
    if not path.is_file():
        raise ContainerError(f"{path} not found", hint="write it with `benchmark-regen image lock`")
    lock = image_lock.parse(path.read_text(), source=str(path))
    _remake_bases(arches, backend=backend, lock=lock, fresh=fresh_bases, mirror=mirror,
                  stream=stream)  # fmt: skip
    builds = build_images(arches, tag=tag, backend=backend, project_dir=project_dir,
                          mirror=mirror, stream=stream)  # fmt: skip
    problems = compare_with_lock(builds, lock, lock_inputs(project_dir))
    index = Blob.of(_index(builds)).digest if {b.arch for b in builds} == set(ARCHES) else None
    return CheckReport(builds=tuple(builds), index=index, problems=problems)


# --- save ----------------------------------------------------------------------


def save_images(
    dest: Path,
    *,
    tag: str = DEFAULT_TAG,
    arches: Sequence[str] = ARCHES,
    backend: ContainerBackend | None = None,
) -> str:
    """Write the images of ``arches`` as one OCI image layout tarball; return the index digest.

    The images are read from the engine by their architecture tags (built by
    :func:`build_images`). Layers are stored uncompressed, so their digests
    are their diff IDs and the tarball is byte-deterministic. ``docker load``
    of the file loads each image as ``benchmark-regen:ARCH``.
    """
    with (
        _engine(backend) as engine,
        tempfile.TemporaryDirectory(prefix="benchmark-regen-save-", dir=dest.parent) as tmp_name,
    ):
        tmp = Path(tmp_name)
        images, manifests = [], []
        for arch in arches:
            ref = arch_tag(tag, arch)
            info = engine.inspect(ref)
            if info is None:
                raise ContainerError(
                    f"{ref} is not in the engine at {engine.engine()}",
                    hint=f"build it with `benchmark-regen image build --arch {arch}`",
                )
            saved = tmp / f"{arch}.tar"
            engine.save(ref, saved)
            config, layers = _unpack_saved(saved, tmp / arch, info)
            saved.unlink()
            images.append(OciImage(config=config, layers=layers, tag=ref))
            blobs = [Blob(digest=d, size=p.stat().st_size) for d, p in layers]
            variant = _VARIANTS.get(arch)
            platform_ = {"os": "linux", "architecture": arch,
                         **({"variant": variant} if variant else {})}  # fmt: skip
            manifests.append((Blob.of(oci_manifest(config=Blob.of(config), layers=blobs)),
                              platform_))  # fmt: skip
        index = oci_index(manifests)
        partial = tmp / "out.tar"
        digest = write_oci_archive(partial, images=images, index=index, ref_name="latest")
        partial.replace(dest)
        return digest


def _unpack_saved(saved: Path, into: Path, info: ImageInfo) -> tuple[bytes, list[tuple[str, Path]]]:
    """The config and the layer tars of a ``docker save`` archive, checked against ``info``."""
    into.mkdir()
    with tarfile.open(saved) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        (entry,) = json.load(member)
        cfg = tar.extractfile(entry["Config"])
        assert cfg is not None
        config = cfg.read()
        layers = []
        for i, (name, diff_id) in enumerate(zip(entry["Layers"], info.diff_ids, strict=True)):
            src = tar.extractfile(name)
            assert src is not None
            path = into / f"{i}.tar"
            with src, path.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            if "sha256:" + _sha256(path) != diff_id:
                raise ContainerError(f"layer {i} of the saved {info.id} is not {diff_id}")
            layers.append((diff_id, path))
    if Blob.of(config).digest != info.id:
        raise ContainerError(f"the saved config of {info.id} has another digest")
    return config, layers


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
