"""source/hf/features.py: which ``datasets`` features are carried columns and image columns."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hf_cases import LABELS, class_records, make_dataset
from toolchain.errors import SourceError
from toolchain.model.columns import ColumnSpec
from toolchain.source.hf.features import (
    column_spec,
    column_value,
    features_of_schema,
    has_path,
    is_image_feature,
)


def _feature(kind: str) -> Any:
    import datasets

    return {
        "classes": datasets.ClassLabel(names=list(LABELS)),
        "bool": datasets.Value("bool"),
        "uint8": datasets.Value("uint8"),
        "int64": datasets.Value("int64"),
        "string": datasets.Value("string"),
        "large_string": datasets.Value("large_string"),
        "float16": datasets.Value("float16"),
        "float64": datasets.Value("float64"),
        "binary": datasets.Value("binary"),
        "timestamp": datasets.Value("timestamp[s]"),
        "image": datasets.Image(),
        "list": datasets.Sequence(datasets.Value("int64")),
        "struct": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        "bytes only": {"bytes": datasets.Value("binary")},
        "text struct": {"bytes": datasets.Value("string"), "path": datasets.Value("string")},
    }[kind]


@pytest.mark.parametrize(
    ("kind", "carried"),
    [
        ("classes", ColumnSpec(name="c", type="class_label", names=LABELS)),
        ("bool", ColumnSpec(name="c", type="bool")),
        ("uint8", ColumnSpec(name="c", type="int")),
        ("int64", ColumnSpec(name="c", type="int")),
        ("string", ColumnSpec(name="c", type="string")),
        ("large_string", ColumnSpec(name="c", type="string")),
        ("float16", ColumnSpec(name="c", type="float")),
        ("float64", ColumnSpec(name="c", type="float")),
        ("binary", None),
        ("timestamp", None),
        ("image", None),
        ("list", None),
    ],
)
def test_column_spec_of_each_feature(kind: str, carried: ColumnSpec | None) -> None:
    assert column_spec("c", _feature(kind)) == carried


def test_column_value_as_the_benchmark_carries_it() -> None:
    assert column_value(ColumnSpec(name="c", type="class_label", names=LABELS), 1) == 1
    assert column_value(ColumnSpec(name="c", type="int"), 7) == 7
    assert column_value(ColumnSpec(name="c", type="bool"), 1) is True
    assert column_value(ColumnSpec(name="c", type="float"), 0.1) == "0.1"
    assert column_value(ColumnSpec(name="c", type="float"), 2) == "2.0"
    assert column_value(ColumnSpec(name="c", type="string"), "a b") == "a b"


@pytest.mark.parametrize(
    ("kind", "image", "path"),
    [
        ("image", True, True),
        ("struct", True, True),
        ("bytes only", False, False),
        ("text struct", False, True),
        ("binary", False, False),
    ],
)
def test_image_features_and_their_paths(kind: str, image: bool, path: bool) -> None:
    assert is_image_feature(_feature(kind)) is image
    assert has_path(_feature(kind)) is path


def test_features_of_a_schema_with_and_without_readable_metadata() -> None:
    import datasets

    schema = make_dataset(class_records(2)).features.arrow_schema
    features = features_of_schema(schema, where="x.parquet")
    assert isinstance(features["image"], datasets.Image)
    assert features["label"] == datasets.ClassLabel(names=list(LABELS))
    # JSON, but not features datasets reads: the arrow types (the image's storage struct)
    broken = schema.with_metadata({b"huggingface": b'{"info": {"features": {"label": 7}}}'})
    fallback = features_of_schema(broken, where="x.parquet")
    assert is_image_feature(fallback["image"]) and not isinstance(fallback["image"], datasets.Image)
    assert fallback["label"] == datasets.Value("int64")


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested too deep"),  # datasets' own parser: RecursionError
        # JSON that parses, but whose features datasets turns into objects recursively
        (b'{"info": {"features": {"label": ' + b'{"a": ' * 400 + b'{"dtype": "int64", '
         b'"_type": "Value"}' + b"}" * 400 + b"}}}", "features nested too deep"),
    ],
    ids=["not JSON", "5000 deep", "features 400 deep"],
)  # fmt: skip
def test_metadata_that_cannot_be_parsed_names_the_file(metadata: bytes, words: str) -> None:
    schema = make_dataset(class_records(2)).features.arrow_schema.with_metadata(
        {b"huggingface": metadata}
    )
    with pytest.raises(SourceError, match=words) as e:
        features_of_schema(schema, where="data/train-00000-of-00001.parquet")
    assert e.value.message.startswith("data/train-00000-of-00001.parquet: its huggingface")
