"""``benchmark-regen key generate`` and ``benchmark-regen sign``: signed manifests."""

from __future__ import annotations

from pathlib import Path

import click

from toolchain.cli.options import EPILOG_EXIT_CODES, echo, emit_json, json_option, out_option

__all__ = ["key", "sign"]


@click.group(epilog=EPILOG_EXIT_CODES)
def key() -> None:
    """Manage the Ed25519 keys that sign manifests (docs/signing.md)."""


@key.command("generate", epilog=EPILOG_EXIT_CODES)
@out_option(
    "Private key file to create (mode 0600); the public key goes to OUT.pub.", dir_okay=False
)
@json_option
def key_generate(out: Path, as_json: bool) -> None:
    """Create a new signing key pair; existing files are never overwritten.

    \b
    Examples:
      benchmark-regen key generate --out publisher.key
    """
    from toolchain.audit.sign import generate_key

    pair = generate_key(out)
    if as_json:
        emit_json(pair.to_json())
        return
    echo(f"private key {pair.private} (keep it secret)")
    echo(f"public key  {pair.public} (publish it)")
    echo(f"keyid       {pair.keyid}")


@click.command(epilog=EPILOG_EXIT_CODES)
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Ed25519 private key (PEM) from `key generate`.",
)
@out_option(
    "Where to write the signature (default: manifest.sig beside MANIFEST): a new file, or "
    "a signature to replace; any other file is refused, never overwritten.",
    required=False,
    dir_okay=False,
)
@json_option
def sign(manifest: Path, key_path: Path, out: Path | None, as_json: bool) -> None:
    """Sign a manifest: an in-toto statement about its root hash, in a DSSE envelope.

    \b
    Examples:
      benchmark-regen sign ./bench/manifest.json --key publisher.key
      benchmark-regen verify ./bench --pubkey publisher.key.pub
    """
    from toolchain.audit.sign import sign_manifest

    target = sign_manifest(manifest, key_path, out=out)
    if as_json:
        emit_json({"manifest": str(manifest), "signature": str(target)})
        return
    echo(f"signed {manifest} -> {target}")
