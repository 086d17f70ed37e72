"""``benchmark-regen image …``: build, check, lock, save the pinned image (toolchain.container)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from toolchain.cli.options import EPILOG_EXIT_CODES, echo, emit_json, json_option, style
from toolchain.container.build import build_image, build_images
from toolchain.container.config import ARCHES, DEFAULT_TAG, ImageBuild, host_arch
from toolchain.container.lock import check_images, lock_images, lock_path
from toolchain.container.save import save_images
from toolchain.errors import ExitCode

__all__ = ["image"]

_tag_option = click.option(
    "--tag", default=DEFAULT_TAG, show_default=True, help="Tag of this machine's image."
)
_arch_option = click.option(
    "--arch",
    "arches",
    multiple=True,
    type=click.Choice(ARCHES),
    help="Architecture to build (repeatable). Default: this machine's; "
    "with --check, lock and save: every architecture of the lock.",
)
_fresh_bases_option = click.option(
    "--fresh-bases",
    is_flag=True,
    help="Remake the offline bases first (debootstrap), even when current.",
)
_mirror_option = click.option(
    "--mirror",
    default=None,
    metavar="URL",
    help="Debian mirror for a missing base (docker/make-base.sh --mirror), "
    "e.g. a dated snapshot archive.",
)


def _builds_json(builds: tuple[ImageBuild, ...] | list[ImageBuild]) -> dict[str, object]:
    return {
        b.arch: {
            "tag": b.ref.tag,
            "image_id": b.ref.id,
            "manifest": b.manifest.digest,
            "layers": {name: blob.digest for name, blob in b.layers.items()},
        }
        for b in builds
    }


def _print_builds(builds: tuple[ImageBuild, ...] | list[ImageBuild]) -> None:
    for b in builds:
        echo(f"linux/{b.arch:<6} {b.ref.tag}  {b.ref.id}")
        for name, blob in b.layers.items():
            echo(f"  {name:<13} {blob.digest}  ({blob.size >> 20} MiB)")
        echo(f"  {'manifest':<13} {b.manifest.digest}")


@click.group(epilog=EPILOG_EXIT_CODES)
def image() -> None:
    """Build, check, lock and save the pinned container image (see docker/README.md)."""


@image.command("build", epilog=EPILOG_EXIT_CODES)
@_tag_option
@_arch_option
@click.option(
    "--check",
    is_flag=True,
    help="Rebuild and compare every layer, the config and the index with "
    "lockfiles/image.lock; exit 1 naming the layer that differs.",
)
@click.option(
    "--base-image",
    default=None,
    help="Base image. Default: the offline benchmark-regen-base:bookworm-ARCH "
    "(docker/make-base.sh, run when missing); with --dockerfile, the Dockerfile's "
    "digest-pinned default.",
)
@click.option(
    "--dockerfile",
    "use_dockerfile",
    is_flag=True,
    help="Run `docker build` on docker/Dockerfile instead of the reproducible assembly "
    "(the image ID then changes with every build).",
)
@click.option("--no-cache", is_flag=True, help="With --dockerfile: do not reuse cached layers.")
@_mirror_option
@_fresh_bases_option
@json_option
def build(
    tag: str,
    arches: tuple[str, ...],
    check: bool,
    base_image: str | None,
    use_dockerfile: bool,
    no_cache: bool,
    mirror: str | None,
    fresh_bases: bool,
    as_json: bool,
) -> None:
    """Build the image from the hashed lockfiles and print its ID and layers.

    \b
    Examples:
      benchmark-regen image build
      benchmark-regen image build --arch amd64 --arch arm64
      benchmark-regen image build --check          # exit 1 if a layer differs from the lock
      benchmark-regen image build --dockerfile --base-image python:3.11-slim-bookworm
    """
    if check:
        if use_dockerfile or base_image:
            raise click.UsageError("--check builds the locked image: no --dockerfile/--base-image")
        report = check_images(
            arches=arches or ARCHES, tag=tag, mirror=mirror, fresh_bases=fresh_bases
        )
        if as_json:
            emit_json(
                {
                    "ok": report.ok,
                    "index": report.index,
                    "problems": list(report.problems),
                    "platforms": _builds_json(report.builds),
                }
            )
        else:
            _print_builds(report.builds)
            if report.index:
                echo(f"index          {report.index}")
            for problem in report.problems:
                echo(style("differs: ", fg="red", bold=True) + problem, err=True)
            if report.ok:
                echo(f"ok: the build equals {lock_path()}")
        if not report.ok:
            raise SystemExit(int(ExitCode.CHECK_FAILED))
        return
    if use_dockerfile or base_image:
        if len(arches) > 1 or (arches and arches[0] != host_arch()):
            raise click.UsageError("--dockerfile and --base-image build this machine's arch only")
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
        return
    builds = build_images(arches, tag=tag, mirror=mirror)
    if as_json:
        emit_json({"platforms": _builds_json(builds)})
    else:
        _print_builds(builds)


@image.command("lock", epilog=EPILOG_EXIT_CODES)
@_tag_option
@_arch_option
@_mirror_option
@_fresh_bases_option
def lock(tag: str, arches: tuple[str, ...], mirror: str | None, fresh_bases: bool) -> None:
    """Build every architecture and write lockfiles/image.lock (review the diff).

    \b
    Examples:
      benchmark-regen image lock && git diff lockfiles/image.lock
    """
    written = lock_images(arches=arches or ARCHES, tag=tag, mirror=mirror, fresh_bases=fresh_bases)
    for arch, rec in written.platforms.items():
        echo(f"linux/{arch:<6} {rec.image_id}")
    if written.index:
        echo(f"index          {written.index}")
    echo(f"wrote {lock_path()}")


@image.command("save", epilog=EPILOG_EXIT_CODES)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The OCI image layout tarball to write (docker load reads it too).",
)
@_tag_option
@_arch_option
def save(out: Path, tag: str, arches: tuple[str, ...]) -> None:
    """Write the built images as one multi-architecture OCI image layout; print its index digest.

    \b
    Examples:
      benchmark-regen image save --out benchmark-regen.oci.tar
      docker load -i benchmark-regen.oci.tar     # benchmark-regen:amd64, benchmark-regen:arm64
    """
    digest = save_images(out.resolve(), tag=tag, arches=arches or ARCHES)
    echo(digest)


@image.command("about", epilog=EPILOG_EXIT_CODES)
@click.pass_context
def about(ctx: click.Context) -> None:
    """The help, then this image's runtime fingerprint (the image's default command).

    \b
    Examples:
      docker run --rm benchmark-regen
    """
    from toolchain.run.executor import worker_fingerprint

    root = ctx.find_root()
    echo(root.command.get_help(root))
    echo()
    echo("Runtime fingerprint of this image on this machine (benchmark-regen env --json):")
    fp = worker_fingerprint()
    width = max(len(k) for k in fp)
    for k, v in fp.items():
        echo(f"  {k:<{width}}  {v}")
