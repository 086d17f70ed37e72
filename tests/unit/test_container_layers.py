"""toolchain.container.layers: deterministic layers, OCI manifests, index and layout."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from toolchain.container.layers import (
    MEDIA_INDEX,
    MEDIA_LAYER,
    Blob,
    LayerEntry,
    OciImage,
    entries_from_tree,
    image_config,
    oci_index,
    oci_manifest,
    sha256_file,
    write_archive,
    write_layer,
    write_oci_archive,
)


def _tree(root: Path) -> Path:
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "perl").write_bytes(b"#!perl\n")
    (root / "usr" / "bin" / "perl").chmod(0o4755)
    os.link(root / "usr" / "bin" / "perl", root / "usr" / "bin" / "perl5.36")
    (root / "etc").mkdir()
    (root / "etc" / "shadow").write_text("root:*:20454:0:99999:7:::\n")
    (root / "etc" / "shadow").chmod(0o640)
    (root / "bin").symlink_to("usr/bin")
    return root


def test_a_root_file_system_keeps_owners_modes_and_hard_links(tmp_path: Path) -> None:
    root = _tree(tmp_path / "rootfs")
    entries = entries_from_tree(root, "", keep_owners=True)
    assert sorted(e.path for e in entries) == [
        "bin", "etc", "etc/shadow", "usr", "usr/bin", "usr/bin/perl", "usr/bin/perl5.36",
    ]  # fmt: skip
    write_layer(entries, tmp_path / "a.tar", mtime=7)
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["usr/bin/perl"].isfile() and members["usr/bin/perl"].mode == 0o4755
    assert members["usr/bin/perl5.36"].islnk()
    assert members["usr/bin/perl5.36"].linkname == "usr/bin/perl"
    assert members["etc/shadow"].mode == 0o640
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert {m.mtime for m in members.values()} == {7}
    st = (root / "etc" / "shadow").stat()
    assert (members["etc/shadow"].uid, members["etc/shadow"].gid) == (st.st_uid, st.st_gid)


def test_normalized_modes_do_not_follow_the_umask(tmp_path: Path) -> None:
    digests = []
    for umask_mode, exec_mode in ((0o664, 0o775), (0o600, 0o700)):
        tree = tmp_path / f"venv-{umask_mode:o}"
        tree.mkdir()
        (tree / "lib.py").write_text("x = 1\n")
        (tree / "lib.py").chmod(umask_mode)
        (tree / "tool").write_text("#!/bin/sh\n")
        (tree / "tool").chmod(exec_mode)
        tree.chmod(exec_mode)
        entries = entries_from_tree(tree, "opt/venv", normalize_modes=True)
        digests.append(write_layer(entries, tmp_path / f"{umask_mode:o}.tar", mtime=0))
        with tarfile.open(tmp_path / f"{umask_mode:o}.tar") as tar:
            modes = {m.name: m.mode for m in tar.getmembers()}
        assert modes == {"opt/venv": 0o755, "opt/venv/lib.py": 0o644, "opt/venv/tool": 0o755}
    assert digests[0] == digests[1]


def test_special_files_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="not a file, directory or symlink"):
        entries_from_tree(tmp_path, "x")


def test_config_carries_the_arm64_variant() -> None:
    config = json.loads(
        image_config(
            diff_ids=[], runtime={}, history=[], epoch=0, architecture="arm64", variant="v8"
        )
    )
    assert (config["architecture"], config["variant"], config["created"]) == (
        "arm64", "v8", "1970-01-01T00:00:00Z",
    )  # fmt: skip
    assert "variant" not in json.loads(image_config(diff_ids=[], runtime={}, history=[], epoch=0))


def test_manifest_and_index_are_canonical_and_name_their_parts() -> None:
    config = Blob.of(b"{}")
    layer = Blob(digest="sha256:" + "1" * 64, size=1024)
    manifest = oci_manifest(config=config, layers=[layer])
    doc = json.loads(manifest)
    assert doc["layers"] == [{"digest": layer.digest, "mediaType": MEDIA_LAYER, "size": 1024}]
    assert manifest == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    index = json.loads(
        oci_index([(Blob.of(manifest), {"os": "linux", "architecture": "arm64", "variant": "v8"})])
    )
    assert index["mediaType"] == MEDIA_INDEX
    assert index["manifests"][0]["digest"] == Blob.of(manifest).digest
    assert index["manifests"][0]["platform"]["variant"] == "v8"


def _image(tmp_path: Path, arch: str) -> OciImage:
    layer = tmp_path / f"{arch}.tar"
    diff_id = write_layer(entries_from_tree(_tree(tmp_path / arch), ""), layer, mtime=0)
    config = image_config(diff_ids=[diff_id], runtime={}, history=["x"], epoch=0,
                          architecture=arch)  # fmt: skip
    return OciImage(config=config, layers=[(diff_id, layer)], tag=f"t:{arch}")


def test_oci_archive_is_deterministic_and_loadable_by_both_readers(tmp_path: Path) -> None:
    images = [_image(tmp_path, "amd64"), _image(tmp_path, "arm64")]
    manifests = []
    for image, arch in zip(images, ("amd64", "arm64"), strict=True):
        blobs = [Blob(digest=d, size=p.stat().st_size) for d, p in image.layers]
        manifest = oci_manifest(config=Blob.of(image.config), layers=blobs)
        manifests.append((Blob.of(manifest), {"os": "linux", "architecture": arch}))
    index = oci_index(manifests)
    one = write_oci_archive(tmp_path / "1.tar", images=images, index=index, ref_name="latest")
    two = write_oci_archive(tmp_path / "2.tar", images=images, index=index, ref_name="latest")
    assert one == two == Blob.of(index).digest
    assert (tmp_path / "1.tar").read_bytes() == (tmp_path / "2.tar").read_bytes()
    with tarfile.open(tmp_path / "1.tar") as tar:
        names = tar.getnames()

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            assert member is not None
            return member.read()

        assert json.loads(read("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        top = json.loads(read("index.json"))
        assert top["manifests"][0]["digest"] == one
        assert top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
        # Every blob is named by the digest of its content.
        for name in names:
            if name.startswith("blobs/sha256/") and tar.getmember(name).isfile():
                assert hashlib.sha256(read(name)).hexdigest() == name.rsplit("/", 1)[1]
        # The docker-save view names the same blobs, with one tag per architecture.
        docker = json.loads(read("manifest.json"))
        assert [m["RepoTags"] for m in docker] == [["t:amd64"], ["t:arm64"]]
        for entry in docker:
            assert entry["Config"] in names and all(p in names for p in entry["Layers"])
        nested = json.load(io.BytesIO(read(f"blobs/sha256/{one[7:]}")))
        assert [m["platform"]["architecture"] for m in nested["manifests"]] == ["amd64", "arm64"]
    assert names == sorted(names)


def test_layer_is_byte_deterministic_and_normalised(tmp_path: Path) -> None:
    tree = tmp_path / "venv"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "tool").write_text("#!/opt/venv/bin/python\n")
    (tree / "bin" / "tool").chmod(0o755)
    (tree / "bin" / "python").symlink_to("/usr/bin/python3")
    entries = [LayerEntry(path="etc/passwd", kind="file", mode=0o644, data=b"root\n")]
    entries += entries_from_tree(tree, "opt/venv")
    first = write_layer(entries, tmp_path / "a.tar", mtime=1767225600)
    os.utime(tree / "bin" / "tool", (1, 1))  # host times must not matter
    second = write_layer(list(reversed(entries)), tmp_path / "b.tar", mtime=1767225600)
    assert (
        first == second == "sha256:" + hashlib.sha256((tmp_path / "a.tar").read_bytes()).hexdigest()
    )
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (1767225600, 0, 0, "", "")
    }
    python = next(m for m in members if m.name == "opt/venv/bin/python")
    assert python.issym() and python.linkname == "/usr/bin/python3"


def test_archive_id_is_the_config_digest(tmp_path: Path) -> None:
    layer = tmp_path / "l.tar"
    diff_id = write_layer([LayerEntry(path="x", kind="dir", mode=0o755)], layer, mtime=0)
    config = image_config(
        diff_ids=["sha256:" + "1" * 64, diff_id], runtime={"User": "10001:10001"},
        history=["base", "app"], epoch=0,
    )  # fmt: skip
    image_id = write_archive(
        tmp_path / "i.tar", config=config, tag="t:1",
        layers=[("sha256:" + "1" * 64, None), (diff_id, layer)],
    )  # fmt: skip
    assert image_id == "sha256:" + hashlib.sha256(config).hexdigest()
    with tarfile.open(tmp_path / "i.tar") as tar:
        manifest = json.load(io.BytesIO(tar.extractfile("manifest.json").read()))  # type: ignore[union-attr]
        names = tar.getnames()
    assert manifest[0]["RepoTags"] == ["t:1"]
    assert f"{diff_id[7:]}/layer.tar" in names and f"{'1' * 64}/layer.tar" not in names


def test_sha256_file_reads_the_whole_file_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big"
    data = os.urandom(3 << 20 | 7)  # three blocks and a bit
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
