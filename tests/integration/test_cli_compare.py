"""``benchmark-regen compare`` through Click: output, JSON, exit codes, --trust-manifests,
--report, both output formats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import compare_cases as cc
from tests.cli import generate_args, no_traceback, run_cli
from toolchain.errors import ExitCode
from toolchain.model.manifest import MANIFEST_NAME, load_manifest


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, small_original: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "bench"
    assert (
        run_cli(*generate_args(small_original, out, "gaussian-noise"), pinned=True).exit_code == 0
    )
    return out


def test_identical_exit_0(bench: Path, tmp_path: Path) -> None:
    shutil.copytree(bench, tmp_path / "copy")
    r = run_cli("compare", bench, tmp_path / "copy")
    assert r.exit_code == ExitCode.OK, r.output
    assert "identical: 4 identical" in r.output and "IDENTICAL" in r.output
    assert "files: A measured on disk (folder), B measured on disk (folder)" in r.output


def test_one_altered_pixel_hash_exit_1(bench: Path, tmp_path: Path) -> None:
    victim = load_manifest(bench / MANIFEST_NAME).entries[2].id
    altered = cc.altered_pixels(bench, tmp_path / "altered.json", victim)
    r = run_cli("compare", bench / MANIFEST_NAME, altered)
    assert r.exit_code == ExitCode.CHECK_FAILED, r.output
    (line,) = [ln for ln in r.output.splitlines() if "pixels differ" in ln and victim in ln]
    assert "generator drift" in line
    r = run_cli("compare", "--json", bench / MANIFEST_NAME, altered)
    doc = json.loads(r.output)
    assert r.exit_code == 1 and not doc["reproduces"]
    assert [s["id"] for s in doc["samples"]] == [victim]
    assert doc["samples"][0]["cause"] == "generator drift"
    assert doc["a"]["measured"] is False and doc["trust_manifests"] is False


def test_edited_and_deleted_outputs_exit_1(bench: Path, tmp_path: Path) -> None:
    """What `verify` catches, `compare` reports: never IDENTICAL; unless told to trust."""
    entries = load_manifest(bench / MANIFEST_NAME).entries
    changed = cc.tampered(bench, tmp_path / "t", entries[0].path)
    (changed / entries[1].path).unlink()
    r = no_traceback(run_cli("compare", bench, changed))
    assert r.exit_code == ExitCode.CHECK_FAILED, r.output
    lines = r.output.splitlines()
    (edited,) = [ln for ln in lines if entries[0].id in ln]
    assert "output file tampered" in edited and f"B {entries[0].path}: manifest: pixels" in edited
    (gone,) = [ln for ln in lines if entries[1].id in ln]
    assert "output file missing" in gone and "on disk: missing" in gone
    assert lines[-1] == "DIFFERENT"
    r = run_cli("compare", "--trust-manifests", bench, changed)
    assert r.exit_code == ExitCode.OK and "not read (--trust-manifests)" in r.output
    doc = json.loads(run_cli("compare", "--json", bench, changed).output)
    assert [s["status"] for s in doc["samples"]] == ["output file tampered", "output file missing"]


def test_another_param_names_the_parameter(
    small_original: Path, bench: Path, tmp_path: Path
) -> None:
    args = generate_args(small_original, tmp_path / "s9", "gaussian-noise", param="sigma=9")
    assert run_cli(*args, pinned=True).exit_code == 0
    r = run_cli("compare", bench, tmp_path / "s9")
    assert r.exit_code == ExitCode.CHECK_FAILED, r.output
    assert "recipe differs: params.sigma: 8.0 -> 9.0" in r.output
    differing = [ln for ln in r.output.splitlines() if "pixels differ  " in ln]
    assert differing and all(
        "recipe or parameters differ (params.sigma: 8.0 -> 9.0)" in ln for ln in differing
    )
    assert "decoder" not in r.output


def test_parquet_against_folder(small_original: Path, bench: Path, tmp_path: Path) -> None:
    args = generate_args(small_original, tmp_path / "pq", "gaussian-noise", format="parquet")
    assert run_cli(*args, pinned=True).exit_code == 0
    r = run_cli("compare", bench, tmp_path / "pq")
    assert r.exit_code == ExitCode.OK, r.output
    assert "B measured on disk (parquet)" in r.output


def test_matrix_and_report(bench: Path, tmp_path: Path) -> None:
    enc = cc.encoder_drift(bench, tmp_path / "envs" / "pil-other")
    shutil.copytree(bench, tmp_path / "envs" / "ref")
    args: list[str | Path] = ["compare", "--matrix", tmp_path / "envs/ref", enc]
    r = run_cli(*args, "--report", tmp_path / "rep")
    assert r.exit_code == ExitCode.CHECK_FAILED, r.output  # not identical: bytes differ
    lines = r.output.splitlines()
    assert lines[1].startswith("ref (reference)")
    assert lines[2].split()[:3] == ["pil-other", "yes", "no"]
    assert "encoder-only drift (4)" in lines[2] and "pillow.zlib_ng" in lines[2]
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["index.html"]
    doc = json.loads(run_cli(*args, "--json").output)
    assert doc["reproduces"] and not doc["identical"]
    assert [row["label"] for row in doc["rows"]] == ["ref", "pil-other"]
    assert doc["rows"][1]["dominant_cause"] == "encoder-only drift"


def test_report_into_a_users_folder_exit_4(bench: Path, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.tex").write_text("years of work")
    r = no_traceback(run_cli("compare", bench, bench, "--report", tmp_path / "docs"))
    assert r.exit_code == ExitCode.ENVIRONMENT
    assert "holds 'thesis.tex', which is not part of a report" in r.output
    assert (tmp_path / "docs" / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["thesis.tex"]


def test_usage_errors_exit_2(bench: Path) -> None:
    assert run_cli("compare", bench).exit_code == ExitCode.USAGE
    assert run_cli("compare", "--matrix", bench).exit_code == ExitCode.USAGE
    r = run_cli("compare", "--reference", bench, bench, bench)
    assert r.exit_code == ExitCode.USAGE


def test_bad_manifest_exit_3(bench: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{}")
    r = run_cli("compare", bench, tmp_path / "bad.json")
    assert r.exit_code == ExitCode.BAD_INPUT
    assert "error:" in r.output or "error:" in (r.stderr or "")
