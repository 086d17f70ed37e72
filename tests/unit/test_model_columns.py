"""Carried columns: their spec's JSON form and the names our outputs keep for themselves."""

from __future__ import annotations

import pytest

from toolchain.model.columns import (
    COLUMN_TYPES,
    NO_LABEL,
    RESERVED_COLUMNS,
    ColumnSpec,
    column_name_problem,
)


def test_column_spec_json_names_only_class_labels() -> None:
    label = ColumnSpec(name="label", type="class_label", names=("cat", "dog"))
    assert label.to_json() == {"type": "class_label", "names": ["cat", "dog"]}
    assert ColumnSpec(name="caption", type="string").to_json() == {"type": "string"}


def test_reserved_names_are_what_our_outputs_use() -> None:
    assert {"image", "sample_id", "file_name"} == RESERVED_COLUMNS
    assert "class_label" in COLUMN_TYPES and not RESERVED_COLUMNS & COLUMN_TYPES


@pytest.mark.parametrize("name", sorted(RESERVED_COLUMNS))
def test_a_reserved_name_is_unfit_for_a_carried_column(name: str) -> None:
    assert column_name_problem(name) == f"it is the name of the benchmark's own {name!r} column"


def test_column_names_are_bounded() -> None:
    assert column_name_problem("label") is None and column_name_problem("x" * 4096) is None
    assert column_name_problem("") == "it is empty"
    assert "4097 characters" in (column_name_problem("x" * 4097) or "")


@pytest.mark.parametrize(
    ("spec", "fit", "unfit"),
    [
        (
            ColumnSpec(name="label", type="class_label", names=("cat", "dog")),
            [0, 1, NO_LABEL],
            [2, -2, True, "0", None],
        ),
        (ColumnSpec(name="n", type="int"), [0, -5, 2**64 - 1], [True, "1", None]),
        (ColumnSpec(name="ok", type="bool"), [True, False], [0, 1, "true"]),
        (ColumnSpec(name="caption", type="string"), ["", "a photo"], [1, True, None]),
        (ColumnSpec(name="score", type="float"), ["0.25"], [0.25, 1]),
    ],
)
def test_fits_says_which_values_a_column_holds(
    spec: ColumnSpec, fit: list[object], unfit: list[object]
) -> None:
    assert all(spec.fits(v) for v in fit), fit
    assert not any(spec.fits(v) for v in unfit), unfit
