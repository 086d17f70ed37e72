"""The ``benchmark-regen`` command line (a thin layer over the library).

Layout, bottom to top: :mod:`.options` (options and output helpers, shared),
one module per command group (:mod:`.generate`, :mod:`.verify`, :mod:`.diff`,
:mod:`.compare`, :mod:`.manifest`, :mod:`.jobs`, :mod:`.image`,
:mod:`.signing`, :mod:`.info`), and :mod:`.main`, which assembles the root
group. Nothing below ``main`` imports it.
"""

from __future__ import annotations

from toolchain.cli.main import cli

__all__ = ["cli"]
