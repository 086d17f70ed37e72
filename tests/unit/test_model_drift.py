"""toolchain.model.drift: which fingerprint fields differ, which can explain which cause, and how
differences are described in messages."""

from __future__ import annotations

import pytest

from toolchain.model.drift import (
    CAUSE_KEYS,
    DECODER_KEYS,
    Cause,
    decoder_versions,
    describe_differences,
    differences_for,
    explains,
    fingerprint_differences,
)


def test_differences_are_sorted_and_name_absent_fields() -> None:
    a = {"numpy": "2.4.6", "pillow": "12.0.0", "python": "3.11.7", "only.a": "x"}
    b = {"python": "3.11.7", "pillow": "11.0.0", "numpy": "1.26.4", "only.b": "y"}
    assert fingerprint_differences(a, b) == {
        "numpy": ("2.4.6", "1.26.4"),
        "only.a": ("x", "(absent)"),
        "only.b": ("(absent)", "y"),
        "pillow": ("12.0.0", "11.0.0"),
    }
    assert list(fingerprint_differences(a, b)) == ["numpy", "only.a", "only.b", "pillow"]
    assert fingerprint_differences(a, dict(a)) == {}


def test_differences_for_keeps_the_fields_that_can_explain_the_cause() -> None:
    a = {"numpy": "2.4.6", "pillow": "12.0.0", "blas.coretype": "Haswell", "zstandard": "0.23"}
    b = {"numpy": "1.26.4", "pillow": "11.0.0", "zstandard": "0.22"}
    assert differences_for(Cause.GENERATOR, a, b) == {
        "blas.coretype": ("Haswell", "(absent)"),
        "numpy": ("2.4.6", "1.26.4"),
    }
    assert differences_for(Cause.DECODER, a, b) == {"pillow": ("12.0.0", "11.0.0")}
    assert differences_for(Cause.TAMPERED, a, b) == {}


@pytest.mark.parametrize(
    ("key", "causes"),
    [
        ("pillow.libjpeg_turbo", {Cause.DECODER}),
        ("pillow.webp", {Cause.DECODER}),
        ("pillow", {Cause.DECODER, Cause.ENCODER}),
        ("pillow.zlib", {Cause.DECODER, Cause.ENCODER}),
        ("numpy", {Cause.GENERATOR}),
        ("numpy.simd.in_use", {Cause.GENERATOR}),
        ("blas.coretype", {Cause.GENERATOR}),
        ("env.OPENBLAS_CORETYPE", {Cause.GENERATOR}),
        ("platform.machine", {Cause.GENERATOR}),
        ("python", {Cause.GENERATOR}),
        ("toolchain", {Cause.GENERATOR}),
        ("encoder.level", {Cause.ENCODER}),
        ("deflate", {Cause.ENCODER}),
        ("zstandard", set()),  # the diff's compressor changes no pixel
        ("pillow.freetype2", set()),
        ("numpyx", set()),  # exact keys are exact, not prefixes
        ("python.implementation", set()),
    ],
)
def test_explains(key: str, causes: set[Cause]) -> None:
    assert {c for c in Cause if explains(key, c)} == causes


def test_recipe_and_selection_changes_are_no_fingerprint_field() -> None:
    assert set(CAUSE_KEYS) == {Cause.DECODER, Cause.GENERATOR, Cause.ENCODER}
    assert not any(explains(k, Cause.RECIPE) or explains(k, Cause.SELECTION) for k in DECODER_KEYS)


def test_describe_shows_the_first_fields_and_counts_the_rest() -> None:
    diff = {f"k{i}": (str(i), str(i + 1)) for i in range(8)}
    text = describe_differences(diff, limit=2)
    assert text == "k0: '0' vs '1', k1: '1' vs '2', and 6 more"
    assert describe_differences(dict(list(diff.items())[:2]), limit=2) == (
        "k0: '0' vs '1', k1: '1' vs '2'"
    )
    assert describe_differences({}) == ""


def test_decoder_versions_lists_the_decoders_in_a_fixed_order() -> None:
    fp = {"pillow.libjpeg_turbo": "3.0.4", "numpy": "2.4.6", "pillow": "11.0.0"}
    assert decoder_versions(fp) == "pillow 11.0.0, pillow.libjpeg_turbo 3.0.4"
    assert decoder_versions({"numpy": "2"}) == "unknown"
