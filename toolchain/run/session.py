"""One run into a benchmark folder, shared by ``generate`` and ``diff apply``: how it goes
(:class:`RunOptions`) and its steps, in order (:func:`run_session`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar

from toolchain._internal.progress import Progress
from toolchain.errors import DeterminismError, InputError, Interrupted
from toolchain.model.hashing import Digest, file_digest
from toolchain.model.layout import FORMATS
from toolchain.model.manifest import Manifest, ManifestEntry
from toolchain.run.executor import Executor, check_executor, make_executor
from toolchain.run.fingerprint import fingerprint_digest
from toolchain.run.journal import JournaledSample, plan_digest
from toolchain.run.outdir import OutDir, SampleWriter, open_out, read_output
from toolchain.run.shard import Shard, parse_shard
from toolchain.source import Source, SourceOptions

__all__ = ["Plan", "RunKeywords", "RunOptions", "RunSteps", "Session", "run_session"]

T = TypeVar("T")
R = TypeVar("R")
Out = TypeVar("Out")
Out_co = TypeVar("Out_co", covariant=True)


class RunKeywords(TypedDict, total=False):
    """The fields of :class:`RunOptions` as keywords of ``generate_benchmark`` and
    ``get_benchmark`` (there ``shard`` may also be ``"I/N"``, ``source_options`` ``None``)."""

    workers: int
    executor: str
    scheduler: str | None
    insecure: bool
    recheck: float | None
    certs: str | os.PathLike[str] | None
    shard: Shard | str | None
    overwrite: bool
    resume: bool
    format: str
    source_options: SourceOptions | None
    progress: Progress | None


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How one run goes; checked when made (an unknown format is an
    :class:`~toolchain.errors.InputError`, a bad executor or worker count a ``ValueError``)."""

    workers: int = 1
    """Worker processes; the output is the same for every count."""
    executor: str = "local"
    """``local`` (pinned processes on this machine) or ``dask``."""
    scheduler: str | None = None
    """The Dask scheduler's address (``executor="dask"``; none: a local cluster)."""
    insecure: bool = False
    """Allow plain ``tcp://`` to a Dask scheduler on another host (unauthenticated)."""
    recheck: float | None = None
    """The share of Dask tasks recomputed here (none: 0.05 with ``scheduler``, else 0)."""
    certs: str | os.PathLike[str] | None = None
    """The ``cluster certs`` folder holding this client's Dask TLS certificate."""
    shard: Shard | None = None
    """Make only this shard's samples, and its shard manifest."""
    overwrite: bool = False
    """Replace a benchmark, or an interrupted run, already in ``out``."""
    resume: bool = False
    """Continue the interrupted run in ``out`` (``generate`` only)."""
    format: str = "folder"
    """``folder`` (one PNG per sample) or ``parquet`` (Hugging Face shards of the same PNGs)."""
    source_options: SourceOptions = field(default_factory=SourceOptions)
    """How to read the original (split, image column, carried columns)."""
    progress: Progress | None = None
    """Called as ``progress(done, total)`` as samples finish."""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InputError(
                f"unknown output format {self.format!r}", hint=f"use one of: {', '.join(FORMATS)}"
            )
        check_executor(self.executor, workers=self.workers, scheduler=self.scheduler)

    @classmethod
    def of(cls, options: RunOptions | None, keywords: RunKeywords, *, caller: str) -> RunOptions:
        """``options``, or the options ``keywords`` name: never both (a ``TypeError`` naming
        ``caller``, as for any keyword it does not take)."""
        unknown = sorted(set(keywords) - RunKeywords.__optional_keys__)
        if unknown:
            raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
        if options is not None:
            if keywords:
                raise TypeError(
                    f"{caller}() takes options= or the run keywords, not both "
                    f"(got options= and {', '.join(sorted(keywords))})"
                )
            return options
        fields: dict[str, Any] = dict(keywords)
        if isinstance(shard := fields.get("shard"), str):
            fields["shard"] = parse_shard(shard)
        if "source_options" in fields and fields["source_options"] is None:
            del fields["source_options"]
        return cls(**fields)

    def selects(self, sample_id: str) -> bool:
        """Is this sample the run's to make (in its shard, when it has one)?"""
        return self.shard is None or self.shard.contains(sample_id)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one run makes: its ``(sample id, output path)`` pairs, and what from."""

    kind: str
    """The journal's name for the run: ``generate`` or ``apply``."""
    made_from: Mapping[str, Any]
    """``{"recipe": its identity}`` or ``{"root": the carried root}``."""
    pairs: Sequence[tuple[str, str]]

    def header(self, shard: Shard | None) -> dict[str, Any]:
        """The journal's header: a resumed run must be this very run."""
        return {
            "kind": self.kind,
            "plan": plan_digest(self.pairs),
            "samples": len(self.pairs),
            "shard": str(shard or ""),
            **self.made_from,
        }


class Session:
    """A run in progress: its prepared, locked ``out``, its executor and its journal. The
    steps hand samples out, keep results and report progress through it."""

    def __init__(
        self,
        *,
        outdir: OutDir,
        pool: Executor,
        options: RunOptions,
        total: int,
        split: str,
        resumable: bool,
    ):
        self.options = options
        self.total = total
        self.done = 0
        """Samples with a result so far (the last :meth:`tick`)."""
        self.fingerprint: Mapping[str, str] = {}
        """The runtime fingerprint every worker shares (once a pass has started)."""
        self.notes: list[str] = []
        """What the user should know of the run: journal records not trusted on resume, ..."""
        self._outdir = outdir
        self._pool = pool
        self._split = split
        self._resumable = resumable

    @property
    def shares_files(self) -> bool:
        """Whether the workers see this machine's files (then they write the samples)."""
        return self._pool.shares_files

    @property
    def writer(self) -> SampleWriter | None:
        """For a job's workers: the writer when they see our files, else ``None`` (they
        return the bytes, and :meth:`keep` writes them)."""
        return self._outdir.writer if self._pool.shares_files else None

    def handing_out(self, path: str, sample_id: str) -> None:
        """Journal the file a worker may write, before its task is handed out."""
        self._outdir.journal.note_writing(path, sample_id)

    def execute(
        self, job: Callable[[T], R], tasks: Iterable[T], collect: Callable[[R], None]
    ) -> None:
        """One pass of the executor: ``collect`` each result, in task order."""
        journal = self._outdir.journal
        previous = journal.recorded_fingerprint() if self._resumable else None
        with self._pool.run(job, tasks) as run:
            if self._resumable:  # what a resumed run finished was made in this environment
                digest = fingerprint_digest(run.fingerprint)
                if previous is not None and previous != digest:
                    raise DeterminismError(
                        "the interrupted run was made in a different environment "
                        f"(fingerprint {previous}, now {digest})",
                        hint="resume in the same pinned environment, or --overwrite to start over",
                    )
                journal.note_fingerprint(digest)
            self.fingerprint = run.fingerprint
            for result in run:
                collect(result)

    def keep(self, entry: ManifestEntry, source_file: Digest, png: bytes | None = None) -> None:
        """A finished sample: its file written (``png``: the worker returned it), then journaled."""
        if png is not None:
            self._outdir.writer.write(entry.path, png, sample=entry.id)
        self._outdir.journal.append(entry, source_file)

    def tick(self, done: int) -> None:
        """``done`` of the run's samples have a result."""
        self.done = done
        if self.options.progress:
            self.options.progress(done, self.total)

    def commit(
        self,
        manifest: Manifest,
        *,
        present: Sequence[ManifestEntry] | None = None,
        extra: Mapping[str, bytes] | None = None,
    ) -> None:
        """Write the manifest, last: a whole run's with its companion files in the run's
        format (``present``, ``extra``: see :meth:`OutDir.commit`), a shard's alone."""
        if self.options.shard is not None:
            self._outdir.commit(manifest)
        else:
            fmt, split = self.options.format, self._split
            self._outdir.commit(manifest, format=fmt, split=split, present=present, extra=extra)

    @contextlib.contextmanager
    def journaled(self) -> Iterator[None]:
        """The journal open while samples are made; Ctrl-C leaves no manifest, and a folder
        to resume (or, for a run that cannot resume, to redo with ``--overwrite``)."""
        journal = self._outdir.journal
        journal.open(keyed=self._resumable)
        self.notes += journal.notes
        try:
            yield
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted after {self.done} of {self.total} samples; no manifest was written",
                hint="run the same command again with --resume to finish the rest"
                if self._resumable
                else "run the same command again with --overwrite to start over",
            ) from None
        finally:
            journal.close()

    def finished(self, pairs: Sequence[tuple[str, str]]) -> dict[str, JournaledSample]:
        """Journaled samples of this run that the journal vouches for (their records verify
        under the run's key) and whose output file still has the journaled bytes; what is
        not trusted is noted, and made again."""
        outdir = self._outdir
        planned = dict(pairs)
        done: dict[str, JournaledSample] = {}
        trusted = outdir.journal.trusted()
        self.notes += trusted.notes
        for s in trusted.samples.values():
            if planned.get(s.entry.id) != s.entry.path:
                continue
            try:
                data = read_output(outdir.root, s.entry.path)
            except OSError:
                continue
            if file_digest(data) == s.entry.file:
                done[s.entry.id] = s
        return done


class RunSteps(Protocol[Out_co]):
    """What a command supplies to :func:`run_session`, which calls these in this order."""

    @property
    def command(self) -> str:
        """The command's name, for messages (``diff apply``)."""

    @property
    def resumable(self) -> bool:
        """Whether an interrupted run can be resumed (else it starts over: ``overwrite``)."""

    def inputs(self) -> contextlib.AbstractContextManager[object]:
        """Open what the run reads besides the original (apply: the diff), checked."""

    def source_options(self, given: SourceOptions) -> SourceOptions:
        """How the original is opened, once :meth:`inputs` are open (apply: the split and
        config the diff records, where the dataset has several and none is given)."""

    def plan(self, source: Source) -> Plan:
        """List the original; what this run makes."""

    def produce(
        self, session: Session, source: Source, finished: Mapping[str, JournaledSample]
    ) -> None:
        """Make every planned sample through :meth:`Session.execute`; a resumed run's
        ``finished`` samples are re-checked against the original, not made again (their
        carried columns are the original's, never the journal's)."""

    def commit(self, session: Session, source: Source) -> Out_co:
        """Write the manifest (:meth:`Session.commit`) when the run earned one; the result."""


def run_session(
    steps: RunSteps[Out],
    original: str | os.PathLike[str] | Any,
    out: str | os.PathLike[str],
    options: RunOptions,
) -> Out:
    """Run ``steps`` from ``original`` into ``out``: start the executor → open the inputs
    and the original → plan → prepare and lock ``out`` → produce, journaled → commit."""
    if options.resume and not steps.resumable:
        raise InputError(
            f"{steps.command} cannot resume an interrupted run",
            hint="run it again with --overwrite to start over",
        )
    executor = make_executor(
        options.executor,
        workers=options.workers,
        scheduler=options.scheduler,
        insecure=options.insecure,
        recheck=options.recheck,
        certs=options.certs,
    )
    with executor as pool:
        pool.prestart()  # the workers import while the inputs are opened and listed
        with steps.inputs(), steps.source_options(options.source_options).open(original) as source:
            plan = steps.plan(source)
            with open_out(
                out,
                header=plan.header(options.shard),
                slug=options.shard.slug if options.shard else "all",
                original=_path_of(original),
                overwrite=options.overwrite,
                resume=options.resume,
                plan=plan.pairs,
            ) as outdir:
                session = Session(
                    outdir=outdir,
                    pool=pool,
                    options=options,
                    total=len(plan.pairs),
                    split=source.split_name,
                    resumable=steps.resumable,
                )
                finished = session.finished(plan.pairs) if options.resume else {}
                with session.journaled():
                    steps.produce(session, source, finished)
                del finished  # a resumed run's record of a million samples goes before the manifest
                return steps.commit(session, source)


def _path_of(original: object) -> Path | None:
    """The original's path, for the ``out`` overlap check (a ``Dataset`` object has none)."""
    return Path(original) if isinstance(original, str | os.PathLike) else None
