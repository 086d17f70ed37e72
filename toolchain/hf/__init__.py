"""Hugging Face outputs: parquet shards, the dataset card, Croissant (``docs/huggingface.md``).

Importing it imports none of the optional ``benchmark-regen[hf]`` packages."""

from __future__ import annotations

__all__: list[str] = []
