"""A certificate authority and per-node TLS certificates for a Dask cluster, written into a
private folder (``benchmark-regen cluster certs``; docs/scale-out.md)."""

from __future__ import annotations

import datetime
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain._internal.safefs import write_file
from toolchain.errors import InputError, OutputError, os_error_text
from toolchain.run.executor.tls import (
    CA_NAME,
    CERT_DAYS,
    CLIENT_NAME,
    MAX_CERT_DAYS,
    Credential,
    cert_file,
    issue,
    key_file,
    load_ca,
    make_ca,
)

__all__ = ["ALWAYS", "DEFAULT_WORKER", "CertsResult", "make_certs"]

ALWAYS = ("scheduler", CLIENT_NAME)
"""The nodes a new folder always gets."""
DEFAULT_WORKER = "worker"
"""The one worker node a new folder gets when none is named (a certificate workers share)."""
_NODE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
"""A node name: a lowercase DNS label (it is the certificate's name and its files' stem)."""


@dataclass(frozen=True, kw_only=True)
class CertsResult:
    """What :func:`make_certs` wrote."""

    folder: Path
    ca_made: bool
    """A new CA (else the folder's CA signed the nodes)."""
    nodes: tuple[str, ...]
    """The nodes that got a certificate (``NAME.pem``) and key (``NAME.key``, mode 0600)."""
    expires: datetime.datetime
    """When the earliest of the new certificates expires (UTC)."""

    @property
    def files(self) -> tuple[str, ...]:
        """The files written, in the order written."""
        ca = (cert_file(CA_NAME), key_file(CA_NAME)) if self.ca_made else ()
        return ca + tuple(f for n in self.nodes for f in (cert_file(n), key_file(n)))

    def to_json(self) -> dict[str, object]:
        """The result for ``--json``."""
        return {
            "ca_made": self.ca_made,
            "expires": self.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": list(self.files),
            "folder": str(self.folder),
            "nodes": list(self.nodes),
        }


def _check_names(nodes: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in nodes:
        if not _NODE.fullmatch(name) or name == CA_NAME:
            raise InputError(
                f"{name!r} is not a node name",
                hint="use lowercase letters, digits and '-' (at most 63), not 'ca'",
            )
        if name in seen:
            raise InputError(f"node {name!r} is named twice")
        seen.add(name)


def _private_folder(folder: Path) -> None:
    """Make ``folder`` (mode 0700), or check that it is this user's and private."""
    try:
        folder.mkdir(mode=0o700, parents=False)
        return
    except FileExistsError:
        pass
    except OSError as e:
        raise OutputError(f"cannot make {folder}: {os_error_text(e)}") from None
    st = os.stat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{folder} exists and is not a folder")
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.getuid() or mode & 0o077:
        raise OutputError(
            f"{folder} is not private to this user (mode {mode:04o}): private keys go there",
            hint=f"chmod 700 {folder} if it is yours, or choose a new --out",
        )


def make_certs(
    out: str | os.PathLike[str], nodes: Sequence[str] = (), *, days: int = CERT_DAYS
) -> CertsResult:
    """Write a CA (``ca.pem``, ``ca.key``) and, signed by it, a certificate and key for each
    node (``NAME.pem``, ``NAME.key``) into ``out``, a folder only this user can open.

    A new folder gets :data:`ALWAYS` plus ``nodes`` (or :data:`DEFAULT_WORKER`); a folder
    that already holds a CA gets ``nodes`` signed by that CA. Keys are ECDSA P-256 and never
    overwritten; every certificate expires after ``days`` (no later than its CA).
    """
    if not 1 <= days <= MAX_CERT_DAYS:
        raise InputError(f"--days {days}: a certificate is valid for 1 to {MAX_CERT_DAYS} days")
    folder = Path(out)
    _private_folder(folder)
    has_ca = any(os.path.lexists(folder / f) for f in (cert_file(CA_NAME), key_file(CA_NAME)))
    if not has_ca:
        names = [*ALWAYS, *(n for n in nodes or [DEFAULT_WORKER] if n not in ALWAYS)]
    elif not nodes:
        raise InputError(
            f"{folder} already holds a CA: name the nodes to add with --node NAME",
            hint="or choose a new --out for a new CA",
        )
    else:
        names = list(nodes)
    _check_names(names)
    taken = [f for n in names for f in (cert_file(n), key_file(n)) if os.path.lexists(folder / f)]
    if taken:
        raise OutputError(
            f"{folder} already holds {', '.join(taken)}",
            hint="certificates and keys are never overwritten: choose other --node names",
        )
    ca = load_ca(folder) if has_ca else make_ca(days=days)
    made = [issue(ca, n, days=days) for n in names]
    try:
        if not has_ca:
            _write(folder, ca)
        for credential in made:
            _write(folder, credential)
    except OSError as e:
        raise OutputError(f"cannot write into {folder}: {os_error_text(e)}") from None
    return CertsResult(
        folder=folder,
        ca_made=not has_ca,
        nodes=tuple(names),
        expires=min(c.not_after for c in made),
    )


def _write(folder: Path, credential: Credential) -> None:
    key = key_file(credential.name)
    write_file(folder, key, credential.key, durable=True)
    # Made 0644 by write_file in a folder only we can open; 0600 before anyone copies it.
    os.chmod(folder / key, 0o600)
    write_file(folder, cert_file(credential.name), credential.cert, durable=True)
