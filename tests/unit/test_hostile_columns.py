"""Names and values that break our own outputs are refused at the source (issue #23, 7).

* A publisher's ``.bdiff`` whose manifest carries a column named ``file_name`` (or
  ``sample_id``, ``image``), with a consistent root and correct digests: ``diff apply``
  wrote it into ``metadata.jsonl``, where it replaced the image's own ``file_name`` (an
  imagefolder loader then paired images and rows differently), and ``verify`` passed;
  with ``--format parquet`` apply crashed with a traceback. The manifest parser now
  refuses the name: every command stops before writing anything, exit 3.
* A ClassLabel of -1 ("no label", as in ImageNet's test split): ``generate`` carried it
  and ``verify`` then refused the benchmark. It is carried, and verified: the root
  covers it, so a -1 turned into a label fails ``verify``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from tests.cli import diff_apply_args, generate_args, no_traceback, run_cli
from tests.diff_cases import build, tiny_original
from tests.hf_cases import class_records, hf_offline, make_dataset, to_hub_parquet
from toolchain.diff.format import KeyOn, PayloadKind, SealedEntry, write_diff
from toolchain.errors import ExitCode
from toolchain.model.columns import RESERVED_COLUMNS, ColumnSpec
from toolchain.model.manifest import Manifest, dump_manifest, load_manifest

__all__ = ["hf_offline"]


def _forged(manifest: Manifest, name: str) -> Manifest:
    """``manifest`` carrying a string column ``name``, its root recomputed: what a hostile
    publisher writes (``Manifest.build`` itself refuses such a name)."""
    spec = ColumnSpec(name=name, type="string")
    entries = [dataclasses.replace(e, columns={name: "elsewhere.png"}) for e in manifest.entries]
    return dataclasses.replace(
        manifest,
        entries=entries,
        columns=(spec,),
        root=Manifest.compute_root(entries, (spec,)),
    )


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("columns")
    original = tiny_original(root / "original")
    bench, _ = build(original, "identity", root / "work")
    return original, bench


@pytest.mark.parametrize("name", sorted(RESERVED_COLUMNS))
def test_a_publishers_diff_with_our_own_column_names_is_refused_before_writing(
    case: tuple[Path, Path], tmp_path: Path, name: str
) -> None:
    original, bench = case
    forged = _forged(load_manifest(bench / "manifest.json"), name)
    assert forged.root_is_consistent()
    data = dump_manifest(forged)
    sealed = [
        SealedEntry(index=i, kind=PayloadKind.DELTA, fingerprint=bytes(32),
                    sealed=hashlib.sha256(e.id.encode()).digest())
        for i, e in enumerate(forged.entries)
    ]  # fmt: skip
    diff = tmp_path / "forged.bdiff"
    write_diff(diff, key_on=KeyOn.FILE, manifest_bytes=data, entries=sealed,
               entry_count=len(sealed))  # fmt: skip
    for fmt in ("folder", "parquet"):
        out = tmp_path / f"out-{fmt}"
        r = no_traceback(run_cli(*diff_apply_args(original, diff, out, format=fmt), pinned=True))
        assert r.exit_code == ExitCode.BAD_INPUT, r.output
        assert f"columns[{name!r}]: a carried column cannot have this name" in r.output
        assert not out.exists()
    r = no_traceback(run_cli("diff", "inspect", diff))
    assert r.exit_code == ExitCode.BAD_INPUT and "cannot have this name" in r.output


@pytest.mark.parametrize("name", sorted(RESERVED_COLUMNS))
def test_verify_refuses_a_manifest_with_our_own_column_names(
    case: tuple[Path, Path], tmp_path: Path, name: str
) -> None:
    """The benchmark folder the issue's apply wrote: its images all verify, its root is
    consistent; the manifest is what is wrong."""
    _, bench = case
    copy = tmp_path / "bench"
    copy.mkdir()
    for p in bench.rglob("*"):
        if p.is_file():
            (copy / p.relative_to(bench)).parent.mkdir(parents=True, exist_ok=True)
            (copy / p.relative_to(bench)).write_bytes(p.read_bytes())
    forged = _forged(load_manifest(bench / "manifest.json"), name)
    (copy / "manifest.json").write_bytes(dump_manifest(forged))
    r = no_traceback(run_cli("verify", copy))
    assert r.exit_code == ExitCode.BAD_INPUT, r.output
    assert "benchmark's own" in r.output


@pytest.mark.parametrize("fmt", ["folder", "parquet"])
def test_no_label_is_carried_and_verified(hf_offline: Path, tmp_path: Path, fmt: str) -> None:
    rows = class_records(4)
    rows[1]["label"] = -1
    to_hub_parquet(make_dataset(rows), tmp_path / "original", "train")
    bench = tmp_path / "bench"
    r = no_traceback(run_cli(*generate_args(tmp_path / "original", bench, format=fmt),
                             pinned=True))  # fmt: skip
    assert r.exit_code == ExitCode.OK, r.output
    labels = {e.id: e.columns["label"] for e in load_manifest(bench / "manifest.json").entries}
    assert sorted(labels.values()) == [-1, 0, 0, 1]
    r = no_traceback(run_cli("verify", bench))
    assert r.exit_code == ExitCode.OK, r.output
    # The root covers the -1: giving the sample a label fails the check.
    doc = json.loads((bench / "manifest.json").read_text())
    entry = next(e for e in doc["entries"] if e["columns"]["label"] == -1)
    entry["columns"]["label"] = 0
    (bench / "manifest.json").write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    r = no_traceback(run_cli("verify", bench))
    assert r.exit_code == ExitCode.CHECK_FAILED, r.output
