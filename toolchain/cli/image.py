"""``benchmark-regen image …``: build the pinned container image (over toolchain.container)."""

from __future__ import annotations

import json

import click

from toolchain.cli.options import EPILOG_EXIT_CODES, json_option
from toolchain.container import DEFAULT_TAG, build_image

__all__ = ["image"]


@click.group(epilog=EPILOG_EXIT_CODES)
def image() -> None:
    """Build the pinned container image (see docker/README.md)."""


@image.command("build", epilog=EPILOG_EXIT_CODES)
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
@json_option
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
