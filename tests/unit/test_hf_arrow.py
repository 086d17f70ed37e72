"""toolchain.hf._arrow: the parquet writer's fixed options, the features we write and read
back, and shards cut by rows and bytes, written whole or not at all, never through a link."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolchain._internal.safefs import UnsafePath
from toolchain.hf._arrow import (
    WrittenShard,
    arrow_type,
    column,
    feature_json,
    features_metadata,
    open_writer,
    specs_from_features,
    write_shards,
)
from toolchain.model.columns import ColumnSpec

SPECS = [
    ColumnSpec(name="label", type="class_label", names=("cat", "dog")),
    ColumnSpec(name="n", type="int"),
    ColumnSpec(name="caption", type="string"),
    ColumnSpec(name="ok", type="bool"),
    ColumnSpec(name="score", type="float"),
]


_VALUES = {
    "binary": st.binary(max_size=40),
    "string": st.text(max_size=20),
    "int64": st.integers(-(1 << 63), (1 << 63) - 1),
    "double": st.floats(allow_nan=False),
    "bool": st.booleans(),
}


@pytest.mark.parametrize("name", sorted(_VALUES))
@settings(deadline=None)  # the first pa.array call imports pandas
@given(data=st.data())
def test_a_column_is_what_pa_array_makes_of_the_same_values(name: str, data: st.DataObject) -> None:
    type = pa.type_for_alias(name)
    values = data.draw(st.lists(st.none() | _VALUES[name], max_size=12))
    made = column(values, type)
    assert made.type == type and made.null_count == values.count(None)
    assert made.equals(pa.array(values, type)), (made, values)


@pytest.mark.parametrize(
    ("values", "type", "words"),
    [
        (["text"], pa.binary(), "a binary column cannot hold 'text'"),
        ([b"bytes"], pa.string(), "a string column cannot hold b'bytes'"),
        ([1], pa.int32(), "no column of type int32"),
        ([True, 1], pa.bool_(), "a bool column cannot hold 1"),
        (["yes"], pa.bool_(), "a bool column cannot hold 'yes'"),
        ([3, True], pa.int64(), "a int64 column cannot hold True"),
    ],
)
def test_a_column_refuses_what_it_cannot_hold(
    values: list[object], type: pa.DataType, words: str
) -> None:
    with pytest.raises(TypeError, match=words):
        column(values, type)
    if type in (pa.bool_(), pa.int64()):  # pa.array refuses these too (text it would encode)
        with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
            pa.array(values, type)


def test_binary_values_of_any_buffer_type_are_joined_without_a_copy_each() -> None:
    values = [b"ab", bytearray(b"cd"), memoryview(b"efg"), None, memoryview(bytearray(b"h"))]
    made = column(values, pa.binary())
    assert made.to_pylist() == [b"ab", b"cd", b"efg", None, b"h"]


def test_writing_a_row_group_never_imports_pandas(tmp_path: Path) -> None:
    """``pa.array`` imports pandas (about 60 MB of the parquet output's peak RSS)."""
    script = textwrap.dedent(
        f"""
        import sys
        import pyarrow as pa
        from pathlib import Path
        from toolchain.hf._arrow import column, write_shards
        types = [pa.binary(), pa.string(), pa.int64(), pa.float64(), pa.bool_()]
        schema = pa.schema([(str(i), t) for i, t in enumerate(types)])
        rows = [(b"png", "a/b.png", 7, 0.5, True), (b"", None, None, 1.5, False)]
        def table(buf):
            cols = [column([r[i] for r in buf], t) for i, t in enumerate(types)]
            return pa.Table.from_arrays(cols, schema=schema)
        write_shards(Path({str(tmp_path)!r}) / "data", "train", schema, rows, size_of=len,
                     to_table=table, row_group_rows=1, row_group_bytes=1 << 20, shard_bytes=1)
        print("pandas" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
    assert len(list((tmp_path / "data").iterdir())) == 2


def test_features_as_datasets_writes_them_and_back() -> None:
    features = {spec.name: feature_json(spec) for spec in SPECS}
    assert features["label"] == {"names": ["cat", "dog"], "_type": "ClassLabel"}
    assert features["score"] == {"dtype": "float64", "_type": "Value"}
    assert specs_from_features({"image": {"_type": "Image"}, **features}, skip=["image"]) == SPECS


def test_the_features_agree_with_datasets() -> None:
    import datasets

    features = {spec.name: feature_json(spec) for spec in SPECS}
    assert datasets.Features.from_dict(features).to_dict() == features
    import pyarrow as pa

    assert [arrow_type(s) for s in SPECS] == [pa.int64(), pa.int64(), pa.string(), pa.bool_(),
                                              pa.float64()]  # fmt: skip


@pytest.mark.parametrize(
    ("features", "words"),
    [
        ({"x": "int64"}, "is not an object"),
        ({"x": {"_type": "ClassLabel"}}, "ClassLabel without a list of names"),
        ({"x": {"_type": "ClassLabel", "names": [1]}}, "ClassLabel without a list of names"),
        ({"x": {"_type": "Value", "dtype": "int8"}}, "is not one we write"),
        ({"x": {"_type": "Sequence"}}, "is not one we write"),
    ],
)
def test_features_we_do_not_write_are_refused(features: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        specs_from_features(features, skip=())


def test_the_schema_metadata_keeps_column_order_and_is_ascii() -> None:
    meta = features_metadata({"z": {"_type": "Image"}, "a": {"dtype": "string", "_type": "Value"}})
    assert meta == (b'{"info": {"features": {"z": {"_type": "Image"}, '
                    b'"a": {"dtype": "string", "_type": "Value"}}}}')  # fmt: skip
    assert features_metadata({"\u00e9": {}}).isascii()


def _write(folder: Path, rows: list[int], **kw: int) -> list[WrittenShard]:
    import pyarrow as pa

    schema = pa.schema([("n", pa.int64())])
    return write_shards(
        folder, "train", schema, rows,
        size_of=lambda _: 10,
        to_table=lambda batch: pa.table({"n": batch}, schema=schema),
        **{"row_group_rows": 4, "row_group_bytes": 1 << 20, "shard_bytes": 1 << 20, **kw},
    )  # fmt: skip


def test_shards_are_cut_after_the_row_group_that_fills_them(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    shards = _write(tmp_path, list(range(10)), row_group_rows=4, shard_bytes=75)
    assert [(s.path.name, s.rows) for s in shards] == [
        ("train-00000-of-00002.parquet", 8),  # two row groups of 4 rows (80 bytes >= 75)
        ("train-00001-of-00002.parquet", 2),
    ]
    first = pq.ParquetFile(shards[0].path)
    assert [first.metadata.row_group(i).num_rows for i in range(2)] == [4, 4]
    assert pq.read_table(shards[1].path)["n"].to_pylist() == [8, 9]
    assert sorted(p.name for p in tmp_path.iterdir()) == [s.path.name for s in shards]


def test_each_shard_has_the_digest_and_size_of_the_bytes_written(tmp_path: Path) -> None:
    for shard in _write(tmp_path / "data", list(range(10)), shard_bytes=40):
        data = shard.path.read_bytes()
        assert (shard.sha256, shard.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_row_group_also_ends_at_its_byte_budget(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    (shard,) = _write(tmp_path, list(range(5)), row_group_rows=100, row_group_bytes=20)
    meta = pq.ParquetFile(shard.path).metadata
    assert shard.rows == 5 and [meta.row_group(i).num_rows for i in range(3)] == [2, 2, 1]


def test_pyarrows_pool_gives_back_what_it_freed_after_each_row_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its mimalloc pool keeps freed memory: a 500-row run of 500x375 PNGs peaked 58 MB
    above a 150-row one until each row group's buffers were given back."""
    import pyarrow as pa

    from toolchain.hf import _arrow

    released: list[int] = []

    class Pool:
        def release_unused(self) -> None:
            released.append(1)

    class PyArrow:  # pyarrow, but for its pool
        def __getattr__(self, name: str) -> object:
            return Pool if name == "default_memory_pool" else getattr(pa, name)

    real = _arrow.require
    monkeypatch.setattr(_arrow, "require", lambda n: PyArrow() if n == "pyarrow" else real(n))
    _write(tmp_path, list(range(10)), row_group_rows=4, shard_bytes=75)
    assert len(released) == 3  # row groups of 4, 4 and 2 rows


def test_the_bytes_are_a_function_of_the_rows(tmp_path: Path) -> None:
    (a,) = _write(tmp_path / "a", list(range(7)))
    (b,) = _write(tmp_path / "b", list(range(7)))
    assert a.path.read_bytes() == b.path.read_bytes() and a.sha256 == b.sha256


def test_the_writer_options_are_fixed(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("b", pa.binary())])
    with open_writer(tmp_path / "x.parquet", schema, statistics=[]) as writer:
        writer.write_table(pa.table({"b": [b"x" * 100] * 3}, schema=schema))
    column = pq.ParquetFile(tmp_path / "x.parquet").metadata.row_group(0).column(0)
    assert column.compression == "UNCOMPRESSED" and not column.is_stats_set
    assert "PLAIN" in column.encodings and "RLE_DICTIONARY" not in column.encodings


def test_a_row_group_of_large_values_reaches_the_file_in_pages_of_about_1_mib() -> None:
    """Not as one page of the whole row group, which the writer held three times over."""
    import io

    import pyarrow as pa

    class Sink(io.RawIOBase):
        sizes: list[int] = []

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            self.sizes.append(len(memoryview(data).cast("B")))
            return self.sizes[-1]

    value = 400_000
    schema = pa.schema([("b", pa.binary())])
    sink = Sink()
    with open_writer(sink, schema) as writer:  # type: ignore[arg-type]
        writer.write_table(pa.table({"b": [os.urandom(value) for _ in range(30)]}, schema=schema))
    assert sum(sink.sizes) > 30 * value
    assert max(sink.sizes) < (1 << 20) + value + 4096, sorted(sink.sizes)[-3:]


def test_an_error_mid_way_leaves_no_shard_behind(tmp_path: Path) -> None:
    def rows() -> object:
        yield from range(6)
        raise RuntimeError("the source vanished")

    with pytest.raises(RuntimeError, match="vanished"):
        _write(tmp_path, rows(), row_group_rows=2, shard_bytes=20)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_the_writer_writes_the_same_bytes_into_an_open_file(tmp_path: Path) -> None:
    import pyarrow as pa

    schema = pa.schema([("b", pa.binary())])
    table = pa.table({"b": [b"x" * 100] * 3}, schema=schema)
    with open_writer(tmp_path / "by-path.parquet", schema) as writer:
        writer.write_table(table)
    with open(tmp_path / "by-file.parquet", "wb") as f, open_writer(f, schema) as writer:
        writer.write_table(table)
    assert (tmp_path / "by-path.parquet").read_bytes() == (
        tmp_path / "by-file.parquet"
    ).read_bytes()


def test_a_linked_folder_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "data").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePath, match="'data' is a symlink"):
        _write(tmp_path / "data", list(range(5)))
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_shards_are_written_under_random_temp_names_never_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temp name was ``.tmp-<pid>-train-0.parquet``: a co-user could plant a link there."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / f".tmp-{os.getpid()}-train-0.parquet").symlink_to(victim)
    created: list[str] = []
    real_open = os.open

    def spy(path: str, flags: int, *args: object, **kw: object) -> int:
        if str(path).endswith(".parquet"):
            created.append(str(path))
            assert flags & os.O_EXCL and flags & os.O_NOFOLLOW
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    _write(tmp_path / "data", list(range(5)))
    monkeypatch.undo()
    assert victim.read_bytes() == b"precious"
    (first,) = created
    assert first.startswith(".tmp-") and first != f".tmp-{os.getpid()}-train-0.parquet"


def test_existing_shards_of_the_split_are_never_written_over(tmp_path: Path) -> None:
    (tmp_path / "train-00000-of-00001.parquet").write_bytes(b"theirs")
    with pytest.raises(FileExistsError) as e:
        _write(tmp_path, list(range(5)))
    assert e.value.filename == str(tmp_path / "train-00000-of-00001.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-00000-of-00001.parquet"]
    assert (tmp_path / "train-00000-of-00001.parquet").read_bytes() == b"theirs"
