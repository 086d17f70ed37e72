"""``benchmark-regen image …`` and the ``--in-container`` helper: thin, over toolchain.container.

Registered by :mod:`toolchain.cli` with ``cli.add_command(image)``; library
errors propagate to the root group, the one place that prints them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from toolchain.container import DEFAULT_TAG, build_image, run_in_container

__all__ = ["image", "run_cli_in_container"]


@click.group()
def image() -> None:
    """Build the pinned container image (see docker/README.md)."""


@image.command("build")
@click.option("--tag", default=DEFAULT_TAG, show_default=True, help="Tag for the built image.")
@click.option(
    "--base-image",
    default=None,
    help="Base image. Default: the offline benchmark-regen-base:bookworm "
    "(docker/make-base.sh); with --dockerfile, the Dockerfile's digest-pinned default.",
)
@click.option(
    "--dockerfile",
    "use_dockerfile",
    is_flag=True,
    help="Run `docker build` on docker/Dockerfile instead of the reproducible assembly "
    "(the image ID then changes with every build).",
)
@click.option("--no-cache", is_flag=True, help="With --dockerfile: do not reuse cached layers.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def build(
    tag: str, base_image: str | None, use_dockerfile: bool, no_cache: bool, as_json: bool
) -> None:
    """Build the image from the hashed lockfile and print its ID.

    \b
    Examples:
      bash docker/make-base.sh && benchmark-regen image build
      benchmark-regen image build --dockerfile --base-image python:3.11-slim-bookworm
    """
    ref = build_image(
        tag=tag,
        base_image=base_image,
        method="dockerfile" if use_dockerfile else "assemble",
        no_cache=no_cache,
    )
    if as_json:
        click.echo(json.dumps({"id": ref.id, "tag": ref.tag, "ref": str(ref)}, sort_keys=True))
    else:
        click.echo(ref.id)


def run_cli_in_container(
    command: Sequence[str],
    *,
    original: Path | None,
    out: Path | None,
    diff: Path | None = None,
    image: str = DEFAULT_TAG,
) -> int:
    """Run ``benchmark-regen *command`` in the pinned image; return its exit code.

    For ``generate --in-container`` and ``diff apply --in-container``: the
    caller passes its own argv (host paths, without ``--in-container``); paths
    under ``original``/``out``/``diff`` are rewritten to /original, /out, /diff.
    """
    return run_in_container(
        list(command),
        image=image,
        original=original,
        out=out,
        diff=diff,
        stream=click.echo,
        stream_err=lambda line: click.echo(line, err=True),
    )
