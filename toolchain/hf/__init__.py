"""Hugging Face outputs: parquet shards, the dataset card, Croissant, loading.

Modules: :mod:`.parquet` (HF-loadable parquet shards, written and read row group
by row group), :mod:`.card` (the ``README.md`` dataset card), :mod:`.croissant`
(``croissant.json``), :mod:`.load` (:func:`~toolchain.hub.load.load_benchmark`).
The Hugging Face sources live in :mod:`toolchain.source.hf`; the diff as a
parquet dataset in :mod:`toolchain.diff.dataset`. See ``docs/huggingface.md``.

Importing this package imports none of ``datasets``, ``pyarrow`` or
``mlcroissant``: they are the optional extra ``benchmark-regen[hf]``, imported
on first use, and a missing one raises :class:`~toolchain.errors.InputError`
saying how to install it.
"""

from __future__ import annotations

__all__: list[str] = []
