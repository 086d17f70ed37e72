"""The ``benchmark-regen`` command line: a thin layer over the library.

Each command parses its arguments, calls one library function, prints the
result (``--json`` for machines) and maps it to an exit code. Errors of the
library (:class:`toolchain.errors.Error`) are caught in exactly one place,
:meth:`_Group.invoke`, and printed with their hint.

Exit codes (``toolchain.errors.ExitCode``): 0 ok, 1 a check failed (not
bit-exact), 2 usage error, 3 bad input, 4 environment error, 5 partial
result, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

import toolchain
from toolchain.errors import Error, ExitCode, ParamError

F = TypeVar("F", bound=Callable[..., Any])

EPILOG_EXIT_CODES = (
    "Exit codes: 0 ok, 1 check failed (not bit-exact), 2 usage error, 3 bad input, "
    "4 environment error, 5 partial result, 130 interrupted."
)


def _color() -> bool | None:
    """Honour NO_COLOR (https://no-color.org): any non-empty value disables colour."""
    return False if os.environ.get("NO_COLOR") else None


def _echo(text: str = "", *, err: bool = False) -> None:
    click.echo(text, err=err, color=_color())


def _style(text: str, **kw: Any) -> str:
    return text if os.environ.get("NO_COLOR") else click.style(text, **kw)


def _emit_json(doc: object) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


@contextlib.contextmanager
def _progress(label: str, *, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = click.progressbar(
                length=total, label=label, file=sys.stderr, color=_color(), show_pos=True
            )
            bar.__enter__()
            state["bar"] = bar
        bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)


class _Group(click.Group):
    """The root group: the one place where library errors become exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Error as e:
            _echo(_style("error: ", fg="red", bold=True) + e.diagnostics(), err=True)
            ctx.exit(int(e.exit_code))
        except KeyboardInterrupt:
            _echo("interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


# -- options, defined once ------------------------------------------------------------

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
workers_option = click.option(
    "--workers",
    type=click.IntRange(1, 512),
    default=1,
    show_default=True,
    help="Worker processes. The output is identical for every value.",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
original_option = click.option(
    "--original",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Your copy of the original: a folder of images, or a .tar of one.",
)


def _shard_spec(_ctx: click.Context, _p: click.Parameter, value: str | None) -> object:
    from toolchain.errors import ShardSpecError
    from toolchain.shard import parse_shard

    if value is None:
        return None
    try:
        return parse_shard(value)
    except ShardSpecError as e:
        raise click.BadParameter(e.diagnostics()) from None


shard_option = click.option(
    "--shard",
    metavar="I/N",
    callback=_shard_spec,
    help="Process only shard I of N (0-based, by sample id); writes a shard manifest.",
)
resume_option = click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run in --out, skipping finished samples.",
)
executor_option = click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: pinned process pool. dask: a Dask cluster (a LocalCluster without --scheduler).",
)
scheduler_option = click.option(
    "--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://head:8786."
)
in_container_option = click.option(
    "--in-container",
    is_flag=True,
    help="Run this command inside the pinned image (docker, --network none, read-only original).",
)
image_option = click.option(
    "--image",
    "image_tag",
    default="benchmark-regen:latest",
    show_default=True,
    help="With --in-container: the image to run.",
)


def _container_argv(ctx: click.Context, *, drop: tuple[str, ...]) -> list[str]:
    """Rebuild this command's argv (host paths) without the container-only options."""
    argv: list[str] = [ctx.info_name or ""]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in drop:
            continue
        value = ctx.params.get(param.name or "")
        flag = param.opts[0]
        if param.is_flag:
            if value:
                argv.append(flag)
        elif param.multiple:
            for v in value or ():
                argv += [flag, str(v)]
        elif value is not None and value != "":
            argv += [flag, str(value)]
    return argv


def _param_pairs(
    _ctx: click.Context, _p: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    for pair in value:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not of the form name=value")
    return value


@click.group(
    cls=_Group, epilog=EPILOG_EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(toolchain.__version__, prog_name="benchmark-regen")
def cli() -> None:
    """Regenerate image benchmarks bit for bit, and prove it.

    \b
    Examples:
      benchmark-regen demo
      benchmark-regen generate --recipe gaussian-noise --original ./imagenet-val --out ./bench
      benchmark-regen verify ./bench
      benchmark-regen env --json
    """


@cli.command(epilog=EPILOG_EXIT_CODES)
@click.option(
    "--recipe",
    "recipe_ref",
    required=True,
    metavar="R",
    help="Built-in name, path/to/file.py:NAME, or package.module:NAME.",
)
@original_option
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (empty, or an old benchmark with --overwrite).",
)
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
@in_container_option
@image_option
@click.option("--overwrite", is_flag=True, help="Replace an existing benchmark in --out.")
@click.option("--original-name", default="", help="Provenance: the original dataset's name.")
@click.option("--original-terms", default="", help="Provenance: URL of the original's terms.")
@click.option("--recipe-license", default="", help="Provenance: the recipe's licence.")
@json_option
@quiet_option
def generate(
    recipe_ref: str,
    original: Path,
    out: Path,
    params: tuple[str, ...],
    workers: int,
    shard: Any,
    resume: bool,
    executor: str,
    scheduler: str | None,
    in_container: bool,
    image_tag: str,
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
      benchmark-regen generate --recipe my_recipes.py:blur --param sigma=2.5 \\
          --original ./val --out ./blur
      benchmark-regen generate --recipe adversarial --original ./val --out ./adv --shard 0/4
      benchmark-regen generate --recipe adversarial --original ./val --out ./adv --resume
      benchmark-regen generate --recipe adversarial --original /shared/val --out /shared/adv \\
          --executor dask --scheduler tcp://head:8786
      benchmark-regen generate --recipe adversarial --original ./val --out ./adv --in-container
    """
    from toolchain.generate import generate_benchmark
    from toolchain.manifest import Provenance
    from toolchain.recipes import BUILTIN_RECIPES, load_recipe, parse_params

    if in_container:
        from toolchain._cli_container import run_cli_in_container

        if recipe_ref not in BUILTIN_RECIPES:
            raise click.BadParameter(
                "--in-container runs a built-in recipe (or one installed in the image)",
                param_hint="--recipe",
            )
        ctx = click.get_current_context()
        argv = _container_argv(ctx, drop=("in_container", "image_tag"))
        sys.exit(run_cli_in_container(argv, original=original, out=out, image=image_tag))
    rec = load_recipe(recipe_ref)
    try:
        overrides = parse_params(rec, params)
    except ParamError as e:
        raise click.BadParameter(e.message, param_hint="--param") from None
    with _progress("generate", quiet=quiet or as_json) as progress:
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
            progress=progress,
            provenance=Provenance(
                original_name=original_name,
                original_terms=original_terms,
                recipe_license=recipe_license,
            ),
        )
    if as_json:
        _emit_json(result.to_json())
        return
    m = result.manifest
    part = f" (shard {m.shard}; merge the shards for the whole benchmark)" if m.shard else ""
    _echo(f"generated {len(m.entries)} samples of {m.recipe} into {out}{part}")
    _echo(f"root {_style(str(result.root), bold=True)}")


@cli.command(epilog=EPILOG_EXIT_CODES)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    help="Manifest to check against (default: DIRECTORY/manifest.json).",
)
@click.option(
    "--pubkey",
    type=click.Path(path_type=Path),
    default=None,
    help="Publisher's Ed25519 public key: the manifest must carry a valid signature.",
)
@click.option(
    "--signature",
    type=click.Path(path_type=Path),
    default=None,
    help="Signature file (default: manifest.sig beside the manifest).",
)
@json_option
@quiet_option
def verify(
    directory: Path,
    manifest: Path | None,
    pubkey: Path | None,
    signature: Path | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Recompute every hash of a benchmark folder; exit 0 only if it is bit-exact.

    \b
    Examples:
      benchmark-regen verify ./bench
      benchmark-regen verify ./bench --manifest published-manifest.json --json
      benchmark-regen verify ./bench --pubkey publisher.pub
    """
    from toolchain.verify import verify_benchmark

    if signature is not None and pubkey is None:
        raise click.BadParameter("needs --pubkey to check it against", param_hint="--signature")
    with _progress("verify", quiet=quiet or as_json) as progress:
        report = verify_benchmark(
            directory, manifest=manifest, progress=progress, pubkey=pubkey, signature=signature
        )
    if as_json:
        _emit_json(report.to_json())
    else:
        if not report.root_consistent:
            _echo("manifest: root hash does not match its entries (tampered or corrupt)")
        for p in report.problems:
            who = f" ({p.sample})" if p.sample and p.sample != p.path else ""
            _echo(f"{p.problem:>14}  {p.path}{who}  {p.detail}")
        if report.partial:
            _echo("this folder holds a partial result: it is not the full benchmark")
        if report.manifest.shard is not None:
            _echo(f"this is shard {report.manifest.shard}: merge the shards to verify the whole")
        if report.signature_problem is not None:
            _echo(f"signature: {report.signature_problem}")
        elif report.signature is not None:
            _echo(f"signature: valid, by {report.signature.keyid}")
        verdict = (
            _style("OK", fg="green", bold=True)
            if report.ok
            else _style("FAILED", fg="red", bold=True)
        )
        _echo(f"{verdict}: {report.checked} samples checked, {len(report.problems)} problems")
        _echo(f"root {report.manifest.root}")
    sys.exit(ExitCode.OK if report.ok else ExitCode.CHECK_FAILED)


@cli.group(epilog=EPILOG_EXIT_CODES)
def key() -> None:
    """Manage the Ed25519 keys that sign manifests (docs/signing.md)."""


@key.command("generate", epilog=EPILOG_EXIT_CODES)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Private key file to create (mode 0600); the public key goes to OUT.pub.",
)
@json_option
def key_generate(out: Path, as_json: bool) -> None:
    """Create a new signing key pair; existing files are never overwritten.

    \b
    Examples:
      benchmark-regen key generate --out publisher.key
    """
    from toolchain.sign import generate_key

    pair = generate_key(out)
    if as_json:
        _emit_json(pair.to_json())
        return
    _echo(f"private key {pair.private} (keep it secret)")
    _echo(f"public key  {pair.public} (publish it)")
    _echo(f"keyid       {pair.keyid}")


@cli.command(epilog=EPILOG_EXIT_CODES)
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Ed25519 private key (PEM) from `key generate`.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the signature (default: manifest.sig beside MANIFEST).",
)
@json_option
def sign(manifest: Path, key_path: Path, out: Path | None, as_json: bool) -> None:
    """Sign a manifest: an in-toto statement about its root hash, in a DSSE envelope.

    \b
    Examples:
      benchmark-regen sign ./bench/manifest.json --key publisher.key
      benchmark-regen verify ./bench --pubkey publisher.key.pub
    """
    from toolchain.sign import sign_manifest

    target = sign_manifest(manifest, key_path, out=out)
    if as_json:
        _emit_json({"manifest": str(manifest), "signature": str(target)})
        return
    _echo(f"signed {manifest} -> {target}")


@cli.command(epilog=EPILOG_EXIT_CODES)
@json_option
def env(as_json: bool) -> None:
    """Print the runtime fingerprint: everything here that can change a pixel.

    \b
    Examples:
      benchmark-regen env
      docker run --rm benchmark-regen env --json
    """
    from toolchain._internal.executor import worker_fingerprint

    fp = worker_fingerprint()
    if as_json:
        _emit_json(dict(fp))
        return
    width = max(len(k) for k in fp)
    for k, v in fp.items():
        _echo(f"{k:<{width}}  {v}")


@cli.command(epilog=EPILOG_EXIT_CODES)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Where to write the demo benchmark.",
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

    with _progress("demo", quiet=quiet or as_json) as progress:
        result = run_demo(out, workers=workers, overwrite=True, progress=progress)
    if as_json:
        _emit_json(result.to_json())
    else:
        m = result.generated.manifest
        _echo(f"original   {result.original}")
        _echo(
            f"           {m.provenance.samples_in_original} photographs (PNG and JPEG), "
            "decoded canonically"
        )
        _echo(
            f"recipe     {m.recipe}: seeded half, Gaussian-like noise, "
            "randomness from (seed, sample id) only"
        )
        _echo(f"generated  {len(m.entries)} lossless PNGs into {out}")
        _echo(
            f"verified   {'bit-exact' if result.verified.ok else 'NOT bit-exact'}: "
            "every file re-decoded and re-hashed against manifest.json"
        )
        _echo(f"root       {_style(str(result.generated.root), bold=True)}")
        _echo(
            "Anyone with the same photographs gets this root hash, on any machine: "
            f"`benchmark-regen verify {out}` proves it."
        )
    sys.exit(ExitCode.OK if result.verified.ok else ExitCode.CHECK_FAILED)


@cli.command("recipes")
@json_option
def list_recipes(as_json: bool) -> None:
    """List the built-in recipes and their parameters."""
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
        _emit_json(rows)
        return
    for row in rows:
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "-"
        _echo(f"{row['name']:<16} v{row['version']}  seed {row['seed']}  {row['select']}  {params}")


from toolchain._cli_compare import compare  # noqa: E402  (it imports this module)
from toolchain._cli_container import image  # noqa: E402
from toolchain._cli_diff import diff  # noqa: E402
from toolchain._cli_scale import jobs, manifest  # noqa: E402

cli.add_command(compare)
cli.add_command(manifest)
cli.add_command(jobs)
cli.add_command(image)
cli.add_command(diff)
