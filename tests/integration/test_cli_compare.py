"""``benchmark-regen compare`` through Click: output, JSON, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import compare_cases as cc
from tests.cli import run_cli
from toolchain.errors import ExitCode
from toolchain.model.manifest import MANIFEST_NAME, load_manifest
from toolchain.run.generate import generate_benchmark


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, small_original: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "bench"
    generate_benchmark(small_original, "gaussian-noise", out)
    return out


def test_identical_exit_0(bench: Path, tmp_path: Path) -> None:
    shutil.copytree(bench, tmp_path / "copy")
    r = run_cli("compare", bench, tmp_path / "copy")
    assert r.exit_code == ExitCode.OK, r.output
    assert "identical: 4 identical" in r.output and "IDENTICAL" in r.output


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
    assert (tmp_path / "rep" / "index.html").is_file()
    doc = json.loads(run_cli(*args, "--json").output)
    assert doc["reproduces"] and not doc["identical"]
    assert [row["label"] for row in doc["rows"]] == ["ref", "pil-other"]
    assert doc["rows"][1]["dominant_cause"] == "encoder-only drift"


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
