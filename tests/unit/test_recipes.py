from __future__ import annotations

from dataclasses import replace
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


def _chosen_by_sorting_every_digest(ids: list[str], seed: int, k: int) -> list[str]:
    """The rule of docs (sha256 of the domain, seed and id; the k lowest), spelled out."""
    import hashlib

    from toolchain.recipes import _SELECT_DOMAIN

    salt = _SELECT_DOMAIN + str(seed).encode() + b"\x00"
    ordered = sorted(ids, key=lambda s: s.encode("utf-8"))
    ranked = sorted(ordered, key=lambda s: hashlib.sha256(salt + s.encode("utf-8")).digest())
    chosen = set(ranked[:k])
    return [s for s in ordered if s in chosen]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000, 70_000])
def test_the_two_pass_selection_picks_what_sorting_every_digest_picks(n: int) -> None:
    """Counted by 16-bit prefix, then one prefix sorted: the same ids as sorting all n
    digests, for k from none to all (70,000 ids: several per prefix)."""

    @toolchain.recipe(name="third", version="1", seed=5, select="1/3")
    def third(pixels, rng):  # type: ignore[no-untyped-def]
        return pixels

    ids = [f"n{i % 97:04d}/v_{i:06d}.JPEG" for i in range(n)]
    assert list(third.choose(ids)) == _chosen_by_sorting_every_digest(ids, 5, (2 * n + 3) // 6)
    for k in sorted({0, 1, n // 2, n}):
        by_count = replace(third, select=k)
        assert list(by_count.choose(ids)) == _chosen_by_sorting_every_digest(ids, 5, k)


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


BLUR_FILE = """\
import toolchain
from toolchain.recipes.identity import identity  # imported: not this file's recipe


@toolchain.recipe(name="my-blur", version="1", seed=3)
def blur(pixels, rng, *, sigma=1.5):
    return pixels


@toolchain.recipe(name="sharpen", version="1", seed=4)
def sharpen(pixels, rng):
    return pixels


also_blur = blur  # an alias is the same recipe, not a second one
"""


def test_a_recipe_loads_by_its_declared_name_or_its_function_name(tmp_path: Path) -> None:
    f = tmp_path / "my_recipes.py"
    f.write_text(BLUR_FILE)
    by_name = load_recipe(f"{f}:my-blur")
    by_function = load_recipe(f"{f}:blur")
    assert by_name.name == by_function.name == "my-blur"
    assert by_name.ref == by_function.ref == f"{f}:blur"  # workers load it by its function
    assert by_name.identity() == by_function.identity()
    assert load_recipe(f"{f}:sharpen").name == "sharpen"
    with pytest.raises(RecipeError, match="is not a recipe") as e:
        load_recipe(f"{f}:my_blur")
    assert "blur (name 'my-blur')" in e.value.message
    assert "sharpen (name 'sharpen')" in e.value.message


def test_two_recipes_declaring_one_name_are_refused_naming_both(tmp_path: Path) -> None:
    f = tmp_path / "twice.py"
    f.write_text(
        BLUR_FILE
        + "\n@toolchain.recipe(name='my-blur', version='2', seed=3)\n"
        + "def blur_again(pixels, rng):\n    return pixels\n"
    )
    for ref in ("my-blur", "blur", "sharpen"):
        with pytest.raises(RecipeError, match=r"blur and blur_again both declare .*'my-blur'"):
            load_recipe(f"{f}:{ref}")


SCRIPT_RECIPE = """\
import toolchain

@toolchain.recipe(name="here", version="1", seed=1)
def here(pixels, rng):
    return pixels

def start():
    return here.reference()

"""


@pytest.mark.parametrize(
    ("tail", "refused"),
    [
        ("ref = here.reference()\n", True),
        ("ref = start()\n", True),
        ('if __name__ == "__main__":\n    ref = here.reference()\n', False),
        ("if '__main__' == __name__:\n    x = 1\n    ref = start()\n", False),
        ('if __name__ == "__main__":\n    pass\nref = start()\n', True),
    ],
    ids=["unguarded", "unguarded-function", "guarded", "guarded-reversed", "after-the-guard"],
)
def test_a_recipe_of_the_main_script_needs_the_run_guarded(
    tmp_path: Path, tail: str, refused: bool
) -> None:
    """``runpy.run_path(run_name="__main__")`` runs the file as ``python script.py`` does."""
    import runpy

    script = tmp_path / "script.py"
    script.write_text(SCRIPT_RECIPE + tail)
    if not refused:
        ref = runpy.run_path(str(script), run_name="__main__")["ref"]
        assert ref.ref == f"{script.resolve()}:here"
        return
    with pytest.raises(RecipeError, match="is defined in the script being run") as e:
        runpy.run_path(str(script), run_name="__main__")
    assert "recipe 'here' (the function here)" in e.value.message
    assert "script.py" in e.value.message and "own module" in (e.value.hint or "")


def test_a_recipe_of_the_main_script_referenced_after_its_body_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off the script's stack (a thread, an ``atexit`` hook): refused unless it has a guard."""
    import runpy
    import sys
    import types

    script = tmp_path / "script.py"
    for guard, refused in (("", True), ('if __name__ == "__main__":\n    pass\n', False)):
        script.write_text(SCRIPT_RECIPE + guard)
        here = runpy.run_path(str(script), run_name="__main__")["here"]
        main = types.ModuleType("__main__")
        main.__file__ = str(script)
        monkeypatch.setitem(sys.modules, "__main__", main)
        if refused:
            with pytest.raises(RecipeError, match="script being run"):
                here.reference()
        else:
            assert here.reference().ref == f"{script.resolve()}:here"
        monkeypatch.undo()
