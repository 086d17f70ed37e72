"""``python -m toolchain``: the same as the ``benchmark-regen`` command."""

from toolchain._entry import main

main()
