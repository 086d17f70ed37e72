"""toolchain.diff.check: per sample, found by id, by content, present but different, or
missing; coverage; nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.diff_cases import build, missing_and_altered, pinned, tiny_original
from tests.hf_cases import hf_offline
from tests.hub_snapshots import hub_offline, pets
from toolchain.diff import check_diff, create_diff
from toolchain.diff.check import CheckEntry, CheckReport
from toolchain.diff.locate import Found
from toolchain.errors import ExitCode, InputError
from toolchain.model.manifest import load_manifest
from toolchain.run.generate import generate_benchmark
from toolchain.source import SourceOptions

__all__ = ["hf_offline", "hub_offline", "pets"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("check")
    original = tiny_original(work / "original")
    bench, diff = build(original, "adversarial", work)
    return original, bench, diff


def test_check_reports_exactly_the_missing_and_the_altered(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, _, diff = tiny
    copy = missing_and_altered(original, tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    report = check_diff(copy, diff)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # writes nothing
    assert not report.ok
    verdicts = {e.id: e.found for e in report.entries}
    assert verdicts.pop("five.jpg") is Found.MISSING
    assert verdicts.pop("a/one.png") is Found.DIFFERENT
    assert set(verdicts.values()) == {Found.BY_ID}
    assert report.coverage == "0.600000"


def test_a_complete_original_is_found_by_id(tiny: tuple[Path, Path, Path]) -> None:
    original, bench, diff = tiny
    calls: list[tuple[int, int]] = []
    report = check_diff(original, diff, progress=lambda done, total: calls.append((done, total)))
    assert report.ok and report.coverage == "1.000000"
    assert {e.found for e in report.entries} == {Found.BY_ID}
    assert all(e.source == e.id for e in report.entries)
    assert report.manifest.root == load_manifest(bench / "manifest.json").root
    assert calls[-1] == (5, 5) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_moved_and_renamed_originals_are_found_by_content(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, _, diff = tiny
    copy = Path(shutil.copytree(original, tmp_path / "moved"))
    (copy / "elsewhere").mkdir()
    (copy / "a/one.png").rename(copy / "elsewhere/renamed.png")
    (copy / "five.jpg").rename(copy / "b/5.jpg")
    report = check_diff(copy, diff)
    assert report.ok
    found = {e.id: (e.found, e.source) for e in report.entries}
    assert found["a/one.png"] == (Found.BY_CONTENT, "elsewhere/renamed.png")
    assert found["five.jpg"] == (Found.BY_CONTENT, "b/5.jpg")
    assert found["b/three.png"] == (Found.BY_ID, "b/three.png")


def test_the_report_as_json(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, _, diff = tiny
    doc = json.loads(
        json.dumps(check_diff(missing_and_altered(original, tmp_path), diff).to_json())
    )
    assert doc["counts"] == {
        "found-by-id": 3, "found-by-content": 0, "missing": 1, "present-but-different": 1,
    }  # fmt: skip
    assert doc["ok"] is False and doc["samples"] == 5 and doc["coverage"] == "0.600000"
    assert {"found": "missing", "id": "five.jpg", "source": None} in doc["entries"]
    assert doc["root"].startswith("sha256:")


def test_coverage_is_an_exact_six_decimal_fraction(tiny: tuple[Path, Path, Path]) -> None:
    _, _, diff = tiny
    manifest = check_diff(tiny[0], diff).manifest
    entries = (
        CheckEntry(id="a", found=Found.BY_ID, source="a"),
        CheckEntry(id="b", found=Found.BY_CONTENT, source="c"),
        CheckEntry(id="c", found=Found.MISSING),
    )
    assert CheckReport(diff=diff, manifest=manifest, entries=entries).coverage == "0.666667"
    assert CheckReport(diff=diff, manifest=manifest, entries=()).coverage == "1.000000"
    assert CheckReport(diff=diff, manifest=manifest, entries=()).ok


def test_the_wrong_split_is_named_not_reported_as_every_sample_missing(
    pets: Path, tmp_path: Path
) -> None:
    validation = SourceOptions(split="validation")
    bench, diff = tmp_path / "bench", tmp_path / "pets.bdiff"
    with pinned():
        generate_benchmark(pets, "identity", bench, source_options=validation)
        create_diff(pets, bench, diff, source_options=validation)
    with pytest.raises(InputError) as e:
        check_diff(pets, diff, source_options=SourceOptions(split="train"))
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert "split 'train' (not 'validation')" in e.value.message
    assert e.value.hint == "pass --split validation"
    assert check_diff(pets, diff, source_options=validation).ok
