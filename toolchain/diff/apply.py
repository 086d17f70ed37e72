"""``diff apply``: rebuild a benchmark from the user's original and a ``.bdiff``.

The pipeline (on the run's skeleton, :func:`toolchain.run.session.run_session`)::

    open the container (one handle: header, manifest, index checked)
        → the publisher's signature, over those very manifest bytes (``pubkey``),
          before any original is read
        → the original's split, config and Hub repo against the recorded ones
        → list the original → open --out (prepare, lock)
        → phase A, per entry whose id is in the original: the collecting process
          reads the original and the sealed payload once and ships both to a worker:
          key → AEAD open → decode original → add delta (or run the shipped recipe a
          recipe entry names) → hash → encode PNG → hash → write if exact
        → phase B, for entries not opened by id: fingerprint the rest of the tree,
          and run the same per-entry step on the files that match by content
        → all exact: companions → manifest.json (the carried bytes, written last)
        → otherwise: nothing more (no manifest.json), or with ``partial``
          coverage.json → companions → manifest.json

Every sample is checked against the carried manifest in the worker (pixel
digest and PNG digest) before it is written, and again by the collecting process.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from toolchain._internal.packed import MadeOnAccess
from toolchain.codec.decode import decode
from toolchain.codec.encode import encode_png
from toolchain.diff.codec import PayloadError, recipe_shape, unpack_payload
from toolchain.diff.crypto import fingerprint
from toolchain.diff.format import DiffReader, KeyOn, PayloadKind, SealedSpan
from toolchain.diff.locate import Found, key_material, unseal
from toolchain.diff.reader import check_original, open_diff
from toolchain.errors import DecodeError, Error, ExitCode, InputError, ShardSpecError
from toolchain.model.drift import (
    Cause,
    decoder_versions,
    describe_differences,
    differences_for,
)
from toolchain.model.hashing import Digest, file_digest, pixel_digest, pretty_json
from toolchain.model.layout import COVERAGE_NAME
from toolchain.model.manifest import Manifest, ManifestEntry, entry_index
from toolchain.recipes.shipped import ShippedRecipe, shipped_recipe_of
from toolchain.run.executor import worker_fingerprint
from toolchain.run.journal import JournaledSample
from toolchain.run.outdir import SampleWriter
from toolchain.run.session import Plan, RunKeywords, RunOptions, Session, run_session
from toolchain.run.shard import Shard
from toolchain.source import Source, SourceOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from toolchain.audit.sign import SignatureCheck

__all__ = [
    "ApplyResult",
    "RebuildTask",
    "SampleOutcome",
    "Status",
    "get_benchmark",
]

COVERAGE_FORMAT = "benchmark-regen.coverage/v1"
GENERATOR_HINT = (
    "run `benchmark-regen diff apply` in the pinned container (docker/Dockerfile), whose "
    "library versions match the publisher's"
)
PINNED_HINT = (
    "run `benchmark-regen diff apply` in the pinned container (docker/Dockerfile), "
    "whose decoder versions match the publisher's"
)


class Status(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    ORIGINAL_DIFFERS = "original-differs"
    DECODER_DRIFT = "decoder-drift"
    GENERATOR_DRIFT = "generator-drift"
    """A recipe entry: the recipe, run here, gives other pixels than the publisher's run."""
    ENCODER_DRIFT = "encoder-drift"
    BROKEN = "broken"


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


@dataclass(frozen=True, slots=True)
class _Tally:
    """How many samples ended in each (status, how found), and which were not exact."""

    counts: Mapping[tuple[Status, Found], int]
    failed: Sequence[int]
    """Positions in the outcomes of the samples that are not exact."""

    @classmethod
    def of(cls, verdicts: Iterable[tuple[Status, Found]]) -> _Tally:
        """The tally of each sample's (status, how found), in outcome order."""
        counts: dict[tuple[Status, Found], int] = {}
        failed = []
        for k, key in enumerate(verdicts):
            counts[key] = counts.get(key, 0) + 1
            if key[0] is not Status.OK:
                failed.append(k)
        return cls(counts, failed)


@dataclass(frozen=True, kw_only=True)
class ApplyResult:
    out: Path
    manifest: Manifest
    outcomes: Sequence[SampleOutcome]
    """One per selected sample, in manifest order (made as they are read)."""
    partial: bool
    manifest_written: bool
    signature: SignatureCheck | None = None
    """The publisher's signature, when a public key was given (checked before anything else)."""

    @functools.cached_property
    def _tally(self) -> _Tally:
        # apply's own outcomes count their exact samples without making their outcomes
        if isinstance(self.outcomes, _Outcomes):
            return self.outcomes.tally
        return _Tally.of((o.status, o.found) for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return not self._tally.failed

    @property
    def exit_code(self) -> ExitCode:
        if self.ok:
            return ExitCode.OK
        return ExitCode.PARTIAL if self.partial else ExitCode.CHECK_FAILED

    def failures(self) -> list[SampleOutcome]:
        return [self.outcomes[k] for k in self._tally.failed]

    def found_counts(self) -> dict[str, int]:
        """How the originals were found: every :class:`Found` value, with its count."""
        counts = self._tally.counts.items()
        return {str(f): sum(n for (_, found), n in counts if found is f) for f in Found}

    def status_counts(self) -> dict[str, int]:
        """What happened to the samples: every :class:`Status` value, with its count."""
        counts = self._tally.counts.items()
        return {str(s): sum(n for (status, _), n in counts if status is s) for s in Status}

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
            "signature": None if self.signature is None else self.signature.to_json(),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class RebuildTask:
    """One entry to rebuild from one candidate original: everything the worker needs."""

    sample_id: str
    index: int
    entry: ManifestEntry
    kind: PayloadKind
    sealed: bytes | SealedSpan = field(repr=False)
    """The sealed payload, or where it lies (for a worker on this machine to read)."""
    data: bytes = field(repr=False)
    source_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class _Done:
    status: Status
    pixels: Digest | None = None
    file: Digest | None = None
    local_source: Digest | None = None
    source_file: Digest | None = None
    detail: str = ""
    png: bytes | None = field(default=None, repr=False)
    index: int = -1
    """The entry this verdict is for, and where its original was found (set by the job)."""
    source_id: str | None = None


_EXACT = _Done(status=Status.OK)
"""The verdict kept for every exact sample (the digests were checked as it came)."""


@dataclass(frozen=True)
class _RebuildJob:
    """Rebuild one sample; picklable, sent once to each worker."""

    key_on: KeyOn
    salt: bytes
    writer: SampleWriter | None
    manifest: Manifest
    """The carried manifest without its entries: its source commitments' rule
    (:meth:`~toolchain.model.manifest.Manifest.source_of`), light to send."""
    recipe: ShippedRecipe | None = None
    """The shipped recipe the recipe entries name (set when the diff holds any)."""

    def drifted(self, original: npt.NDArray[np.uint8] | None, e: ManifestEntry) -> Digest | None:
        """This decode's commitment when it differs from the carried one (decoder drift).

        Hashed only on a failure path, to tell drift from damage: a sample whose rebuilt
        pixels match needs no word about its original, so an exact rebuild never hashes it.
        """
        if original is None:
            return None
        local = self.manifest.source_of(original)
        return None if local == e.source else local

    def __call__(self, t: RebuildTask) -> _Done:
        return replace(self._rebuild(t), index=t.index, source_id=t.source_id)

    def _rebuild(self, t: RebuildTask) -> _Done:
        e = t.entry
        sealed = t.sealed if isinstance(t.sealed, bytes) else t.sealed.read()
        got = unseal(
            t.data, key_on=self.key_on, salt=self.salt, sample_id=e.id, kind=t.kind, sealed=sealed
        )
        if got.plaintext is None:
            return _Done(status=Status.ORIGINAL_DIFFERS)
        original = got.pixels
        if original is None and t.kind is not PayloadKind.FULL:
            try:
                original = decode(t.data)
            except DecodeError as err:
                return _Done(
                    status=Status.DECODER_DRIFT, detail=f"your decoder refuses it: {err.message}"
                )
        try:
            if t.kind is PayloadKind.RECIPE:
                assert original is not None and self.recipe is not None
                shape = recipe_shape(got.plaintext)
                target = self.recipe.run(e.id, original)
            else:
                target = unpack_payload(t.kind, got.plaintext, original)
        except (PayloadError, Error) as err:
            if (local_source := self.drifted(original, e)) is not None:
                return _Done(status=Status.DECODER_DRIFT, local_source=local_source)
            detail = err.message if isinstance(err, Error) else str(err)
            return _Done(status=Status.BROKEN, detail=detail)
        pixels = pixel_digest(target)
        if pixels != e.pixels:
            if (local_source := self.drifted(original, e)) is not None:
                return _Done(status=Status.DECODER_DRIFT, pixels=pixels, local_source=local_source)
            if t.kind is PayloadKind.RECIPE:
                made = "x".join(map(str, target.shape))
                want = "x".join(map(str, shape))
                return _Done(
                    status=Status.GENERATOR_DRIFT,
                    pixels=pixels,
                    detail="" if made == want else f"shape {made}, the publisher's {want}",
                )
            return _Done(status=Status.BROKEN, pixels=pixels, detail="rebuilt pixels differ")
        png = encode_png(target)
        file = file_digest(png)
        if file != e.file:
            return _Done(status=Status.ENCODER_DRIFT, pixels=pixels, file=file)
        if self.writer is not None:
            self.writer.write(e.path, png, sample=e.id)
        return _Done(
            status=Status.OK,
            pixels=pixels,
            file=file,
            source_file=file_digest(t.data),
            png=None if self.writer is not None else png,
        )


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
            f"publisher's gave {e.source.short} (publisher: {decoder_versions(publisher)}; "
            f"yours: {decoder_versions(local)}){': ' + done.detail if done.detail else ''}; "
            f"{PINNED_HINT}"
        )
    if done.status is Status.GENERATOR_DRIFT:
        differ = differences_for(Cause.GENERATOR, publisher, local)
        where = (
            f"differs: {describe_differences(differ)}"
            if differ
            else "no generator field of the fingerprints differs"
        )
        return (
            f"sample {e.id}: generator drift: the recipe entry's recipe gives other pixels "
            f"here than the publisher's run ({where})"
            f"{': ' + done.detail if done.detail else ''}; {GENERATOR_HINT}"
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


def _coverage(manifest: Manifest, outcomes: Sequence[SampleOutcome]) -> bytes:
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
    return pretty_json(doc)


Verdict = tuple[_Done, Found, str | None]
"""What happened to one entry, how its original was found, and where (its id there)."""

_BY_ID, _RESUMED = 1, 2
""":class:`_Verdicts`' byte for an exact entry: made from the file of its id, or finished
before a resume."""


class _Verdicts:
    """Each entry's verdict. The usual ones, exact from the file of the same id or finished
    before a resume, cost one byte; any other is kept whole."""

    def __init__(self, entries: Sequence[ManifestEntry]):
        self._entries = entries
        self._exact = bytearray(len(entries))
        self._other: dict[int, Verdict] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def is_exact(self, i: int) -> bool:
        """Exact, from the file of the same id or finished before a resume (the usual
        verdicts, and the cheap ones)."""
        return bool(self._exact[i])

    def get(self, i: int, default: Verdict | None = None) -> Verdict | None:
        if self._exact[i] == _BY_ID:
            return (_EXACT, Found.BY_ID, self._entries[i].id)
        if self._exact[i] == _RESUMED:
            return (_EXACT, Found.RESUMED, None)
        return self._other.get(i, default)

    def set(self, i: int, verdict: Verdict) -> None:
        if not self._exact[i] and i not in self._other:
            self._count += 1
        done, found, where = verdict
        if done is _EXACT and found is Found.BY_ID and where == self._entries[i].id:
            self._exact[i] = _BY_ID
            self._other.pop(i, None)
        elif done is _EXACT and found is Found.RESUMED:
            self._exact[i] = _RESUMED
            self._other.pop(i, None)
        else:
            self._exact[i] = 0
            self._other[i] = verdict


class _Runner:
    """Feeds rebuild tasks to the run, keeps exact samples, keeps one verdict each."""

    def __init__(
        self, reader: DiffReader, session: Session, job: _RebuildJob, *, selected: Sequence[int]
    ):
        self.reader, self.session, self.job = reader, session, job
        self.selected = selected
        self.results = _Verdicts(reader.manifest.entries)

    def task(self, i: int, source_id: str, data: bytes) -> RebuildTask:
        e, record = self.reader.manifest.entries[i], self.reader.records[i]
        self.session.handing_out(e.path, e.id)  # before a worker may write it
        # A worker on this machine reads the payload itself: it crosses no pipe.
        span = self.reader.sealed_span(i) if self.session.shares_files else None
        return RebuildTask(
            sample_id=e.id,
            index=i,
            entry=e,
            kind=record.kind,
            sealed=self.reader.read_sealed(i) if span is None else span,
            data=data,
            source_id=source_id,
        )

    def resumed(self, finished: Mapping[str, JournaledSample]) -> None:
        """The entries the interrupted run finished: journaled as this manifest's entry, and
        their files still those bytes (:meth:`Session.finished`). Exact; not made again."""
        entries = self.reader.manifest.entries
        for i in self.selected:
            e = entries[i]
            prior = finished.get(e.id)
            if prior is not None and _same_output(prior.entry, e):
                self.results.set(i, (_EXACT, Found.RESUMED, None))
        self.session.tick(len(self.results))

    def rebuild(self, tasks: Iterator[RebuildTask], found: Found) -> None:
        self.session.execute(self.job, tasks, functools.partial(self._collect, found=found))

    def _collect(self, done: _Done, *, found: Found) -> None:
        i = done.index
        e = self.reader.manifest.entries[i]
        if done.status is Status.OK and (done.pixels != e.pixels or done.file != e.file):
            done = _Done(
                status=Status.BROKEN,
                detail="a worker reported digests that differ",
                index=i,
                source_id=done.source_id,
            )
        old = self.results.get(i)
        if old is not None and done.status is not Status.OK:
            return  # a content match that fails keeps the by-id verdict
        if done.status is Status.OK:
            assert done.source_file is not None
            self.session.keep(e, done.source_file, done.png)
            verdict = _EXACT  # its digests are the entry's: nothing more to keep
        else:
            verdict = done
        if done.status is Status.ORIGINAL_DIFFERS and found is Found.BY_ID:
            self.results.set(i, (verdict, Found.DIFFERENT, done.source_id))
        else:
            self.results.set(i, (verdict, found, done.source_id))
        self.session.tick(len(self.results))

    def unresolved(self) -> list[int]:
        """Entries not opened by id: absent from the tree, or a different file at their path."""
        r = self.results
        return [
            i
            for i in self.selected
            if not r.is_exact(i) and ((v := r.get(i)) is None or v[1] is Found.DIFFERENT)
        ]


def _same_output(a: ManifestEntry, b: ManifestEntry) -> bool:
    return (a.path, a.pixels, a.file) == (b.path, b.pixels, b.file)


def _by_id(runner: _Runner, source: Source, listed: Sequence[str]) -> Iterator[RebuildTask]:
    """The entries whose id the original lists, rebuilt from the file of that id.

    The listing and the entries are both sorted by id (UTF-8 bytes, which is the code
    points' order), so one merge finds them, keying the index by the listing's own
    strings: no set of the listing, no second copy of every id (an array of the entries'
    indices), and each sample's entry found again by its id (:func:`entry_index`).
    """
    entries = runner.reader.manifest.entries
    wanted = array("I")  # entry indices, ascending: their ids too
    ids = iter(listed)
    sid = next(ids, None)
    for i in runner.selected:
        want = entries[i].id
        while sid is not None and sid < want:
            sid = next(ids, None)
        if sid is None:
            break
        if sid == want and not runner.results.is_exact(i):  # not finished before a resume
            wanted.append(i)
    for k, sample in enumerate(source.iter_samples(entries[i].id for i in wanted)):
        guess = wanted[k] if k < len(wanted) else 0  # a source that keeps our order: each
        yield runner.task(entry_index(entries, sample.id, guess), sample.id, sample.data)


def _by_content(
    runner: _Runner, source: Source, candidates: Sequence[str], unresolved: Sequence[int]
) -> Iterator[RebuildTask]:
    """Fingerprint the candidates once, in source order; rebuild each entry from its match."""
    reader = runner.reader
    key_on = reader.header.key_on
    wanted: dict[bytes, list[int]] = {}
    for i in unresolved:
        wanted.setdefault(reader.records[i].fingerprint, []).append(i)
    salt = reader.header.benchmark_id
    for sample in source.iter_samples(candidates):
        if not wanted:
            return
        try:
            ikm, _ = key_material(sample.data, key_on)
        except DecodeError:
            continue  # undecodable files cannot be anyone's original
        for i in wanted.pop(fingerprint(ikm, key_on=key_on, salt=salt), []):
            yield runner.task(i, sample.id, sample.data)


class _Outcomes(MadeOnAccess[SampleOutcome]):
    """The run's outcomes, one per selected entry, each made when it is read: a run of a
    million samples keeps its verdicts, not a million outcome objects with messages."""

    def __init__(self, reader: DiffReader, runner: _Runner, local: Mapping[str, str]):
        self._entries = reader.manifest.entries
        self._selected = runner.selected
        self._results = runner.results
        self._local = local or worker_fingerprint()
        self._publisher, self._key_on = reader.manifest.fingerprint, reader.header.key_on

    def __len__(self) -> int:
        return len(self._selected)

    @functools.cached_property
    def tally(self) -> _Tally:
        """The counts and the failures, from the verdicts (made once: they are final)."""
        return _Tally.of(self._kind(i) for i in self._selected)

    def _kind(self, i: int) -> tuple[Status, Found]:
        done, found, _ = self._results.get(i) or _MISSING
        return done.status, found

    def _item(self, k: int) -> SampleOutcome:
        i = self._selected[k]
        e = self._entries[i]
        done, found, where = self._results.get(i) or _MISSING
        message = _describe(e, done, self._publisher, self._local, self._key_on)
        return SampleOutcome(
            id=e.id, path=e.path, status=done.status, found=found, source=where, message=message
        )


_MISSING = (_Done(status=Status.MISSING), Found.MISSING, None)


class _Planned(MadeOnAccess[tuple[str, str]]):
    """The selected entries' ``(id, path)`` pairs, made on access (not a second copy)."""

    def __init__(self, entries: Sequence[ManifestEntry], selected: Sequence[int]):
        self._entries, self._selected = entries, selected

    def __len__(self) -> int:
        return len(self._selected)

    def _item(self, k: int) -> tuple[str, str]:
        e = self._entries[self._selected[k]]
        return e.id, e.path


def _commit(
    session: Session, reader: DiffReader, outcomes: _Outcomes, partial: bool, part: Shard | None
) -> bool:
    """Write the folder's companion files, the manifest last; ``True`` if it was written."""
    ok = not outcomes.tally.failed
    if not (ok or partial):
        return False
    m = reader.manifest
    if part is not None:
        # A shard of the carried benchmark: its manifest merges with the others'
        # into exactly the carried manifest (same recipe, fingerprint, provenance).
        shard_manifest = Manifest.build(
            recipe=m.recipe,
            entries=[e for e in m.entries if part.contains(e.id)],
            fingerprint=m.fingerprint,
            encoder=m.encoder,
            columns=m.columns,
            provenance=m.provenance,
            shard=str(part),
            version=m.version,
        )
        session.commit(shard_manifest)
        return True
    present: list[ManifestEntry] | None = None
    if not ok:
        exact = {o.id for o in outcomes if o.status is Status.OK}
        present = [e for e in m.entries if e.id in exact]
    extra = {} if ok else {COVERAGE_NAME: _coverage(m, outcomes)}
    # The carried manifest is canonical (checked when the diff was opened), so it is
    # written again, streamed, from the parsed one: the same bytes.
    session.commit(m, present=present, extra=extra)
    return True


def _entries_recipe(reader: DiffReader) -> ShippedRecipe | None:
    """The shipped recipe the diff's recipe entries name, if it holds any; refused, before
    any original is read, when this release does not ship it (a diff never carries code)."""
    if reader.header.version < 3 or not any(r.kind is PayloadKind.RECIPE for r in reader.records):
        return None
    return shipped_recipe_of(reader.manifest)


def get_benchmark(
    original: str | os.PathLike[str] | Any,
    diff: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    partial: bool = False,
    pubkey: str | os.PathLike[str] | None = None,
    signature: str | os.PathLike[str] | None = None,
    options: RunOptions | None = None,
    **run: Unpack[RunKeywords],
) -> ApplyResult:
    """Rebuild the benchmark carried by ``diff`` from ``original`` into ``out``.

    ``diff``: a ``.bdiff`` file, or a folder holding the diff as a parquet dataset.
    ``original``: as for :func:`toolchain.generate_benchmark`; so are ``options`` or the
    run keywords (:class:`~toolchain.run.session.RunOptions`): ``resume`` continues an
    interrupted apply, keeping each sample the journal vouches for whose file still has
    the manifest's bytes (its original is not read again). The root is the same in either
    ``format``.

    ``result.ok`` only when every sample is bit-exact; then ``out`` holds the
    benchmark with the carried ``manifest.json``. Otherwise no manifest is
    written, unless ``partial``: then the exact samples, ``coverage.json`` and
    the manifest are written, and the folder (by design) never verifies.

    With ``pubkey``, the publisher's signature (``signature``, default
    ``DIFF.sig``) must verify over the manifest the container carries, or
    :class:`~toolchain.errors.SignatureError` is raised before any original is read.
    An original of another split, config or Hub repo than the manifest records
    (``provenance.original``) is refused before it is listed (:func:`check_original`).
    """
    opts = RunOptions.of(options, run, caller="get_benchmark")
    if opts.shard is not None and partial:
        raise ShardSpecError("--shard and --partial cannot be combined", hint="drop one of them")
    if opts.format != "folder" and partial:
        raise InputError("--partial writes the folder format only", hint="drop --format")
    steps = _Apply(diff, opts, out=Path(out), partial=partial, pubkey=pubkey, signature=signature)
    return run_session(steps, original, out, opts)


class _Apply:
    """What ``diff apply`` supplies to the run: the container (checked first), the carried
    manifest as the plan, the rebuild job (by id, then by content), and the commit."""

    command = "diff apply"
    resumable = True
    reader: DiffReader
    ids: Sequence[str]
    """The original's listing."""
    selected: Sequence[int]
    """The entries this run rebuilds (its shard's, if any)."""
    runner: _Runner
    recipe: ShippedRecipe | None
    """The shipped recipe the recipe entries name (:func:`_entries_recipe`)."""

    def __init__(
        self,
        diff: str | os.PathLike[str],
        options: RunOptions,
        *,
        out: Path,
        partial: bool,
        pubkey: str | os.PathLike[str] | None,
        signature: str | os.PathLike[str] | None,
    ):
        self.diff, self.options, self.out, self.partial = diff, options, out, partial
        self.pubkey, self.signature = pubkey, signature
        self.check: SignatureCheck | None = None

    @contextlib.contextmanager
    def inputs(self) -> Iterator[DiffReader]:
        """The container, through one handle, and the publisher's signature over the very
        manifest bytes it carries, before any original is read."""
        with open_diff(self.diff) as reader:
            if self.pubkey is not None:
                default = f"{os.fspath(self.diff)}.sig"
                sig = Path(default if self.signature is None else self.signature)
                from toolchain.audit.sign import check_manifest_signature  # only with a key

                self.check = check_manifest_signature(reader.manifest_bytes, sig, self.pubkey)
            self.reader = reader
            self.recipe = _entries_recipe(reader)
            yield reader

    def source_options(self, given: SourceOptions) -> SourceOptions:
        return given.preferring(self.reader.manifest.provenance.original)

    def plan(self, source: Source) -> Plan:
        manifest = self.reader.manifest
        check_original(manifest.provenance.original, source.original_ref)  # before the listing
        self.ids = source.listing().ids
        entries = manifest.entries
        self.selected = (
            range(len(entries))
            if self.options.shard is None
            else [i for i, e in enumerate(entries) if self.options.selects(e.id)]
        )
        return Plan(
            kind="apply",
            made_from={"root": str(manifest.root)},
            pairs=_Planned(entries, self.selected),
        )

    def produce(
        self, session: Session, source: Source, finished: Mapping[str, JournaledSample]
    ) -> None:
        header, manifest = self.reader.header, self.reader.manifest
        job = _RebuildJob(
            key_on=header.key_on,
            salt=header.benchmark_id,
            writer=session.writer,
            manifest=replace(manifest, entries=()),
            recipe=self.recipe,
        )
        self.runner = runner = _Runner(self.reader, session, job, selected=self.selected)
        runner.resumed(finished)
        runner.rebuild(_by_id(runner, source, self.ids), Found.BY_ID)
        unresolved = runner.unresolved()
        if unresolved:
            # Every file is a candidate, those already used by id too: one image can be
            # the original of two entries (a duplicate in the benchmark).
            runner.rebuild(_by_content(runner, source, self.ids, unresolved), Found.BY_CONTENT)

    def commit(self, session: Session, source: Source) -> ApplyResult:
        outcomes = _Outcomes(self.reader, self.runner, session.fingerprint)
        written = _commit(session, self.reader, outcomes, self.partial, self.options.shard)
        return ApplyResult(
            out=self.out,
            manifest=self.reader.manifest,
            outcomes=outcomes,
            partial=self.partial,
            manifest_written=written,
            signature=self.check,
        )
