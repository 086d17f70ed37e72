from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import toolchain
from toolchain.errors import ParamError, RecipeError
from toolchain.recipes import load_recipe, parse_params, sample_seed_sequence


def test_builtin_recipes_load_with_identity() -> None:
    versions = {"gaussian-noise": "1.0", "adversarial": "2.0", "identity": "1.0"}
    for name, version in versions.items():
        r = load_recipe(name)
        assert r.name == name
        ident = r.identity()
        assert ident.source.hex and ident.version == version


def test_sample_rng_depends_only_on_seed_and_id() -> None:
    a = np.random.Generator(
        np.random.PCG64(sample_seed_sequence(1, "x/a.png"))
    ).bit_generator.random_raw(4)
    b = np.random.Generator(
        np.random.PCG64(sample_seed_sequence(1, "x/a.png"))
    ).bit_generator.random_raw(4)
    c = np.random.Generator(
        np.random.PCG64(sample_seed_sequence(1, "x/b.png"))
    ).bit_generator.random_raw(4)
    d = np.random.Generator(
        np.random.PCG64(sample_seed_sequence(2, "x/a.png"))
    ).bit_generator.random_raw(4)
    assert (a == b).all() and not (a == c).all() and not (a == d).all()


def test_known_answer_for_sample_stream() -> None:
    # Pinned: NEP 19 guarantees PCG64 raw output; SeedSequence hashing is stable.
    raw = np.random.PCG64(sample_seed_sequence(2024, "camera.png")).random_raw(2)
    assert [int(x) for x in raw] == KNOWN_RAW


KNOWN_RAW = [4931978740201487743, 13619170315224180178]


def test_select_fraction_is_seeded_and_order_free() -> None:
    @toolchain.recipe(name="half", version="1", seed=7, select="1/2")
    def half(pixels, rng):  # type: ignore[no-untyped-def]
        return pixels

    ids = [f"s{i:03d}.png" for i in range(40)]
    chosen = half.choose(ids)
    assert len(chosen) == 20
    assert half.choose(list(reversed(ids))) == chosen
    assert chosen == sorted(chosen)


def test_select_count_and_callable() -> None:
    @toolchain.recipe(name="three", version="1", seed=1, select=3)
    def three(pixels, rng):  # type: ignore[no-untyped-def]
        return pixels

    @toolchain.recipe(name="odd", version="1", seed=1, select=lambda s: s.endswith("1.png"))
    def odd(pixels, rng):  # type: ignore[no-untyped-def]
        return pixels

    ids = [f"{i}.png" for i in range(12)]
    assert len(three.choose(ids)) == 3
    assert odd.choose(ids) == ["1.png", "11.png"]
    assert three.identity().select == "count:3"
    assert odd.identity().select.startswith("callable:")


def test_global_random_states_are_seeded_per_sample() -> None:
    import random

    @toolchain.recipe(name="globals", version="1", seed=5)
    def uses_globals(pixels, rng):  # type: ignore[no-untyped-def]
        return np.random.randint(0, 1 << 30), random.random()

    px = np.zeros((2, 2, 3), dtype=np.uint8)
    first = uses_globals.apply("a.png", px)
    np.random.seed(123)
    random.seed(99)
    assert uses_globals.apply("a.png", px) == first
    assert uses_globals.apply("b.png", px) != first


def test_params_parse_by_default_type() -> None:
    r = load_recipe("adversarial")
    assert parse_params(r, ["eps=4", "steps=2"]) == {"eps": 4, "steps": 2}
    g = load_recipe("gaussian-noise")
    assert parse_params(g, ["sigma=2.5"]) == {"sigma": 2.5}
    assert g.with_params({"sigma": 2.5}).identity().params == {"sigma": "2.5"}


@pytest.mark.parametrize(
    ("pairs", "match"),
    [
        (["eps"], "name=value"),
        (["nope=1"], "no parameter 'nope'"),
        (["eps=x"], "expected int"),
        (["eps=1", "eps=2"], "given twice"),
    ],
)
def test_bad_params(pairs: list[str], match: str) -> None:
    with pytest.raises(ParamError, match=match):
        parse_params(load_recipe("adversarial"), pairs)


def test_bad_float_param() -> None:
    with pytest.raises(ParamError, match="expected float"):
        parse_params(load_recipe("gaussian-noise"), ["sigma=nan"])


@pytest.mark.parametrize(
    "spec", ["no-such-recipe", "os.path:join", "missing_mod_xyz:r", "./nope.py:r", ""]
)
def test_bad_recipe_references(spec: str) -> None:
    with pytest.raises(RecipeError):
        load_recipe(spec)


def test_recipe_from_file(tmp_path: Path) -> None:
    f = tmp_path / "mine.py"
    f.write_text(
        "import toolchain\n"
        "@toolchain.recipe(name='mine', version='2', seed=3)\n"
        "def flip(pixels, rng, *, axis=1):\n"
        "    return pixels[:, ::-1].copy()\n"
    )
    r = load_recipe(f"{f}:flip")
    assert r.name == "mine" and r.defaults == {"axis": 1}
    assert load_recipe(str(f)).name == "mine"  # the only recipe in the file
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))
    assert load_recipe(f"{crlf}:flip").identity().source == r.identity().source


def test_recipe_file_that_raises_on_import(tmp_path: Path) -> None:
    f = tmp_path / "boom.py"
    f.write_text("raise RuntimeError('kaput')\n")
    with pytest.raises(RecipeError, match="failed to import: RuntimeError: kaput"):
        load_recipe(f"{f}:x")


def test_decorator_validates_its_arguments() -> None:
    with pytest.raises(RecipeError, match="name"):
        toolchain.recipe(name="bad name!", version="1", seed=1)
    with pytest.raises(RecipeError, match="seed"):
        toolchain.recipe(name="ok", version="1", seed=-1)
    with pytest.raises(RecipeError, match="fraction"):
        toolchain.recipe(name="ok", version="1", seed=1, select=Fraction(3, 2))
