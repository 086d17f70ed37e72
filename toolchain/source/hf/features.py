"""How ``datasets`` features map to carried columns and image columns, and a parquet
shard's features read from its schema without importing ``datasets`` where they suffice."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from toolchain._internal.deps import require
from toolchain._internal.jsonload import load_json
from toolchain.errors import SourceError
from toolchain.model.columns import ColumnSpec, ColumnValue

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "PlainClassLabel",
    "PlainImage",
    "PlainValue",
    "column_spec",
    "column_value",
    "features_of_schema",
    "has_path",
    "is_image_feature",
    "plain_features_of_schema",
]

_HF_KEY = b"huggingface"
"""The schema-metadata key ``datasets`` keeps its features under."""
_HINT = "the file is damaged, or was not written by datasets: download or save it again"


# -- the features of the plain kinds, without datasets -------------------------------------
# Each stands for the ``datasets`` feature of its name: the same fields, equality and text.


@dataclass(frozen=True, slots=True)
class PlainValue:
    """``datasets.Value``, of a dtype in :data:`_DTYPES`."""

    dtype: str
    id: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Value('{self.dtype}')"


@dataclass(frozen=True, slots=True)
class PlainClassLabel:
    """``datasets.ClassLabel``, of unique string names."""

    names: tuple[str, ...]
    id: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"ClassLabel(names={list(self.names)!r})"


@dataclass(frozen=True, slots=True)
class PlainImage:
    """``datasets.Image``."""

    mode: str | None = None
    decode: bool = True
    id: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Image(mode={self.mode!r}, decode={self.decode!r})"


_DTYPES = (
    *("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
    *("float16", "float32", "float64", "string", "large_string", "binary", "large_binary"),
)
"""The ``Value`` dtypes read without ``datasets``: those a carried column or an image's
storage struct may have."""
_MAX_DEPTH = 4
"""Structs nested deeper are left to ``datasets`` (and its checks)."""


def _loaded_datasets() -> Any:
    """``datasets`` if it is loaded, else None: a feature that is none of the plain kinds
    was made by it."""
    return sys.modules.get("datasets")


def _value_dtype(feature: Any) -> str | None:
    if isinstance(feature, PlainValue):
        return feature.dtype
    ds = _loaded_datasets()
    return str(feature.dtype) if ds is not None and isinstance(feature, ds.Value) else None


def _class_names(feature: Any) -> tuple[Any, ...] | None:
    if isinstance(feature, PlainClassLabel):
        return feature.names
    ds = _loaded_datasets()
    return tuple(feature.names) if ds is not None and isinstance(feature, ds.ClassLabel) else None


def _is_image(feature: Any) -> bool:
    ds = _loaded_datasets()
    return isinstance(feature, PlainImage) or (ds is not None and isinstance(feature, ds.Image))


# -- what a feature is to a benchmark -----------------------------------------------------


def column_spec(name: str, feature: Any) -> ColumnSpec | None:
    """The ColumnSpec of a ``datasets`` feature, or None if it cannot be carried."""
    names = _class_names(feature)
    if names is not None:
        return ColumnSpec(name=name, type="class_label", names=names)
    dtype = _value_dtype(feature)
    if dtype is None:
        return None
    if dtype == "bool":
        return ColumnSpec(name=name, type="bool")
    if re.fullmatch(r"u?int(8|16|32|64)", dtype):
        return ColumnSpec(name=name, type="int")
    if dtype in ("string", "large_string"):
        return ColumnSpec(name=name, type="string")
    if dtype in ("float16", "float32", "float64", "float", "double", "halffloat"):
        return ColumnSpec(name=name, type="float")
    return None


def is_image_feature(feature: Any) -> bool:
    """True for an ``Image`` feature, or the struct of bytes and path it is stored as."""
    if _is_image(feature):
        return True
    # no `huggingface` schema metadata: the Image storage type, a struct of bytes and path
    if isinstance(feature, dict) and set(feature) == {"bytes", "path"}:
        return _value_dtype(feature["bytes"]) in ("binary", "large_binary") and _value_dtype(
            feature["path"]
        ) in ("string", "large_string")
    return False


def column_value(spec: ColumnSpec, raw: object) -> ColumnValue:
    """A cell of a carried column as the benchmark carries it (a float as its ``repr``)."""
    if spec.type in ("class_label", "int"):
        assert isinstance(raw, int)
        return int(raw)
    if spec.type == "bool":
        return bool(raw)
    if spec.type == "float":
        assert isinstance(raw, int | float)
        return repr(float(raw))
    return str(raw)


def has_path(feature: Any) -> bool:
    """True if the image feature has a ``path`` (a candidate sample id)."""
    return _is_image(feature) or (isinstance(feature, dict) and "path" in feature)


# -- the features of a schema -------------------------------------------------------------


def _metadata(schema: pa.Schema, where: str) -> tuple[bool, Any]:
    """Whether the schema has ``huggingface`` metadata, and its JSON; metadata that is not
    JSON (or nested too deep to parse) is a :class:`SourceError` naming ``where``."""
    raw = (schema.metadata or {}).get(_HF_KEY)
    if raw is None:
        return False, None
    what = f"{where}: its huggingface schema metadata"
    return True, load_json(raw, what=what, error=SourceError, hint=_HINT)


def features_of_schema(schema: pa.Schema, *, where: str) -> dict[str, Any]:
    """The ``datasets`` features of an Arrow schema: from its ``huggingface`` metadata when
    ``datasets`` can read features there, else from the arrow types.

    Metadata that is not JSON (or nested too deep to parse, or to turn into features) is a
    :class:`SourceError` naming ``where``: the file is damaged or hostile.
    """
    _metadata(schema, where)  # checked before datasets parses it
    ds = require("datasets")
    try:
        return dict(ds.Features.from_arrow_schema(schema))
    except (ValueError, TypeError, KeyError, AttributeError):
        # JSON, but not features datasets reads: fall back to the arrow types
        return dict(ds.Features.from_arrow_schema(schema.remove_metadata()))
    except RecursionError:
        raise SourceError(
            f"{where}: its huggingface schema metadata: features nested too deep", hint=_HINT
        ) from None


def plain_features_of_schema(schema: pa.Schema, *, where: str) -> dict[str, Any] | None:
    """What :func:`features_of_schema` gives, as plain features (equal to it, field for
    field, once each is made a ``datasets`` one), read without ``datasets``; or None when the
    schema holds anything else (a list, an Audio feature, odd metadata): then ask it.

    It follows ``datasets.Features.from_arrow_schema``: a column takes the feature its
    metadata declares when that feature's arrow type is the column's, else the feature
    of its arrow type. Metadata that is not JSON is a :class:`SourceError`, as there.
    """
    present, doc = _metadata(schema, where)
    declared = _declared(doc) if present else {}
    if declared is None:
        return None
    pa_ = require("pyarrow")
    out: dict[str, Any] = {}
    for f in schema:
        feature = declared.get(f.name)
        if feature is None or f != pa_.field(f.name, _arrow_type(feature)):
            feature = _of_arrow_type(f.type, 0)
            if feature is None:
                return None
        out[f.name] = feature
    return out


def _declared(doc: Any) -> dict[str, Any] | None:
    """The features ``datasets`` reads from metadata ``doc`` (none: ``{}``), if all are plain."""
    if not isinstance(doc, dict):
        return None
    info = doc.get("info", {})
    if not isinstance(info, dict):
        return None
    features = info.get("features")
    if features is None:
        return {}
    if not isinstance(features, dict):
        return None
    out: dict[str, Any] = {}
    for name, raw in features.items():
        feature = _plain(raw, 0)
        if feature is None:
            return None
        out[name] = feature
    return out


def _plain(raw: Any, depth: int) -> Any:
    """The plain feature of a feature's JSON (``datasets.features.generate_from_dict``), or
    None when it is another kind, or one ``datasets`` would refuse."""
    if not isinstance(raw, dict) or depth > _MAX_DEPTH:
        return None
    kind = raw.get("_type")
    if kind is None:  # a struct
        children = {k: _plain(v, depth + 1) for k, v in raw.items()}
        return None if None in children.values() else children
    ident = raw.get("id")
    if not (ident is None or isinstance(ident, str)):
        return None
    if kind == "Value":
        dtype = raw.get("dtype")
        if not isinstance(dtype, str):
            return None
        dtype = {"double": "float64", "float": "float32"}.get(dtype, dtype)  # as Value does
        return PlainValue(dtype, ident) if dtype in _DTYPES else None
    if kind == "ClassLabel":
        names = raw.get("names")
        if (
            not isinstance(names, list)
            or not all(isinstance(n, str) for n in names)
            or len(set(names)) != len(names)
        ):
            return None  # num_classes alone, a names_file, duplicates: datasets decides
        return PlainClassLabel(tuple(names), ident)
    if kind == "Image":
        mode, decode = raw.get("mode"), raw.get("decode", True)
        if (mode is None or isinstance(mode, str)) and isinstance(decode, bool):
            return PlainImage(mode, decode, ident)
    return None


def _arrow_type(feature: Any) -> pa.DataType:
    pa_ = require("pyarrow")
    if isinstance(feature, dict):
        return pa_.struct([pa_.field(k, _arrow_type(v)) for k, v in feature.items()])
    if isinstance(feature, PlainImage):
        return pa_.struct([pa_.field("bytes", pa_.binary()), pa_.field("path", pa_.string())])
    if isinstance(feature, PlainClassLabel):
        return pa_.int64()
    return _arrow_of_dtype(feature.dtype)


def _arrow_of_dtype(dtype: str) -> pa.DataType:
    pa_ = require("pyarrow")
    return getattr(pa_, "bool_" if dtype == "bool" else dtype)()


def _of_arrow_type(t: pa.DataType, depth: int) -> Any:
    """The plain feature ``datasets`` gives arrow type ``t`` (``generate_from_arrow_type``)."""
    pa_ = require("pyarrow")
    if pa_.types.is_struct(t):
        if depth > _MAX_DEPTH:
            return None
        children = {
            t.field(i).name: _of_arrow_type(t.field(i).type, depth + 1) for i in range(t.num_fields)
        }
        return None if None in children.values() else children
    return next((PlainValue(d) for d in _DTYPES if _arrow_of_dtype(d).equals(t)), None)
