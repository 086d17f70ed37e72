"""``benchmark-regen generate``: regenerate a benchmark from the original."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from toolchain.cli.options import (
    EPILOG_EXIT_CODES,
    certs_option,
    container_argv,
    echo,
    emit_json,
    executor_option,
    format_option,
    image_option,
    in_container_option,
    insecure_option,
    json_option,
    original_option,
    out_option,
    progress,
    quiet_option,
    recheck_option,
    resume_option,
    run_in_pinned_image,
    scheduler_option,
    shard_option,
    style,
    workers_option,
)
from toolchain.errors import ParamError
from toolchain.source import SourceOptions

if TYPE_CHECKING:
    from toolchain.model.manifest import Manifest
    from toolchain.recipes import Recipe
    from toolchain.run.shard import Shard

__all__ = ["generate"]


def _param_pairs(
    _ctx: click.Context, _p: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    for pair in value:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not of the form name=value")
    return value


@click.command(epilog=EPILOG_EXIT_CODES)
@click.option(
    "--recipe",
    "recipe_ref",
    required=True,
    metavar="R",
    help="Built-in name, path/to/file.py:NAME, or package.module:NAME (NAME: the recipe's "
    "function or the name= it declares).",
)
@original_option
@out_option("Output folder (empty, or an old benchmark with --overwrite).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_param_pairs,
    help="Set a recipe parameter; repeatable.",
)
@workers_option
@shard_option
@resume_option
@executor_option
@scheduler_option
@certs_option
@insecure_option
@recheck_option
@in_container_option
@image_option
@format_option
@click.option("--overwrite", is_flag=True, help="Replace an existing benchmark in --out.")
@click.option("--original-name", default="", help="Provenance: the original dataset's name.")
@click.option("--original-terms", default="", help="Provenance: URL of the original's terms.")
@click.option("--recipe-license", default="", help="Provenance: the recipe's licence.")
@json_option
@quiet_option
def generate(
    recipe_ref: str,
    original: Path,
    source_options: SourceOptions,
    out: Path,
    params: tuple[str, ...],
    workers: int,
    shard: Shard | None,
    resume: bool,
    executor: str,
    scheduler: str | None,
    certs: Path | None,
    insecure: bool,
    recheck: float | None,
    in_container: bool,
    image_tag: str,
    out_format: str,
    overwrite: bool,
    original_name: str,
    original_terms: str,
    recipe_license: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Regenerate a benchmark from your copy of the original.

    \b
    Examples:
      benchmark-regen generate --recipe gaussian-noise --original ./val --out ./bench
      benchmark-regen generate --recipe adversarial --original val.tar --out ./adv --workers 2
      benchmark-regen generate --recipe my_recipes.py:my-blur --param sigma=2.5 \\
          --original ./val --out ./blur
      benchmark-regen generate --recipe adversarial --original ./val --out ./adv --shard 0/4
      benchmark-regen generate --recipe adversarial --original ./val --out ./adv --resume
      benchmark-regen generate --recipe adversarial --original /shared/val --out /shared/adv \\
          --executor dask --scheduler tls://head:8786 --certs ./certs
      benchmark-regen generate --recipe adversarial --original ./val --out ./adv --in-container
      benchmark-regen generate --recipe gaussian-noise --original ./imagenet-1k \\
          --split validation --format parquet --out ./bench-hf
    """
    from toolchain.model.manifest import Provenance
    from toolchain.recipes import BUILTIN_RECIPES, load_recipe, parse_params
    from toolchain.run.generate import generate_benchmark

    if in_container:
        if recipe_ref not in BUILTIN_RECIPES:
            raise click.BadParameter(
                "--in-container runs a built-in recipe (or one installed in the image)",
                param_hint="--recipe",
            )
        ctx = click.get_current_context()
        argv = container_argv(ctx, drop=("in_container", "image_tag"))
        sys.exit(run_in_pinned_image(argv, original=original, out=out, image=image_tag))
    rec = load_recipe(recipe_ref)
    _warn_not_portable(rec)
    try:
        overrides = parse_params(rec, params)
    except ParamError as e:
        raise click.BadParameter(e.message, param_hint="--param") from None
    with progress("generate", quiet=quiet or as_json) as bar:
        result = generate_benchmark(
            original,
            rec.with_params(overrides),
            out,
            workers=workers,
            overwrite=overwrite,
            resume=resume,
            shard=shard,
            executor=executor,
            scheduler=scheduler,
            certs=certs,
            insecure=insecure,
            recheck=recheck,
            progress=bar,
            source_options=source_options,
            format=out_format,
            provenance=Provenance(
                original_name=original_name,
                original_terms=original_terms,
                recipe_license=recipe_license,
            ),
        )
    if as_json:
        emit_json(result.to_json())
        return
    for note in result.notes:  # e.g. why --resume remade a sample instead of trusting it
        echo(f"note: {note}", err=True)
    echo(_summary(result.manifest, out))
    if result.ignored:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(result.ignored.items()))
        total = sum(result.ignored.values())
        echo(f"ignored {total} file(s) of the original that are not JPEG, PNG or WebP: {kinds}")
    echo(f"root {style(str(result.root), bold=True)}")


def _warn_not_portable(rec: Recipe) -> None:
    """Warn (stderr, even with --quiet) of what ``recipes --check`` finds in the recipe's
    file; the run goes on."""
    from toolchain.recipes.check import recipe_findings

    findings = recipe_findings(rec)
    if not findings:
        return
    echo(
        f"warning: recipe {rec.name} uses {len(findings)} construct(s) that are not portable "
        "across CPUs, BLAS kernels and numpy versions: another machine may not make this "
        "benchmark bit for bit",
        err=True,
    )
    for f in findings:
        echo(f"  {f.location}: {f.kind.value}: {f.construct}", err=True)
    echo(
        f"  why and what to do: benchmark-regen recipes --check {findings[0].path}",
        err=True,
    )


def _summary(m: Manifest, out: Path) -> str:
    """``generated N samples of RECIPE into OUT``; ``N of M samples (select=...)`` when
    the recipe's selection leaves samples of the original out."""
    prov = m.provenance
    count = f"{len(m.entries)} samples"
    if prov.samples_used < prov.samples_in_original:
        rule = m.recipe.select.partition(":")[2] or m.recipe.select
        count = f"{len(m.entries)} of {prov.samples_in_original} samples (select={rule})"
    part = f" (shard {m.shard}; merge the shards for the whole benchmark)" if m.shard else ""
    return f"generated {count} of {m.recipe.name} {m.recipe.version} into {out}{part}"
