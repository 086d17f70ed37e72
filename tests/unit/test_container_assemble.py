"""toolchain.container.assemble: the image's env, labels and layers, and the fingerprint label
(which leaves out what describes the probing CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import FakeBackend
from toolchain.container import assemble
from toolchain.container.config import IMAGE_UID, MOUNTS_LABEL, PASSWD_LINE
from toolchain.container.layers import entries_from_tree
from toolchain.errors import ContainerError
from toolchain.run.fingerprint import fingerprint_digest


def test_env_follows_dockers_env_semantics() -> None:
    merged = assemble._merge_env(("PATH=/bin", "LANG=C", "junk"), {"PATH": "/x", "A": "1"})
    assert merged == ["PATH=/x", "LANG=C", "A=1"]  # replaced in place, new ones appended


def test_labels_hold_no_git_revision() -> None:
    labels = assemble.image_labels(lockfile_sha256="ab", base_ref="b:1", fingerprint=None)
    assert labels["io.benchmark-regen.mounts"] == MOUNTS_LABEL
    assert not any("revision" in name for name in labels)
    assert "io.benchmark-regen.fingerprint" not in labels
    with_fp = assemble.image_labels(lockfile_sha256="ab", base_ref="b:1", fingerprint="f")
    assert with_fp["io.benchmark-regen.fingerprint"] == "f"


def test_the_system_entries_add_the_user_and_its_folders(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\n")
    entries = {e.path: e for e in assemble._system_entries(tmp_path)}
    assert (
        entries["etc/passwd"].data == f"root:x:0:0:root:/root:/bin/bash\n{PASSWD_LINE}\n".encode()
    )
    assert {p for p, e in entries.items() if e.uid == IMAGE_UID} == {"out", "work", "home/regen"}
    assert entries["original"].uid == 0 and entries["diff"].uid == 0


def test_installing_the_project_may_only_add_files(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "lib").mkdir(parents=True)
    (venv / "lib" / "numpy.py").write_text("numpy")
    before = {e.path: assemble._stat_key(e) for e in entries_from_tree(venv, "opt/venv")}
    (venv / "lib" / "toolchain").mkdir()
    (venv / "lib" / "toolchain" / "__init__.py").write_text("tc")
    added = [e.path for e in assemble._project_entries(venv, before)]
    assert added == [
        "opt/venv", "opt/venv/lib", "opt/venv/lib/toolchain", "opt/venv/lib/toolchain/__init__.py",
    ]  # fmt: skip
    (venv / "lib" / "numpy.py").write_text("numpy, changed")
    with pytest.raises(ContainerError, match=r"changed files of the dependencies layer"):
        assemble._project_entries(venv, before)


def test_the_fingerprint_label_leaves_out_the_probing_cpu() -> None:
    measured = {"python": "3.11.2", "numpy": "2.4.6"}
    cpu = {"numpy.simd.in_use": "AVX2", "blas.coretype": "Haswell", "blas.config": "x Haswell"}
    fake = FakeBackend(run_output=[json.dumps({**measured, **cpu})])
    digest, full = assemble.image_fingerprint("img", backend=fake)
    assert full == {**measured, **cpu}
    assert digest == fingerprint_digest(measured)
    (probe,) = fake.runs
    assert probe.entrypoint == ("python",) and probe.network == "none"


def test_a_failed_fingerprint_probe_is_a_container_error() -> None:
    with pytest.raises(ContainerError, match="measuring the runtime fingerprint in img failed"):
        assemble.image_fingerprint("img", backend=FakeBackend(exit_code=1))
