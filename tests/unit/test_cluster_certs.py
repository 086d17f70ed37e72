"""toolchain.cluster.certs: a CA and node certificates in a private folder, keys 0600, never
overwritten; more nodes signed by the same CA later."""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from toolchain.cluster.certs import make_certs
from toolchain.errors import InputError, OutputError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_new_folder_gets_a_ca_the_scheduler_the_client_and_each_node(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    result = make_certs(out, ["node1", "node2"], days=7)
    assert result.ca_made and result.nodes == ("scheduler", "client", "node1", "node2")
    assert sorted(os.listdir(out)) == sorted(result.files)
    assert result.files[:2] == ("ca.pem", "ca.key")
    assert _mode(out) == 0o700
    ca = _cert(out / "ca.pem")
    for name in result.nodes:
        assert _mode(out / f"{name}.key") == 0o600
        cert = _cert(out / f"{name}.pem")
        cert.verify_directly_issued_by(ca)
        assert cert.subject.rfc4514_string() == f"CN={name}"
        assert cert.not_valid_after_utc >= result.expires
    assert _mode(out / "ca.key") == 0o600
    valid = result.expires - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=6) < valid <= datetime.timedelta(days=7)
    assert result.to_json()["files"] == list(result.files)


def test_without_nodes_one_worker_certificate_is_made(tmp_path: Path) -> None:
    assert make_certs(tmp_path / "c").nodes == ("scheduler", "client", "worker")


def test_nodes_added_later_are_signed_by_the_same_ca(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    make_certs(out, ["node1"])
    before = _listing(out)
    result = make_certs(out, ["node2"])
    assert not result.ca_made and result.files == ("node2.pem", "node2.key")
    after = _listing(out)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing rewritten
    _cert(out / "node2.pem").verify_directly_issued_by(_cert(out / "ca.pem"))
    with pytest.raises(InputError, match="already holds a CA: name the nodes"):
        make_certs(out)


@pytest.mark.parametrize("taken", ["node1", "scheduler"])
def test_existing_certificates_and_keys_are_never_overwritten(tmp_path: Path, taken: str) -> None:
    out = tmp_path / "certs"
    make_certs(out, ["node1"])
    before = _listing(out)
    with pytest.raises(OutputError, match=f"already holds {taken}.pem, {taken}.key") as e:
        make_certs(out, ["node3", taken])
    assert "never overwritten" in (e.value.hint or "")
    assert _listing(out) == before  # not even node3 was written


def test_a_link_planted_at_a_key_name_is_not_written_through(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    make_certs(out)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (out / "node9.key").symlink_to(victim)
    with pytest.raises(OutputError, match=r"node9\.key"):
        make_certs(out, ["node9"])
    assert victim.read_bytes() == b"precious"
    assert not (out / "node9.pem").exists()


def test_a_folder_other_users_can_open_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    out.mkdir(mode=0o755)
    out.chmod(0o755)
    with pytest.raises(OutputError, match=r"not private to this user \(mode 0755\)") as e:
        make_certs(out)
    assert e.value.hint == f"chmod 700 {out} if it is yours, or choose a new --out"
    assert list(out.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        make_certs(tmp_path / "file")


def test_a_ca_key_other_users_can_read_is_not_used(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    make_certs(out)
    (out / "ca.key").chmod(0o644)
    with pytest.raises(InputError, match="can be read by other users"):
        make_certs(out, ["node2"])
    assert not (out / "node2.pem").exists()


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (["ca"], "'ca' is not a node name"),
        (["Node1"], "is not a node name"),
        (["../x"], "is not a node name"),
        (["a.b"], "is not a node name"),
        (["-a"], "is not a node name"),
        (["x" * 64], "is not a node name"),
        (["n1", "n1"], "node 'n1' is named twice"),
    ],
)
def test_bad_node_names_are_refused_before_anything_is_written(
    tmp_path: Path, nodes: list[str], message: str
) -> None:
    out = tmp_path / "certs"
    with pytest.raises(InputError, match=message):
        make_certs(out, nodes)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("days", [0, 366])
def test_validity_is_one_day_to_a_year(tmp_path: Path, days: int) -> None:
    with pytest.raises(InputError, match="1 to 365 days"):
        make_certs(tmp_path / "c", days=days)
    assert not (tmp_path / "c").exists()
