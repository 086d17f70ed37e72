"""The recipes this package ships, found again from the identity a manifest records: what a
diff's recipe entry names instead of carrying pixels (``docs/diff-format.md``, "Recipe
entries"). Only a shipped recipe is ever run for a diff: a diff never carries code."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from toolchain._internal.release import VERSION
from toolchain.errors import ParamError, RecipeError
from toolchain.model.manifest import RecipeIdentity, Scalar
from toolchain.recipes import BUILTIN_RECIPES, Recipe, load_recipe

if TYPE_CHECKING:
    from toolchain.model.manifest import Manifest
    from toolchain.recipes import Pixels

__all__ = ["ShippedRecipe", "shipped_recipe", "shipped_recipe_of", "shipped_versions"]


def _release() -> str:
    """This release's version, as a manifest's fingerprint records it (``toolchain``)."""
    return VERSION


def shipped_versions() -> dict[str, str]:
    """Each shipped recipe's name and the one version this release holds."""
    return {name: load_recipe(name).version for name in sorted(BUILTIN_RECIPES)}


@dataclass(frozen=True, kw_only=True, slots=True)
class ShippedRecipe:
    """A shipped recipe at the name, version, seed and parameters a manifest records.

    Picklable and small: a worker process resolves it once (:meth:`resolve`, cached).
    """

    identity: RecipeIdentity

    def resolve(self) -> Recipe:
        r = self.identity
        key = (r.name, r.version, r.seed, tuple(sorted(r.params.items())))
        cached = _RESOLVED.get(key)
        if cached is None:
            cached = _RESOLVED[key] = _build(r)
        return cached

    @property
    def same_source(self) -> bool:
        """Is this release's file of the recipe the very one the manifest hashed?"""
        return self.resolve().identity().source == self.identity.source

    def run(self, sample_id: str, pixels: Pixels) -> Pixels:
        """The recipe's output for one sample (:meth:`~toolchain.recipes.Recipe.run`)."""
        return self.resolve().run(sample_id, pixels)


_RESOLVED: dict[tuple[object, ...], Recipe] = {}


def _params(rec: Recipe, recorded: RecipeIdentity) -> dict[str, Scalar | float]:
    """The recorded parameters as the recipe takes them: a manifest stores a float as its
    ``repr`` (exact), which is read back here."""
    out: dict[str, Scalar | float] = {}
    for name, value in recorded.params.items():
        default = rec.defaults.get(name)
        if isinstance(default, float) and isinstance(value, str):
            try:
                out[name] = float(value)
            except ValueError:
                raise ParamError(
                    f"the manifest records {name}={value!r} for recipe {rec.name!r}, "
                    "which is not a number"
                ) from None
        else:
            out[name] = value
    return out


def _build(recorded: RecipeIdentity) -> Recipe:
    base = load_recipe(recorded.name)
    rec = dataclasses.replace(base, seed=recorded.seed).with_params(_params(base, recorded))
    again = rec.identity()
    if (again.params, again.seed) != (recorded.params, recorded.seed):
        raise RecipeError(
            f"recipe {recorded} cannot be set up as recorded: its parameters "
            f"{dict(recorded.params)} read back as {dict(again.params)}"
        )
    return rec


def shipped_recipe(recorded: RecipeIdentity, *, made_by: str | None = None) -> ShippedRecipe:
    """The shipped recipe a manifest's identity names, set up as recorded.

    Raises :class:`~toolchain.errors.RecipeError` when this release does not ship that
    name at that version, naming the release that made the manifest (``made_by``, the
    ``toolchain`` field of its fingerprint) as the one that has it.
    """
    release = _release()
    have = f"benchmark-regen {release}"
    get = (
        f"apply it with benchmark-regen {made_by}, the release that made it, or its pinned image"
        if made_by and made_by != release
        else "apply it with the release that made it, or its pinned image"
    )
    if recorded.name not in BUILTIN_RECIPES:
        raise RecipeError(
            f"the diff's recipe entries name the recipe {recorded.name!r}, which {have} does "
            "not ship (it ships: "
            + ", ".join(f"{n} {v}" for n, v in shipped_versions().items())
            + ")",
            hint=get,
        )
    ours = load_recipe(recorded.name).version
    if ours != recorded.version:
        raise RecipeError(
            f"the diff's recipe entries name {recorded.name} {recorded.version}; {have} ships "
            f"{recorded.name} {ours}",
            hint=get,
        )
    shipped = ShippedRecipe(identity=recorded)
    shipped.resolve()  # a parameter out of the recipe's bounds is refused here, once
    return shipped


def shipped_recipe_of(manifest: Manifest) -> ShippedRecipe:
    """:func:`shipped_recipe` of the recipe ``manifest`` records, naming the release that
    made it (its fingerprint's ``toolchain`` field) if this one does not ship it."""
    return shipped_recipe(manifest.recipe, made_by=manifest.fingerprint.get("toolchain"))
