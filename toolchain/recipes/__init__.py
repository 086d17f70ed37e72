"""Recipes: plain Python functions that turn one original sample into one benchmark sample;
the ``@recipe`` decorator, parameters, selection, loading by reference. Writing one:
docs/determinism.md ("Writing a recipe")."""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import random
import re
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from toolchain._internal.packed import PackedStrings
from toolchain.errors import ParamError, RecipeError
from toolchain.model.hashing import Digest
from toolchain.model.manifest import RecipeIdentity, Scalar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Pixels = npt.NDArray[np.uint8]

__all__ = [
    "BUILTIN_RECIPES",
    "Bound",
    "Recipe",
    "RecipeRef",
    "load_recipe",
    "parse_params",
    "recipe",
    "sample_seed_sequence",
]

BUILTIN_RECIPES: Mapping[str, str] = {
    "gaussian-noise": "toolchain.recipes.gaussian_noise:gaussian_noise",
    "adversarial": "toolchain.recipes.adversarial:adversarial",
    "identity": "toolchain.recipes.identity:identity",
}

Select = None | int | float | Fraction | str | Callable[[str], bool]
Bound = tuple[int | float | None, int | float | None]
"""Inclusive ``(low, high)`` bounds of a numeric parameter; ``None`` leaves a side open."""
_SAMPLE_DOMAIN = b"benchmark-regen/sample/v1\x00"
_SELECT_DOMAIN = b"benchmark-regen/select/v1\x00"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def sample_seed_sequence(seed: int, sample_id: str) -> np.random.SeedSequence:
    """The sample's ``SeedSequence``: entropy = recipe seed, spawn key = hash of the id."""
    import numpy as np

    d = hashlib.sha256(_SAMPLE_DOMAIN + sample_id.encode("utf-8")).digest()
    key = tuple(int.from_bytes(d[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.SeedSequence(entropy=seed, spawn_key=key)


def _source_digest(fn: Callable[..., Any]) -> Digest:
    try:
        path = inspect.getsourcefile(fn)
        data = Path(path).read_bytes() if path else inspect.getsource(fn).encode()
    except (OSError, TypeError):
        data = fn.__code__.co_code
    # A checkout with CRLF line endings must hash like one with LF.
    return Digest.of(data.replace(b"\r\n", b"\n"))


def _normalize_select(select: Select) -> tuple[str, int | Fraction | Callable[[str], bool] | None]:
    if select is None or select == "all":
        return "all", None
    if callable(select):
        return f"callable:{getattr(select, '__qualname__', 'select')}", select
    if isinstance(select, bool):
        raise RecipeError("select= must be a count, a fraction, 'all' or a callable")
    if isinstance(select, int):
        if select < 0:
            raise RecipeError("select= count must be non-negative")
        return f"count:{select}", select
    if isinstance(select, float):
        select = Fraction(str(select))
    if isinstance(select, str):
        try:
            select = Fraction(select)
        except (ValueError, ZeroDivisionError):
            raise RecipeError(f"select={select!r} is not a count, fraction or 'all'") from None
    if isinstance(select, Fraction):
        if not 0 <= select <= 1:
            raise RecipeError(f"select= fraction {select} is outside 0..1")
        return f"fraction:{select.numerator}/{select.denominator}", select
    raise RecipeError(f"select= of type {type(select).__name__} is not understood")


@dataclass(frozen=True, kw_only=True, eq=False)
class Recipe:
    """A named, versioned, seeded transform. Make one with :func:`recipe`."""

    name: str
    version: str
    seed: int
    fn: Callable[..., Any]
    defaults: Mapping[str, Scalar | float]
    params: Mapping[str, Scalar | float] = field(default_factory=dict)
    select: Select = None
    ref: str = ""
    """How a worker process loads this recipe again: ``module:NAME`` or ``file.py:NAME``."""
    bounds: Mapping[str, Bound] = field(default_factory=dict)
    """Declared inclusive bounds of numeric parameters (see :func:`recipe`)."""

    def with_params(self, overrides: Mapping[str, Scalar | float]) -> Recipe:
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise ParamError(
                f"recipe {self.name!r} has no parameter {unknown[0]!r} (it has: {known})"
            )
        for name, value in sorted(overrides.items()):
            _check_bound(self, name, value)
        return replace(self, params={**self.params, **overrides})

    @property
    def effective_params(self) -> dict[str, Scalar | float]:
        return {**self.defaults, **self.params}

    def identity(self) -> RecipeIdentity:
        params: dict[str, Scalar] = {}
        for k, v in sorted(self.effective_params.items()):
            params[k] = repr(v) if isinstance(v, float) else v
        return RecipeIdentity(
            name=self.name,
            version=self.version,
            seed=self.seed,
            params=params,
            select=_normalize_select(self.select)[0],
            source=_source_digest(self.fn),
        )

    def choose(self, ids: Iterable[str]) -> Sequence[str]:
        """The selected sample ids, sorted. Independent of the listing order.

        Given a listing's ids (sorted and packed), memory holds no object per id: the ids
        chosen come back packed too (:class:`~toolchain._internal.packed.PackedStrings`).
        """
        if isinstance(ids, PackedStrings) and ids.is_sorted:
            ordered: Sequence[str] = ids
        else:
            ordered = PackedStrings(sorted(ids, key=lambda s: s.encode("utf-8")))
        _, rule = _normalize_select(self.select)
        if rule is None:
            return ordered
        if callable(rule):
            return PackedStrings(s for s in ordered if rule(s))
        n = len(ordered)
        if isinstance(rule, Fraction):
            k = (2 * rule.numerator * n + rule.denominator) // (2 * rule.denominator)
        else:
            k = min(rule, n)
        salt = _SELECT_DOMAIN + str(self.seed).encode() + b"\x00"
        chosen = _lowest_ranked(ordered, k, salt)
        return PackedStrings(s for s, c in zip(ordered, chosen, strict=True) if c)

    def apply(self, sample_id: str, pixels: Pixels) -> Any:
        """Run the transform on one sample, with every random state seeded for it."""
        import numpy as np

        ss = sample_seed_sequence(self.seed, sample_id)
        own, legacy, stdlib = ss.spawn(3)
        # Third-party code (ImageNet-C-style corruptions) uses the global states.
        np.random.seed(legacy.generate_state(1, np.uint32)[0])
        random.seed(int(stdlib.generate_state(1, np.uint64)[0]))
        rng = np.random.Generator(np.random.PCG64(own))
        return self.fn(pixels, rng, **self.effective_params)

    def run(self, sample_id: str, pixels: Pixels) -> Pixels:
        """:meth:`apply`, checked: what ``generate`` and a diff's recipe entry run.

        The result must be ``uint8`` pixels (:func:`~toolchain.codec.encode.check_pixels`);
        an exception the recipe raises becomes a :class:`~toolchain.errors.RecipeError`
        naming the sample.
        """
        from toolchain.codec.encode import check_pixels
        from toolchain.errors import Error

        try:
            result = self.apply(sample_id, pixels)
        except Error:
            raise
        except Exception as e:
            raise RecipeError(
                f"the recipe raised {type(e).__name__}: {e}",
                sample=sample_id,
                hint="fix the recipe; rerunning it on this sample alone reproduces the error",
            ) from None
        return check_pixels(result, sample=sample_id)

    def __call__(self, pixels: Pixels, rng: np.random.Generator, **params: Any) -> Any:
        return self.fn(pixels, rng, **{**self.effective_params, **params})

    def __repr__(self) -> str:
        return f"<Recipe {self.name}@{self.version} seed={self.seed}>"

    def reference(self) -> RecipeRef:
        """A picklable reference a worker process resolves back to this recipe, once.

        Raises :class:`~toolchain.errors.RecipeError` when no other process could
        import it (defined inside a function, or in an interactive session), or only by
        running the script being run again (defined in it, the call not under
        ``if __name__ == "__main__":``).
        """
        qualname = getattr(self.fn, "__qualname__", "")
        if not self.ref or "<locals>" in qualname:
            raise RecipeError(
                f"recipe {self.name!r} is defined where the pinned worker processes cannot "
                "import it (inside a function, or in an interactive session)",
                hint="define it at the top level of a .py file and pass path/to/file.py:NAME",
            )
        if getattr(self.fn, "__module__", None) == "__main__" and _main_runs_again():
            script = Path(self.ref.rpartition(":")[0]).name
            raise RecipeError(
                f"recipe {self.name!r} (the function {qualname}) is defined in the script "
                f"being run ({script}); the pinned worker processes load it from that file, "
                "which would run the script's unguarded code, this run included, in every "
                "worker",
                hint=f"move the recipe into its own module and import it from {script}, "
                'or put the code that starts the run under `if __name__ == "__main__":`',
            )
        ref = RecipeRef(
            ref=self.ref,
            params=tuple(sorted(self.params.items())),
            source=_source_digest(self.fn),
        )
        _RESOLVED[ref] = self  # this process resolves it to this very object
        return ref


@dataclass(frozen=True, kw_only=True, slots=True)
class RecipeRef:
    """How a worker loads a recipe: its reference, its parameters, its source digest.

    :meth:`resolve` loads it once per process (cached); the source digest makes a
    worker refuse a recipe file that changed on disk after the run started.
    """

    ref: str
    params: tuple[tuple[str, Scalar | float], ...]
    source: Digest

    def resolve(self) -> Recipe:
        cached = _RESOLVED.get(self)
        if cached is None:
            cached = load_recipe(self.ref).with_params(dict(self.params))
            if _source_digest(cached.fn) != self.source:
                raise RecipeError(
                    f"recipe {self.ref} changed on disk after the run started",
                    hint="keep recipe files unchanged during a run, then run again",
                )
            _RESOLVED[self] = cached
        return cached


_RESOLVED: dict[RecipeRef, Recipe] = {}


def _main_runs_again() -> bool:
    """Would loading the ``__main__`` script as a module run the current call again?

    Yes unless the line its module code is running (found on the stack) lies in the body
    of an ``if __name__ == "__main__":``. Off the stack (a thread, an ``atexit`` hook):
    unless the script has such a guard at all. A script that cannot be read: no (the
    worker reports what it finds).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return False
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return False
    guarded = [
        (node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_main_test(node.test)
    ]
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and not (
        frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"
    ):
        frame = frame.f_back
    if frame is None:
        return not guarded
    line = frame.f_lineno
    return not any(first <= line <= last for first, last in guarded)


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"``, either way round."""
    if not (
        isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
    ):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_bound(rec: Recipe, name: str, value: object) -> None:
    """Refuse ``value`` for parameter ``name`` when it is outside the declared bounds."""
    bound = rec.bounds.get(name)
    if bound is None:
        return
    low, high = bound
    default = rec.defaults[name]
    lo = "-inf" if low is None else repr(low)
    hi = "inf" if high is None else repr(high)
    shown = f"{lo} <= {name} <= {hi}"
    wanted = "int" if isinstance(default, int) else "number"
    if not _is_number(value) or (wanted == "int" and not isinstance(value, int)):
        raise ParamError(
            f"parameter {name}={value!r} of recipe {rec.name!r}: expected {wanted} ({shown})"
        )
    assert isinstance(value, int | float)
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        raise ParamError(
            f"parameter {name}={value!r} of recipe {rec.name!r} is out of bounds: "
            f"the recipe accepts {shown}",
            hint=f"pick a value in the declared bounds (the default is {default!r})",
        )


def _check_bounds_declaration(
    name: str, bounds: Mapping[str, Bound], defaults: Mapping[str, Scalar | float]
) -> None:
    for param, bound in sorted(bounds.items()):
        if param not in defaults:
            raise RecipeError(f"recipe {name!r}: bounds for unknown parameter {param!r}")
        default = defaults[param]
        if not _is_number(default):
            raise RecipeError(f"recipe {name!r}: bounds for non-numeric parameter {param!r}")
        if not (isinstance(bound, tuple) and len(bound) == 2):
            raise RecipeError(f"recipe {name!r}: bounds of {param!r} must be (low, high)")
        low, high = bound
        if any(v is not None and (not _is_number(v) or v != v) for v in (low, high)):
            raise RecipeError(f"recipe {name!r}: bounds of {param!r} must be numbers or None")
        if low is not None and high is not None and low > high:
            raise RecipeError(f"recipe {name!r}: bounds of {param!r} are empty ({low} > {high})")
        assert isinstance(default, int | float)
        if (low is not None and default < low) or (high is not None and default > high):
            raise RecipeError(
                f"recipe {name!r}: the default {param}={default!r} is outside its bounds"
            )


def recipe(
    *,
    name: str,
    version: str,
    seed: int,
    select: Select = None,
    bounds: Mapping[str, Bound] | None = None,
) -> Callable[[Callable[..., Any]], Recipe]:
    """Decorator that turns ``fn(pixels, rng, *, param=default, ...)`` into a :class:`Recipe`.

    ``bounds`` maps numeric parameters to inclusive ``(low, high)`` bounds (``None``: open);
    values outside them are refused with :class:`~toolchain.errors.ParamError`.
    """
    if not _NAME.fullmatch(name):
        raise RecipeError(f"recipe name {name!r} must be 1-64 of letters, digits, '.', '_', '-'")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise RecipeError(f"recipe seed must be a non-negative integer, got {seed!r}")
    _normalize_select(select)

    def wrap(fn: Callable[..., Any]) -> Recipe:
        sig = inspect.signature(fn)
        positional = [
            p
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(positional) != 2:
            raise RecipeError(f"recipe {name!r}: the function must take (pixels, rng, *, ...)")
        defaults: dict[str, Scalar | float] = {}
        for p in sig.parameters.values():
            if p.kind is p.KEYWORD_ONLY:
                if p.default is p.empty or not isinstance(p.default, str | int | float | bool):
                    raise RecipeError(
                        f"recipe {name!r}: parameter {p.name!r} needs a str, int, float "
                        "or bool default"
                    )
                defaults[p.name] = p.default
        _check_bounds_declaration(name, bounds or {}, defaults)
        module = fn.__module__
        if module == "__main__":
            main_file = getattr(sys.modules["__main__"], "__file__", None)
            ref = f"{Path(main_file).resolve()}:{fn.__name__}" if main_file else ""
        else:
            ref = f"{module}:{fn.__name__}"
        return Recipe(
            name=name,
            version=str(version),
            seed=seed,
            fn=fn,
            defaults=defaults,
            select=select,
            ref=ref,
            bounds=dict(bounds or {}),
        )

    return wrap


def _load_file(path: Path) -> Any:
    modname = "benchmark_regen_recipe_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise RecipeError(f"cannot load recipe file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except RecipeError:
        raise
    except Exception as e:
        del sys.modules[modname]
        raise RecipeError(
            f"recipe file {path.name} failed to import: {type(e).__name__}: {e}"
        ) from None
    return module


def load_recipe(spec: str) -> Recipe:
    """Load a recipe by built-in name, ``path/to/file.py:NAME`` or ``package.module:NAME``;
    ``NAME`` is the recipe's function or the ``name=`` it declares."""
    if not isinstance(spec, str) or not spec or "\x00" in spec or len(spec) > 4096:
        raise RecipeError(f"bad recipe reference {spec!r}")
    target = BUILTIN_RECIPES.get(spec, spec)
    where, sep, attr = target.rpartition(":")
    if not sep:
        where, attr = target, ""
    if where.endswith(".py") or "/" in where or Path(where).suffix == ".py":
        path = Path(where).resolve()
        if not path.is_file():
            raise RecipeError(f"recipe file {where!r} does not exist")
        module = _load_file(path)
        ref_base = str(path)
    else:
        if not sep or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", where):
            names = ", ".join(sorted(BUILTIN_RECIPES))
            raise RecipeError(
                f"unknown recipe {spec!r}",
                hint=f"use a built-in name ({names}), path/to/file.py:NAME or package.module:NAME",
            )
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise RecipeError(f"cannot import recipe module {where!r}: {e}") from None
        except Exception as e:
            raise RecipeError(f"recipe module {where!r} failed to import: {e}") from None
        ref_base = where
    defined = _defined_recipes(module, where)
    if not attr:
        found = [n for n, v in vars(module).items() if isinstance(v, Recipe)]
        if len(found) != 1:
            raise RecipeError(
                f"{where} defines {len(found)} recipes; name one as {where}:NAME",
            )
        attr = found[0]
    obj = getattr(module, attr, None)
    if not isinstance(obj, Recipe) and attr in defined:  # the name it declares: @recipe(name=)
        attr = defined[attr]
        obj = getattr(module, attr)
    if not isinstance(obj, Recipe):
        shown = ", ".join(
            f"{fn} (name {name!r})" for name, fn in sorted(defined.items(), key=lambda i: i[1])
        )
        raise RecipeError(
            f"{where}:{attr} is not a recipe: neither a recipe function of that name nor "
            "a recipe declaring that name" + (f" ({where} defines {shown})" if shown else ""),
            hint="decorate the function with @toolchain.recipe(name=..., version=..., seed=...)"
            " and refer to it by its function name or its declared name",
        )
    return replace(obj, ref=f"{ref_base}:{attr}")


def _defined_recipes(module: Any, where: str) -> dict[str, str]:
    """Declared name -> the module's name for each recipe defined in ``module``; two recipes
    that declare the same name are a :class:`RecipeError` naming both functions."""
    names: dict[str, str] = {}
    seen: set[int] = set()
    for attr, value in vars(module).items():
        if not isinstance(value, Recipe) or id(value) in seen:
            continue  # an alias of a recipe already seen is the same recipe
        seen.add(id(value))
        if getattr(value.fn, "__module__", None) != module.__name__:
            continue  # imported from elsewhere: not this file's to declare
        other = names.setdefault(value.name, attr)
        if other != attr:
            raise RecipeError(
                f"{where}: the functions {other} and {attr} both declare the recipe name "
                f"{value.name!r}",
                hint="give each recipe its own name= (it is recorded in every manifest)",
            )
    return names


def _parse_scalar(name: str, text: str, default: Scalar | float) -> Scalar | float:
    try:
        if isinstance(default, bool):
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text, 10)
        if isinstance(default, float):
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
    except ValueError:
        raise ParamError(
            f"--param {name}={text!r}: expected {type(default).__name__}"
            f" (the default is {default!r})"
        ) from None
    return text


def parse_params(recipe_: Recipe, pairs: Iterable[str]) -> dict[str, Scalar | float]:
    """Parse ``name=value`` strings against the recipe's parameter defaults."""
    out: dict[str, Scalar | float] = {}
    for pair in pairs:
        if isinstance(pair, str) and len(pair) > 4096:
            raise ParamError(
                f"--param {pair[:32]!r}...: {len(pair)} characters, over the 4096 limit"
            )
        if not isinstance(pair, str) or "=" not in pair or "\x00" in pair:
            raise ParamError(f"--param {pair!r}: expected name=value")
        name, _, text = pair.partition("=")
        name = name.strip()
        if name not in recipe_.defaults:
            known = ", ".join(sorted(recipe_.defaults)) or "none"
            raise ParamError(f"recipe {recipe_.name!r} has no parameter {name!r} (it has: {known})")
        if name in out:
            raise ParamError(f"--param {name} is given twice")
        out[name] = _parse_scalar(name, text, recipe_.defaults[name])
        _check_bound(recipe_, name, out[name])
    return out


def _lowest_ranked(ordered: Sequence[str], k: int, salt: bytes) -> bytearray:
    """Which of ``ordered`` are the ``k`` with the lowest ``sha256(salt + id)`` (a tie: the
    earlier id), as a flag per id: what sorting every id by its digest picks, in two
    passes over the ids, keeping a count per 16-bit digest prefix and the digests of one
    prefix only (not ``n`` digests at once)."""

    def rank(s: str) -> bytes:
        return hashlib.sha256(salt + s.encode("utf-8")).digest()

    counts = array("I", [0]) * 65536  # counts under 2**32
    for s in ordered:
        counts[int.from_bytes(rank(s)[:2])] += 1
    edge, below = 0, 0  # the prefix where the k-th lowest digest is; how many are under it
    while below + counts[edge] < k:
        below += counts[edge]
        edge += 1
    chosen = bytearray(len(ordered))
    tied: list[tuple[bytes, int]] = []
    for i, s in enumerate(ordered):
        r = rank(s)
        prefix = int.from_bytes(r[:2])
        if prefix < edge:
            chosen[i] = 1
        elif prefix == edge:
            tied.append((r, i))
    tied.sort()
    for _, i in tied[: k - below]:
        chosen[i] = 1
    return chosen
