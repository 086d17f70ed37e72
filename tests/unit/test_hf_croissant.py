"""croissant.json: valid Croissant 1.1 that mlcroissant loads records from, both formats."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import LABELS, hf_offline
from tests.hf_outputs import card_info, folder_benchmark, parquet_benchmark
from toolchain.codec.decode import decode
from toolchain.hf.croissant import CroissantFile, render_croissant
from toolchain.model.columns import ColumnSpec
from toolchain.model.manifest import Manifest

__all__ = ["hf_offline"]

pytestmark = [
    pytest.mark.usefixtures("hf_offline"),
    # mlcroissant 1.1.1 builds its graph with rdflib's deprecated ConjunctiveGraph
    pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning"),
    # ... and reads parquet with DataFrame.reset_index(inplace=True)
    pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index"),
]


@pytest.fixture(scope="module")
def bench(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Manifest, tuple[ColumnSpec, ...]]:
    return folder_benchmark(tmp_path_factory.mktemp("croissant"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(path: Path, caplog: pytest.LogCaptureFixture) -> tuple[list[dict[str, Any]], str]:
    import mlcroissant as mlc

    with caplog.at_level(logging.WARNING):
        ds = mlc.Dataset(jsonld=str(path))  # raises ValidationError on any error
        records = list(ds.records("samples"))
    return records, caplog.text


def _check_records(records: list[dict[str, Any]], bench: Path, manifest: Manifest) -> None:
    labels = {
        json.loads(line)["sample_id"]: json.loads(line)["label"]
        for line in (bench / "metadata.jsonl").read_text().splitlines()
    }
    got = {}
    for r in records:
        sid = r["samples/sample_id"]
        sid = sid.decode() if isinstance(sid, bytes) else sid
        got[sid] = (r["samples/label"], r["samples/image"].size)
    expected = {}
    for e in manifest.entries:
        px = decode((bench / e.path).read_bytes())
        expected[e.id] = (labels[e.id], (px.shape[1], px.shape[0]))
    assert got == expected


def test_parquet_format_validates_and_loads(
    bench: tuple[Path, Manifest, tuple[ColumnSpec, ...]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder, manifest, columns = bench
    out = tmp_path / "pq"
    written = parquet_benchmark(folder, manifest, columns, out)
    files = [
        CroissantFile(path=f.path, sha256=f.sha256, encoding_format="application/x-parquet")
        for f in written.files
    ]
    text = render_croissant(card_info(manifest, columns, "parquet"), files)
    (out / "croissant.json").write_bytes(text)
    records, log = _load(out / "croissant.json", caplog)
    _check_records(records, folder, manifest)
    assert "error" not in log.lower()
    assert "not standard" not in log  # the 1.1 @context, verbatim
    doc = json.loads(text)
    shas = {d["contentUrl"]: d["sha256"] for d in doc["distribution"] if "sha256" in d}
    assert shas == {f.path: _sha(out / f.path) for f in written.files} and len(shas) > 1
    classes = next(rs for rs in doc["recordSet"] if rs["@id"] == "label_classes")
    assert [d["label_classes/name"] for d in classes["data"]] == list(LABELS)


def test_folder_format_validates_and_loads(
    bench: tuple[Path, Manifest, tuple[ColumnSpec, ...]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder, manifest, columns = bench
    files = [
        CroissantFile(
            path="metadata.jsonl",
            sha256=_sha(folder / "metadata.jsonl"),
            encoding_format="application/jsonlines",
        ),
        CroissantFile(
            path="manifest.json",
            sha256=_sha(folder / "manifest.json"),
            encoding_format="application/json",
        ),
    ]
    text = render_croissant(card_info(manifest, columns, "folder"), files)
    (folder / "croissant.json").write_bytes(text)
    try:
        records, log = _load(folder / "croissant.json", caplog)
    finally:
        (folder / "croissant.json").unlink()
    assert len(records) == len(manifest.entries)
    _check_records(records, folder, manifest)
    assert "error" not in log.lower()


def test_bytes_are_deterministic(bench: tuple[Path, Manifest, tuple[ColumnSpec, ...]]) -> None:
    _, manifest, columns = bench
    files = [
        CroissantFile(
            path="data/train-00000-of-00001.parquet",
            sha256="ab" * 32,
            encoding_format="application/x-parquet",
        )
    ]
    info = card_info(manifest, columns, "parquet")
    one = render_croissant(info, files)
    assert one == render_croissant(info, list(reversed(files)))
    assert one.isascii() and one.endswith(b"}\n")
    assert b"datePublished" not in one  # no date unless the publisher gives one
    assert b'"datePublished": "2026-01-01"' in render_croissant(
        info, files, date_published="2026-01-01"
    )


def test_folder_format_needs_its_metadata_files(
    bench: tuple[Path, Manifest, tuple[ColumnSpec, ...]],
) -> None:
    _, manifest, columns = bench
    with pytest.raises(ValueError, match=r"needs \['manifest\.json'\]"):
        render_croissant(
            card_info(manifest, columns, "folder"),
            [
                CroissantFile(
                    path="metadata.jsonl", sha256="00" * 32, encoding_format="application/jsonlines"
                )
            ],
        )
