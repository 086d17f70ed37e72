"""The benchmark as parquet shards: deterministic bytes, loadable, streamed both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hf_cases import LABELS, hf_offline, photos
from toolchain.codec.decode import decode
from toolchain.codec.encode import encode_png
from toolchain.errors import InputError, OutputError
from toolchain.hf.parquet import (
    BenchmarkRow,
    parquet_columns,
    parquet_files,
    read_parquet,
    write_parquet,
)
from toolchain.model.columns import ColumnSpec

__all__ = ["hf_offline"]

pytestmark = pytest.mark.usefixtures("hf_offline")

SPECS = (
    ColumnSpec(name="label", type="class_label", names=LABELS),
    ColumnSpec(name="caption", type="string"),
    ColumnSpec(name="score", type="float"),
    ColumnSpec(name="n", type="int"),
    ColumnSpec(name="ok", type="bool"),
)


def bench_rows(n: int = 8) -> list[BenchmarkRow]:
    """Rows as generate makes them: canonical PNGs of real photographs, sorted by id."""
    rows = []
    for i, (name, data) in enumerate(photos(n)):
        sid = f"{LABELS[i % 2]}/{name}"
        rows.append(
            BenchmarkRow(
                id=sid,
                path=sid.rsplit(".", 1)[0] + ".png",  # the benchmark's output path
                png=encode_png(decode(data)),
                columns={
                    "label": i % 2,
                    "caption": f"photo {i} ü",
                    "score": repr(i / 3),
                    "n": -i,
                    "ok": i % 3 == 0,
                },
            )
        )
    return sorted(rows, key=lambda r: r.id.encode())


@pytest.fixture(scope="module")
def rows() -> list[BenchmarkRow]:
    return bench_rows()


def _bytes(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_bytes_are_a_function_of_the_rows(tmp_path: Path, rows: list[BenchmarkRow]) -> None:
    opts = {"split": "test", "shard_bytes": 1 << 20, "row_group_rows": 2}
    a = write_parquet(tmp_path / "a", rows, SPECS, **opts)  # type: ignore[arg-type]
    b = write_parquet(tmp_path / "b", iter(rows), SPECS, **opts)  # type: ignore[arg-type]
    assert a == b
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert [f.path for f in a.files] == [
        f"data/test-{i:05d}-of-{len(a.files):05d}.parquet" for i in range(len(a.files))
    ]
    assert len(a.files) > 1 and a.rows == len(rows)
    import hashlib

    for f in a.files:
        data = (tmp_path / "a" / f.path).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (f.sha256, f.size)


def test_shard_and_row_group_rules(tmp_path: Path, rows: list[BenchmarkRow]) -> None:
    import pyarrow.parquet as pq

    result = write_parquet(tmp_path, rows, SPECS, shard_bytes=1, row_group_rows=3)
    # shard_bytes=1: every row group closes its shard
    assert [f.rows for f in result.files] == [3, 3, 2]
    for f in result.files:
        md = pq.ParquetFile(tmp_path / f.path).metadata
        assert md.num_row_groups == 1 and md.created_by.startswith("parquet-cpp-arrow version")
    one = write_parquet(tmp_path / "one", rows, SPECS, row_group_rows=3)
    (only,) = one.files
    md = pq.ParquetFile(tmp_path / "one" / only.path).metadata
    assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == [3, 3, 2]


def test_load_dataset_gives_images_and_labels(
    tmp_path: Path, hf_offline: Path, rows: list[BenchmarkRow]
) -> None:
    import datasets

    write_parquet(tmp_path / "out", rows, SPECS, split="test", shard_bytes=1 << 20)
    loaded = datasets.load_dataset(
        "parquet", data_dir=str(tmp_path / "out"), cache_dir=str(hf_offline / "c")
    )
    assert list(loaded) == ["test"]
    ds = loaded["test"]
    assert ds.features == datasets.Features(
        {
            "image": datasets.Image(),
            "sample_id": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(LABELS)),
            "caption": datasets.Value("string"),
            "score": datasets.Value("float64"),
            "n": datasets.Value("int64"),
            "ok": datasets.Value("bool"),
        }
    )
    assert ds[0]["image"].size == decode_size(rows[0].png)
    raw = ds.cast_column("image", datasets.Image(decode=False))
    for r, got in zip(rows, raw, strict=True):
        assert got["image"] == {"bytes": r.png, "path": r.path}
        assert got["sample_id"] == r.id
        assert got["label"] == r.columns["label"]
        assert repr(got["score"]) == r.columns["score"]
        assert (got["n"], got["ok"], got["caption"]) == (
            r.columns["n"],
            r.columns["ok"],
            r.columns["caption"],
        )


def decode_size(png: bytes) -> tuple[int, int]:
    px = decode(png)
    return px.shape[1], px.shape[0]


def test_reader_gives_back_the_rows(tmp_path: Path, rows: list[BenchmarkRow]) -> None:
    write_parquet(tmp_path, rows, SPECS, shard_bytes=1 << 20, row_group_rows=2)
    assert list(read_parquet(tmp_path)) == rows
    assert parquet_columns(tmp_path) == SPECS
    assert len(parquet_files(tmp_path)) > 1


def test_no_columns(tmp_path: Path, rows: list[BenchmarkRow]) -> None:
    bare = [BenchmarkRow(id=r.id, path=r.path, png=r.png) for r in rows]
    write_parquet(tmp_path, bare, ())
    assert list(read_parquet(tmp_path)) == bare


@pytest.mark.slow
def test_streaming_memory_is_one_row_group(tmp_path: Path) -> None:
    import pyarrow as pa

    big = bench_rows(40)  # ~40 photographs, PNG-encoded: several MiB in all
    total = sum(len(r.png) for r in big)
    peak = 0

    def watched() -> object:
        nonlocal peak
        for r in big:
            peak = max(peak, pa.total_allocated_bytes())
            yield r

    write_parquet(tmp_path, watched(), SPECS, row_group_rows=1)  # type: ignore[arg-type]
    largest = max(len(r.png) for r in big)
    assert peak < 3 * largest < total
    peak = 0
    for _ in read_parquet(tmp_path):
        peak = max(peak, pa.total_allocated_bytes())
    assert peak < 3 * largest < total


def test_refuses_unsorted_rows_and_leaves_nothing(tmp_path: Path, rows: list[BenchmarkRow]) -> None:
    with pytest.raises(ValueError, match="sorted-id order"):
        write_parquet(tmp_path, list(reversed(rows)), SPECS, row_group_rows=2)
    assert list((tmp_path / "data").iterdir()) == []
    bad = [BenchmarkRow(id=rows[0].id, path=rows[0].path, png=rows[0].png, columns={"label": 7})]
    with pytest.raises(ValueError, match="carries columns"):
        write_parquet(tmp_path, bad, SPECS)
    with pytest.raises(ValueError, match="7 is not a class_label"):
        write_parquet(tmp_path, bad, SPECS[:1])
    assert list((tmp_path / "data").iterdir()) == []


def test_refuses_to_write_over_shards(tmp_path: Path, rows: list[BenchmarkRow]) -> None:
    write_parquet(tmp_path, rows, SPECS)
    with pytest.raises(OutputError, match=r"train-00000-of-00001\.parquet already exists"):
        write_parquet(tmp_path, rows, SPECS)


def test_an_int_column_holds_int64_only(tmp_path: Path, rows: list[BenchmarkRow]) -> None:
    """2**63 and over broke the arrow conversion with an OverflowError (a traceback)."""
    for big in (1 << 63, -(1 << 63) - 1):
        bad = [BenchmarkRow(id=r.id, path=r.path, png=r.png, columns={**r.columns, "n": big})
               for r in rows[:1]]  # fmt: skip
        with pytest.raises(ValueError, match=f"{big} is not an int64 for 'n'"):
            write_parquet(tmp_path, bad, SPECS)
    edge = [BenchmarkRow(id=r.id, path=r.path, png=r.png, columns={**r.columns, "n": n})
            for r, n in zip(rows[:2], ((1 << 63) - 1, -(1 << 63)), strict=True)]  # fmt: skip
    write_parquet(tmp_path, edge, SPECS)
    assert [r.columns["n"] for r in read_parquet(tmp_path)] == [(1 << 63) - 1, -(1 << 63)]


def test_a_linked_data_folder_is_refused_and_its_target_untouched(
    tmp_path: Path, rows: list[BenchmarkRow]
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "data").symlink_to(tmp_path / "elsewhere", True)
    with pytest.raises(OutputError, match="'data' is a symlink or a file, not a folder"):
        write_parquet(tmp_path / "out", rows, SPECS)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_metadata_nested_too_deep_is_not_a_benchmark_shard(
    tmp_path: Path, rows: list[BenchmarkRow]
) -> None:
    import pyarrow.parquet as pq

    (shard,) = write_parquet(tmp_path, rows, SPECS).files
    table = pq.read_table(tmp_path / shard.path)
    deep = table.replace_schema_metadata({b"huggingface": b"[" * 5000 + b"]" * 5000})
    pq.write_table(deep, tmp_path / shard.path)
    with pytest.raises(InputError, match=r"huggingface schema metadata: not valid JSON \(nested"):
        parquet_columns(tmp_path)
    with pytest.raises(InputError, match=r"huggingface schema metadata: not valid JSON \(nested"):
        list(read_parquet(tmp_path))


def test_reader_refuses_a_sample_id_that_is_not_utf8(
    tmp_path: Path, rows: list[BenchmarkRow]
) -> None:
    """Found by fuzz: parquet writers need not check strings; verify names the row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    result = write_parquet(tmp_path, rows, SPECS)
    shard = tmp_path / result.files[0].path
    table = pq.read_table(shard)
    n = table.num_rows
    offsets = pa.array(range(n + 1), type=pa.int32()).buffers()[1]
    bad = pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(b"\xff" * n)])
    pq.write_table(table.set_column(table.schema.get_field_index("sample_id"), "sample_id", bad),
                   shard)  # fmt: skip
    with pytest.raises(InputError, match=r"row 0: a text cell is not UTF-8"):
        list(read_parquet(tmp_path))


def test_reader_refuses_what_is_not_a_benchmark(tmp_path: Path, rows: list[BenchmarkRow]) -> None:
    import datasets

    with pytest.raises(InputError, match="holds no data/<split>"):
        list(read_parquet(tmp_path))
    (tmp_path / "data").mkdir()
    datasets.Dataset.from_dict({"text": ["a"]}).to_parquet(
        str(tmp_path / "data" / "train-00000-of-00001.parquet")
    )
    with pytest.raises(InputError, match="is not a benchmark shard"):
        list(read_parquet(tmp_path))
    other = tmp_path / "trunc"
    result = write_parquet(other, rows, SPECS)
    shard = other / result.files[0].path
    shard.write_bytes(shard.read_bytes()[:-50])
    with pytest.raises(InputError, match="not a readable parquet file"):
        list(read_parquet(other))


def test_without_the_extra_a_clear_input_error(
    tmp_path: Path, rows: list[BenchmarkRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(InputError, match="optional package 'pyarrow'") as e:
        write_parquet(tmp_path, rows, SPECS)
    assert e.value.hint == "pip install 'benchmark-regen[hf]'"
    assert not (tmp_path / "data").exists()
