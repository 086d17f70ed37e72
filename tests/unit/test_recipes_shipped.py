"""toolchain.recipes.shipped: a manifest's recorded identity finds the shipped recipe again,
set up as recorded (seed, parameters), or is refused naming what this release ships."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

import toolchain.recipes.shipped as shipped_mod
from toolchain.codec.decode import decode
from toolchain.errors import ParamError, RecipeError
from toolchain.model.hashing import Digest
from toolchain.model.manifest import Manifest, RecipeIdentity, Scalar
from toolchain.recipes import BUILTIN_RECIPES, load_recipe
from toolchain.recipes.shipped import (
    ShippedRecipe,
    shipped_recipe,
    shipped_recipe_of,
    shipped_versions,
)

if TYPE_CHECKING:
    import numpy.typing as npt

RELEASE = shipped_mod._release()

# Every shipped recipe with parameters other than its defaults (a float is recorded as its repr).
NON_DEFAULT: dict[str, dict[str, Scalar | float]] = {
    "gaussian-noise": {"sigma": 3.5},
    "adversarial": {"eps": 4, "alpha": 1, "steps": 2},
    "identity": {},
}


@pytest.fixture(scope="module")
def pixels(demo_dir: Path) -> npt.NDArray[np.uint8]:
    """A real photograph, cropped small (three 16x16 patches high, four wide)."""
    return np.ascontiguousarray(decode((demo_dir / "astronaut.png").read_bytes())[:48, :64])


def _recorded(shipped: str, change: Mapping[str, object] | None = None) -> RecipeIdentity:
    """The identity a manifest records for ``shipped`` at seed 7 and non-default params,
    with the fields in ``change`` recorded otherwise."""
    rec = dataclasses.replace(load_recipe(shipped), seed=7).with_params(NON_DEFAULT[shipped])
    return dataclasses.replace(rec.identity(), **(change or {}))  # type: ignore[arg-type]


def test_every_shipped_recipe_has_non_default_params_here() -> None:
    assert sorted(NON_DEFAULT) == sorted(BUILTIN_RECIPES) == sorted(shipped_versions())
    assert shipped_versions() == {n: load_recipe(n).version for n in BUILTIN_RECIPES}
    for name, params in NON_DEFAULT.items():
        defaults = load_recipe(name).defaults
        assert all(defaults[k] != v for k, v in params.items()), name


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_the_recorded_identity_round_trips_and_runs_as_the_recipe(
    name: str, pixels: npt.NDArray[np.uint8]
) -> None:
    own = dataclasses.replace(load_recipe(name), seed=7).with_params(NON_DEFAULT[name])
    recorded = own.identity()
    if name == "gaussian-noise":
        assert recorded.params == {"sigma": "3.5"}  # stored as its repr, read back as a float
    shipped = shipped_recipe(recorded, made_by="0.0.1")
    assert shipped.identity == recorded
    resolved = shipped.resolve()
    assert resolved.identity() == recorded and resolved.seed == 7
    assert resolved.effective_params == own.effective_params
    for sid in ("a/one.png", "b/two.jpg"):
        made = shipped.run(sid, pixels)
        assert made.dtype == np.uint8 and made.shape == pixels.shape
        assert np.array_equal(made, own.run(sid, pixels)), sid
    if name != "identity":  # the seed and parameters are used: the default recipe differs
        assert not np.array_equal(shipped.run("a/one.png", pixels), load_recipe(name).run(
            "a/one.png", pixels))  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "blur"}, "name the recipe 'blur', which benchmark-regen {release} does not "
         "ship (it ships: adversarial 2.0, gaussian-noise 1.0, identity 1.0)"),
        ({"version": "9.9"}, "name gaussian-noise 9.9; benchmark-regen {release} ships "
         "gaussian-noise 1.0"),
    ],
    ids=["unknown name", "other version"],
)  # fmt: skip
@pytest.mark.parametrize(
    ("made_by", "hint"),
    [
        ("0.0.1", "apply it with benchmark-regen 0.0.1, the release that made it, or its "
         "pinned image"),
        (None, "apply it with the release that made it, or its pinned image"),
        (RELEASE, "apply it with the release that made it, or its pinned image"),
    ],
    ids=["an older release", "no release recorded", "this release"],
)  # fmt: skip
def test_a_recipe_this_release_does_not_ship_is_refused(
    change: dict[str, str], message: str, made_by: str | None, hint: str
) -> None:
    with pytest.raises(RecipeError) as e:
        shipped_recipe(_recorded("gaussian-noise", change), made_by=made_by)
    assert e.value.message.endswith(message.format(release=RELEASE)), e.value.message
    assert e.value.hint == hint


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"sigma": "300.0"}, ParamError, "sigma=300.0 of recipe 'gaussian-noise' is out of bounds"),
        ({"sigma": "-1.0"}, ParamError, "sigma=-1.0 of recipe 'gaussian-noise' is out of bounds"),
        ({"sigma": "loud"}, ParamError, "records sigma='loud' for recipe 'gaussian-noise', "
         "which is not a number"),
        ({"sigma": True}, ParamError, "sigma=True of recipe 'gaussian-noise': expected number"),
        ({"sigma": "8.0", "size": 3}, ParamError, "has no parameter 'size'"),
        ({"sigma": "3.50"}, RecipeError, "cannot be set up as recorded"),
        ({}, RecipeError, "cannot be set up as recorded"),
    ],
)  # fmt: skip
def test_recorded_params_the_recipe_does_not_take_are_refused(
    params: dict[str, Scalar], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(".", r"\.")):
        shipped_recipe(_recorded("gaussian-noise", {"params": params}))


def test_a_shipped_recipe_pickles_and_resolves_in_a_fresh_state(
    pixels: npt.NDArray[np.uint8], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = _recorded("gaussian-noise")
    here = shipped_recipe(recorded)
    expected = here.run("c/x.png", pixels)
    data = pickle.dumps(here)
    assert len(data) < 1024  # the identity, not the recipe's code or any cached state
    fresh: dict[tuple[object, ...], object] = {}
    monkeypatch.setattr(shipped_mod, "_RESOLVED", fresh)  # as in a new worker process
    travelled = pickle.loads(data)
    assert isinstance(travelled, ShippedRecipe) and travelled.identity == recorded
    assert fresh == {}
    assert np.array_equal(travelled.run("c/x.png", pixels), expected)
    assert len(fresh) == 1 and travelled.resolve() is travelled.resolve()  # resolved once


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_same_source_is_true_for_the_shipped_file_only(name: str) -> None:
    recorded = _recorded(name)
    assert shipped_recipe(recorded).same_source
    other = _recorded(name, {"source": Digest.of(b"a user's file of that name")})
    assert not shipped_recipe(other).same_source


@pytest.mark.parametrize("made_by", ["0.0.1", None])
def test_shipped_recipe_of_a_manifest_names_the_release_that_made_it(
    made_by: str | None,
) -> None:
    fingerprint = {"numpy": "2.0.0"} | ({"toolchain": made_by} if made_by else {})
    recorded = _recorded("gaussian-noise")
    manifest = Manifest(recipe=recorded, entries=(), fingerprint=fingerprint, root=Digest.of(b""))
    assert shipped_recipe_of(manifest).identity == recorded
    gone = dataclasses.replace(manifest, recipe=_recorded("gaussian-noise", {"version": "9.0"}))
    with pytest.raises(RecipeError) as e:
        shipped_recipe_of(gone)
    assert e.value.hint == (
        f"apply it with benchmark-regen {made_by}, the release that made it, or its pinned image"
        if made_by
        else "apply it with the release that made it, or its pinned image"
    )
