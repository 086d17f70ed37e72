"""``lockfiles/image.lock``: its format, writing it from fresh builds of every architecture,
and proving a rebuild against it, layer by layer (format: docker/README.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toolchain.container.base import make_base
from toolchain.container.build import build_images
from toolchain.container.config import (
    ARCHES,
    BASE_INPUTS_LABEL,
    DEFAULT_TAG,
    LAYERS,
    ImageBuild,
    base_tag,
)
from toolchain.container.docker import ContainerBackend, LineSink, open_backend, print_err
from toolchain.container.inputs import base_inputs, lock_inputs, repo_root
from toolchain.container.layers import Blob, oci_index
from toolchain.errors import ContainerError, InputError
from toolchain.model.hashing import pretty_json

__all__ = [
    "SCHEMA",
    "CheckReport",
    "ImageLock",
    "PlatformRecord",
    "check_images",
    "compare_with_lock",
    "lock_images",
    "lock_path",
    "parse",
    "render",
]

SCHEMA = 1
COMMENT = (
    "Written by `benchmark-regen image lock`; proved by `benchmark-regen image build --check` "
    "(.ci/run). Do not edit by hand. See docker/README.md."
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class PlatformRecord:
    """One architecture: the diff ID of each layer, the image ID and the OCI manifest digest."""

    base: str
    dependencies: str
    project: str
    image_id: str
    manifest: str

    @classmethod
    def of(cls, build: ImageBuild) -> PlatformRecord:
        """What the lock records of ``build``."""
        return cls(
            base=build.layers["base"].digest,
            dependencies=build.layers["dependencies"].digest,
            project=build.layers["project"].digest,
            image_id=build.config.digest,
            manifest=build.manifest.digest,
        )


@dataclass(frozen=True, kw_only=True)
class ImageLock:
    """The whole lock: the index digest (both architectures), inputs, and each platform."""

    index: str | None
    inputs: Mapping[str, str] = field(default_factory=dict)
    platforms: Mapping[str, PlatformRecord] = field(default_factory=dict)


def render(lock: ImageLock) -> str:
    """The canonical text of ``lock``: the same lock always gives the same bytes."""
    doc: dict[str, object] = {
        "comment": COMMENT,
        "index": lock.index,
        "inputs": dict(sorted(lock.inputs.items())),
        "platforms": {
            arch: {
                "base": rec.base,
                "dependencies": rec.dependencies,
                "image_id": rec.image_id,
                "manifest": rec.manifest,
                "project": rec.project,
            }
            for arch, rec in sorted(lock.platforms.items())
        },
        "schema": SCHEMA,
    }
    return pretty_json(doc).decode("ascii")


def _digest(value: object, where: str, source: str) -> str:
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise InputError(
            f"{source}: {where} is not a sha256:<64 hex> digest: {value!r}",
            hint="rewrite the lock with `benchmark-regen image lock`",
        )
    return value


def parse(text: str, *, source: str = "lockfiles/image.lock") -> ImageLock:
    """Read a lock written by :func:`render`; anything else is an :class:`InputError`."""
    hint = "rewrite the lock with `benchmark-regen image lock`"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source} is not JSON ({exc})", hint=hint) from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise InputError(f"{source} is not an image lock of schema {SCHEMA}", hint=hint)
    inputs = doc.get("inputs") or {}
    platforms = doc.get("platforms") or {}
    if not isinstance(inputs, dict) or not isinstance(platforms, dict):
        raise InputError(f"{source}: inputs and platforms must be objects", hint=hint)
    records = {}
    for arch, rec in platforms.items():
        if not isinstance(rec, dict):
            raise InputError(f"{source}: platforms.{arch} must be an object", hint=hint)
        fields = ("base", "dependencies", "project", "image_id", "manifest")
        records[arch] = PlatformRecord(
            **{f: _digest(rec.get(f), f"platforms.{arch}.{f}", source) for f in fields}
        )
    index = doc.get("index")
    return ImageLock(
        index=None if index is None else _digest(index, "index", source),
        inputs={k: _digest(v, f"inputs.{k}", source) for k, v in inputs.items()},
        platforms=records,
    )


# --- writing the lock and proving a rebuild against it -----------------------------------


def _index(builds: Sequence[ImageBuild]) -> bytes:
    ordered = sorted(builds, key=lambda b: ARCHES.index(b.arch))
    return oci_index([(b.manifest, b.platform) for b in ordered])


def lock_path(project_dir: Path | None = None) -> Path:
    """``lockfiles/image.lock`` of the checkout."""
    return (project_dir or repo_root()) / "lockfiles" / "image.lock"


def _remake_bases(
    arches: Sequence[str],
    *,
    backend: ContainerBackend | None,
    lock: ImageLock | None,
    fresh: bool,
    mirror: str | None,
    stream: LineSink,
) -> None:
    """Remake the offline bases that cannot stand for the ones the inputs make today.

    A base is remade when it is missing, was made from other inputs
    (make-base.sh or the package lock changed: its label says), is not the
    locked one (with a lock), or always with ``fresh``.
    """
    with open_backend(backend) as engine:
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
    stream: LineSink = print_err,
) -> ImageLock:
    """Build every architecture and write ``lockfiles/image.lock`` from what was built.

    Bases are remade when stale (see ``_remake_bases``), or all with ``fresh_bases``.
    """
    _remake_bases(arches, backend=backend, lock=None, fresh=fresh_bases, mirror=mirror,
                  stream=stream)  # fmt: skip
    builds = build_images(arches, tag=tag, backend=backend, project_dir=project_dir,
                          mirror=mirror, stream=stream)  # fmt: skip
    lock = ImageLock(
        index=Blob.of(_index(builds)).digest if set(arches) == set(ARCHES) else None,
        inputs=lock_inputs(project_dir),
        platforms={b.arch: PlatformRecord.of(b) for b in builds},
    )
    path = lock_path(project_dir)
    path.write_text(render(lock))
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
    builds: Sequence[ImageBuild], lock: ImageLock, inputs: Mapping[str, str]
) -> tuple[str, ...]:
    """Every difference between ``builds`` and ``lock``, named by layer, with what to do."""
    problems = []
    refresh = "run `benchmark-regen image lock` and commit lockfiles/image.lock"
    for build in builds:
        locked = lock.platforms.get(build.arch)
        if locked is None:
            problems.append(f"linux/{build.arch}: not in the lock; {refresh}")
            continue
        got = PlatformRecord.of(build)
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
    stream: LineSink = print_err,
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
    lock = parse(path.read_text(), source=str(path))
    _remake_bases(arches, backend=backend, lock=lock, fresh=fresh_bases, mirror=mirror,
                  stream=stream)  # fmt: skip
    builds = build_images(arches, tag=tag, backend=backend, project_dir=project_dir,
                          mirror=mirror, stream=stream)  # fmt: skip
    problems = compare_with_lock(builds, lock, lock_inputs(project_dir))
    index = Blob.of(_index(builds)).digest if {b.arch for b in builds} == set(ARCHES) else None
    return CheckReport(builds=tuple(builds), index=index, problems=problems)
