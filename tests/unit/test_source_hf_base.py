"""source/hf/base.py: what the three Hugging Face sources share (ids, columns, checks, reads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.hf_cases import (
    hf_offline,
    load_parquet_dir,
    make_dataset,
    to_folder,
    to_hub_parquet,
)
from tests.hf_sources import SPECS, hub, rows, samples
from toolchain.errors import InputError, SourceError
from toolchain.source import open_source
from toolchain.source.hf import class_labels_from_ids
from toolchain.source.hf.base import _Images, project_columns, top_columns

__all__ = ["hf_offline", "hub", "rows"]

pytestmark = pytest.mark.usefixtures("hf_offline")


# -- reading: storage order, one read per sample -----------------------------------------


def test_iter_samples_streams_in_storage_order_each_once(
    hub: Path, rows: list[dict[str, Any]]
) -> None:
    with open_source(hub, split="train") as src:
        ids = list(src.listing().ids)
        wanted = ids[::2] + ids[::2]  # duplicates are read once
        got = [s.id for s in src.iter_samples(reversed(wanted))]
    storage = [r["path"] for r in rows]
    assert got == [p for p in storage if p in set(ids[::2])]


def test_read_and_columns_of_match_iter_samples(hub: Path) -> None:
    with open_source(hub, split="train") as src:
        for s in src.iter_samples(src.listing().ids):
            assert src.read(s.id) == s.data
            assert dict(src.columns_of(s.id)) == dict(s.columns)
        with pytest.raises(SourceError, match="not in split 'train'"):
            src.read("nope.png")


# -- ids: the path rule, row numbers, and bad paths --------------------------------------


def test_row_ids_follow_load_dataset_numbering(
    tmp_path: Path, hf_offline: Path, rows: list[dict[str, Any]]
) -> None:
    root = tmp_path / "nopaths"
    to_hub_parquet(make_dataset(rows, paths=False), root, "validation", shards=3)
    with open_source(root) as src:
        listing = src.listing()
        assert listing.ids == tuple(sorted((f"validation/{i}" for i in range(8)), key=str.encode))
        got = {s.id: s.data for s in src.iter_samples(listing.ids)}
    loaded = load_parquet_dir(root, hf_offline / "cache", split="validation")
    import datasets

    loaded = loaded.cast_column("image", datasets.Image(decode=False))
    for i in range(len(loaded)):
        assert got[f"validation/{i}"] == loaded[i]["image"]["bytes"]


def test_ids_row_mode_and_path_mode(tmp_path: Path, hub: Path, rows: list[dict[str, Any]]) -> None:
    with open_source(hub, split="train", ids="row") as src:
        assert set(src.listing().ids) == {f"train/{i}" for i in range(8)}
        assert src.read("train/5") == rows[5]["bytes"]
    root = tmp_path / "nopaths"
    to_hub_parquet(make_dataset(rows, paths=False), root, "train")
    with pytest.raises(SourceError, match="has no path, and ids='path' needs one"):
        open_source(root, ids="path").listing()
    with pytest.raises(SourceError, match="ids must be one of"):
        open_source(root, ids="paths")


def test_duplicated_paths_name_file_and_both_rows(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    rows[6]["path"] = rows[1]["path"]
    root = tmp_path / "dup"
    to_hub_parquet(make_dataset(rows), root, "train", shards=2)
    with pytest.raises(SourceError) as e:
        open_source(root).listing()
    msg = e.value.message
    assert "data/train-00000-of-00002.parquet, row 1 (row 1 of split 'train')" in msg
    assert "data/train-00001-of-00002.parquet, row 2 (row 6 of split 'train')" in msg
    assert "same image path 'dog/coins.png'" in msg
    assert "--ids row" in (e.value.hint or "")
    with open_source(root, ids="row") as src:  # the way out the hint names
        assert src.read("train/6") == rows[6]["bytes"]


def test_paths_colliding_by_case_are_refused(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    rows[2]["path"] = rows[0]["path"].upper()
    root = tmp_path / "case"
    to_hub_parquet(make_dataset(rows), root, "train")
    with pytest.raises(SourceError, match="collide once case is folded"):
        open_source(root).listing()


def test_unsafe_path_is_refused_with_a_way_out(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    rows[3]["path"] = "/home/someone/x.png"
    root = tmp_path / "abs"
    to_hub_parquet(make_dataset(rows), root, "train")
    with pytest.raises(SourceError, match=r"row 3 .*cannot be a sample id: .*absolute") as e:
        open_source(root).listing()
    assert "--ids row" in (e.value.hint or "")


# -- bad input ---------------------------------------------------------------------------


def test_no_rows_is_an_error_not_an_empty_benchmark(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    root = tmp_path / "empty"
    to_hub_parquet(make_dataset(rows).select([]), root, "train")
    with pytest.raises(SourceError, match="has no rows: there are no images"):
        open_source(root).listing()
    with pytest.raises(SourceError, match="has no rows"):
        open_source(make_dataset(rows).select([])).listing()


def test_parquet_without_image_column(tmp_path: Path) -> None:
    import datasets

    root = tmp_path / "text"
    root.mkdir()
    datasets.Dataset.from_dict({"text": ["a", "b"], "n": [1, 2]}).to_parquet(
        str(root / "train.parquet")
    )
    with pytest.raises(SourceError, match=r"has no image column .* its columns: text, n"):
        open_source(root).listing()


def test_null_image_cell_names_file_and_row(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    import datasets

    ds = make_dataset(rows)
    images = [{"bytes": r["bytes"], "path": r["path"]} for r in rows]
    images[4] = None
    ds = (
        ds.remove_columns("image")
        .add_column("image", images)
        .cast_column("image", datasets.Image())
    )
    root = tmp_path / "null"
    to_hub_parquet(ds, root, "train")
    with pytest.raises(
        SourceError, match=r"train-00000-of-00001.parquet, row 4 .*no image \(null\)"
    ):
        open_source(root).listing()


def test_path_only_image_cell_is_refused(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "pathonly" / "data"
    root.mkdir(parents=True)
    shard = root / "train-00000-of-00001.parquet"
    to_hub_parquet(make_dataset(rows), root.parent, "train")
    table = pq.read_table(shard)
    image = table.column("image").combine_chunks()
    byts = image.field("bytes").to_pylist()
    byts[2] = None
    fixed = pa.StructArray.from_arrays(
        [pa.array(byts, pa.binary()), image.field("path")], names=["bytes", "path"]
    )
    pq.write_table(table.set_column(0, "image", fixed), shard)
    with (
        pytest.raises(
            SourceError, match=r"row 2 .*only a path \('cat/horse.png'\) and no bytes"
        ) as e,
        open_source(root.parent) as src,
    ):
        list(src.iter_samples(src.listing().ids))
    assert "embed" in (e.value.hint or "")


def test_null_in_a_carried_column(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    ds = make_dataset(rows)
    caps = [r["caption"] for r in rows]
    caps[5] = None
    ds = ds.remove_columns("caption").add_column("caption", caps)
    root = tmp_path / "nullcol"
    to_hub_parquet(ds, root, "train")
    with pytest.raises(SourceError, match=r"row 5 .*column 'caption' is empty") as e:
        open_source(root).listing()
    assert e.value.hint == "drop the column with --columns -caption"
    with open_source(root, columns="-caption") as src:
        assert [c.name for c in src.listing().columns] == ["label", "score"]


def test_class_label_out_of_range_but_minus_one_allowed(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    import pyarrow.parquet as pq

    rows[0]["label"] = -1  # ImageNet's test split: no label
    root = tmp_path / "labels"
    (shard,) = to_hub_parquet(make_dataset(rows), root, "train")
    with open_source(root) as src:
        assert src.columns_of(rows[0]["path"])["label"] == -1
    table = pq.read_table(shard)
    labels = table.column("label").to_pylist()
    labels[7] = 5
    import pyarrow as pa

    pq.write_table(table.set_column(1, "label", pa.array(labels, pa.int64())), shard)
    with pytest.raises(
        SourceError, match=r"row 7 .*class label 5 of column 'label' is not in 0..1"
    ):
        open_source(root).listing()


def test_several_image_columns(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    import datasets

    ds = make_dataset(rows)
    ds = ds.add_column("mask", [{"bytes": r["bytes"], "path": None} for r in rows]).cast_column(
        "mask", datasets.Image()
    )
    root = tmp_path / "two"
    to_hub_parquet(ds, root, "train")
    with pytest.raises(SourceError, match="several image columns: image, mask") as e:
        open_source(root).listing()
    assert "--image-column" in (e.value.hint or "")
    with open_source(root, image_column="mask") as src:  # no paths: row ids
        assert src.read("train/1") == rows[1]["bytes"]
    with pytest.raises(SourceError, match="no column 'picture'"):
        open_source(root, image_column="picture").listing()
    with pytest.raises(SourceError, match=r"'caption' .* is not an image"):
        open_source(root, image_column="caption").listing()


# -- columns (select_columns itself: test_source_common.py) -----------------------------


def test_columns_on_a_source(tmp_path: Path, hub: Path, rows: list[dict[str, Any]]) -> None:
    with open_source(hub, split="train", columns="label") as src:
        assert src.listing().columns == SPECS[:1]
        assert dict(src.columns_of(rows[0]["path"])) == {"label": 0}
    with pytest.raises(SourceError, match=r"'image' .* cannot be carried: it is the image column"):
        open_source(hub, split="train", columns="image").listing()
    ds = make_dataset(rows).add_column("sample_id", [str(i) for i in range(8)])
    ds = ds.add_column("tags", [["a"]] * 8)
    root = tmp_path / "more"
    to_hub_parquet(ds, root, "train")
    with pytest.raises(SourceError, match=r"'sample_id' .* clashes with the benchmark's own") as e:
        open_source(root).listing()
    assert e.value.hint == "drop it with --columns -sample_id"
    with pytest.raises(SourceError, match=r"'tags' .* cannot be carried: its type is List"):
        open_source(root, columns="label,tags").listing()
    with open_source(root, columns="-sample_id") as src:  # lists are not carried by default
        assert [c.name for c in src.listing().columns] == ["label", "caption", "score"]


def test_top_columns_and_projection() -> None:
    import pyarrow as pa

    assert top_columns(["image.path", "label", "image"]) == ["image", "label"]
    image = pa.StructArray.from_arrays(
        [pa.array([b"x", b"y"]), pa.array(["a.png", None])],
        names=["bytes", "path"],
        mask=pa.array([False, True]),
    )
    table = pa.table({"image": image, "label": [0, 1]})
    got = project_columns(table, ["image.path", "label"])
    assert got.column_names == ["image", "label"]
    assert got.column("image").to_pylist() == [{"path": "a.png"}, None]
    assert project_columns(table, []).num_columns == 0


@pytest.mark.parametrize("large", [False, True], ids=["binary", "large_binary"])
def test_image_cells_without_bytes_are_found_at_any_offset(large: bool) -> None:
    """The nulls come from the validity bitmap (no pyarrow.compute, no pandas): a null
    struct, null bytes and empty bytes, in slices that start mid-byte of the bitmap."""
    import pyarrow as pa

    n = 21
    data = [None if i % 5 == 1 else (b"" if i % 7 == 3 else bytes([i]) * i) for i in range(n)]
    struct_null = [i % 6 == 4 for i in range(n)]
    byts = pa.array(data, type=pa.large_binary() if large else pa.binary())
    image = pa.StructArray.from_arrays(
        [byts, pa.array([f"{i}.png" for i in range(n)])],
        names=["bytes", "path"],
        mask=pa.array(struct_null),
    )
    for start in (0, 1, 3, 8, 13):
        for stop in (start, start + 1, n):
            part = image.slice(start, stop - start)
            want = [j for j, i in enumerate(range(start, stop)) if struct_null[i] or not data[i]]
            for cells in (_Images(part), _Images(pa.chunked_array([part], type=image.type))):
                assert cells.bad() == want
                for j in range(stop - start):
                    if j not in want:
                        assert cells.get(j, lambda: "row") == data[start + j]
    no_nulls = pa.StructArray.from_arrays([pa.array([b"a", b"bc"])], names=["bytes"])
    assert _Images(no_nulls.slice(1)).bad() == []


# -- the same images, as a folder and as parquet -----------------------------------------


def test_folder_and_parquet_give_the_same_samples(
    tmp_path: Path, hub: Path, rows: list[dict[str, Any]]
) -> None:
    folder = to_folder(rows, tmp_path / "folder")
    with open_source(folder) as f, open_source(hub, split="train", columns="label") as p:
        ids = f.listing().ids
        assert p.listing().ids == ids
        labels = class_labels_from_ids(ids)
        assert labels is not None
        spec, values = labels
        assert p.listing().columns == (spec,)
        from_folder = [(s.id, s.data, {"label": values[s.id]}) for s in f.iter_samples(ids)]
        from_parquet = sorted(samples(p), key=lambda t: t[0].encode())
    assert from_parquet == from_folder


# -- the optional extra ------------------------------------------------------------------


def test_without_the_extra_a_clear_input_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub: Path, rows: list[dict[str, Any]]
) -> None:
    ds = make_dataset(rows).add_column("tags", [["a"]] * 8)  # a List: features need datasets
    root = tmp_path / "lists"
    to_hub_parquet(ds, root, "train")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(InputError, match="optional package 'pyarrow'") as e:
        open_source(hub, split="train").listing()
    assert e.value.hint == "pip install 'benchmark-regen[hf]'"
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(InputError, match="optional package 'datasets'") as e:
        open_source(root).listing()
    assert e.value.hint == "pip install 'benchmark-regen[hf]'"
    assert not isinstance(e.value, SourceError) or e.value.exit_code == 3
    # the schema metadata of image, label, caption and score suffices: no datasets needed
    with open_source(hub, split="train") as src:
        assert src.listing().columns == SPECS
        assert sorted(s.id for s in src.iter_samples(src.listing().ids)) == sorted(
            src.listing().ids
        )


def test_core_imports_without_hf_packages() -> None:
    code = (
        "import sys, toolchain.source, toolchain.source.hf, toolchain.hf.parquet,"
        " toolchain.hf.card, toolchain.hf.croissant, toolchain.hub.load, toolchain.diff.dataset;"
        "bad = [m for m in ('datasets', 'pyarrow', 'mlcroissant') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_uint64_values_are_carried_within_the_int64_range_and_refused_over_it(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    """A benchmark's int column is int64: 2**63 and over would break its parquet shards."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = make_dataset(rows[:4])
    features = datasets.Features({**ds.features, "big": datasets.Value("uint64")})
    for values, name in (([0, 1, (1 << 63) - 1, 3], "fits"), ([0, 1, 2, 1 << 63], "over")):
        table = ds.data.table.append_column("big", pa.array(values, pa.uint64()))
        (tmp_path / name / "data").mkdir(parents=True)
        pq.write_table(
            table.replace_schema_metadata(features.arrow_schema.metadata),
            tmp_path / name / "data" / "train-00000-of-00001.parquet",
        )
    with open_source(tmp_path / "fits") as src:
        carried = sorted(int(src.columns_of(sid)["big"]) for sid in src.listing().ids)
    assert carried == [0, 1, 3, (1 << 63) - 1]
    with pytest.raises(SourceError, match=r"row 3 .*: value 9223372036854775808 of column 'big'"):
        open_source(tmp_path / "over").listing()


def test_the_index_finds_each_row_and_each_id_without_a_dict() -> None:
    """Rows in storage order, ids sorted by UTF-8 bytes in the listing (code points would
    put U+FFFD before U+10000); a row's id and an id's row both found, an unknown id not."""
    from array import array

    from toolchain._internal.packed import PackedStrings
    from toolchain.source.hf.base import _Index

    row_ids = ["train/b", "train/\U00010000", "train/a", "train/\ufffd", "train/10", "train/9"]
    idx = _Index.of(row_ids, (), ignored=0, ignored_kinds={})
    assert isinstance(idx.listing.ids, PackedStrings)
    assert list(idx.listing.ids) == sorted(row_ids, key=lambda s: s.encode("utf-8"))
    assert [idx.id_of(r) for r in range(len(row_ids))] == row_ids
    assert [idx.row_of(s) for s in row_ids] == list(range(len(row_ids)))
    assert idx.row_of("train/c") is None and idx.row_of("") is None
    assert isinstance(idx.rows, array) and isinstance(idx.positions, array)
