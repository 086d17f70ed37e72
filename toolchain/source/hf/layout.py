"""Which folders and files are Hugging Face datasets, and a parquet folder's shards by split
(the layouts of ``docs/huggingface.md``, "Parquet layouts")."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from toolchain.errors import SourceError, os_error_text
from toolchain.model.layout import parquet_shard_name

__all__ = ["detect", "parquet_layout", "split_patterns"]

_SPLIT = r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*"  # datasets' split names: ^\w+(\.\w+)*$ (ASCII here)
_SHARDED = re.compile(rf"(?P<split>{_SPLIT})-(?P<i>[0-9]{{5}})-of-(?P<n>[0-9]{{5}})\.parquet")
_PLAIN = re.compile(rf"(?P<split>{_SPLIT})\.parquet")
_SPLIT_DIR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # refs/convert/parquet: also partial-train


@dataclass(frozen=True, kw_only=True, slots=True)
class _ShardFile:
    rel: str
    config: str
    split: str
    index: int | None = None
    count: int | None = None


def _classify(rel: str) -> _ShardFile | None:
    """Which (config, split) a parquet file at ``rel`` belongs to, or ``None`` if no layout fits."""
    parts = rel.split("/")
    name = parts[-1]
    if len(parts) <= 2:
        config = "default" if len(parts) == 1 or parts[0] == "data" else parts[0]
        m = _SHARDED.fullmatch(name)
        if m:
            return _ShardFile(
                rel=rel,
                config=config,
                split=m["split"],
                index=int(m["i"]),
                count=int(m["n"]),
            )
        m = _PLAIN.fullmatch(name)
        if m and not m["split"].isdigit():
            return _ShardFile(rel=rel, config=config, split=m["split"])
        return None
    if len(parts) == 3 and _SPLIT_DIR.fullmatch(parts[1]) and not parts[0].startswith("."):
        return _ShardFile(rel=rel, config=parts[0], split=parts[1])
    return None


def split_patterns(split: str | None, config: str | None) -> list[str] | None:
    """Glob patterns (``fnmatch``, as ``huggingface_hub``'s ``allow_patterns``) matching the
    files of one split in every layout :func:`parquet_layout` accepts, and the repo's card;
    ``None`` (every file) when no split is known or the names are not the Hub's."""
    if not split or not re.fullmatch(_SPLIT, split):
        return None
    if config is not None and not _SPLIT_DIR.fullmatch(config):
        return None
    tops = ["data", "default", ""] if config in (None, "default") else [config]
    if config is None:
        tops.append("*")  # the config is not recorded: the split in any of them
    patterns = ["README.md"]
    for top in tops:
        prefix = f"{top}/" if top else ""
        patterns += [
            f"{prefix}{split}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].parquet",
            f"{prefix}{split}.parquet",
        ]
        if top:
            patterns.append(f"{top}/{split}/*.parquet")
    return patterns


def _is_hidden(rel: str) -> bool:
    return any(p.startswith(".") for p in rel.split("/"))


def parquet_layout(
    root: Path,
) -> tuple[dict[tuple[str, str], tuple[str, ...]], dict[str, int]]:
    """The parquet shards of a folder, by (config, split), and the other files by kind.

    The accepted layouts are those of ``docs/huggingface.md`` ("Parquet layouts"). Hidden
    entries are skipped; a symlinked shard file is read where it points. Shards are in the
    order of their paths' UTF-8 bytes (``load_dataset``'s order).
    """
    found: dict[tuple[str, str], list[_ShardFile]] = {}
    ignored: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_walk):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for fn in sorted(filenames):
            rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
            if _is_hidden(rel):
                ignored["hidden"] = ignored.get("hidden", 0) + 1
                continue
            if not fn.endswith(".parquet"):
                kind = Path(fn).suffix.lower() or "(none)"
                ignored[kind] = ignored.get(kind, 0) + 1
                continue
            shard = _classify(rel)
            if shard is None:
                raise SourceError(
                    f"{rel!r} in {root} is a parquet file outside the Hugging Face layouts "
                    "(data/<split>-NNNNN-of-NNNNN.parquet, <config>/<split>/NNNN.parquet, "
                    "<split>.parquet)",
                    hint="move or rename it, or pass the .parquet file itself as the original",
                )
            found.setdefault((shard.config, shard.split), []).append(shard)
    layout: dict[tuple[str, str], tuple[str, ...]] = {}
    for key, shards in sorted(found.items()):
        _check_shard_set(root, key, shards)
        layout[key] = tuple(sorted((s.rel for s in shards), key=lambda r: r.encode("utf-8")))
    return layout, ignored


def _check_shard_set(root: Path, key: tuple[str, str], shards: list[_ShardFile]) -> None:
    config, split = key
    what = f"split {split!r}" + (f" of config {config!r}" if config != "default" else "")
    names = ", ".join(sorted(s.rel for s in shards))

    def kind(s: _ShardFile) -> str:
        if s.index is not None:
            return "sharded"
        return "plain" if len(s.rel.split("/")) <= 2 else "folder"

    kinds = {kind(s) for s in shards}
    if len(kinds) > 1 or (kinds == {"plain"} and len(shards) > 1):
        raise SourceError(
            f"{what} in {root} is stored twice, in two layouts: {names}",
            hint="keep one copy of the split (remove the other files)",
        )
    counts = sorted({s.count for s in shards if s.count is not None})
    if len(counts) > 1:
        raise SourceError(
            f"the shards of {what} in {root} disagree on how many there are: {names}",
            hint="download the split again: its shards come from different uploads",
        )
    if counts:
        n = counts[0]
        have = {s.index for s in shards}
        missing = [i for i in range(n) if i not in have]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise SourceError(
                f"{what} in {root} has {len(have)} of its {n} shards; missing: "
                f"{parquet_shard_name(split, missing[0], n)}{more}",
                hint="download the missing shards: a partial split would make a partial benchmark",
            )
        if len(shards) != n:
            raise SourceError(
                f"{what} in {root} has shard files from two folders: {names}",
                hint="keep one copy of the split (remove the other files)",
            )


def _raise_walk(e: OSError) -> None:
    raise SourceError(f"cannot list {e.filename}: {os_error_text(e)}") from None


def detect(path: str | os.PathLike[str]) -> Literal["parquet", "arrow"] | None:
    """Is ``path`` a Hugging Face dataset? ``"parquet"``, ``"arrow"`` (``save_to_disk``), or None.

    ``"parquet"``: a ``.parquet`` file, or a folder with parquet shards in a Hub
    layout at depth at most 2 (looked for without walking a large image tree).
    ``"arrow"``: a folder with ``dataset_dict.json``, or ``state.json`` and
    ``dataset_info.json``.
    """
    p = Path(path)
    if p.is_file():
        return "parquet" if p.suffix.lower() == ".parquet" else None
    if not p.is_dir():
        return None
    if (p / "dataset_dict.json").is_file() or (
        (p / "state.json").is_file() and (p / "dataset_info.json").is_file()
    ):
        return "arrow"
    try:
        with os.scandir(p) as top:
            entries = sorted((e.name, e.is_dir()) for e in top)
        for name, is_dir in entries:
            if name.startswith("."):
                continue
            if not is_dir:
                if _classify(name) is not None:
                    return "parquet"
                continue
            with os.scandir(p / name) as sub:
                for e in sub:
                    rel = f"{name}/{e.name}"
                    if e.name.startswith("."):
                        continue
                    if e.is_dir():
                        if _SPLIT_DIR.fullmatch(e.name) and _has_numbered_shard(p / rel):
                            return "parquet"
                    elif _classify(rel) is not None:
                        return "parquet"
    except OSError:
        return None
    return None


def _has_numbered_shard(folder: Path) -> bool:
    # refs/convert/parquet shards are 0000.parquet, 0001.parquet, ...: one stat, no listing
    return (folder / "0000.parquet").is_file()
