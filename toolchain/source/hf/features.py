"""How ``datasets`` features map to carried columns and image columns."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from toolchain._internal.deps import require
from toolchain._internal.jsonload import load_json
from toolchain.errors import SourceError
from toolchain.model.columns import ColumnSpec, ColumnValue

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["column_spec", "column_value", "features_of_schema", "has_path", "is_image_feature"]

_HF_KEY = b"huggingface"
"""The schema-metadata key ``datasets`` keeps its features under."""


def column_spec(name: str, feature: Any) -> ColumnSpec | None:
    """The ColumnSpec of a ``datasets`` feature, or None if it cannot be carried."""
    ds = require("datasets")
    if isinstance(feature, ds.ClassLabel):
        return ColumnSpec(name=name, type="class_label", names=tuple(feature.names))
    if not isinstance(feature, ds.Value):
        return None
    dtype = str(feature.dtype)
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
    ds = require("datasets")
    if isinstance(feature, ds.Image):
        return True
    # no `huggingface` schema metadata: the Image storage type, a struct of bytes and path
    if isinstance(feature, dict) and set(feature) == {"bytes", "path"}:
        b, p = feature["bytes"], feature["path"]
        return (
            isinstance(b, ds.Value)
            and str(b.dtype) in ("binary", "large_binary")
            and isinstance(p, ds.Value)
            and str(p.dtype) in ("string", "large_string")
        )
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
    ds = require("datasets")
    return isinstance(feature, ds.Image) or (isinstance(feature, dict) and "path" in feature)


def features_of_schema(schema: pa.Schema, *, where: str) -> dict[str, Any]:
    """The ``datasets`` features of an Arrow schema: from its ``huggingface`` metadata when
    ``datasets`` can read features there, else from the arrow types.

    Metadata that is not JSON (or nested too deep to parse, or to turn into features) is a
    :class:`SourceError` naming ``where``: the file is damaged or hostile.
    """
    ds = require("datasets")
    raw = (schema.metadata or {}).get(_HF_KEY)
    what = f"{where}: its huggingface schema metadata"
    hint = "the file is damaged, or was not written by datasets: download or save it again"
    if raw is not None:
        load_json(raw, what=what, error=SourceError, hint=hint)  # before datasets parses it
    try:
        return dict(ds.Features.from_arrow_schema(schema))
    except (ValueError, TypeError, KeyError, AttributeError):
        # JSON, but not features datasets reads: fall back to the arrow types
        return dict(ds.Features.from_arrow_schema(schema.remove_metadata()))
    except RecursionError:
        raise SourceError(f"{what}: features nested too deep", hint=hint) from None
