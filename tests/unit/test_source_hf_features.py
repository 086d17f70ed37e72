"""source/hf/features.py: which ``datasets`` features are carried columns and image columns."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hf_cases import LABELS, class_records, make_dataset
from toolchain.errors import SourceError
from toolchain.model.columns import ColumnSpec
from toolchain.source.hf.features import (
    PlainClassLabel,
    PlainImage,
    PlainValue,
    column_spec,
    column_value,
    features_of_schema,
    has_path,
    is_image_feature,
    plain_features_of_schema,
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


# -- the plain features: read without datasets, equal to its own --------------------------


def _as_datasets(feature: Any) -> Any:
    """A plain feature made the ``datasets`` one it stands for."""
    import datasets

    if isinstance(feature, dict):
        return {k: _as_datasets(v) for k, v in feature.items()}
    if isinstance(feature, PlainValue):
        return datasets.Value(feature.dtype, id=feature.id)
    if isinstance(feature, PlainClassLabel):
        return datasets.ClassLabel(names=list(feature.names), id=feature.id)
    assert isinstance(feature, PlainImage)
    return datasets.Image(mode=feature.mode, decode=feature.decode, id=feature.id)


def _same_as_datasets(schema: Any) -> dict[str, Any] | None:
    """The plain features of ``schema``; where there are some, they are datasets' own:
    the same names in the same order, equal features, the same text in messages."""
    plain = plain_features_of_schema(schema, where="x.parquet")
    if plain is not None:
        theirs = features_of_schema(schema, where="x.parquet")
        ours = {k: _as_datasets(v) for k, v in plain.items()}
        assert list(ours) == list(theirs)
        assert ours == theirs
        assert repr(plain) == repr(theirs)
        for name, f in plain.items():
            assert column_spec(name, f) == column_spec(name, theirs[name])
            assert is_image_feature(f) == is_image_feature(theirs[name])
            assert has_path(f) == has_path(theirs[name])
    return plain


def _with(features: object, *fields: Any) -> Any:
    import pyarrow as pa

    doc = {"info": {"features": features}}
    return pa.schema(list(fields), metadata={b"huggingface": json.dumps(doc).encode()})


def test_a_datasets_image_dataset_is_read_without_datasets() -> None:
    schema = make_dataset(class_records(2)).features.arrow_schema
    plain = _same_as_datasets(schema)
    assert plain is not None
    assert plain["image"] == PlainImage()
    assert plain["label"] == PlainClassLabel(tuple(LABELS))
    assert repr(plain["score"]) == "Value('float32')"
    # without metadata: the arrow types, the image's storage struct among them
    bare = _same_as_datasets(schema.remove_metadata())
    assert bare is not None and is_image_feature(bare["image"]) and has_path(bare["image"])
    assert bare["label"] == PlainValue("int64")


def _cases() -> dict[str, tuple[Any, bool]]:
    """Schemas, and whether their features are plain (else datasets is asked)."""
    import pyarrow as pa

    image = pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    label = pa.field("label", pa.int64())
    img, names = {"_type": "Image"}, {"names": ["a", "b"], "_type": "ClassLabel"}
    return {
        "aliases": (_with({"x": {"dtype": "double", "_type": "Value"}, "y": {
            "dtype": "float", "_type": "Value"}}, ("x", pa.float64()), ("y", pa.float32())), True),
        "extra keys ignored": (_with({"x": {"dtype": "int8", "_type": "Value", "more": 1,
                                            "num_classes": 3}}, ("x", pa.int8())), True),
        "declared type not the column's": (_with({"label": names}, ("label", pa.string())), True),
        "not nullable": (_with({"label": names}, pa.field("label", pa.int64(), False)), True),
        "image options and ids": (_with({"image": {"_type": "Image", "mode": "RGB", "decode":
            False, "id": "i"}, "label": {**names, "id": "l"}}, image, label), True),
        "nested struct": (_with({"s": {"a": {"b": {"dtype": "uint16", "_type": "Value"}}}},
                                ("s", pa.struct([("a", pa.struct([("b", pa.uint16())]))]))), True),
        "no info": (pa.schema([image, label], metadata={b"huggingface": b"{}"}), True),
        "features null": (_with(None, image, label), True),
        "declared, not present": (_with({"gone": img}, image), True),
        "large types": (pa.schema([("image", pa.struct([("bytes", pa.large_binary()), (
            "path", pa.large_string())])), ("n", pa.uint64()), ("b", pa.bool_())]), True),
        "a list": (_with({"image": img, "tags": {"feature": {"dtype": "string", "_type":
            "Value"}, "_type": "List"}}, image, ("tags", pa.list_(pa.string()))), False),
        "a list column": (pa.schema([image, ("tags", pa.list_(pa.string()))]), False),
        "dictionary column": (pa.schema([image, ("c", pa.dictionary(pa.int8(), pa.string()))]),
                              False),
        "timestamp": (pa.schema([image, ("t", pa.timestamp("s"))]), False),
        "audio": (_with({"image": img, "a": {"_type": "Audio"}}, image), False),
        "duplicate names": (_with({"label": {"names": ["a", "a"], "_type": "ClassLabel"}},
                                  label), False),
        "num_classes only": (_with({"label": {"num_classes": 2, "_type": "ClassLabel"}}, label),
                             False),
        "names not text": (_with({"label": {"names": [1, 2], "_type": "ClassLabel"}}, label),
                           False),
        "odd dtype": (_with({"x": {"dtype": ["int8"], "_type": "Value"}}, ("x", pa.int8())),
                      False),
        "odd id": (_with({"x": {"dtype": "int8", "_type": "Value", "id": 3}}, ("x", pa.int8())),
                   False),
        "_type null": (_with({"x": {"dtype": "int8", "_type": None}}, ("x", pa.int8())), False),
        "a number": (_with({"label": 7}, label), False),
        "a list of features": (_with([img], image), False),
        "info a list": (pa.schema([image], metadata={b"huggingface": b'{"info": []}'}), False),
        "deep": (_with({"s": {"a": {"b": {"c": {"d": {"e": {"dtype": "int8", "_type":
            "Value"}}}}}}}, ("s", pa.struct([("a", pa.struct([("b", pa.struct([("c", pa.struct(
            [("d", pa.struct([("e", pa.struct([]))]))]))]))]))]))), False),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_cases()))
def test_plain_features_are_datasets_own_or_none(case: str) -> None:
    schema, plain = _cases()[case]
    assert (_same_as_datasets(schema) is not None) is plain


def test_plain_features_never_import_datasets() -> None:
    code = (
        "import sys\n"
        "import pyarrow as pa\n"
        "from toolchain.source.hf.features import *\n"
        "s = pa.schema([('image', pa.struct([('bytes', pa.binary()), ('path', pa.string())])),"
        " ('label', pa.int64())], metadata={b'huggingface': b'{\"info\": {\"features\": "
        '{"label": {"names": ["a"], "_type": "ClassLabel"}, "image": {"_type": "Image"}}}}\'})\n'
        "f = plain_features_of_schema(s, where='x')\n"
        "assert is_image_feature(f['image']) and has_path(f['image'])\n"
        "assert column_spec('label', f['label']).names == ('a',)\n"
        "sys.exit('datasets' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "metadata", [b"{not json", b"[" * 5000 + b"]" * 5000], ids=["not JSON", "5000 deep"]
)
def test_plain_features_refuse_metadata_that_is_not_json(metadata: bytes) -> None:
    schema = make_dataset(class_records(2)).features.arrow_schema.with_metadata(
        {b"huggingface": metadata}
    )
    with pytest.raises(SourceError, match="not valid JSON") as e:
        plain_features_of_schema(schema, where="data/train-00000-of-00001.parquet")
    assert e.value.message.startswith("data/train-00000-of-00001.parquet: its huggingface")


def _feature_json() -> Any:
    """A feature's JSON: mostly ones that are plain, some that are not, a few odd."""
    dtypes = ["int8", "uint64", "bool", "float16", "double", "float", "string", "binary"]
    value = st.fixed_dictionaries(
        {"_type": st.just("Value"),
         "dtype": st.sampled_from(dtypes) | st.sampled_from(["halffloat", "bool_", "nope", 5])},
        optional={"id": st.sampled_from([None, "i", 3])},
    )  # fmt: skip
    label = st.fixed_dictionaries(
        {"_type": st.just("ClassLabel"),
         "names": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True)
         | st.lists(st.sampled_from(["a", 1]), max_size=2) | st.text(max_size=2)},
        optional={"num_classes": st.integers(0, 3)},
    )  # fmt: skip
    image = st.fixed_dictionaries(
        {"_type": st.just("Image")},
        optional={"mode": st.sampled_from([None, "RGB", 3]),
                  "decode": st.sampled_from([True, False, 1, None])},
    )  # fmt: skip
    odd = st.sampled_from([{"_type": "Audio"}, {"_type": None}, 7, None, "x"])
    return st.recursive(
        value | label | image | value | label | image | odd,
        lambda inner: (
            st.dictionaries(st.sampled_from(["a", "bytes", "path"]), inner, max_size=3)
            | st.lists(inner, min_size=1, max_size=1)
            | st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2)
        ),
        max_leaves=4,
    )


def _arrow_type() -> Any:
    import pyarrow as pa

    plain = [pa.int8(), pa.int64(), pa.uint64(), pa.bool_(), pa.float16(), pa.float64(),
             pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]  # fmt: skip
    other = [pa.timestamp("s"), pa.list_(pa.int8()), pa.dictionary(pa.int8(), pa.string())]
    return st.recursive(
        st.sampled_from(plain) | st.sampled_from(plain) | st.sampled_from(other),
        lambda inner: st.lists(
            st.tuples(st.sampled_from(["a", "bytes", "path"]), inner),
            max_size=3,
            unique_by=lambda t: t[0],
        ).map(pa.struct),
        max_leaves=4,
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_plain_features_agree_with_datasets_on_any_schema(data: st.DataObject) -> None:
    import datasets
    import pyarrow as pa

    declared: dict[str, Any] = {}
    fields = []
    for name in ("image", "label", "x"):
        feature = data.draw(_feature_json())
        how = data.draw(st.sampled_from(["its own type", "another type", "undeclared"]))
        t = data.draw(_arrow_type())
        if how != "undeclared":
            declared[name] = feature
        if how == "its own type":
            with contextlib.suppress(Exception):  # not a feature: keep the drawn type
                t = datasets.Features.from_dict({name: feature}).type.field(name).type
        fields.append(pa.field(name, t, nullable=data.draw(st.sampled_from([True, True, False]))))
    if data.draw(st.booleans()):
        declared["gone"] = data.draw(_feature_json())
    schema = _with(declared, *fields)
    _same_as_datasets(schema)
    _same_as_datasets(schema.remove_metadata())
