"""``benchmark-regen env``, ``demo`` and ``recipes``: what this machine does, shown."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from toolchain.cli.options import (
    EPILOG_EXIT_CODES,
    echo,
    emit_json,
    json_option,
    progress,
    quiet_option,
    style,
    workers_option,
)
from toolchain.errors import ExitCode

__all__ = ["demo", "env", "list_recipes"]


@click.command(epilog=EPILOG_EXIT_CODES)
@json_option
def env(as_json: bool) -> None:
    """Print the runtime fingerprint: everything here that can change a pixel.

    \b
    Examples:
      benchmark-regen env
      docker run --rm benchmark-regen env --json
    """
    from toolchain.run.executor import worker_fingerprint

    fp = worker_fingerprint()
    if as_json:
        emit_json(dict(fp))
        return
    width = max(len(k) for k in fp)
    for k, v in fp.items():
        echo(f"{k:<{width}}  {v}")


@click.command(epilog=EPILOG_EXIT_CODES)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Where to write the demo benchmark (replaced if it holds an older demo).",
)
@workers_option
@json_option
@quiet_option
def demo(out: Path, workers: int, as_json: bool, quiet: bool) -> None:
    """Regenerate and verify a benchmark from scikit-image's bundled photographs.

    \b
    Examples:
      benchmark-regen demo
      benchmark-regen demo --out /tmp/demo --workers 2 --json
    """
    from toolchain.demo import run_demo

    with progress("demo", quiet=quiet or as_json) as bar:
        result = run_demo(out, workers=workers, overwrite=True, progress=bar)
    if as_json:
        emit_json(result.to_json())
    else:
        m = result.generated.manifest
        echo(f"original   {result.original}")
        echo(
            f"           {m.provenance.samples_in_original} photographs (PNG and JPEG), "
            "decoded canonically"
        )
        echo(
            f"recipe     {m.recipe}: seeded half, Gaussian-like noise, "
            "randomness from (seed, sample id) only"
        )
        echo(f"generated  {len(m.entries)} lossless PNGs into {out}")
        echo(
            f"verified   {'bit-exact' if result.verified.ok else 'NOT bit-exact'}: "
            "every file re-decoded and re-hashed against manifest.json"
        )
        echo(f"root       {style(str(result.generated.root), bold=True)}")
        echo(
            "Anyone with the same photographs gets this root hash, on any machine: "
            f"`benchmark-regen verify {out}` proves it."
        )
    sys.exit(ExitCode.OK if result.verified.ok else ExitCode.CHECK_FAILED)


@click.command("recipes", epilog=EPILOG_EXIT_CODES)
@click.option(
    "--check",
    "check_target",
    metavar="FILE",
    help="Scan a recipe file (or a built-in recipe's name) for constructs that are not "
    "portable across CPUs, BLAS kernels and numpy versions; exit 1 if there are findings.",
)
@json_option
def list_recipes(check_target: str | None, as_json: bool) -> None:
    """List the built-in recipes and their parameters, or check a recipe's portability.

    \b
    Examples:
      benchmark-regen recipes
      benchmark-regen recipes --check my_recipes.py
      benchmark-regen recipes --check adversarial --json
    """
    if check_target is not None:
        _check(check_target, as_json)
        return
    from toolchain.recipes import BUILTIN_RECIPES, load_recipe

    rows: list[dict[str, Any]] = []
    for name in sorted(BUILTIN_RECIPES):
        r = load_recipe(name)
        ident = r.identity()
        rows.append(
            {
                "name": name,
                "version": r.version,
                "seed": r.seed,
                "select": ident.select,
                "params": dict(ident.params),
            }
        )
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "-"
        echo(f"{row['name']:<16} v{row['version']}  seed {row['seed']}  {row['select']}  {params}")


def _check(target: str, as_json: bool) -> None:
    from toolchain.recipes import BUILTIN_RECIPES
    from toolchain.recipes.check import check_file, recipe_file

    if target in BUILTIN_RECIPES:
        path = recipe_file(target)
    else:
        where, sep, attr = target.rpartition(":")  # FILE:NAME, as --recipe takes it
        path = Path(where if sep and where.endswith(".py") and attr else target)
        if not path.is_file():
            raise click.BadParameter(
                f"{target!r} is neither a file nor a built-in recipe", param_hint="'--check'"
            )
    report = check_file(path)
    if as_json:
        emit_json(report.to_json())
    else:
        for f in report.findings:
            echo(f"{f.location}: {style(f.kind.value, bold=True)}: {f.construct}")
            echo(f"  why: {f.why}")
            echo(f"  fix: {f.fix}")
        for f in report.exempted:
            echo(f"{f.location}: {f.kind.value}: {f.construct} (exempt: {f.exemption})")
        verdict = (
            f"{len(report.findings)} finding(s)" if report.findings else "no portability findings"
        )
        echo(f"{report.path}: {verdict}, {len(report.exempted)} exempted by '# portable:'")
    sys.exit(ExitCode.OK if report.ok else ExitCode.CHECK_FAILED)
