"""Byte-deterministic image layers and ``docker load`` archives (no stability guarantee).

An image ID is the SHA-256 of its config JSON, and the config names each
layer by the SHA-256 of its uncompressed tar (the "diff ID"). So when the
layer tar and the config are written by deterministic functions, the image ID
is a pure function of the files that go in:

* :func:`write_layer` writes a tar with entries sorted by name, every mtime
  set to one instant, owners numeric, no user or group names, and no
  atime/ctime headers;
* :func:`image_config` writes the config with sorted keys and fixed times;
* :func:`write_archive` packs config and layers in the ``docker save`` layout,
  which ``docker load`` accepts from any engine version.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "LayerEntry",
    "entries_from_tree",
    "image_config",
    "write_archive",
    "write_layer",
]


@dataclass(frozen=True, kw_only=True)
class LayerEntry:
    """One member of a layer: a directory, a file (``data`` or ``source``) or a symlink."""

    path: str  # relative to / without a leading slash, e.g. "opt/venv/bin/python"
    kind: str  # "dir", "file" or "symlink"
    mode: int
    uid: int = 0
    gid: int = 0
    data: bytes | None = None
    source: Path | None = None
    target: str = ""


def entries_from_tree(root: Path, prefix: str) -> list[LayerEntry]:
    """Every directory, regular file and symlink under ``root``, placed at ``prefix``.

    Owners become root (0:0) whatever they are on the host; permission bits
    are kept. Other file types (sockets, devices) are refused.
    """
    entries = [LayerEntry(path=prefix, kind="dir", mode=stat.S_IMODE(root.stat().st_mode))]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            st = path.lstat()
            rel = f"{prefix}/{path.relative_to(root).as_posix()}"
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                entries.append(
                    LayerEntry(path=rel, kind="symlink", mode=0o777, target=os.readlink(path))
                )
            elif stat.S_ISDIR(st.st_mode):
                entries.append(LayerEntry(path=rel, kind="dir", mode=mode))
            elif stat.S_ISREG(st.st_mode):
                entries.append(LayerEntry(path=rel, kind="file", mode=mode, source=path))
            else:
                raise ValueError(f"{path}: not a file, directory or symlink")
    return entries


def _tarinfo(entry: LayerEntry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = mtime
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    elif entry.kind == "file":
        info.type = tarfile.REGTYPE
    else:
        raise ValueError(f"{entry.path}: unknown entry kind {entry.kind!r}")
    return info


def write_layer(entries: Sequence[LayerEntry], dest: Path, *, mtime: int) -> str:
    """Write ``entries`` as a deterministic layer tar; return its diff ID ``sha256:…``."""
    by_path: dict[str, LayerEntry] = {}
    for entry in entries:
        by_path[entry.path.strip("/")] = entry  # later entries win, like later layers
    # PAX only adds extended headers where USTAR cannot hold a value (long or
    # non-ASCII names), and those headers hold no times.
    with (
        dest.open("wb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(by_path):
            entry = by_path[path]
            info = _tarinfo(entry, mtime)
            info.name = path
            if entry.kind != "file":
                tar.addfile(info)
            elif entry.data is not None:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                assert entry.source is not None
                with entry.source.open("rb") as f:
                    info.size = os.fstat(f.fileno()).st_size
                    tar.addfile(info, f)
    return "sha256:" + _sha256_file(dest)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(
    *,
    diff_ids: Sequence[str],
    runtime: Mapping[str, Any],
    history: Sequence[str],
    epoch: int,
    architecture: str = "amd64",
    os_name: str = "linux",
) -> bytes:
    """The image config JSON, canonical: sorted keys, compact, fixed times.

    ``runtime`` is the ``config`` object (Env, User, Entrypoint, …);
    ``history`` holds one ``created_by`` text per layer.
    """
    created = _timestamp(epoch)
    config = {
        "architecture": architecture,
        "os": os_name,
        "created": created,
        "config": dict(runtime),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": created, "created_by": text} for text in history],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def write_archive(
    dest: Path, *, config: bytes, layers: Sequence[tuple[str, Path | None]], tag: str
) -> str:
    """Write a ``docker save``-layout archive; return the image ID ``sha256:…``.

    ``layers`` pairs each diff ID with its tar, or with ``None`` for a layer
    the engine already holds (the base image's): ``docker load`` looks a
    layer up by its chain ID first and reads the file only when missing, so
    the base need not be exported and re-imported on every build.
    """
    image_hex = hashlib.sha256(config).hexdigest()
    names = [f"{diff_id.removeprefix('sha256:')}/layer.tar" for diff_id, _ in layers]
    manifest = [{"Config": f"{image_hex}.json", "Layers": names, "RepoTags": [tag]}]
    with tarfile.open(dest, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))

        add_bytes(f"{image_hex}.json", config)
        for name, (_, path) in zip(names, layers, strict=True):
            if path is not None:
                info = tar.gettarinfo(str(path), arcname=name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with path.open("rb") as f:
                    tar.addfile(info, f)
        add_bytes("manifest.json", json.dumps(manifest, sort_keys=True).encode())
    return f"sha256:{image_hex}"
