"""Byte-deterministic image layers, image configs, ``docker load`` archives and OCI
manifests, index and image layout (no stability guarantee; see docker/README.md)."""

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
    "MEDIA_CONFIG",
    "MEDIA_INDEX",
    "MEDIA_LAYER",
    "MEDIA_MANIFEST",
    "Blob",
    "LayerEntry",
    "OciImage",
    "entries_from_tree",
    "image_config",
    "oci_index",
    "oci_manifest",
    "sha256_file",
    "write_archive",
    "write_layer",
    "write_oci_archive",
]

MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True, kw_only=True)
class LayerEntry:
    """One member of a layer: a directory, a file (``data`` or ``source``) or a symlink.

    ``inode`` identifies a file on the host: files sharing one are written as
    one file and hard links to it (the first path in sorted order holds the data).
    """

    path: str  # relative to / without a leading slash, e.g. "opt/venv/bin/python"
    kind: str  # "dir", "file" or "symlink"
    mode: int
    uid: int = 0
    gid: int = 0
    data: bytes | None = None
    source: Path | None = None
    target: str = ""
    inode: tuple[int, int] | None = None


def _normal_mode(kind: str, mode: int) -> int:
    """0755 for directories and executables, 0644 for other files: no umask in the layer."""
    if kind == "dir" or mode & 0o111:
        return 0o755
    return 0o644


def entries_from_tree(
    root: Path, prefix: str, *, keep_owners: bool = False, normalize_modes: bool = False
) -> list[LayerEntry]:
    """Every directory, regular file and symlink under ``root``, placed at ``prefix``.

    Owners become root (0:0) unless ``keep_owners`` (a root file system made
    by dpkg, whose numeric owners are part of it); permission bits are kept,
    or, with ``normalize_modes``, reduced to 0755/0644 so that the umask of
    whoever wrote the tree does not matter. Hard links stay hard links.
    Other file types (sockets, devices, fifos) and extended attributes are
    refused: none belongs in our layers, and silently dropping one would
    change what the file system means.
    """

    def entry(path: Path, rel: str) -> LayerEntry:
        st = path.lstat()
        uid, gid = (st.st_uid, st.st_gid) if keep_owners else (0, 0)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            return LayerEntry(
                path=rel, kind="symlink", mode=0o777, target=os.readlink(path), uid=uid, gid=gid
            )
        if not stat.S_ISDIR(st.st_mode) and not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path}: not a file, directory or symlink")
        if hasattr(os, "listxattr") and os.listxattr(path, follow_symlinks=False):
            raise ValueError(f"{path}: has extended attributes, which layers do not carry")
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        if normalize_modes:
            mode = _normal_mode(kind, mode)
        if kind == "dir":
            return LayerEntry(path=rel, kind="dir", mode=mode, uid=uid, gid=gid)
        inode = (st.st_dev, st.st_ino) if st.st_nlink > 1 else None
        return LayerEntry(
            path=rel, kind="file", mode=mode, source=path, inode=inode, uid=uid, gid=gid
        )

    entries = [entry(root, prefix)] if prefix else []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            rel = path.relative_to(root).as_posix()
            entries.append(entry(path, f"{prefix}/{rel}" if prefix else rel))
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
    first_of_inode: dict[tuple[int, int], str] = {}
    with (
        dest.open("wb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(by_path):
            entry = by_path[path]
            info = _tarinfo(entry, mtime)
            info.name = path
            if entry.inode is not None and entry.inode in first_of_inode:
                info.type, info.linkname = tarfile.LNKTYPE, first_of_inode[entry.inode]
                tar.addfile(info)
                continue
            if entry.inode is not None:
                first_of_inode[entry.inode] = path
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
    return "sha256:" + sha256_file(dest)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex, read in 1 MiB blocks."""
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
    variant: str | None = None,
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
    if variant:
        config["variant"] = variant
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


# --- OCI ---------------------------------------------------------------------------------


def _canonical(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, kw_only=True)
class Blob:
    """A content-addressed blob: digest ``sha256:…`` and size in bytes."""

    digest: str
    size: int

    def descriptor(self, media_type: str) -> dict[str, object]:
        return {"digest": self.digest, "mediaType": media_type, "size": self.size}

    @classmethod
    def of(cls, data: bytes) -> Blob:
        return cls(digest="sha256:" + hashlib.sha256(data).hexdigest(), size=len(data))


def oci_manifest(*, config: Blob, layers: Sequence[Blob]) -> bytes:
    """The OCI image manifest (canonical JSON) of one image with uncompressed layers."""
    return _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.descriptor(MEDIA_CONFIG),
            "layers": [layer.descriptor(MEDIA_LAYER) for layer in layers],
        }
    )


def oci_index(manifests: Sequence[tuple[Blob, Mapping[str, str]]]) -> bytes:
    """The OCI image index over per-platform manifests (``platform`` = os, architecture, …)."""
    entries = [
        {**blob.descriptor(MEDIA_MANIFEST), "platform": dict(sorted(platform.items()))}
        for blob, platform in manifests
    ]
    return _canonical({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": entries})


@dataclass(frozen=True, kw_only=True)
class OciImage:
    """One platform's image for :func:`write_oci_archive`: config bytes and layer files."""

    config: bytes
    layers: Sequence[tuple[str, Path]]  # (diff ID, uncompressed layer tar)
    tag: str  # the name `docker load` gives it, e.g. "benchmark-regen:arm64"


def write_oci_archive(
    dest: Path, *, images: Sequence[OciImage], index: bytes, ref_name: str
) -> str:
    """Write an OCI image layout (as a tar) holding ``images`` and ``index``.

    ``index`` (from :func:`oci_index`) is stored as a blob; ``index.json``
    points at it under ``ref_name``. A ``manifest.json`` in the ``docker
    save`` layout names the same blobs, so ``docker load`` of any engine
    version loads every image under its ``tag``. Members are sorted, owned
    by 0:0 and dated 0: the archive is byte-deterministic. Returns the
    digest of the multi-platform index.
    """
    blobs: dict[str, tuple[bytes | None, Path | None]] = {}
    docker_manifest = []
    for image in images:
        config = Blob.of(image.config)
        blobs[config.digest] = (image.config, None)
        for diff_id, path in image.layers:
            blobs[diff_id] = (None, path)
        docker_manifest.append(
            {
                "Config": f"blobs/sha256/{config.digest.removeprefix('sha256:')}",
                "Layers": [f"blobs/sha256/{d.removeprefix('sha256:')}" for d, _ in image.layers],
                "RepoTags": [image.tag],
            }
        )
        layer_blobs = [Blob(digest=d, size=p.stat().st_size) for d, p in image.layers]
        manifest = oci_manifest(config=config, layers=layer_blobs)
        blobs[Blob.of(manifest).digest] = (manifest, None)
    index_blob = Blob.of(index)
    blobs[index_blob.digest] = (index, None)
    top = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            {
                **index_blob.descriptor(MEDIA_INDEX),
                "annotations": {"org.opencontainers.image.ref.name": ref_name},
            }
        ],
    }
    members: dict[str, tuple[bytes | None, Path | None]] = {
        "oci-layout": (_canonical({"imageLayoutVersion": "1.0.0"}), None),
        "index.json": (_canonical(top), None),
        "manifest.json": (_canonical(docker_manifest), None),
    }
    for digest, content in blobs.items():
        members[f"blobs/sha256/{digest.removeprefix('sha256:')}"] = content
    with tarfile.open(dest, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name in sorted(members):
            data, source = members[name]
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                assert source is not None
                with source.open("rb") as f:
                    info.size = os.fstat(f.fileno()).st_size
                    tar.addfile(info, f)
    return index_blob.digest
