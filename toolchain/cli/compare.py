"""``benchmark-regen compare``: which samples differ between benchmarks, and why."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from toolchain.cli.options import EPILOG_EXIT_CODES, echo, emit_json, json_option, style
from toolchain.errors import ExitCode

__all__ = ["compare"]


@click.command("compare", epilog=EPILOG_EXIT_CODES)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--matrix", is_flag=True, help="Compare every PATH with the reference: a compatibility table."
)
@click.option(
    "--reference",
    type=click.Path(exists=True, path_type=Path),
    help="With --matrix: the reference benchmark (default: the first PATH).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Also write DIR/index.html: one self-contained HTML file, images inlined. DIR must "
    "be new, empty, or hold an earlier report.",
)
@click.option(
    "--trust-manifests",
    is_flag=True,
    help="Read the manifests only: fast, but a file edited, deleted or linked since goes "
    "unnoticed (the output says so).",
)
@json_option
def compare(
    paths: tuple[Path, ...],
    matrix: bool,
    reference: Path | None,
    report_dir: Path | None,
    trust_manifests: bool,
    as_json: bool,
) -> None:
    """Say which samples differ between benchmarks, and why.

    Each PATH is a benchmark folder (folder or parquet format: every output file is read
    and checked against its manifest, differing pixels are measured) or a manifest.
    Exit 0 when everything is identical, 1 otherwise.

    \b
    Examples:
      benchmark-regen compare ./bench-old ./bench-new
      benchmark-regen compare old/manifest.json new/manifest.json --json
      benchmark-regen compare --matrix .matrix/locked/demo .matrix/np126-pil10/demo \\
          --report report/
    """
    from toolchain.audit.compare import (
        MAX_FIGURES,
        Comparison,
        MatrixResult,
        compare_benchmarks,
        compare_matrix,
    )
    from toolchain.audit.report import comparison_lines, matrix_lines, write_report

    result: Comparison | MatrixResult
    figures = 0 if report_dir is None else MAX_FIGURES  # pixels kept only for a report
    if reference is not None and not matrix:
        raise click.BadParameter("only with --matrix", param_hint="--reference")
    if matrix:
        if len(paths) + (reference is not None) < 2:
            raise click.UsageError("--matrix needs at least two benchmarks")
        result = compare_matrix(
            paths, reference=reference, trust_manifests=trust_manifests, figures=figures
        )
    elif len(paths) != 2:
        raise click.UsageError(f"compare takes two benchmarks A and B, got {len(paths)}")
    else:
        result = compare_benchmarks(
            paths[0], paths[1], trust_manifests=trust_manifests, figures=figures
        )
    index = None if report_dir is None else write_report(result, report_dir)
    if as_json:
        doc = result.to_json()
        if index is not None:
            doc["report"] = str(index)
        emit_json(doc)
    else:
        lines = (
            matrix_lines(result) if isinstance(result, MatrixResult) else comparison_lines(result)
        )
        for line in lines:
            echo(line)
        if index is not None:
            echo(f"report: {index}")
        if result.identical:
            echo(style("IDENTICAL", fg="green", bold=True))
        else:
            echo(style("DIFFERENT", fg="red", bold=True))
    sys.exit(ExitCode.OK if result.identical else ExitCode.CHECK_FAILED)
