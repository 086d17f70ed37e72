"""Carried columns: the value types a benchmark may carry beside each image, and their spec."""

from __future__ import annotations

from dataclasses import dataclass

from toolchain.model.limits import MAX_NAME_CHARS, size_problem

__all__ = [
    "COLUMN_TYPES",
    "NO_LABEL",
    "RESERVED_COLUMNS",
    "ColumnSpec",
    "ColumnValue",
    "column_name_problem",
]

ColumnValue = str | int | bool
"""A carried column's value in one sample (a class label is its integer index)."""

COLUMN_TYPES = frozenset({"class_label", "int", "string", "bool", "float"})
RESERVED_COLUMNS = frozenset({"image", "sample_id", "file_name"})
"""Names our outputs use themselves: never a carried column's name."""
NO_LABEL = -1
"""The class-label value of a sample without a label (``datasets``' ClassLabel, as in
ImageNet's test split): carried, and covered by the root, like any other label."""


def column_name_problem(name: str) -> str | None:
    """What makes ``name`` unfit for a carried column, or ``None``: one of our own outputs'
    names (a ``file_name`` column would remap ``metadata.jsonl``), empty, or too long."""
    if name in RESERVED_COLUMNS:
        return f"it is the name of the benchmark's own {name!r} column"
    if not name:
        return "it is empty"
    return size_problem(name, MAX_NAME_CHARS)


@dataclass(frozen=True, kw_only=True, slots=True)
class ColumnSpec:
    """A column carried from the original into the benchmark (a label, a caption, ...).

    ``type`` is one of :data:`COLUMN_TYPES`. A ``class_label`` value is the index
    into ``names``, or :data:`NO_LABEL`; a ``float`` value is carried as its shortest
    round-trip decimal string (manifests hold no floats).
    """

    name: str
    type: str
    names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"type": self.type}
        if self.type == "class_label":
            doc["names"] = list(self.names)
        return doc

    def fits(self, value: object) -> bool:
        """Is ``value`` one of this column's values?"""
        if self.type == "class_label":
            return (
                isinstance(value, int)
                and not isinstance(value, bool)
                and (value == NO_LABEL or 0 <= value < len(self.names))
            )
        if self.type == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        if self.type == "bool":
            return isinstance(value, bool)
        return isinstance(value, str)  # string, float (as its decimal string)
