"""``lockfiles/image.lock``: the expected image, per architecture (no stability guarantee).

A small JSON document, written with sorted keys and two-space indentation so
that a refresh is a reviewable diff::

    {
      "comment": "...",
      "index": "sha256:…",              # the multi-architecture OCI index
      "inputs": {                       # digests of what went into each layer
        "base-amd64": "sha256:…", "base-arm64": "sha256:…",
        "dependencies": "sha256:…", "project": "sha256:…"
      },
      "platforms": {
        "amd64": {"base": …, "dependencies": …, "project": …,   # layer diff IDs
                  "image_id": …, "manifest": …},                # config, OCI manifest
        "arm64": {…}
      },
      "schema": 1
    }
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from toolchain.errors import InputError

__all__ = ["SCHEMA", "ImageLock", "PlatformRecord", "parse", "render"]

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
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


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
