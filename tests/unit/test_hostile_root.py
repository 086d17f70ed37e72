"""The root commits to the id -> output path mapping and the carried columns (issue #15, 8).

An attacker moves a sample to another class folder (what a loader reads as its label)
and edits the manifest to match, step by step:

1. only ``path`` edited: ``verify`` exits 3 (bad input): the manifest does not parse,
   because an output path must be ``output_path_for(id)``;
2. ``id`` and ``path`` edited, the root kept: exit 1 (a check failed): the root no
   longer matches the entries (it covers ids and paths);
3. the root recomputed too: an unsigned manifest now verifies (it only proves it is
   self-consistent), so ``verify --pubkey`` (exit 1: the signature covers the root) and
   ``compare`` with the published manifest (exit 1, never IDENTICAL) catch it.

Relabelling a sample (a carried column) is the same: ``compare`` says "path or columns
differ" for that sample, ``verify`` fails on the stored root until it is recomputed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.diff_cases import build, pinned, tiny_original
from toolchain.audit.compare import Status, compare_benchmarks
from toolchain.audit.sign import generate_key, sign_manifest
from toolchain.cli import cli
from toolchain.errors import ExitCode
from toolchain.model.columns import ColumnSpec
from toolchain.model.manifest import Manifest, load_manifest, write_manifest


def _cli(*args: str) -> tuple[int, str]:
    with pinned():
        r = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in r.output
    return r.exit_code, r.output


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A benchmark with a carried label column (class folder a -> 0, b -> 1), signed."""
    original = tiny_original(tmp_path / "original")
    bench, _ = build(original, "identity", tmp_path / "work")
    m = load_manifest(bench / "manifest.json")
    label = ColumnSpec(name="label", type="class_label", names=("a", "b", "none"))
    entries = [
        dataclasses.replace(e, columns={"label": {"a": 0, "b": 1}.get(e.id.split("/")[0], 2)})
        for e in m.entries
    ]
    labelled = Manifest.build(
        recipe=m.recipe, entries=entries, fingerprint=m.fingerprint, encoder=m.encoder,
        columns=[label], provenance=m.provenance,
    )  # fmt: skip
    (bench / "manifest.json").unlink()
    write_manifest(labelled, bench / "manifest.json")
    keys = generate_key(tmp_path / "publisher.key")
    sign_manifest(bench / "manifest.json", keys.private)
    assert _cli("verify", str(bench), "--pubkey", str(keys.public))[0] == 0
    return bench


def _edit(bench: Path, fn) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((bench / "manifest.json").read_text())
    fn(doc)
    (bench / "manifest.json").write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n")


def _move(doc: dict, old: str, new: str) -> None:  # type: ignore[type-arg]
    for e in doc["entries"]:
        if e["id"] == old:
            e["id"] = new
    doc["entries"].sort(key=lambda e: e["id"].encode())


def test_moving_a_file_to_another_class_folder(published: Path, tmp_path: Path) -> None:
    tampered = Path(shutil.copytree(published, tmp_path / "tampered"))
    (tampered / "b").mkdir(exist_ok=True)
    (tampered / "a/one.png").rename(tampered / "b/one.png")

    # 1. The path alone: the manifest is refused as malformed (bad input).
    def path_only(doc: dict) -> None:  # type: ignore[type-arg]
        next(e for e in doc["entries"] if e["id"] == "a/one.png")["path"] = "b/one.png"

    _edit(tampered, path_only)
    code, text = _cli("verify", str(tampered))
    assert code == ExitCode.BAD_INPUT, text
    assert "sample 'a/one.png' has output path 'b/one.png'; it must be 'a/one.png'" in text

    # 2. The id too, the root kept: a failed check (the root covers ids and paths).
    def id_too(doc: dict) -> None:  # type: ignore[type-arg]
        path_only(doc)
        _move(doc, "a/one.png", "b/one.png")

    shutil.copy(published / "manifest.json", tampered / "manifest.json")
    _edit(tampered, id_too)
    code, text = _cli("verify", str(tampered), "--json")
    assert code == ExitCode.CHECK_FAILED, text
    doc = json.loads(text)
    assert doc["root_consistent"] is False and doc["ok"] is False and not doc["problems"]

    # 3. The root recomputed: self-consistent, so only the signature and compare catch it.
    m = load_manifest(tampered / "manifest.json")
    (tampered / "manifest.json").unlink()
    write_manifest(dataclasses.replace(m, root=m.compute_root(m.entries, m.columns, 2)),
                   tampered / "manifest.json")  # fmt: skip
    assert _cli("verify", str(tampered))[0] == 0  # unsigned: nothing else to check against
    code, text = _cli("verify", str(tampered), "--pubkey", str(tmp_path / "publisher.key.pub"))
    assert code == ExitCode.CHECK_FAILED and "signature" in text
    result = compare_benchmarks(published, tampered)
    assert not result.identical and not result.reproduces
    statuses = {s.id: s.status for s in result.samples}
    assert statuses["a/one.png"] is Status.MISSING_IN_B
    assert statuses["b/one.png"] is Status.MISSING_IN_A
    code, text = _cli("compare", str(published), str(tampered))
    assert code == ExitCode.CHECK_FAILED and text.splitlines()[-1] == "DIFFERENT"


def test_relabelling_a_sample(published: Path, tmp_path: Path) -> None:
    tampered = Path(shutil.copytree(published, tmp_path / "tampered"))

    def relabel(doc: dict) -> None:  # type: ignore[type-arg]
        e = next(e for e in doc["entries"] if e["id"] == "a/one.png")
        e["columns"]["label"] = 1  # a -> b, pixels and path unchanged

    _edit(tampered, relabel)
    code, text = _cli("verify", str(tampered), "--json")
    assert code == ExitCode.CHECK_FAILED and json.loads(text)["root_consistent"] is False
    m = load_manifest(tampered / "manifest.json")
    (tampered / "manifest.json").unlink()
    write_manifest(dataclasses.replace(m, root=m.compute_root(m.entries, m.columns, 2)),
                   tampered / "manifest.json")  # fmt: skip
    result = compare_benchmarks(published, tampered)
    assert [(s.id, s.status) for s in result.differing] == [("a/one.png", Status.LABELS_DIFFER)]
    assert Status.LABELS_DIFFER.value == "path or columns differ"
    assert not result.identical and not result.reproduces
    code, text = _cli("compare", str(published), str(tampered))
    assert code == ExitCode.CHECK_FAILED and "path or columns differ" in text
    assert text.splitlines()[-1] == "DIFFERENT"
    # Renaming a class (the schema) moves the root as well.
    renamed = dataclasses.replace(
        m, columns=(ColumnSpec(name="label", type="class_label", names=("a", "c", "none")),)
    )
    assert renamed.compute_root(renamed.entries, renamed.columns, 2) != m.compute_root(
        m.entries, m.columns, 2
    )
