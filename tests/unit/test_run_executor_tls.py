"""toolchain.run.executor.tls: certificates that chain, credentials read safely and checked,
and the scheduler addresses a run may use."""

from __future__ import annotations

import datetime
import os
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from toolchain.cluster.certs import make_certs
from toolchain.errors import InputError
from toolchain.run.executor.tls import (
    MAX_CERT_DAYS,
    Credential,
    check_scheduler_address,
    is_loopback,
    issue,
    load_client_credentials,
    make_ca,
    run_credentials,
)


def _cert(credential: Credential) -> x509.Certificate:
    return x509.load_pem_x509_certificate(credential.cert)


def test_a_node_certificate_chains_to_its_ca_and_expires_with_it() -> None:
    ca = make_ca(days=10)
    node = issue(ca, "node1", days=30)
    cert, ca_cert = _cert(node), _cert(ca)
    cert.verify_directly_issued_by(ca_cert)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert cert.not_valid_after_utc == ca_cert.not_valid_after_utc  # no later than the CA
    constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.subject.rfc4514_string() == "CN=node1"
    short = issue(ca, "node2", days=2)
    span = _cert(short).not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=1) < span <= datetime.timedelta(days=2)
    with pytest.raises(ValueError, match=f"1 to {MAX_CERT_DAYS} days"):
        make_ca(days=MAX_CERT_DAYS + 1)


def test_another_ca_does_not_vouch_for_a_node() -> None:
    node = issue(make_ca(), "node1")
    with pytest.raises(InvalidSignature):
        _cert(node).verify_directly_issued_by(_cert(make_ca()))


def test_a_runs_credentials_are_new_each_run_in_memory_and_require_tls() -> None:
    first, second = run_credentials(), run_credentials()
    assert first.ca != second.ca and first.own.key != second.own.key
    _cert(first.own).verify_directly_issued_by(x509.load_pem_x509_certificate(first.ca))
    security = first.security()
    assert security.require_encryption
    for role in ("client", "scheduler", "worker"):
        tls = security.get_tls_config_for_role(role)
        assert "-----BEGIN CERTIFICATE-----" in tls["cert"]  # in memory, never a file
        assert "PRIVATE KEY-----" in tls["key"]


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    make_certs(tmp_path / "certs")
    return tmp_path / "certs"


def test_the_client_reads_its_credentials_from_a_certs_folder(certs: Path) -> None:
    tls = load_client_credentials(certs)
    assert tls.ca == (certs / "ca.pem").read_bytes()
    assert tls.own.cert == (certs / "client.pem").read_bytes()
    assert tls.own.key == (certs / "client.key").read_bytes()


def test_or_from_dasks_own_configuration(certs: Path) -> None:
    import dask
    import distributed  # noqa: F401 - its defaults first: set() drops keys it added

    config = {
        "distributed.comm.tls.ca-file": str(certs / "ca.pem"),
        "distributed.comm.tls.client.cert": str(certs / "client.pem"),
        "distributed.comm.tls.client.key": str(certs / "client.key"),
    }
    with dask.config.set(config):
        assert load_client_credentials(None).own.cert == (certs / "client.pem").read_bytes()
    with pytest.raises(InputError, match="needs this client's certificate") as e:
        load_client_credentials(None)
    assert "benchmark-regen cluster certs" in (e.value.hint or "")


@pytest.mark.parametrize("name", ["ca.pem", "client.pem", "client.key"])
def test_a_missing_file_is_named(certs: Path, name: str) -> None:
    (certs / name).unlink()
    with pytest.raises(InputError, match=f"{certs / name} does not exist"):
        load_client_credentials(certs)


@pytest.mark.parametrize("name", ["ca.pem", "client.pem", "client.key"])
def test_a_fifo_in_place_of_a_file_is_refused_without_hanging(certs: Path, name: str) -> None:
    (certs / name).unlink()
    os.mkfifo(certs / name)
    caught: list[BaseException] = []

    def load() -> None:
        try:
            load_client_credentials(certs)
        except BaseException as e:
            caught.append(e)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=60)  # a hang guard, not a time assertion
    if reader.is_alive():  # unblock the reader before failing
        fd = os.open(certs / name, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail(f"reading a FIFO as {name} hangs")
    (error,) = caught
    assert isinstance(error, InputError) and "not a regular file" in error.message


def test_a_key_other_users_can_read_is_refused(certs: Path) -> None:
    (certs / "client.key").chmod(0o644)
    with pytest.raises(InputError, match="can be read by other users") as e:
        load_client_credentials(certs)
    assert e.value.hint == f"chmod 600 {certs / 'client.key'}"


def test_a_key_that_is_not_the_certificates_is_refused(certs: Path) -> None:
    (certs / "client.key").write_bytes((certs / "scheduler.key").read_bytes())
    with pytest.raises(InputError, match="is not the key of"):
        load_client_credentials(certs)


def test_garbage_is_not_a_certificate(certs: Path) -> None:
    (certs / "client.pem").write_bytes(b"not a certificate\n")
    with pytest.raises(InputError, match="is not a PEM certificate"):
        load_client_credentials(certs)


def test_an_expired_certificate_says_when_and_what_to_do(certs: Path) -> None:
    key = serialization.load_pem_private_key((certs / "client.key").read_bytes(), None)
    ca_key = serialization.load_pem_private_key((certs / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    old = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "client")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(old)
        .not_valid_after(old + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    (certs / "client.pem").write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(InputError, match="expired on 2020-01-02") as e:
        load_client_credentials(certs)
    assert "cluster certs" in (e.value.hint or "")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("head", False),
        ("localhost.evil.example", False),  # a name is never resolved
        ("127.0.0.1.nip.io", False),
    ],
)
def test_loopback_is_an_address_literal_or_localhost(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("address", "insecure", "used"),
    [
        ("head:8786", False, "tls://head:8786"),  # no scheme: TLS
        ("tls://head:8786", False, "tls://head:8786"),
        ("TLS://head:8786", False, "tls://head:8786"),
        ("tcp://127.0.0.1:8786", False, "tcp://127.0.0.1:8786"),
        ("tcp://[::1]:8786", False, "tcp://[::1]:8786"),
        ("tcp://localhost:8786", False, "tcp://localhost:8786"),
        ("tcp://10.0.0.1:8786", True, "tcp://10.0.0.1:8786"),
    ],
)
def test_addresses_a_run_may_use(address: str, insecure: bool, used: str) -> None:
    assert check_scheduler_address(address, insecure=insecure) == used


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("tcp://10.0.0.1:8786", "plain TCP to another machine"),
        ("tcp://head:8786", "plain TCP to another machine"),
        ("tcp://0.0.0.0:8786", "plain TCP to another machine"),
        ("ws://head:8786", "not a Dask scheduler address"),
        ("inproc://x", "not a Dask scheduler address"),
        ("tls://", "not a Dask scheduler address"),
    ],
)
def test_addresses_a_run_refuses(address: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as e:
        check_scheduler_address(address, insecure=False)
    assert e.value.exit_code == 3
    assert "tls://" in (e.value.hint or "")
