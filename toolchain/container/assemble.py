"""The assembled image: install-venv.sh run in the base, /opt/venv written as the
dependencies and project layers, a canonical config labelled with the runtime fingerprint."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain.container.config import (
    BASE_LAYER_SIZE_LABEL,
    BASE_PACKAGES,
    CONTAINER_DIFF,
    CONTAINER_ORIGINAL,
    CONTAINER_OUT,
    GROUP_LINE,
    IMAGE_CMD,
    IMAGE_ENTRYPOINT,
    IMAGE_UID,
    IMAGE_USER,
    IMAGE_WORKDIR,
    MOUNTS_LABEL,
    PASSWD_LINE,
    VARIANTS,
    ImageBuild,
    ImageRef,
    image_env,
)
from toolchain.container.docker import (
    ContainerBackend,
    ImageInfo,
    LineSink,
    Mount,
    RunRequest,
    open_backend,
)
from toolchain.container.layers import (
    Blob,
    LayerEntry,
    entries_from_tree,
    image_config,
    oci_manifest,
    write_archive,
    write_layer,
)
from toolchain.errors import ContainerError

__all__ = ["assemble", "image_fingerprint", "image_labels"]

# Fingerprint keys that describe the CPU of the machine that ran the probe,
# not the image: left out of the image label so that the same inputs give the
# same image ID on any build machine. numpy's dispatched SIMD set follows the
# CPU; so does OpenBLAS's core type wherever it is detected rather than pinned
# (arm64, and any probe under qemu), and its config string ends with that core.
_HOST_KEYS = frozenset({"numpy.simd.in_use", "blas.coretype", "blas.config"})


def _merge_env(base_env: Sequence[str], extra: Mapping[str, str]) -> list[str]:
    """Docker's ENV semantics: existing names are replaced in place, new ones appended."""
    env = dict(item.split("=", 1) for item in base_env if "=" in item)
    env.update(extra)
    return [f"{name}={value}" for name, value in env.items()]


def image_labels(*, lockfile_sha256: str, base_ref: str, fingerprint: str | None) -> dict[str, str]:
    """The labels of the assembled image: lockfile digest, mounts, base, runtime fingerprint."""
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
    stream: LineSink,
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
    stream: LineSink,
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
    with open_backend(backend) as backend:
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


def assemble(
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
    stream: LineSink,
) -> ImageBuild:
    """Write the layers of ``arch``'s image and its config, load it into the engine, and
    load it again labelled with the runtime fingerprint measured in it."""
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
            variant=VARIANTS.get(arch),
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
