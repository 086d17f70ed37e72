"""Shared glue of the atheris harnesses (run by ``nox -s fuzz``; not part of the package).

Each harness feeds bytes to one parser we own. A typed
:class:`toolchain.errors.Error` is the expected way to refuse an input; any
other exception propagates, and atheris reports it as a crash with the input.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

RUNS_DEFAULT = 200_000


def main(test_one_input: Callable[[bytes], None], *, seeds: list[bytes] | None = None) -> None:
    argv = list(sys.argv)
    if not any(a.startswith("-runs=") for a in argv[1:]):
        argv.append(f"-runs={RUNS_DEFAULT}")
    if seeds:
        # Run the seeds once first, so a broken seed fails loudly rather than silently,
        # and start from them as the corpus unless one is given.
        for s in seeds:
            test_one_input(s)
        if not any(not a.startswith("-") for a in argv[1:]):
            corpus = Path(tempfile.mkdtemp(prefix="fuzz-corpus-"))
            for i, s in enumerate(seeds):
                (corpus / f"seed-{i}").write_bytes(s)
            argv.append(str(corpus))
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
