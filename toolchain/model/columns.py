"""Carried columns: the value types a benchmark may carry beside each image, and their spec."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COLUMN_TYPES", "RESERVED_COLUMNS", "ColumnSpec", "ColumnValue"]

ColumnValue = str | int | bool
"""A carried column's value in one sample (a class label is its integer index)."""

COLUMN_TYPES = frozenset({"class_label", "int", "string", "bool", "float"})
RESERVED_COLUMNS = frozenset({"image", "sample_id", "file_name"})
"""Names our outputs use themselves: never a carried column's name."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ColumnSpec:
    """A column carried from the original into the benchmark (a label, a caption, ...).

    ``type`` is one of :data:`COLUMN_TYPES`. A ``class_label`` value is the index
    into ``names``; a ``float`` value is carried as its shortest round-trip
    decimal string (manifests hold no floats).
    """

    name: str
    type: str
    names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"type": self.type}
        if self.type == "class_label":
            doc["names"] = list(self.names)
        return doc
