"""Shards: a deterministic 1/N of the samples by sample id, and merging shard manifests into
the unsharded run's manifest; a shard that differs is named by majority (docs/scale-out.md)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain.errors import DeterminismError, Error, ManifestError, ShardSpecError
from toolchain.model.drift import ABSENT, fingerprint_differences
from toolchain.model.layout import MANIFEST_NAME
from toolchain.model.manifest import EntryCollector, Manifest, iter_manifest, load_manifest

__all__ = ["Shard", "merge_files", "merge_manifests", "parse_shard", "write_merged"]

_DOMAIN = b"benchmark-regen/shard/v1\x00"
_SPEC = re.compile(r"(\d{1,6})/(\d{1,6})")
MAX_SHARDS = 100_000
_SHOWN_FIELDS = 4
_SHOWN_SHARDS = 8
_VALUE_CHARS = 40


@dataclass(frozen=True, kw_only=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``, written ``I/N``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (1 <= self.count <= MAX_SHARDS and 0 <= self.index < self.count):
            raise ShardSpecError(
                f"shard {self.index}/{self.count} is out of range",
                hint=f"use I/N with 0 <= I < N <= {MAX_SHARDS}, e.g. --shard 0/4",
            )

    def contains(self, sample_id: str) -> bool:
        digest = hashlib.sha256(_DOMAIN + sample_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def slug(self) -> str:
        """A file-name-safe form: ``I-of-N``."""
        return f"{self.index}-of-{self.count}"


def parse_shard(text: str) -> Shard:
    """Parse ``I/N`` (0-based index). Raises :class:`ShardSpecError` with a hint."""
    m = _SPEC.fullmatch(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ShardSpecError(
            f"--shard {text!r} is not of the form I/N",
            hint="I is the 0-based shard index and N the shard count, e.g. --shard 2/8",
        )
    return Shard(index=int(m.group(1)), count=int(m.group(2)))


def merge_files(
    paths: Sequence[str | os.PathLike[str]], *, here: Mapping[str, str] | None = None
) -> Manifest:
    """Read the shard manifests at ``paths`` (every missing one named) and merge them."""
    missing = [os.fspath(p) for p in paths if not os.path.lexists(p)]
    if missing:
        shown = ", ".join(_show(p, limit=200) for p in missing[:_SHOWN_SHARDS])
        more = len(missing) - _SHOWN_SHARDS
        raise ManifestError(
            f"{len(missing)} of the {len(paths)} shard manifests are not on "
            f"{_show(socket.gethostname())}: {shown}" + (f" and {more} more" if more > 0 else ""),
            hint="a shard writes its manifest.shard-I-of-N.json into its --out when it "
            "completes: run the missing shards (--resume), then merge again. Shards run on "
            "other machines must write to a filesystem this one shares (docs/scale-out.md, "
            '"Shared storage")',
        )
    return merge_manifests([load_manifest(p) for p in paths], here=here)


def merge_manifests(
    shards: Sequence[Manifest], *, here: Mapping[str, str] | None = None
) -> Manifest:
    """Combine the N shard manifests of one run into the whole benchmark's manifest.

    Shards that disagree (split, recipe, environment, provenance, format) are named
    against the majority, with the values that differ; without a majority, every side
    is named, and for the environment, the side ``here`` (this machine's fingerprint,
    measured when not given) has.
    """
    if not shards:
        raise ManifestError("no shard manifests to merge")
    specs = []
    for i, m in enumerate(shards):
        if m.shard is None:
            raise ManifestError(
                f"manifest #{i + 1} is a whole benchmark, not a shard",
                hint="merge only the manifest.shard-I-of-N.json files of one run",
            )
        specs.append(parse_shard(m.shard))
    for aspect in _ASPECTS:
        fields = [aspect.fields(m, s) for m, s in zip(shards, specs, strict=True)]
        _agree(aspect, specs, fields, here=here)
    for m, spec in zip(shards, specs, strict=True):
        if not m.root_is_consistent():
            raise ManifestError(f"shard {spec}: its root hash does not match its entries")
    first, count = shards[0], specs[0].count
    seen: set[int] = set()
    for spec in specs:
        if spec.index in seen:
            raise ManifestError(f"shard {spec} is given twice (overlap)")
        seen.add(spec.index)
    missing = sorted(set(range(count)) - seen)
    if missing:
        names = ", ".join(f"{i}/{count}" for i in missing[:10])
        raise ManifestError(f"missing shard(s) {names}", hint="run them, then merge again")
    # Each id belongs to exactly one shard (``contains`` partitions the ids) and each shard
    # is given once, so no sample can come twice.
    entries = EntryCollector()
    for m, spec in zip(shards, specs, strict=True):
        for e in m.entries:
            if not spec.contains(e.id):
                raise ManifestError(f"sample {e.id!r} does not belong in shard {spec}")
            entries.add(e)
    expected = first.provenance.samples_used
    if len(entries) != expected:
        raise ManifestError(
            f"the shards hold {len(entries)} samples, but the run selected {expected}",
            hint="a shard is incomplete: regenerate it with --resume",
        )
    return Manifest.build(
        recipe=first.recipe,
        entries=entries,
        fingerprint=first.fingerprint,
        encoder=first.encoder,
        columns=first.columns,
        provenance=first.provenance,
        version=first.version,
    )


def write_merged(manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write a merged manifest; beside a ``manifest.json``, the whole benchmark's companions."""
    from toolchain.run.outdir import companions, write_benchmark_files

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_benchmark_files(
        target.parent,
        iter_manifest(manifest),
        name=target.name,
        companions=(lambda sha: companions(manifest, sha))
        if target.name == MANIFEST_NAME
        else None,
    )


# -- Agreement: what every shard of one run shares, and naming the odd ones out -------------

Fields = Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class _Aspect:
    """One thing every shard of a run shares, as flat fields, and how to report a shard
    that differs (``{is}``/``{was}``/``{has}`` agree with the number of shards)."""

    thing: str
    differs: str
    error: type[Error]
    fields: Callable[[Manifest, Shard], Fields]
    fix: str
    """What to do about the odd shards, ``{odd}``: which, ``{values}``: the majority's."""


def _flatten(doc: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in doc.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return out


def _format_fields(m: Manifest, _: Shard) -> Fields:
    return {
        "format version": str(m.version),
        **{f"encoder.{k}": str(v) for k, v in m.encoder.items()},
        **{f"column {c.name}": json.dumps(c.to_json(), sort_keys=True) for c in m.columns},
    }


_ASPECTS = (
    _Aspect(
        thing="split",
        differs="{is} from another split",
        error=ManifestError,
        fields=lambda _, s: {"shard count": str(s.count)},
        fix="merge the manifest.shard-I-of-N.json files of one split; {odd} {is} from another run",
    ),
    _Aspect(
        thing="recipe",
        differs="{was} made by another recipe",
        error=ManifestError,
        fields=lambda m, _: _flatten(m.recipe.to_json()),
        fix="merge only shards of one run (same recipe, version, seed and parameters): "
        "regenerate {odd} with {values}",
    ),
    _Aspect(
        thing="environment",
        differs="{was} made in another environment",
        error=DeterminismError,
        fields=lambda m, _: m.fingerprint,
        fix="regenerate {odd} where {values}, as for the other shards, then merge again; "
        "`benchmark-regen env` prints a machine's values",
    ),
    _Aspect(
        thing="provenance",
        differs="{has} other provenance fields",
        error=ManifestError,
        fields=lambda m, _: _flatten(m.provenance.to_json()),
        fix="regenerate {odd} from the same original with {values}",
    ),
    _Aspect(
        thing="format",
        differs="{has} another format version, PNG encoder or column schema",
        error=ManifestError,
        fields=_format_fields,
        fix="regenerate {odd} with the benchmark-regen version the others used ({values})",
    ),
)


def _agree(
    aspect: _Aspect, specs: Sequence[Shard], fields: Sequence[Fields], *, here: Fields | None
) -> None:
    """Refuse shards that do not share ``aspect``: the odd ones against the majority, or
    every side when no value is shared by more than half of the shards."""
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(fields):
        groups.setdefault(json.dumps(sorted(f.items())), []).append(i)
    if len(groups) == 1:
        return
    sides = sorted(groups.values(), key=len, reverse=True)  # stable: ties in given order
    n, top = len(specs), sides[0]
    if 2 * len(top) > n:
        odd = sorted(i for side in sides[1:] for i in side)
        ref = fields[top[0]]
        diff = fingerprint_differences(ref, fields[sides[1][0]])
        changed = ", ".join(
            f"{_key(k)} {_show(theirs, near=ours)} (the others: {_show(ours, near=theirs)})"
            for k, (ours, theirs) in list(diff.items())[:_SHOWN_FIELDS]
        )
        changed += _more(len(diff))
        if len(sides) > 2:
            changed += f"; {_names(specs, sides[2])} differ{'s' if len(sides[2]) == 1 else ''}"
            changed += " from both in other ways"
        verbs = _verbs(len(odd))
        values = ", ".join(
            f"{_key(k)} {_show(ours)}" for k, (ours, _) in list(diff.items())[:_SHOWN_FIELDS]
        )
        raise aspect.error(
            f"{_names(specs, odd)} {aspect.differs.format(**verbs)} than the other {len(top)} "
            f"({_names(specs, top, bare=True)}): {changed}",
            hint=aspect.fix.format(odd=_names(specs, odd), values=values, **verbs),
        )
    keys = sorted(
        {k for side in sides[1:] for k in fingerprint_differences(fields[top[0]], fields[side[0]])}
    )
    shown = keys[:_SHOWN_FIELDS]

    def value(side: Sequence[int], key: str) -> str:
        other = sides[1] if side is top else top
        near = fields[other[0]].get(key, ABSENT)
        return _show(fields[side[0]].get(key, ABSENT), near=near)

    described = "; ".join(
        f"{_names(specs, side)} {_verbs(len(side))['has']} "
        + ", ".join(f"{_key(k)} {value(side, k)}" for k in shown)
        for side in sides
    )
    text = f"no {aspect.thing} is shared by a majority of the {n} shards: {described}"
    if len(keys) > len(shown):
        text += f" ({len(shown)} of the {len(keys)} fields that differ)"
    if aspect.error is DeterminismError:
        text += _this_machine(specs, sides, fields, keys, here)
    hint = f"regenerate the shards of all but one side with that side's {aspect.thing}, then "
    hint += "merge again"
    if aspect.error is DeterminismError:
        hint += "; `benchmark-regen env` prints a machine's values"
    raise aspect.error(text, hint=hint)


def _this_machine(
    specs: Sequence[Shard],
    sides: Sequence[Sequence[int]],
    fields: Sequence[Fields],
    keys: Sequence[str],
    here: Fields | None,
) -> str:
    """Which side this machine's fingerprint has, field by field (the pinning fields
    describe a process, not a machine, and are left out)."""
    keys = [k for k in keys if k != "pinned" and not k.startswith("env.")]
    if not keys:
        return ""
    if here is None:
        here = _local_fingerprint()
        if here is None:
            return "; this machine's own values could not be measured"
    matched: dict[int, list[str]] = {}
    unmatched: list[str] = []
    for k in keys:
        side = next((j for j, s in enumerate(sides) if here.get(k) == fields[s[0]].get(k)), None)
        if side is None:
            unmatched.append(k)
        else:
            matched.setdefault(side, []).append(k)
    if not unmatched and len(matched) == 1:
        (side,) = matched
        return f"; this machine has the values of {_names(specs, sides[side])}"
    parts = [
        f"{_fields(ks)} as in {_names(specs, sides[side])}" for side, ks in sorted(matched.items())
    ]
    like = sides[max(matched, key=lambda j: len(matched[j]), default=0)][0]
    parts += [
        f"{_key(k)} {_show(here.get(k, ABSENT), near=fields[like].get(k))} as in no shard"
        for k in unmatched
    ]
    return "; this machine has " + ", ".join(parts[:_SHOWN_FIELDS]) + _more(len(parts))


def _local_fingerprint() -> Fields | None:
    """The fingerprint a pinned process here has (what ``benchmark-regen env`` prints)."""
    from toolchain.run.executor import worker_fingerprint

    try:
        return worker_fingerprint()
    except (Error, OSError, RuntimeError, TimeoutError):
        return None


def _verbs(count: int) -> dict[str, str]:
    one = count == 1
    return {"is": "is" if one else "are", "was": "was" if one else "were",
            "has": "has" if one else "have"}  # fmt: skip


def _names(specs: Sequence[Shard], indices: Sequence[int], *, bare: bool = False) -> str:
    """``shard 0/4`` or ``shards 0/4, 2/4`` (``bare``: without the word)."""
    listed = ", ".join(str(specs[i]) for i in indices[:_SHOWN_SHARDS])
    more = len(indices) - _SHOWN_SHARDS
    listed += f" and {more} more" if more > 0 else ""
    return listed if bare else f"shard{'' if len(indices) == 1 else 's'} {listed}"


def _fields(keys: Sequence[str]) -> str:
    shown = ", ".join(_key(k) for k in keys[:_SHOWN_FIELDS])
    return shown + (f" and {len(keys) - _SHOWN_FIELDS} more" if len(keys) > _SHOWN_FIELDS else "")


def _more(count: int) -> str:
    return f", and {count - _SHOWN_FIELDS} more fields" if count > _SHOWN_FIELDS else ""


def _show(value: str, *, near: str | None = None, limit: int = _VALUE_CHARS) -> str:
    """A value for a message: quoted, control characters escaped, and shortened to the
    part around where it first differs from ``near``."""
    if len(value) <= limit:
        return repr(value)
    start = 0
    if near is not None:
        pairs = zip(value, near, strict=False)
        first = next((i for i, (a, b) in enumerate(pairs) if a != b), len(near))
        start = min(first - 12, len(value) - limit + 3)
        start = start if start >= 8 else 0  # a few characters cut are not worth the "..."
    end = start + limit - (3 if start else 0) - 3
    return repr(("..." if start else "") + value[start:end] + ("..." if end < len(value) else ""))


def _key(key: str) -> str:
    """A field name for a message: as it is when printable and short, else like a value."""
    return key if key.isprintable() and len(key) <= _VALUE_CHARS else _show(key)
