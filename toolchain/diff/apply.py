"""``diff apply``: rebuild a benchmark from the user's original and a ``.bdiff``.

The pipeline::

    open the container (header, manifest, index checked) → list the original
        → prepare --out
        → phase A, per entry whose id is in the original (parallel, in order):
          read original → key → read sealed payload by offset → AEAD open
          → decode original → add delta → hash → encode PNG → hash → write if exact
        → phase B, for entries not opened by id: fingerprint the rest of the tree,
          and run the same per-entry step on the files that match by content
        → all exact: metadata.jsonl → manifest.json (the carried bytes, written last)
        → otherwise: nothing more (no manifest.json), or with ``partial``
          coverage.json → metadata.jsonl → manifest.json

Every sample is checked against the carried manifest in the worker (pixel
digest and PNG digest) before it is written, and again by the parent.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain._internal.atomic import atomic_write
from toolchain._internal.executor import run_ordered
from toolchain.decode import decode
from toolchain.diff.codec import PayloadError, unpack_payload
from toolchain.diff.format import (
    DiffReader,
    IndexRecord,
    KeyOn,
    PayloadKind,
    open_diff,
    read_sealed,
)
from toolchain.diff.locate import Found, scan_by_content, unseal
from toolchain.encode import encode_png
from toolchain.errors import (
    DecodeError,
    ExitCode,
    Interrupted,
    OutputError,
    ShardSpecError,
    SourceError,
)
from toolchain.generate import _prepare_out, _write_metadata, shard_manifest_name
from toolchain.hashing import Digest, file_digest, pixel_digest
from toolchain.manifest import MANIFEST_NAME, Manifest, ManifestEntry, write_manifest
from toolchain.shard import Shard, parse_shard
from toolchain.source import Source, open_source

__all__ = ["COVERAGE_NAME", "ApplyResult", "SampleOutcome", "Status", "get_benchmark"]

COVERAGE_NAME = "coverage.json"
COVERAGE_FORMAT = "benchmark-regen.coverage/v1"
DECODER_KEYS = ("pillow", "pillow.libjpeg_turbo", "pillow.jpg", "pillow.zlib_ng", "pillow.zlib")
PINNED_HINT = (
    "run `benchmark-regen diff apply` in the pinned container (docker/Dockerfile), "
    "whose decoder versions match the publisher's"
)


class Status(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    ORIGINAL_DIFFERS = "original-differs"
    DECODER_DRIFT = "decoder-drift"
    ENCODER_DRIFT = "encoder-drift"
    BROKEN = "broken"


def decoder_versions(fp: Mapping[str, str]) -> str:
    """``pillow 11.0.0, pillow.libjpeg_turbo 3.0.4, ...`` from a runtime fingerprint."""
    return ", ".join(f"{k} {fp[k]}" for k in DECODER_KEYS if k in fp) or "unknown"


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleOutcome:
    """What happened to one sample."""

    id: str
    path: str
    status: Status
    found: Found
    source: str | None = None
    """Where the original was found in the user's tree."""
    message: str = ""

    def to_json(self) -> dict[str, str | None]:
        return {
            "found": str(self.found),
            "id": self.id,
            "message": self.message,
            "path": self.path,
            "source": self.source,
            "status": str(self.status),
        }


@dataclass(frozen=True, kw_only=True)
class ApplyResult:
    out: Path
    manifest: Manifest
    outcomes: tuple[SampleOutcome, ...]
    partial: bool
    manifest_written: bool

    @property
    def ok(self) -> bool:
        return all(o.status is Status.OK for o in self.outcomes)

    @property
    def exit_code(self) -> ExitCode:
        if self.ok:
            return ExitCode.OK
        return ExitCode.PARTIAL if self.partial else ExitCode.CHECK_FAILED

    def failures(self) -> list[SampleOutcome]:
        return [o for o in self.outcomes if o.status is not Status.OK]

    def found_counts(self) -> dict[str, int]:
        """How the originals were found: every :class:`Found` value, with its count."""
        return {str(k): sum(o.found is k for o in self.outcomes) for k in Found}

    def status_counts(self) -> dict[str, int]:
        """What happened to the samples: every :class:`Status` value, with its count."""
        return {str(k): sum(o.status is k for o in self.outcomes) for k in Status}

    def to_json(self) -> dict[str, object]:
        return {
            "found": self.found_counts(),
            "status": self.status_counts(),
            "manifest_written": self.manifest_written,
            "ok": self.ok,
            "out": str(self.out),
            "problems": [o.to_json() for o in self.failures()],
            "root": str(self.manifest.root),
            "samples": len(self.outcomes),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class _Task:
    entry: ManifestEntry
    record: IndexRecord
    source_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class _Done:
    status: Status
    pixels: Digest | None = None
    file: Digest | None = None
    local_source: Digest | None = None
    detail: str = ""


@dataclass(frozen=True)
class _RebuildJob:
    """Rebuild one sample; picklable, sent once to each worker."""

    source: Source
    diff: Path
    key_on: KeyOn
    salt: bytes
    out: Path

    def __call__(self, t: _Task) -> _Done:
        e = t.entry
        try:
            data = self.source.read(t.source_id)
        except SourceError as err:
            return _Done(status=Status.MISSING, detail=err.message)
        sealed = read_sealed(self.diff, t.record, e.id)
        got = unseal(
            data, key_on=self.key_on, salt=self.salt, sample_id=e.id, record=t.record, sealed=sealed
        )
        if got.plaintext is None:
            return _Done(status=Status.ORIGINAL_DIFFERS)
        original = got.pixels
        if original is None and t.record.kind is PayloadKind.DELTA:
            try:
                original = decode(data)
            except DecodeError as err:
                return _Done(
                    status=Status.DECODER_DRIFT, detail=f"your decoder refuses it: {err.message}"
                )
        local_source = None if original is None else pixel_digest(original)
        try:
            target = unpack_payload(t.record.kind, got.plaintext, original)
        except PayloadError as err:
            if local_source is not None and local_source != e.source_pixels:
                return _Done(status=Status.DECODER_DRIFT, local_source=local_source)
            return _Done(status=Status.BROKEN, detail=str(err))
        pixels = pixel_digest(target)
        if pixels != e.pixels:
            if local_source is not None and local_source != e.source_pixels:
                return _Done(status=Status.DECODER_DRIFT, pixels=pixels, local_source=local_source)
            return _Done(status=Status.BROKEN, pixels=pixels, detail="rebuilt pixels differ")
        png = encode_png(target)
        file = file_digest(png)
        if file != e.file:
            return _Done(status=Status.ENCODER_DRIFT, pixels=pixels, file=file)
        try:
            atomic_write(self.out / e.path, png)
        except OSError as err:
            raise OutputError(
                f"cannot write {e.path}: {err.strerror or err}", sample=e.id
            ) from None
        return _Done(status=Status.OK, pixels=pixels, file=file, local_source=local_source)


def _describe(
    e: ManifestEntry,
    done: _Done,
    publisher: Mapping[str, str],
    local: Mapping[str, str],
    key_on: KeyOn,
) -> str:
    """The user-facing message for one sample's outcome."""
    if done.status is Status.ORIGINAL_DIFFERS:
        text = (
            f"sample {e.id}: your copy of the original differs from the one this benchmark "
            "was made from"
        )
        if key_on is KeyOn.PIXELS:
            text += (
                f" (keys come from decoded pixels, so decoder drift looks the same: publisher "
                f"{decoder_versions(publisher)}; yours {decoder_versions(local)})"
            )
        return text
    if done.status is Status.MISSING:
        return f"sample {e.id}: not found in the original, by id or by content"
    if done.status is Status.DECODER_DRIFT:
        ours = done.local_source.short if done.local_source else "?"
        return (
            f"sample {e.id}: decoder drift: your decoder gives the original pixels {ours}, the "
            f"publisher's gave {e.source_pixels.short} (publisher: {decoder_versions(publisher)}; "
            f"yours: {decoder_versions(local)}){': ' + done.detail if done.detail else ''}; "
            f"{PINNED_HINT}"
        )
    if done.status is Status.ENCODER_DRIFT:
        return (
            f"sample {e.id}: same pixels, different PNG bytes (encoder drift: publisher "
            f"zlib {publisher.get('pillow.zlib', '?')}, yours {local.get('pillow.zlib', '?')}); "
            f"{PINNED_HINT}"
        )
    if done.status is Status.BROKEN:
        return f"sample {e.id}: cannot be rebuilt: {done.detail}"
    return ""


def _write_coverage(out: Path, manifest: Manifest, outcomes: Sequence[SampleOutcome]) -> None:
    doc = {
        "format": COVERAGE_FORMAT,
        "root": str(manifest.root),
        "samples": len(outcomes),
        "written": sum(o.status is Status.OK for o in outcomes),
        "not_written": [
            {"id": o.id, "found": str(o.found), "status": str(o.status)}
            for o in outcomes
            if o.status is not Status.OK
        ],
    }
    data = (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")
    atomic_write(out / COVERAGE_NAME, data)


class _Runner:
    """Runs rebuild tasks through the pool and keeps one verdict per entry index."""

    def __init__(
        self,
        job: _RebuildJob,
        *,
        workers: int,
        selected: Sequence[int],
        progress: Callable[[int, int], None] | None,
    ):
        self.job, self.workers, self.progress = job, workers, progress
        self.selected = list(selected)
        self.total = len(self.selected)
        self.results: dict[int, tuple[_Done, Found, str | None]] = {}
        self.fingerprint: Mapping[str, str] = {}

    def rebuild(self, tasks: Sequence[tuple[int, _Task]], found: Found) -> None:
        if not tasks:
            return
        with run_ordered(self.job, [t for _, t in tasks], workers=self.workers) as run:
            for (i, t), done in zip(tasks, run, strict=True):
                old = self.results.get(i)
                if old is not None and done.status is not Status.OK:
                    continue  # a content match that fails keeps the by-id verdict
                if done.status is Status.ORIGINAL_DIFFERS and found is Found.BY_ID:
                    self.results[i] = (done, Found.DIFFERENT, t.source_id)
                else:
                    self.results[i] = (done, found, t.source_id)
                if self.progress:
                    self.progress(len(self.results), self.total)
            self.fingerprint = run.fingerprint

    def unresolved(self) -> list[int]:
        """Entries not opened by id: absent from the tree, or a different file at their path."""
        r = self.results
        return [i for i in self.selected if i not in r or r[i][1] is Found.DIFFERENT]

    def used(self) -> set[str]:
        return {w for d, _, w in self.results.values() if d.status is Status.OK and w}


def _by_id_tasks(
    reader: DiffReader, present: Collection[str], selected: Collection[int]
) -> list[tuple[int, _Task]]:
    entries = reader.manifest.entries
    return [
        (i, _Task(entry=entries[i], record=reader.records[i], source_id=entries[i].id))
        for i in sorted(selected)
        if entries[i].id in present
    ]


def _by_content_tasks(
    reader: DiffReader, source: Source, candidates: Iterable[str], unresolved: Sequence[int]
) -> list[tuple[int, _Task]]:
    records, entries = reader.records, reader.manifest.entries
    wanted = {records[i].fingerprint for i in unresolved}
    matches = scan_by_content(source, candidates, reader.header.key_on, wanted)
    return [
        (i, _Task(entry=entries[i], record=records[i], source_id=matches[records[i].fingerprint]))
        for i in unresolved
        if records[i].fingerprint in matches
    ]


def _outcomes(reader: DiffReader, runner: _Runner) -> list[SampleOutcome]:
    local = runner.fingerprint
    if not local:  # nothing ran: ask a pinned process what it would have used
        from toolchain._internal.executor import worker_fingerprint

        local = worker_fingerprint()
    publisher, key_on = reader.manifest.fingerprint, reader.header.key_on
    outcomes = []
    for i in runner.selected:
        e = reader.manifest.entries[i]
        missing = (_Done(status=Status.MISSING), Found.MISSING, None)
        done, found, where = runner.results.get(i, missing)
        if done.status is Status.OK and (done.pixels != e.pixels or done.file != e.file):
            done = _Done(status=Status.BROKEN, detail="a worker reported digests that differ")
        message = _describe(e, done, publisher, local, key_on)
        outcomes.append(
            SampleOutcome(
                id=e.id, path=e.path, status=done.status, found=found, source=where, message=message
            )
        )
    return outcomes


def _commit(
    out: Path,
    reader: DiffReader,
    outcomes: Sequence[SampleOutcome],
    partial: bool,
    part: Shard | None = None,
) -> bool:
    """Write the folder's auxiliary files, the manifest last; ``True`` if it was written."""
    ok = all(o.status is Status.OK for o in outcomes)
    if not (ok or partial):
        return False
    try:
        if part is not None:
            # A shard of the carried benchmark: its manifest merges with the others'
            # into exactly the carried manifest (same recipe, fingerprint, provenance).
            m = reader.manifest
            shard_manifest = Manifest.build(
                recipe=m.recipe,
                entries=[e for e in m.entries if part.contains(e.id)],
                fingerprint=m.fingerprint,
                provenance=m.provenance,
                shard=str(part),
            )
            write_manifest(shard_manifest, out / shard_manifest_name(part))
            return True
        if not ok:
            _write_coverage(out, reader.manifest, outcomes)
        exact = {o.id for o in outcomes if o.status is Status.OK}
        _write_metadata(out, [e for e in reader.manifest.entries if e.id in exact])
        atomic_write(out / MANIFEST_NAME, reader.manifest_bytes, durable=True)
    except OSError as err:
        raise OutputError(f"cannot write the manifest: {err.strerror or err}") from None
    return True


def get_benchmark(
    original: str | os.PathLike[str],
    diff: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    workers: int = 1,
    partial: bool = False,
    overwrite: bool = False,
    shard: Shard | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ApplyResult:
    """Rebuild the benchmark carried by ``diff`` from ``original`` into ``out``.

    ``result.ok`` only when every sample is bit-exact; then ``out`` holds the
    benchmark with the carried ``manifest.json``. Otherwise no manifest is
    written, unless ``partial``: then the exact samples, ``coverage.json`` and
    the manifest are written, and the folder (by design) never verifies.
    """
    part = parse_shard(shard) if isinstance(shard, str) else shard
    if part is not None and partial:
        raise ShardSpecError("--shard and --partial cannot be combined", hint="drop one of them")
    reader = open_diff(diff)
    source = open_source(original)
    out_path = Path(out)
    ids = source.listing().ids
    _prepare_out(out_path, overwrite=overwrite, sharded=part is not None)
    selected = [
        i for i, e in enumerate(reader.manifest.entries) if part is None or part.contains(e.id)
    ]
    job = _RebuildJob(
        source=source,
        diff=reader.path.resolve(),
        key_on=reader.header.key_on,
        salt=reader.header.benchmark_id,
        out=out_path.resolve(),
    )
    runner = _Runner(job, workers=workers, selected=selected, progress=progress)
    try:
        runner.rebuild(_by_id_tasks(reader, set(ids), selected), Found.BY_ID)
        unresolved = runner.unresolved()
        if unresolved:
            used = runner.used()
            candidates = (s for s in ids if s not in used)
            runner.rebuild(
                _by_content_tasks(reader, source, candidates, unresolved), Found.BY_CONTENT
            )
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after {len(runner.results)} of {runner.total} samples; "
            "no manifest was written",
            hint="run the same command again into an empty --out",
        ) from None
    finally:
        source.close()
    outcomes = _outcomes(reader, runner)
    written = _commit(out_path, reader, outcomes, partial, part)
    return ApplyResult(
        out=out_path,
        manifest=reader.manifest,
        outcomes=tuple(outcomes),
        partial=partial,
        manifest_written=written,
    )
