"""The publication folder (a Hub dataset repo): its file names, ``publication.json``, and the
check of every file it lists (``docs/hub.md``)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain._internal import safefs
from toolchain._internal.jsonload import load_json
from toolchain.errors import InputError, os_error_text
from toolchain.model.hashing import Digest, pretty_json, sha256_file
from toolchain.model.layout import CARD_NAME, CROISSANT_NAME, MANIFEST_NAME, SIGNATURE_NAME

__all__ = [
    "DIFF_DIR",
    "FORMAT",
    "KINDS",
    "PUBLICATION_NAME",
    "RECIPE_NAME",
    "Publication",
    "PublishedFile",
    "is_publication",
    "list_files",
    "read_publication",
]

FORMAT = "benchmark-regen.publication/v1"
PUBLICATION_NAME = "publication.json"
DIFF_DIR = "diff"
"""The diff, as the parquet dataset ``diff create --format parquet`` writes."""
RECIPE_NAME = "recipe.py"
KINDS = ("diff", "regenerate")
"""``diff``: users apply the diff to their original; ``regenerate``: they run the recipe."""
MAX_PUBLICATION_BYTES = 1 << 20
UNLISTED = frozenset({PUBLICATION_NAME, CARD_NAME, CROISSANT_NAME})
"""Files ``publication.json`` does not list: itself, and the two descriptions (the card may
be edited on the Hub without breaking the publication)."""
_PATH = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}/){0,8}[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")
_HINT = "download the publication again; if this persists, tell its publisher"


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishedFile:
    """One file of the publication: its path in the folder, size and SHA-256."""

    path: str
    size: int
    sha256: Digest

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "sha256": str(self.sha256), "size": self.size}


@dataclass(frozen=True, kw_only=True)
class Publication:
    """``publication.json``: what kind of publication, of which benchmark, with which files."""

    kind: str
    root: Digest
    """The benchmark's root hash (the manifest's)."""
    samples: int
    recipe: str = ""
    """``regenerate``: the name of the recipe object in ``recipe.py``."""
    files: tuple[PublishedFile, ...]
    """Every file users read (not :data:`UNLISTED`), sorted by path."""

    def to_json(self) -> dict[str, object]:
        return {
            "files": [f.to_json() for f in self.files],
            "format": FORMAT,
            "kind": self.kind,
            "recipe": self.recipe,
            "root": str(self.root),
            "samples": self.samples,
        }

    def render(self) -> bytes:
        return pretty_json(self.to_json())

    def file(self, path: str) -> PublishedFile | None:
        return next((f for f in self.files if f.path == path), None)

    @property
    def manifest(self) -> PublishedFile:
        found = self.file(MANIFEST_NAME)
        assert found is not None  # parse() requires it
        return found

    @property
    def signed(self) -> bool:
        return self.file(SIGNATURE_NAME) is not None

    @classmethod
    def parse(cls, data: bytes, *, where: str) -> Publication:
        """Parse ``publication.json`` strictly; :class:`InputError` names what is wrong."""

        def bad(what: str) -> InputError:
            return InputError(f"{where}: {what}", hint=_HINT)

        doc = load_json(data, what=where, error=InputError, hint=_HINT)
        fields = {"files", "format", "kind", "recipe", "root", "samples"}
        if not isinstance(doc, dict) or set(doc) != fields:
            raise bad(f"must be an object with exactly the fields {', '.join(sorted(fields))}")
        if doc["format"] != FORMAT:
            raise bad(
                f"format {doc['format']!r} is not {FORMAT!r}: published by another version",
            )
        if doc["kind"] not in KINDS:
            raise bad(f"kind {doc['kind']!r} is not one of {', '.join(KINDS)}")
        if not isinstance(doc["recipe"], str) or (doc["kind"] == "regenerate") != bool(
            doc["recipe"]
        ):
            raise bad("recipe must name the recipe object exactly when kind is 'regenerate'")
        samples = doc["samples"]
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise bad("samples must be a positive integer")
        try:
            root = Digest.parse(doc["root"]) if isinstance(doc["root"], str) else None
        except ValueError:
            root = None
        if root is None:
            raise bad("root must be 'sha256:<64 hex digits>'")
        files = _parse_files(doc["files"], bad)
        needed = {MANIFEST_NAME} | ({RECIPE_NAME} if doc["kind"] == "regenerate" else set())
        missing = sorted(needed - {f.path for f in files})
        if doc["kind"] == "diff" and not any(f.path.startswith(f"{DIFF_DIR}/") for f in files):
            missing.append(f"{DIFF_DIR}/")
        if missing:
            raise bad(f"lists no {', '.join(missing)}")
        return cls(kind=doc["kind"], root=root, samples=samples, recipe=doc["recipe"], files=files)


def _parse_files(value: object, bad: Callable[[str], InputError]) -> tuple[PublishedFile, ...]:
    if not isinstance(value, list) or not value:
        raise bad("files must be a non-empty list")
    out: list[PublishedFile] = []
    for i, item in enumerate(value):
        ok = isinstance(item, dict) and set(item) == {"path", "sha256", "size"}
        path, size, sha = (item.get(k) for k in ("path", "size", "sha256")) if ok else (0, 0, 0)
        if not (
            ok
            and isinstance(path, str)
            and _PATH.fullmatch(path)
            and path not in UNLISTED
            and isinstance(size, int)
            and not isinstance(size, bool)
            and size >= 0
            and isinstance(sha, str)
        ):
            raise bad(f"files[{i}] must be {{path, sha256, size}} with a plain relative path")
        try:
            digest = Digest.parse(sha)
        except ValueError:
            raise bad(f"files[{i}].sha256 is not 'sha256:<hex>'") from None
        out.append(PublishedFile(path=path, size=size, sha256=digest))
    paths = [f.path for f in out]
    if paths != sorted(set(paths), key=lambda p: p.encode("utf-8")):
        raise bad("files must be sorted by path, each once")
    return tuple(out)


def list_files(folder: Path, *, skip: frozenset[str] = frozenset()) -> Iterator[PublishedFile]:
    """Every regular file under ``folder`` but ``skip``, sorted by path, with size and SHA-256
    (a link or anything else that is not a regular file is an :class:`InputError`)."""
    for rel, kind in safefs.walk(folder):
        if kind == "dir" or rel in skip:
            continue
        if kind != "file":
            raise InputError(f"{folder / rel} is a {kind}, not a regular file; not published")
        path = folder / rel
        yield PublishedFile(path=rel, size=path.stat().st_size, sha256=sha256_file(path))


def is_publication(path: str | os.PathLike[str]) -> bool:
    """Does the folder ``path`` hold a ``publication.json``?"""
    return (Path(path) / PUBLICATION_NAME).is_file()


def read_publication(folder: Path, *, check: Sequence[str] | None = None) -> Publication:
    """Parse ``folder/publication.json`` and check the listed files ``check`` (all: ``None``)
    for size and SHA-256: a file changed since it was published is an :class:`InputError`.

    Links are followed (a Hub cache snapshot is made of links into its blob store).
    """
    where = folder / PUBLICATION_NAME
    try:
        data = safefs.read_path(where, limit=MAX_PUBLICATION_BYTES)
    except FileNotFoundError:
        raise InputError(
            f"{folder} holds no {PUBLICATION_NAME}: it is not a benchmark-regen publication",
            hint="give a folder written by `benchmark-regen publish`, or its Hub repo id",
        ) from None
    except OSError as e:
        raise InputError(f"cannot read {where}: {os_error_text(e)}", hint=_HINT) from None
    pub = Publication.parse(data, where=str(where))
    for f in pub.files:
        if check is None or f.path in check:
            _check_file(folder, f)
    return pub


def _check_file(folder: Path, f: PublishedFile) -> None:
    path = folder / f.path
    try:
        size = os.stat(path).st_size
        digest = sha256_file(path) if size == f.size else None
    except FileNotFoundError:
        raise InputError(f"{path} is missing: {PUBLICATION_NAME} lists it", hint=_HINT) from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {os_error_text(e)}", hint=_HINT) from None
    if digest is None:
        raise InputError(
            f"{path} is {size} bytes; {PUBLICATION_NAME} says {f.size}: the file is damaged "
            "or was changed after publishing",
            hint=_HINT,
        )
    if digest != f.sha256:
        raise InputError(
            f"{path} has SHA-256 {digest.hex}; {PUBLICATION_NAME} says {f.sha256.hex}: the file "
            "is damaged or was changed after publishing",
            hint=_HINT,
        )
