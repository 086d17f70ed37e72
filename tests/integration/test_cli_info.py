"""toolchain.cli.info: ``env``, ``recipes`` and ``demo`` through Click."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run_cli


def test_env_json_is_a_pinned_fingerprint() -> None:
    r = run_cli("env", "--json")
    assert r.exit_code == 0
    fp = json.loads(r.output)
    assert fp["pinned"] == "true"
    assert fp["env.OPENBLAS_NUM_THREADS"] == "1" and fp["blas.threads"] == "1"
    assert fp["numpy.simd.in_use"] == ""
    for key in ("python", "numpy", "pillow", "pillow.jpg", "pillow.zlib", "blas.coretype"):
        assert fp[key]


def test_env_prints_one_aligned_line_per_field() -> None:
    as_json = json.loads(run_cli("env", "--json").output)
    r = run_cli("env")
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert [ln.split(maxsplit=1)[0] for ln in lines] == list(as_json)
    assert len({len(ln) - len(ln[len(ln.split()[0]) :].lstrip()) for ln in lines}) == 1
    assert "pinned" in r.output and as_json["pinned"] == "true"


def test_recipes_lists_the_built_ins_with_their_parameters() -> None:
    r = run_cli("recipes", "--json")
    assert r.exit_code == 0
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert sorted(rows) == ["adversarial", "gaussian-noise", "identity"]
    assert rows["gaussian-noise"]["params"] == {"sigma": "8.0"}
    assert (
        rows["gaussian-noise"]["seed"] == 2024
        and rows["gaussian-noise"]["select"] == "fraction:1/2"
    )
    assert rows["identity"]["params"] == {}
    plain = run_cli("recipes").output.splitlines()
    assert [ln.split()[0] for ln in plain] == sorted(rows)
    assert "sigma=8.0" in plain[1] and plain[2].rstrip().endswith("-")


@pytest.mark.parametrize(("verified", "code"), [(True, 0), (False, 1)])
def test_demo_exits_1_when_its_benchmark_does_not_verify(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    verified: bool,
    code: int,
) -> None:
    seen: dict[str, object] = {}

    class Report:
        ok = verified

    class Result:
        verified = Report()

        def to_json(self) -> dict[str, object]:
            return {"verified": verified}

    def fake_demo(out: Path, **kw: object) -> Result:
        seen.update(out=out, **kw)
        return Result()

    monkeypatch.setattr("toolchain.demo.run_demo", fake_demo)
    r = run_cli("demo", "--out", tmp_path / "d", "--workers", "2", "--json")
    assert r.exit_code == code
    assert json.loads(r.output) == {"verified": verified}
    assert seen["out"] == tmp_path / "d" and seen["workers"] == 2 and seen["overwrite"] is True


@pytest.mark.slow
def test_demo_regenerates_and_verifies_the_photographs(tmp_path: Path) -> None:
    r = run_cli("demo", "--out", tmp_path / "d", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["verified"] is True and doc["recipe"]["name"] == "gaussian-noise"
    assert doc["samples"] * 2 in (doc["samples_in_original"], doc["samples_in_original"] + 1)
    r = run_cli("demo", "--out", tmp_path / "d")  # replaces its old output
    assert r.exit_code == 0 and f"root       {doc['root']}" in r.output
