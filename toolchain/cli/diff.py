"""``benchmark-regen diff …``: create, check, apply, inspect and audit ``.bdiff`` files.

Each command calls one library function and maps the result to an exit code;
library errors reach the root group's one handler.
"""

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
    entries_option,
    executor_option,
    format_option,
    image_option,
    in_container_option,
    insecure_option,
    json_option,
    key_on_option,
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
from toolchain.errors import ExitCode
from toolchain.source import SourceOptions

if TYPE_CHECKING:
    from toolchain.run.shard import Shard

__all__ = ["diff"]

_diff_option = click.option(
    "--diff",
    "diff_file",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The .bdiff file (or the folder of a diff made with --format parquet).",
)


@click.group("diff", epilog=EPILOG_EXIT_CODES)
def diff() -> None:
    """Publish a benchmark as a .bdiff keyed on its original, and rebuild it from one.

    \b
    Examples:
      benchmark-regen diff create --original ./val --benchmark ./bench --out bench.bdiff
      benchmark-regen diff check --original ./val --diff bench.bdiff
      benchmark-regen diff apply --original ./val --diff bench.bdiff --out ./bench
      benchmark-regen diff inspect bench.bdiff
    """


@diff.command(epilog=EPILOG_EXIT_CODES)
@original_option
@click.option(
    "--benchmark",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The generated benchmark folder (must verify).",
)
@out_option("The .bdiff file to write (with --format parquet: a new folder).")
@click.option(
    "--format",
    "diff_format",
    type=click.Choice(["bdiff", "parquet"]),
    default="bdiff",
    show_default=True,
    help="bdiff: one file; parquet: the same diff as a small Hugging Face dataset (a folder).",
)
@key_on_option
@entries_option
@workers_option
@json_option
@quiet_option
def create(
    original: Path,
    source_options: SourceOptions,
    benchmark: Path,
    out: Path,
    diff_format: str,
    key_on: str,
    entries: str,
    workers: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Seal a verified benchmark into one .bdiff (with --format parquet: a diff dataset
    folder) that only holders of the original can open; read the original as generate did
    (the same --split, --config, --columns, --ids, --image-column)."""
    from toolchain.diff import create_diff

    with progress("diff create", quiet=quiet or as_json) as bar:
        result = create_diff(
            original,
            benchmark,
            out,
            key_on=key_on,
            workers=workers,
            progress=bar,
            source_options=source_options,
            format=diff_format,
            entries=entries,
        )
    if as_json:
        emit_json(result.to_json())
        return
    doc = result.to_json()
    echo(
        f"wrote {out}: {doc['samples']} samples ({doc['recipe']} recipe, {doc['delta']} delta, "
        f"{doc['full']} full), {doc['bytes']} bytes, keyed on {key_on}"
    )


@diff.command(epilog=EPILOG_EXIT_CODES)
@original_option
@_diff_option
@out_option("Output folder (empty, or an old benchmark with --overwrite).")
@workers_option
@click.option(
    "--partial",
    is_flag=True,
    help="Write every sample that verifies plus coverage.json (exit 5 if any is missing).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing benchmark in --out.")
@resume_option
@shard_option
@executor_option
@scheduler_option
@certs_option
@insecure_option
@recheck_option
@click.option(
    "--pubkey",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Check the publisher's signature (FILE.bdiff.sig) before touching any original.",
)
@click.option(
    "--signature",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --pubkey: the signature file, if not FILE.bdiff.sig.",
)
@in_container_option
@image_option
@format_option
@json_option
@quiet_option
def apply(
    original: Path,
    source_options: SourceOptions,
    diff_file: Path,
    out: Path,
    workers: int,
    partial: bool,
    overwrite: bool,
    resume: bool,
    shard: Shard | None,
    executor: str,
    scheduler: str | None,
    certs: Path | None,
    insecure: bool,
    recheck: float | None,
    pubkey: Path | None,
    signature: Path | None,
    in_container: bool,
    image_tag: str,
    out_format: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Rebuild the benchmark from your original; exit 0 only if every sample is bit-exact.

    \b
    Examples:
      benchmark-regen diff apply --original ./val --diff bench.bdiff --out ./bench
      benchmark-regen diff apply --original ./val --diff bench.bdiff --out ./bench \\
          --pubkey publisher.pub --workers 2
      benchmark-regen diff apply --original ./val --diff bench.bdiff --out ./bench --partial
      benchmark-regen diff apply --original ./val --diff bench.bdiff --out ./bench --shard 0/4
      benchmark-regen diff apply --original ./val --diff bench.bdiff --out ./bench --resume
      benchmark-regen diff apply --original ./val --diff bench.bdiff --out ./bench --in-container
    """
    from toolchain.diff import get_benchmark

    if in_container:
        from toolchain.diff.reader import check_container_signature

        if pubkey is not None:  # checked here, on the host, before the container sees anything
            check = check_container_signature(diff_file, pubkey, signature=signature)
            if not as_json:
                echo(f"signature OK: key {check.keyid[:16]} vouches for root {check.root}")
        ctx = click.get_current_context()
        drop = ("in_container", "image_tag", "pubkey", "signature", "executor", "scheduler",
                "certs", "insecure", "recheck")  # fmt: skip
        argv = ["diff", *container_argv(ctx, drop=drop)]
        sys.exit(
            run_in_pinned_image(
                argv, original=original, out=out, diff=diff_file.parent, image=image_tag
            )
        )
    with progress("diff apply", quiet=quiet or as_json) as bar:
        result = get_benchmark(
            original,
            diff_file,
            out,
            workers=workers,
            partial=partial,
            overwrite=overwrite,
            resume=resume,
            shard=shard,
            executor=executor,
            scheduler=scheduler,
            certs=certs,
            insecure=insecure,
            recheck=recheck,
            pubkey=pubkey,
            signature=signature,
            progress=bar,
            source_options=source_options,
            format=out_format,
        )
    if result.signature is not None and not as_json:
        sig = result.signature
        echo(f"signature OK: key {sig.keyid[:16]} vouches for root {sig.root}")
    if as_json:
        emit_json(result.to_json())
    else:
        for o in result.failures():
            echo(o.message)
        c = result.found_counts()
        ok = len(result.outcomes) - len(result.failures())
        verdict = (
            style("OK", fg="green", bold=True)
            if result.ok
            else style("FAILED", fg="red", bold=True)
        )
        resumed = c.get("finished-before-resume", 0)
        echo(
            f"{verdict}: {ok} of {len(result.outcomes)} samples bit-exact "
            f"({c.get('found-by-id', 0)} found by id, {c.get('found-by-content', 0)} by content, "
            + (f"{resumed} finished before the resume, " if resumed else "")
            + f"{c.get('missing', 0)} missing, {c.get('present-but-different', 0)} different)"
        )
        if not result.manifest_written:
            echo(f"no manifest.json was written: {out} is not a benchmark")
        elif not result.ok:
            echo(f"partial result in {out} (coverage.json): it will not verify")
        echo(f"root {style(str(result.manifest.root), bold=True)}")
    sys.exit(result.exit_code)


@diff.command(epilog=EPILOG_EXIT_CODES)
@original_option
@_diff_option
@json_option
@quiet_option
def check(
    original: Path, source_options: SourceOptions, diff_file: Path, as_json: bool, quiet: bool
) -> None:
    """Report which originals are present (by id, by content), missing, or different."""
    from toolchain.diff import check_diff
    from toolchain.diff.locate import Found

    with progress("diff check", quiet=quiet or as_json) as bar:
        report = check_diff(original, diff_file, progress=bar, source_options=source_options)
    if as_json:
        emit_json(report.to_json())
    else:
        for e in report.entries:
            where = f"  (at {e.source})" if e.source and e.source != e.id else ""
            echo(f"{e.found:>22}  {e.id}{where}")
        counts = ", ".join(f"{len(report.by_kind(k))} {k}" for k in Found)
        echo(f"coverage {report.coverage}: {counts}")
    sys.exit(ExitCode.OK if report.ok else ExitCode.CHECK_FAILED)


@diff.command("inspect", epilog=EPILOG_EXIT_CODES)
@click.argument("diff_file", metavar="FILE", type=click.Path(exists=True, path_type=Path))
@json_option
def inspect_command(diff_file: Path, as_json: bool) -> None:
    """Describe a .bdiff (header, counts, kinds, sizes, manifest); no original needed."""
    from toolchain.diff import inspect_diff

    info = inspect_diff(diff_file)
    if as_json:
        emit_json(info.to_json())
        return
    for line in info.lines():
        echo(line)


@diff.command(epilog=EPILOG_EXIT_CODES)
@_diff_option
@click.option(
    "--original",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="With the original: also measure what the plaintext deltas reveal.",
)
@json_option
def audit(diff_file: Path, original: Path | None, as_json: bool) -> None:
    """Report what an outsider learns: membership tests, payload randomness, guessable
    originals and what a plaintext delta rebuilds (the last two need --original).

    \b
    Examples:
      benchmark-regen diff audit --diff bench.bdiff
      benchmark-regen diff audit --diff bench.bdiff --original ./val --json
    """
    from toolchain.diff import audit_diff

    report = audit_diff(diff_file, original)
    if as_json:
        emit_json(report.to_json())
        return
    m = report.membership
    if m is not None:
        via = "decoded pixels" if str(m.key_on) == "pixels" else "file bytes"
        echo(
            f"membership: all {m.entries} entries can be tested by anyone holding a candidate "
            "image: its source commitment (salted per benchmark, the salt is in the manifest), "
            f"its pixel digest (run the public recipe) or its locating fingerprint (its {via})"
            + (f"; {m.duplicates} entries share an original" if m.duplicates else "")
        )
    echo(
        f"sealed payloads: chi-square {report.chi_square:.1f} (255 dof), p={report.p_value:.4f}; "
        f"{report.payloads_p_below_001} of {report.payloads} payloads with p < 0.01"
    )
    if report.recipe_entries is not None:
        from toolchain.diff.audit import RECIPE_ENTRY_REVEALS

        r = report.recipe_entries
        echo(f"recipe entries: {r.count}, naming {r.recipe}; each reveals {RECIPE_ENTRY_REVEALS}")
    if report.guesses:
        from toolchain.diff.audit import FEW_COLOURS, GUESSABLE_BITS

        guessable = ", ".join(g.id for g in report.guessable[:5]) or "none"
        few = sum(g.few_colours for g in report.guesses)
        checkers = "its source commitment" + (
            ", the AEAD tag and the fingerprint (key_on = pixels)"
            if m is not None and str(m.key_on) == "pixels"
            else ""
        )
        echo(
            f"guessable originals: {len(report.guessable)} of {len(report.guesses)} carry at "
            f"most {GUESSABLE_BITS} bits or one colour ({guessable}); {few} with at most "
            f"{FEW_COLOURS} colours; a right guess is confirmed offline by {checkers}"
        )
    if report.leaks:
        leaks = report.leaks
        gains = [s.rebuilt_gain for s in leaks]
        echo(
            f"plaintext deltas: {len(report.structure_leaks)} of {len(leaks)} are mostly a "
            f"linear function of the original (R^2 >= 0.5); deconvolving them rebuilds it "
            f"{sum(gains) / len(gains):+.2f} dB PSNR on average (best {max(gains):+.2f} dB) over "
            f"a constant guess; per value: {report.mean_psnr_gain:+.2f} dB on average "
            f"(max {report.max_psnr_gain:+.2f} dB), max |correlation| "
            f"{report.max_abs_correlation:.4f}"
        )
    echo(f"flags: {', '.join(report.flags) or 'none'}")
