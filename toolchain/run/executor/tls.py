"""Who may talk to a Dask cluster: its certificates (a CA and ECDSA P-256 node certificates),
the client's TLS credentials, and which scheduler addresses a run may use (docs/scale-out.md)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from toolchain._internal.safefs import read_path_and_mode
from toolchain.errors import InputError, os_error_text

if TYPE_CHECKING:
    from distributed.security import Security

__all__ = [
    "CA_NAME",
    "CERT_DAYS",
    "CLIENT_NAME",
    "MAX_CERT_DAYS",
    "MAX_PEM_BYTES",
    "Credential",
    "TLSCredentials",
    "cert_file",
    "check_scheduler_address",
    "is_loopback",
    "issue",
    "key_file",
    "load_ca",
    "load_client_credentials",
    "make_ca",
    "run_credentials",
]

CERT_DAYS = 30
"""Default validity of `cluster certs` certificates: short, since Dask checks no revocation."""
MAX_CERT_DAYS = 365
CA_NAME = "ca"
CLIENT_NAME = "client"
_RUN_VALIDITY = datetime.timedelta(days=1)
_SKEW = datetime.timedelta(minutes=5)
MAX_PEM_BYTES = 64 << 10
"""A certificate or key file is refused above this size."""
_CERTS_HINT = (
    "make certificates with `benchmark-regen cluster certs --out DIR --node NAME ...`, start "
    "the scheduler and workers with them, and pass --certs DIR"
)


def cert_file(name: str) -> str:
    """The file name of node ``name``'s certificate in a certificate folder."""
    return f"{name}.pem"


def key_file(name: str) -> str:
    """The file name of node ``name``'s private key (mode 0600) in a certificate folder."""
    return f"{name}.key"


@dataclass(frozen=True, kw_only=True)
class Credential:
    """A certificate and its private key, both PEM."""

    name: str
    cert: bytes
    key: bytes

    @property
    def not_after(self) -> datetime.datetime:
        """When the certificate expires (UTC)."""
        return x509.load_pem_x509_certificate(self.cert).not_valid_after_utc


@dataclass(frozen=True, kw_only=True)
class TLSCredentials:
    """What one party of a cluster presents and trusts: the CA and its own credential."""

    ca: bytes
    own: Credential

    def security(self) -> Security:
        """A ``distributed`` ``Security`` using ``own`` for every role, TLS required."""
        from distributed.security import Security

        cert, key, ca = self.own.cert.decode(), self.own.key.decode(), self.ca.decode()
        return Security(
            require_encryption=True,
            tls_ca_file=ca,
            tls_client_cert=cert,
            tls_client_key=key,
            tls_scheduler_cert=cert,
            tls_scheduler_key=key,
            tls_worker_cert=cert,
            tls_worker_key=key,
        )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _validity(days: int | datetime.timedelta) -> tuple[datetime.datetime, datetime.datetime]:
    span = days if isinstance(days, datetime.timedelta) else datetime.timedelta(days=days)
    if not datetime.timedelta(0) < span <= datetime.timedelta(days=MAX_CERT_DAYS):
        raise ValueError(f"a certificate is valid for 1 to {MAX_CERT_DAYS} days")
    now = datetime.datetime.now(datetime.UTC)
    return now - _SKEW, now + span


def make_ca(*, days: int | datetime.timedelta = CERT_DAYS) -> Credential:
    """A new certificate authority (ECDSA P-256) that may sign node certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("benchmark-regen Dask CA"))
        .issuer_name(_name("benchmark-regen Dask CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Credential(
        name=CA_NAME, cert=cert.public_bytes(serialization.Encoding.PEM), key=_key_pem(key)
    )


def issue(ca: Credential, name: str, *, days: int | datetime.timedelta = CERT_DAYS) -> Credential:
    """A certificate for node ``name`` (scheduler, worker or client), signed by ``ca``; it
    expires no later than the CA does."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(start, ca_cert.not_valid_before_utc))
        .not_valid_after(min(end, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Credential(
        name=name, cert=cert.public_bytes(serialization.Encoding.PEM), key=_key_pem(key)
    )


def run_credentials() -> TLSCredentials:
    """Throwaway credentials for one run's own cluster: a CA made now, valid one day, whose
    key is dropped once it has signed the one certificate every process of the run shares.
    They live in memory only (``distributed`` hands them to the worker processes it spawns)."""
    ca = make_ca(days=_RUN_VALIDITY)
    return TLSCredentials(ca=ca.cert, own=issue(ca, "benchmark-regen-run", days=_RUN_VALIDITY))


def _read(path: Path, what: str) -> tuple[bytes, int]:
    """The file's bytes and the permission bits of the very file read."""
    try:
        return read_path_and_mode(path, limit=MAX_PEM_BYTES)
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist", hint=_CERTS_HINT) from None
    except OSError as e:
        raise InputError(
            f"cannot read {what} {path}: {os_error_text(e)}", hint=_CERTS_HINT
        ) from None


def _check_private(path: Path, mode: int) -> None:
    if mode & 0o077:
        raise InputError(
            f"the private key {path} can be read by other users (mode {mode:04o})",
            hint=f"chmod 600 {path}",
        )


def _credential(name: str, cert_path: Path, key_path: Path | None) -> Credential:
    cert_pem, cert_mode = _read(cert_path, "the certificate")
    key_pem, key_mode = (
        (cert_pem, cert_mode) if key_path is None else _read(key_path, "the private key")
    )
    _check_private(key_path or cert_path, key_mode)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise InputError(f"{cert_path} is not a PEM certificate ({e})", hint=_CERTS_HINT) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise InputError(
            f"{key_path or cert_path} holds no unencrypted PEM private key ({e})", hint=_CERTS_HINT
        ) from None
    ours = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
        raise InputError(
            f"the private key {key_path or cert_path} is not the key of {cert_path}",
            hint=_CERTS_HINT,
        )
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc < now:
        raise InputError(
            f"the certificate {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            hint="make new certificates (`benchmark-regen cluster certs`) for the scheduler, "
            "the workers and this client",
        )
    return Credential(name=name, cert=cert_pem, key=key_pem)


def load_ca(folder: Path) -> Credential:
    """The CA of a certificate folder (``ca.pem``, ``ca.key``), to sign more nodes with."""
    ca = _credential(CA_NAME, folder / cert_file(CA_NAME), folder / key_file(CA_NAME))
    constraints = x509.load_pem_x509_certificate(ca.cert).extensions.get_extension_for_class(
        x509.BasicConstraints
    )
    if not constraints.value.ca:
        raise InputError(f"{folder / cert_file(CA_NAME)} is not a CA certificate")
    return ca


def load_client_credentials(certs: Path | None) -> TLSCredentials:
    """This client's credentials: ``ca.pem``, ``client.pem`` and ``client.key`` of the folder
    ``certs`` (made by ``cluster certs``), else the files Dask's own configuration names
    (``distributed.comm.tls.ca-file``, ``.client.cert``, ``.client.key``). Every file is read
    through :func:`~toolchain._internal.safefs.read_path_and_mode` (regular, bounded, never
    blocks; a private key's permissions are those of the very file read)."""
    if certs is not None:
        folder = Path(certs)
        ca, _ = _read(folder / cert_file(CA_NAME), "the CA certificate")
        own = _credential(
            CLIENT_NAME, folder / cert_file(CLIENT_NAME), folder / key_file(CLIENT_NAME)
        )
        return TLSCredentials(ca=ca, own=own)
    configured = _dask_tls_config()
    if configured["ca"] is None or configured["cert"] is None:
        raise InputError(
            "a tls:// scheduler needs this client's certificate, and none was given",
            hint=_CERTS_HINT + " (or set Dask's distributed.comm.tls.ca-file, .client.cert and "
            ".client.key)",
        )
    key = configured["key"]
    own = _credential(CLIENT_NAME, Path(configured["cert"]), Path(key) if key else None)
    ca, _ = _read(Path(configured["ca"]), "the CA certificate")
    return TLSCredentials(ca=ca, own=own)


def _dask_tls_config() -> dict[str, Any]:
    try:
        import dask
    except ImportError:
        return {"ca": None, "cert": None, "key": None}
    return {
        "ca": dask.config.get("distributed.comm.tls.ca-file", None),
        "cert": dask.config.get("distributed.comm.tls.client.cert", None),
        "key": dask.config.get("distributed.comm.tls.client.key", None),
    }


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP literal, or ``localhost``) is this machine's loopback; a name
    is never resolved (what it resolves to may change before we connect)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(rest: str) -> str:
    if rest.startswith("["):
        return rest[1 : rest.find("]")] if "]" in rest else rest
    return rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest


def check_scheduler_address(address: str, *, insecure: bool) -> str:
    """``address`` with its scheme (``tls://`` when it has none). Plain ``tcp://`` is
    allowed to a loopback address only, unless ``insecure``; other schemes are refused
    (an :class:`~toolchain.errors.InputError` that says how to make certificates)."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tls", address
    scheme = scheme.lower()
    host = _host(rest)
    if scheme not in ("tls", "tcp") or not host:
        raise InputError(
            f"{address!r} is not a Dask scheduler address this tool uses",
            hint="give tls://HOST:PORT (or tcp://127.0.0.1:PORT for a scheduler on this machine)",
        )
    if scheme == "tcp" and not insecure and not is_loopback(host):
        raise InputError(
            f"{address} is plain TCP to another machine: whoever can reach it can run code in "
            "the workers, read every original sent to them and replace every output",
            hint=f"use TLS: {_CERTS_HINT}, with --scheduler tls://{rest}; or add --insecure if "
            "this network is yours alone",
        )
    return f"{scheme}://{rest}"
