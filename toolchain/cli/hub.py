"""``benchmark-regen publish`` and ``get``: a benchmark to a Hub dataset repo, and back by name."""

from __future__ import annotations

from pathlib import Path

import click

from toolchain.cli.options import (
    EPILOG_EXIT_CODES,
    echo,
    emit_json,
    entries_option,
    json_option,
    key_on_option,
    original_option,
    out_option,
    progress,
    quiet_option,
    workers_option,
)
from toolchain.source import SourceOptions

__all__ = ["get", "publish"]


@click.command(epilog=EPILOG_EXIT_CODES)
@original_option
@click.option(
    "--benchmark",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The generated benchmark folder (must verify).",
)
@out_option("The folder to write (new or empty): the Hub dataset repo, ready to upload.")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sign the manifest with this Ed25519 private key (manifest.sig).",
)
@click.option(
    "--regenerate-only",
    is_flag=True,
    help="Publish the recipe file instead of a diff: users regenerate the benchmark.",
)
@click.option(
    "--recipe",
    metavar="FILE.py[:NAME]",
    help="With --regenerate-only: the recipe file the benchmark was generated with.",
)
@click.option("--name", metavar="ORG/NAME", help="The repo id the card names (default: --push).")
@click.option("--push", metavar="ORG/NAME", help="Upload the folder to this Hub dataset repo.")
@click.option("--private", is_flag=True, help="With --push: create the repo private.")
@click.option("--revision", metavar="BRANCH", help="With --push: the branch (default main).")
@click.option("--dry-run", is_flag=True, help="Write and list the files; upload nothing.")
@key_on_option
@entries_option
@workers_option
@json_option
@quiet_option
def publish(
    original: Path,
    source_options: SourceOptions,
    benchmark: Path,
    out: Path,
    key_path: Path | None,
    regenerate_only: bool,
    recipe: str | None,
    name: str | None,
    push: str | None,
    private: bool,
    revision: str | None,
    dry_run: bool,
    key_on: str,
    entries: str,
    workers: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Write a benchmark as a Hub dataset repo (the diff, manifest, card), and push it.

    \b
    Examples:
      benchmark-regen publish --benchmark ./bench --original ./val --out ./pub \\
          --key publisher.key --name my-org/my-bench --dry-run
      benchmark-regen publish --benchmark ./bench --original ./val --out ./pub \\
          --key publisher.key --push my-org/my-bench
      benchmark-regen publish --benchmark ./bench --original ./val --out ./pub \\
          --regenerate-only --recipe recipes/blur.py --push my-org/my-bench
    """
    from toolchain.hub.publish import publish as publish_

    with progress("publish", quiet=quiet or as_json) as bar:
        result = publish_(
            benchmark,
            original,
            out,
            key=key_path,
            regenerate_only=regenerate_only,
            recipe=recipe,
            name=name,
            push=push,
            private=private,
            revision=revision,
            dry_run=dry_run,
            key_on=key_on,
            entries=entries,
            workers=workers,
            source_options=source_options,
            progress=bar,
        )
    if as_json:
        emit_json(result.to_json())
        return
    echo(f"wrote {out}: a {result.kind} publication of root {result.root}")
    if dry_run or push is None:
        for f in result.files:
            echo(f"  {f.size:>12}  {f.sha256.hex}  {f.path}")
    if push is None:
        echo(f"upload it with --push {result.repo}, or as it is")
    elif dry_run:
        echo(f"dry run: nothing uploaded to {push}")
    else:
        echo(f"pushed to https://huggingface.co/datasets/{push}, commit {result.commit}")


@click.command(epilog=EPILOG_EXIT_CODES)
@click.argument("name")
@click.option(
    "--original",
    type=click.Path(exists=True, path_type=Path),
    help="Your copy of the original (default: the Hub repo the publication records).",
)
@click.option("--revision", help="The publication's revision on the Hub (branch, tag, commit).")
@click.option(
    "--pubkey",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The publisher's public key: its manifest.sig must verify.",
)
@out_option("The benchmark folder to write (new or empty).")
@click.option(
    "--trust-recipe",
    is_flag=True,
    help="Run the recipe.py of a --regenerate-only publication (Python code: read it first).",
)
@workers_option
@json_option
def get(
    name: str,
    original: Path | None,
    revision: str | None,
    pubkey: Path | None,
    out: Path,
    trust_recipe: bool,
    workers: int,
    as_json: bool,
) -> None:
    """Rebuild a published benchmark by name (Hub repo ORG/NAME or a folder), verified.

    \b
    Examples:
      benchmark-regen get my-org/my-bench --out ./bench
      benchmark-regen get my-org/my-bench --out ./bench --pubkey publisher.pub
      benchmark-regen get ./pub --original ./val --out ./bench
    """
    from toolchain.hub.load import get_publication

    result = get_publication(
        name,
        out,
        original=original,
        revision=revision,
        pubkey=pubkey,
        trust_recipe=trust_recipe,
        workers=workers,
    )
    if as_json:
        emit_json(result.to_json())
        return
    if result.signature is not None:
        echo(f"signature OK: key {result.signature.keyid[:16]} vouches for the manifest")
    echo(f"verified {result.samples} samples in {out} (rebuilt by {result.kind})")
    echo(str(result.root))
