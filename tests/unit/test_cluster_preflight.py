"""toolchain.cluster.preflight: what `jobs slurm --submit` checks on this node before it
submits (a Docker engine, a writable --out the nodes share), and the default runtime."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.fakes import FakeBackend
from toolchain.cluster.jobs import JobSpec
from toolchain.cluster.preflight import (
    LOCAL_FILESYSTEMS,
    FsMount,
    check_submission,
    default_runtime,
    mount_of,
)
from toolchain.cluster.slurm import JobState
from toolchain.container.docker import ImageInfo
from toolchain.errors import ClusterError, ContainerError, ExitCode, OutputError

IMAGE = "benchmark-regen@sha256:" + "a" * 64
MOUNTS = (
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "40 27 0:40 / /shared rw,relatime shared:5 - nfs4 fs:/export rw,vers=4.2\n"
    "41 40 0:41 / /shared/scratch\\040space rw - lustre 10.0.0.1@tcp:/fs rw\n"
    "42 27 0:42 / /tmp rw - tmpfs tmpfs rw\n"
    "43 27 0:43 / /tmp rw - xfs /dev/vdb rw\n"
)
LOCAL_ROOT = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
"""Everything, tmp_path too, on this machine's own disk."""
NFS_ROOT = "27 1 0:50 / / rw,relatime - nfs4 fs:/export rw\n"
"""Everything on a network filesystem."""


@pytest.fixture
def dead_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DOCKER_HOST at a socket that does not answer: bound once, nobody listening."""
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
    host = f"unix://{path}"
    monkeypatch.setenv("DOCKER_HOST", host)
    yield host


@dataclasses.dataclass
class Nodes:
    """A Slurm that only lists its nodes (``names``), or fails to."""

    names: Sequence[str] | None

    def sbatch(self, args: Sequence[str], *, cwd: Path) -> str:
        raise AssertionError("the checks submit nothing")

    def jobs(self, job_id: str) -> list[JobState]:
        raise AssertionError("the checks follow no job")

    def cancel(self, job_ids: Sequence[str]) -> None:
        raise AssertionError("the checks cancel nothing")

    def nodes(self) -> list[str]:
        if self.names is None:
            raise ClusterError("Slurm is not installed here: `sinfo` is not on PATH")
        return list(self.names)


def _native(out: Path) -> JobSpec:
    command = ("generate", "--original", "/shared/val", "--out", str(out))
    return JobSpec(name="adv", shards=4, image=IMAGE, runtime="none", out=str(out), command=command)


def _docker(out: str) -> JobSpec:
    return JobSpec(name="adv", shards=4, image=IMAGE, original="/shared/val", out=out,
                   command=("generate", "--original", "/original", "--out", "/out"))  # fmt: skip


def _image() -> ImageInfo:
    return ImageInfo(id="sha256:" + "b" * 64, diff_ids=(), env=(), labels={},
                     architecture="amd64", os="linux")  # fmt: skip


# -- Where a folder is mounted ---------------------------------------------------------------


def test_mount_of_takes_the_longest_mount_point_and_the_last_of_stacked_mounts() -> None:
    assert mount_of(Path("/"), MOUNTS) == FsMount(point="/", fstype="ext4")
    assert mount_of(Path("/shared/adv"), MOUNTS) == FsMount(point="/shared", fstype="nfs4")
    assert mount_of(Path("/shared/scratch space/x"), MOUNTS) == FsMount(
        point="/shared/scratch space", fstype="lustre"
    )
    assert mount_of(Path("/sharedother"), MOUNTS) == FsMount(point="/", fstype="ext4")
    assert mount_of(Path("/tmp/x"), MOUNTS) == FsMount(point="/tmp", fstype="xfs")
    assert mount_of(Path("/x"), "garbage\n\n1 2 3\n") is None


def test_mount_of_reads_this_machine(tmp_path: Path) -> None:
    mount = mount_of(tmp_path)
    if not Path("/proc/self/mountinfo").exists():
        assert mount is None
        return
    assert mount is not None and str(tmp_path).startswith(mount.point.rstrip("/"))
    assert mount.fstype  # e.g. ext4, tmpfs, overlay


# -- The default runtime ---------------------------------------------------------------------


def test_the_default_runtime_follows_the_engine_and_the_original(dead_engine: str) -> None:
    assert default_runtime(IMAGE, original_given=False, backend=FakeBackend()) == ("docker", None)
    runtime, note = default_runtime(IMAGE, original_given=False)
    assert runtime == "none" and note is not None
    assert note.startswith(f"no Docker engine answers at {dead_engine} (")
    assert "--runtime none" in note and "--runtime docker and --original" in note
    runtime, note = default_runtime(IMAGE, original_given=True)
    assert runtime == "docker" and "their nodes need one" in (note or "")


# -- Before submitting -----------------------------------------------------------------------


def test_docker_without_an_engine_here_fails_with_the_fix(dead_engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ContainerError) as e:
        check_submission(_docker(str(out)), tmp_path / "adv.sbatch", slurm=Nodes(None))
    assert e.value.message.startswith(
        "--runtime docker: every shard task runs `docker run` on its node, and on this one "
        f"no Docker engine answers at {dead_engine} ("
    )
    assert "--runtime none" in (e.value.hint or "") and e.value.exit_code == ExitCode.ENVIRONMENT
    assert not out.exists()


def test_docker_makes_a_missing_out_and_notes_a_missing_image(tmp_path: Path) -> None:
    out = tmp_path / "shared" / "adv"
    engine = FakeBackend(images={IMAGE: _image()})
    notes = check_submission(_docker(str(out)), tmp_path / "s", backend=engine,
                             mountinfo=NFS_ROOT)  # fmt: skip
    assert out.is_dir() and notes == (f"made --out {out} (docker would make it owned by root)",)
    assert engine.calls == [("inspect", IMAGE)]
    notes = check_submission(_docker(str(out)), tmp_path / "s", backend=FakeBackend(),
                             mountinfo=NFS_ROOT)  # fmt: skip
    assert len(notes) == 1 and notes[0].startswith(f"the image {IMAGE} is not in this node's")
    notes = check_submission(_docker("adv-volume"), tmp_path / "s", backend=engine)
    assert notes == ("--out 'adv-volume' is a Docker volume, not a path: every node must have it",)


def test_an_out_that_is_no_folder_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(OutputError, match=r"is not a folder"):
        check_submission(_native(file), tmp_path / "s", slurm=Nodes(["n1"]), host="n1")
    with pytest.raises(OutputError, match=rf"cannot be made: {file} is a file"):
        check_submission(_native(file / "adv"), tmp_path / "s", slurm=Nodes(["n1"]), host="n1")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission bits")
def test_an_out_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        for out in (locked, locked / "adv"):
            with pytest.raises(OutputError) as e:
                check_submission(_native(out), tmp_path / "s", slurm=Nodes(["n1"]), host="n1")
            assert "cannot be written from here" in e.value.message
            assert e.value.exit_code == ExitCode.ENVIRONMENT
    finally:
        locked.chmod(0o700)


def test_a_local_out_is_refused_when_other_nodes_would_write_it(tmp_path: Path) -> None:
    local = LOCAL_ROOT
    spec = _native(tmp_path / "out")
    with pytest.raises(ClusterError) as e:
        check_submission(spec, tmp_path / "s", slurm=Nodes(["login", "node1.cluster", "node2"]),
                         mountinfo=local, host="login.cluster")  # fmt: skip
    assert e.value.message == (
        f"--out {tmp_path / 'out'} is on this node's own disk (ext4 at /), which the 2 other "
        "nodes of this Slurm cluster do not see: their shard tasks would write elsewhere, and "
        "the merge job would not find the shard manifests"
    )
    assert "every node mounts at the same path" in (e.value.hint or "")
    assert e.value.exit_code == ExitCode.ENVIRONMENT
    # One node, this one: its disk is the cluster's. Slurm silent: a note, not a refusal.
    assert check_submission(spec, tmp_path / "s", slurm=Nodes(["login"]), mountinfo=local,
                            host="login.cluster") == ()  # fmt: skip
    (note,) = check_submission(spec, tmp_path / "s", slurm=Nodes(None), mountinfo=local)
    assert "own disk (ext4 at /) and Slurm did not list its nodes" in note


def test_a_shared_out_needs_no_node_list(tmp_path: Path) -> None:
    spec = _native(tmp_path / "out")
    assert check_submission(spec, tmp_path / "s", slurm=Nodes(None), mountinfo=NFS_ROOT) == ()
    assert "nfs4" not in LOCAL_FILESYSTEMS and {"ext4", "tmpfs", "overlay"} <= LOCAL_FILESYSTEMS
    assert not (tmp_path / "out").exists()  # --runtime none: the tasks make it
