"""A package's public names loaded on first use (PEP 562): its ``__getattr__`` and
``__dir__``, made from a name → module map."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    namespace: Mapping[str, Any], owners: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the module whose ``globals()`` is ``namespace``.

    ``__getattr__(name)`` imports ``owners[name]`` (a full module name) and returns its
    ``name``; any other name is an ``AttributeError``. ``__dir__()`` lists the module's
    ``__all__`` and its dunder names, not the submodules that imports bind on a package.
    """
    module = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        owner = owners.get(name)
        if owner is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(import_module(owner), name)

    def __dir__() -> list[str]:
        return sorted({*namespace["__all__"], *(n for n in namespace if n.startswith("__"))})

    return __getattr__, __dir__
