"""The field sizes a manifest may hold (docs/manifest.md, "Limits"), and the cut form in
which a message quotes a value."""

from __future__ import annotations

__all__ = [
    "MAX_CLASS_NAMES",
    "MAX_COMPONENT_BYTES",
    "MAX_ENTRY_CHARS",
    "MAX_KEYS",
    "MAX_NAME_CHARS",
    "MAX_PATH_BYTES",
    "MAX_SCHEMA_CHARS",
    "MAX_TEXT_CHARS",
    "SHOWN_CHARS",
    "cut",
    "path_problem",
    "shown",
    "size_problem",
]

MAX_PATH_BYTES = 4096
"""A sample id or output path, in UTF-8 bytes (PATH_MAX)."""
MAX_COMPONENT_BYTES = 255
"""One component of an id or path, in UTF-8 bytes (NAME_MAX: no file system holds more)."""
MAX_NAME_CHARS = 4096
"""A name or identity: the recipe's name, version, select and parameter names, fingerprint
and encoder keys and values, column and class names, the shard."""
MAX_TEXT_CHARS = 1 << 20
"""Free text: provenance strings, string parameters, a string column's value."""
MAX_KEYS = 1024
"""Members of the fingerprint, the encoder, the recipe's parameters, the column schema."""
MAX_CLASS_NAMES = 1 << 20
"""Names of one class-label column."""
MAX_ENTRY_CHARS = 16 << 20
"""The JSON text of one entry, or of any top-level member but the column schema."""
MAX_SCHEMA_CHARS = 64 << 20
"""The JSON text of the column schema (``columns``: class names make it the largest)."""
SHOWN_CHARS = 80
"""What a message quotes of a value, at most."""


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text``, cut to ``limit`` characters (and ``...``)."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` as a message quotes it: cut to ``limit`` characters, so that a message
    never carries a hostile field whole."""
    return cut(repr(value), limit)


def size_problem(value: str, limit: int) -> str | None:
    """What is wrong with ``value`` for a field of at most ``limit`` characters, or ``None``."""
    if len(value) > limit:
        return f"it is {len(value)} characters, over the {limit}-character limit"
    return None


def path_problem(value: str) -> str | None:
    """What is wrong with the size or encoding of an id or path, or ``None`` (the path rules
    themselves are :func:`toolchain.model.ids.check_sample_id`'s)."""
    if len(value) > MAX_PATH_BYTES:  # a character is at least one byte: no need to encode
        return f"it is over {MAX_PATH_BYTES} bytes"
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode (a lone surrogate)"
    if len(raw) > MAX_PATH_BYTES:
        return f"it is {len(raw)} bytes, over the {MAX_PATH_BYTES}-byte limit"
    longest = max(len(part) for part in raw.split(b"/"))
    if longest > MAX_COMPONENT_BYTES:
        return (
            f"a component of it is {longest} bytes, over the {MAX_COMPONENT_BYTES}-byte "
            "limit of a file name"
        )
    return None
