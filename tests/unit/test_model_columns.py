"""Carried columns: their spec's JSON form and the names our outputs keep for themselves."""

from __future__ import annotations

from toolchain.model.columns import COLUMN_TYPES, RESERVED_COLUMNS, ColumnSpec


def test_column_spec_json_names_only_class_labels() -> None:
    label = ColumnSpec(name="label", type="class_label", names=("cat", "dog"))
    assert label.to_json() == {"type": "class_label", "names": ["cat", "dog"]}
    assert ColumnSpec(name="caption", type="string").to_json() == {"type": "string"}


def test_reserved_names_are_what_our_outputs_use() -> None:
    assert {"image", "sample_id", "file_name"} == RESERVED_COLUMNS
    assert "class_label" in COLUMN_TYPES and not RESERVED_COLUMNS & COLUMN_TYPES
