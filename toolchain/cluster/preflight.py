"""What the shard tasks of ``jobs slurm --submit`` need, checked on this node before anything
is submitted: an engine for ``--runtime docker``, a writable ``--out`` on storage the nodes
share; and the default runtime (docs/scale-out.md, "Shared storage")."""

from __future__ import annotations

import os
import re
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from toolchain.cluster.jobs import JobSpec
from toolchain.cluster.slurm import SlurmCLI, SlurmClient
from toolchain.container.docker import ContainerBackend, open_backend
from toolchain.errors import ClusterError, ContainerError, OutputError, os_error_text

__all__ = [
    "LOCAL_FILESYSTEMS",
    "SHARED_FILESYSTEMS",
    "FsMount",
    "check_submission",
    "default_runtime",
    "mount_of",
]

SHARED_FILESYSTEMS = frozenset({
    "afs", "beegfs", "ceph", "cifs", "fhgfs", "fuse.ceph-fuse", "fuse.glusterfs",
    "fuse.juicefs", "fuse.quobyte", "fuse.sshfs", "gfs2", "glusterfs", "gpfs", "lustre",
    "nfs", "nfs4", "ocfs2", "orangefs", "panfs", "pvfs2", "smb3", "smbfs", "wekafs",
})  # fmt: skip
"""File system types that several machines mount (network and cluster file systems)."""

LOCAL_FILESYSTEMS = frozenset({
    "bcachefs", "btrfs", "exfat", "ext2", "ext3", "ext4", "f2fs", "fuseblk", "jfs", "ntfs",
    "ntfs3", "overlay", "ramfs", "reiserfs", "tmpfs", "vfat", "xfs", "zfs",
})  # fmt: skip
"""File system types on this machine's own disks or memory: no other node sees them."""

_MOUNTINFO = Path("/proc/self/mountinfo")
_SHARED_HINT = (
    "put --out on a filesystem every node mounts at the same path (NFS, Lustre, GPFS, "
    "BeeGFS, CephFS, ...); `df -T FOLDER` shows what a folder is on"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class FsMount:
    """The mount a path is on: its mount point and file system type."""

    point: str
    fstype: str


def mount_of(path: Path, mountinfo: str | None = None) -> FsMount | None:
    """The mount holding ``path`` (which must exist), from ``/proc/self/mountinfo``;
    ``None`` where that cannot be read."""
    if mountinfo is None:
        try:
            mountinfo = _MOUNTINFO.read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best: FsMount | None = None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        try:  # ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
            point, fstype = fields[4], fields[fields.index("-", 6) + 1]
        except (ValueError, IndexError):
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), point)
        inside = point == "/" or target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.point)):
            best = FsMount(point=point, fstype=fstype)  # a later mount stacks on an earlier one
    return best


def default_runtime(
    image: str, *, original_given: bool, backend: ContainerBackend | None = None
) -> tuple[str, str | None]:
    """``jobs slurm`` without ``--runtime``: ``docker`` when a Docker engine answers here or
    ``--original`` (a mount, which only the image has) is given; else ``none``. Returns the
    runtime and a note for the user, if any."""
    problem, _ = _probe_engine(image, backend)
    if problem is None:
        return "docker", None
    if original_given:
        return "docker", (
            f"{problem}: with --original the tasks run the pinned image (--runtime docker), "
            "so their nodes need one (`--submit` checks this node first)"
        )
    return "none", (
        f"{problem}, so the tasks run the benchmark-regen on each node's PATH "
        "(--runtime none); give --runtime docker and --original to run the pinned image"
    )


def check_submission(
    spec: JobSpec,
    script: Path,
    *,
    slurm: SlurmClient | None = None,
    backend: ContainerBackend | None = None,
    mountinfo: str | None = None,
    host: str | None = None,
) -> tuple[str, ...]:
    """Check on this node what the tasks of ``spec`` need; raise what would make them fail
    (:class:`ContainerError`, :class:`OutputError`, :class:`ClusterError`, exit 4), and
    return notes on what cannot be checked from here."""
    notes: list[str] = []
    if spec.runtime == "docker":
        problem, has_image = _probe_engine(spec.image, backend)
        if problem is not None:
            raise ContainerError(
                "--runtime docker: every shard task runs `docker run` on its node, and on "
                f"this one {problem}",
                hint="start an engine on the nodes and here (`docker info` answers), or use "
                "--runtime none with benchmark-regen installed on every node and the shared "
                "paths in the command",
            )
        if not has_image:
            notes.append(
                f"the image {spec.image} is not in this node's engine: every node needs it "
                "before its task starts (`docker pull`, or `benchmark-regen image save` "
                "and `docker load`)"
            )
    out = _out_folder(spec, script)
    if out is None:
        notes.append(f"--out {spec.out!r} is a Docker volume, not a path: every node must have it")
        return tuple(notes)
    existing = _check_writable(out)
    notes += _check_shared(out, existing, slurm, mountinfo, host)
    if spec.runtime == "docker" and not out.exists():
        # `docker run -v` would make it owned by root, and the tasks run as you.
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot make --out {out}: {os_error_text(e)}") from None
        notes.append(f"made --out {out} (docker would make it owned by root)")
    return tuple(notes)


def _probe_engine(image: str, backend: ContainerBackend | None) -> tuple[str | None, bool]:
    """What is wrong with the Docker engine here, if anything, and whether it has ``image``
    (through the container wing's backend, which probes the socket before it connects)."""
    try:
        with open_backend(backend) as engine:
            return None, engine.inspect(image) is not None
    except ContainerError as e:
        return e.message, False  # "no Docker engine answers at ADDRESS (why)"


def _out_folder(spec: JobSpec, script: Path) -> Path | None:
    """``--out`` as the tasks see it here: a path (relative ones start in the script's
    folder, where the tasks start), or ``None`` for a named Docker volume."""
    if spec.runtime == "docker" and not spec.out.startswith("/"):
        return None
    return script.resolve().parent / spec.out


def _check_writable(out: Path) -> Path:
    """Refuse an ``--out`` the tasks cannot write; returns its nearest existing folder."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is not a folder" if existing == out else f"cannot be made: {existing} is a file"
        raise OutputError(f"--out {out} {what}", hint="give a folder on the shared filesystem")
    try:
        if existing == out:
            with tempfile.TemporaryFile(dir=out):
                pass
        elif not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise OutputError(
            f"--out {out} cannot be written from here ({existing}: {os_error_text(e)})",
            hint="the shard tasks write there as you: choose a folder you can write on the "
            "shared filesystem, or fix its permissions",
        ) from None
    return existing


def _check_shared(
    out: Path,
    existing: Path,
    slurm: SlurmClient | None,
    mountinfo: str | None,
    host: str | None,
) -> list[str]:
    """Refuse an ``--out`` on this node's own disk when the cluster has other nodes."""
    mount = mount_of(existing, mountinfo)
    if mount is None or mount.fstype not in LOCAL_FILESYSTEMS:
        return []  # shared, or of a type we cannot judge
    where = f"{mount.fstype} at {mount.point}"
    try:
        nodes = {n.split(".")[0] for n in (slurm or SlurmCLI()).nodes()}
    except ClusterError:
        nodes = set()
    me = (host or socket.gethostname()).split(".")[0]
    if nodes == {me}:
        return []  # a one-node cluster: this node's disk is the cluster's
    if not nodes:
        return [
            f"--out {out} is on this node's own disk ({where}) and Slurm did not list its "
            "nodes: unless every task runs on this node, " + _SHARED_HINT
        ]
    others = len(nodes - {me})
    raise ClusterError(
        f"--out {out} is on this node's own disk ({where}), which the {others} other "
        f"node{'s' if others != 1 else ''} of this Slurm cluster do not see: their shard "
        "tasks would write elsewhere, and the merge job would not find the shard manifests",
        hint=_SHARED_HINT,
    )
