"""What every command shares: options defined once (factories where only the help text
differs), output helpers, the container hop. It imports no command module."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from toolchain._internal.progress import Progress
from toolchain._internal.terminal import printable
from toolchain.model.hashing import pretty_json

__all__ = [
    "DEFAULT_IMAGE",
    "EPILOG_EXIT_CODES",
    "JSON_REQUESTED",
    "certs_option",
    "container_argv",
    "echo",
    "emit_json",
    "entries_option",
    "executor_option",
    "format_option",
    "image_option",
    "in_container_option",
    "insecure_option",
    "json_option",
    "key_on_option",
    "original_option",
    "out_option",
    "progress",
    "quiet_option",
    "recheck_option",
    "resume_option",
    "run_in_pinned_image",
    "scheduler_option",
    "shard_option",
    "style",
    "workers_option",
]

F = TypeVar("F", bound=Callable[..., Any])

EPILOG_EXIT_CODES = (
    "Exit codes: 0 ok, 1 check failed (not bit-exact), 2 usage error, 3 bad input, "
    "4 environment error, 5 partial result, 130 interrupted (129 SIGHUP, 143 SIGTERM)."
)
DEFAULT_IMAGE = "benchmark-regen:latest"
"""The image ``--in-container`` runs and job files name, unless ``--image`` says otherwise."""


# -- output ------------------------------------------------------------------------------


def color() -> bool | None:
    """Honour NO_COLOR (https://no-color.org): any non-empty value disables colour."""
    return False if os.environ.get("NO_COLOR") else None


_ESC = f"\x00{secrets.token_hex(16)}\x00"
"""ESC in :func:`style`'s output until :func:`echo` prints it: unguessable, so no text
from elsewhere can pass an escape sequence off as one of ours."""


def echo(text: str = "", *, err: bool = False) -> None:
    """Print a line. Ids, names and fingerprints come from other people's files: every
    control character is shown escaped (:func:`printable`), but :func:`style`'s codes."""
    shown = "\x1b".join(printable(part) for part in text.split(_ESC))
    click.echo(shown, err=err, color=color())


def style(text: str, **kw: Any) -> str:
    """``text``, escaped, in colour (click.style's ``kw``) for :func:`echo`; plain with NO_COLOR."""
    if os.environ.get("NO_COLOR"):
        return printable(text)
    return click.style(printable(text), **kw).replace("\x1b", _ESC)


def emit_json(doc: object) -> None:
    click.echo(pretty_json(doc).decode("ascii"), nl=False)


def _hms(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _rate(per_second: float) -> str:
    return f"{per_second:.1f}/s" if per_second < 100 else f"{per_second:.0f}/s"


class _Bar:
    """One progress line on a terminal: count, rate, elapsed time and ETA. A ticker
    thread redraws it every ``interval`` seconds, so a stall shows as time passing."""

    def __init__(
        self,
        label: str,
        stream: TextIO,
        *,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._label, self._stream, self._interval, self._clock = label, stream, interval, clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name=f"{label} progress", daemon=True)
        self._start = clock()
        self._done = self._total = 0
        self._shown = False  # nothing is drawn before the first update (the total is unknown)
        self._broken = False  # the stream refused a write: draw no more
        self._drawn_at = -1.0
        self._width = 0  # of the line on screen, to blank what a shorter one leaves

    def __enter__(self) -> _Bar:
        self._ticker.start()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._stop.set()
        self._ticker.join()
        with self._lock:
            if self._shown:
                self._write(self.summary(failed=exc_type is not None), final=True)

    def update(self, done: int, total: int) -> None:
        """The :data:`~toolchain._internal.progress.Progress` callback."""
        with self._lock:
            self._done, self._total, self._shown = done, total, True
            if done >= total or self._clock() - self._drawn_at >= 0.1:  # at most 10 a second
                self._drawn_at = self._clock()
                self._write(self.line())

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                if self._shown:
                    self._drawn_at = self._clock()
                    self._write(self.line())

    def _elapsed(self) -> float:
        return max(self._clock() - self._start, 1e-9)

    def line(self) -> str:
        """The progress line as drawn now: the ETA assumes the average rate so far."""
        done, total, elapsed = self._done, self._total, self._elapsed()
        eta = "-:--" if done <= 0 else _hms(elapsed * max(total - done, 0) / done)
        counts = f"{done:>{len(str(total))}}/{total}" + (
            f" {100 * done // total:3d}%" if total else ""
        )
        tail = f"  {counts}  {_rate(done / elapsed)}  {_hms(elapsed)} elapsed  eta {eta}"
        columns = self._columns()
        cells = min(30, columns - len(self._label) - len(tail) - 5)
        filled = min(cells, cells * done // total) if total else 0
        bar = f"  [{'#' * filled}{'-' * (cells - filled)}]" if cells >= 10 else ""
        return (self._label + bar + tail)[: columns - 1]

    def summary(self, *, failed: bool) -> str:
        """The last line: how many samples, how long, how fast."""
        done, total, elapsed = self._done, self._total, self._elapsed()
        took = f"{elapsed:.1f} s" if elapsed < 60 else _hms(elapsed)
        if failed:
            return f"{self._label}: stopped after {done} of {total} samples, {took}"
        count = f"{done} samples" if done == total else f"{done} of {total} samples"
        return f"{self._label}: {count} in {took} ({_rate(done / elapsed)})"

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self._stream.fileno()).columns or 80
        except (OSError, ValueError):  # a stream without a terminal size
            return 80

    def _write(self, text: str, *, final: bool = False) -> None:
        """Over the line on screen, in plain text: no escape sequence, so NO_COLOR holds."""
        if self._broken:
            return
        pad = " " * max(0, self._width - len(text))
        self._width = 0 if final else len(text)
        try:
            self._stream.write("\r" + text + pad + ("\n" if final else ""))
            self._stream.flush()
        except (OSError, ValueError):  # the terminal went away: the work goes on
            self._broken = True


@contextlib.contextmanager
def progress(label: str, *, quiet: bool) -> Iterator[Progress | None]:
    """A progress line on stderr when it is a terminal (count, rate, elapsed, ETA, and a
    last line with the duration); nothing when ``quiet`` or not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    with _Bar(label, sys.stderr) as bar:
        yield bar.update


# -- options, defined once ---------------------------------------------------------------

JSON_REQUESTED = "benchmark-regen.json"
"""``ctx.meta`` key: the command was given ``--json``, so errors are reported as JSON too."""


def _note_json(ctx: click.Context, _p: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_REQUESTED] = True
    return value


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_note_json,
    help='Print a JSON report (errors too, as {"error": {...}} on stdout).',
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
workers_option = click.option(
    "--workers",
    type=click.IntRange(1, 512),
    default=1,
    show_default=True,
    help="Worker processes. The output is identical for every value.",
)
_ORIGINAL = click.option(
    "--original",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Your copy of the original: a folder of images, a .tar of one, or a Hugging Face "
    "dataset (a folder of parquet shards, or a save_to_disk folder).",
)
_SOURCE = [
    click.option("--split", default=None, help="Hugging Face dataset: the split to read."),
    click.option("--config", default=None, help="Hugging Face parquet folder: the config."),
    click.option(
        "--image-column",
        default=None,
        help="Hugging Face dataset: the image column (default: found from the features).",
    ),
    click.option(
        "--columns",
        default=None,
        metavar="A,B | -A,-B",
        help="Columns to carry into the benchmark (labels, ...): pick (label,caption) or drop "
        "(-caption); '' carries none. Default: every label and scalar column.",
    ),
    click.option(
        "--ids",
        type=click.Choice(["auto", "path", "row"]),
        default="auto",
        show_default=True,
        help="Hugging Face dataset: sample ids from image paths, or <split>/<row index>.",
    ),
]


def original_option(fn: F) -> F:
    """``--original`` and how to read it; the command receives ``original`` and
    ``source_options`` (a :class:`toolchain.source.SourceOptions`)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from toolchain.source import SourceOptions

        kwargs["source_options"] = SourceOptions(
            split=kwargs.pop("split"),
            config=kwargs.pop("config"),
            image_column=kwargs.pop("image_column"),
            columns=kwargs.pop("columns"),
            ids=kwargs.pop("ids"),
        )
        return fn(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed([_ORIGINAL, *_SOURCE]):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


format_option = click.option(
    "--format",
    "out_format",
    type=click.Choice(["folder", "parquet"]),
    default="folder",
    show_default=True,
    help="folder: one PNG per sample (+ metadata.jsonl); parquet: Hugging Face parquet shards "
    "of the same PNGs. The root hash is the same.",
)


def out_option(help: str, *, required: bool = True, dir_okay: bool = True) -> Callable[[F], F]:
    """``--out``: every command that writes takes it; only the help text differs."""
    return click.option(
        "--out",
        required=required,
        type=click.Path(dir_okay=dir_okay, path_type=Path),
        help=help,
    )


key_on_option = click.option(
    "--key-on",
    type=click.Choice(["file", "pixels"]),
    default="file",
    show_default=True,
    help="Derive the diff's keys from the original's file bytes, or its decoded pixels.",
)
entries_option = click.option(
    "--entries",
    type=click.Choice(["auto", "delta", "recipe"]),  # toolchain.diff.create.ENTRY_CHOICES
    default="auto",
    show_default=True,
    help="auto: a recipe entry (no pixels, a few bytes) for each sample the benchmark's "
    "built-in recipe reproduces here, a delta for the others; delta: deltas only; "
    "recipe: recipe entries only, or fail naming the samples that do not reproduce.",
)


def _shard_spec(_ctx: click.Context, _p: click.Parameter, value: str | None) -> object:
    from toolchain.errors import ShardSpecError
    from toolchain.run.shard import parse_shard

    if value is None:
        return None
    try:
        return parse_shard(value)
    except ShardSpecError as e:
        raise click.BadParameter(e.diagnostics()) from None


shard_option = click.option(
    "--shard",
    metavar="I/N",
    callback=_shard_spec,
    help="Process only shard I of N (0-based, by sample id); writes a shard manifest.",
)
resume_option = click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run in --out, skipping finished samples.",
)
executor_option = click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: pinned process pool. dask: a Dask cluster (a LocalCluster without --scheduler).",
)
scheduler_option = click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Dask scheduler address, e.g. tls://head:8786 (tls:// when no scheme is given).",
)
certs_option = click.option(
    "--certs",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dask TLS: the `cluster certs` folder with ca.pem, client.pem and client.key "
    "(default: Dask's distributed.comm.tls settings).",
)
insecure_option = click.option(
    "--insecure",
    is_flag=True,
    help="Allow a plain tcp:// --scheduler on another host: unauthenticated and unencrypted.",
)
recheck_option = click.option(
    "--recheck",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    metavar="FRACTION",
    help="Recompute this share of the Dask tasks here, chosen in secret, and stop if a "
    "worker's result differs (default: 0.05 with --scheduler, at least one task; 0 off).",
)
in_container_option = click.option(
    "--in-container",
    is_flag=True,
    help="Run this command inside the pinned image (docker, --network none, read-only original).",
)
image_option = click.option(
    "--image",
    "image_tag",
    default=DEFAULT_IMAGE,
    show_default=True,
    help="The pinned image to run (use its digest in production).",
)


# -- the container hop -------------------------------------------------------------------


def container_argv(ctx: click.Context, *, drop: tuple[str, ...]) -> list[str]:
    """Rebuild this command's argv (host paths) without the container-only options."""
    argv: list[str] = [ctx.info_name or ""]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in drop:
            continue
        value = ctx.params.get(param.name or "")
        flag = param.opts[0]
        if param.is_flag:
            if value:
                argv.append(flag)
        elif param.multiple:
            for v in value or ():
                argv += [flag, str(v)]
        elif value is not None and value != "":
            argv += [flag, str(value)]
    return argv


def run_in_pinned_image(
    command: Sequence[str],
    *,
    original: Path | None,
    out: Path | None,
    diff: Path | None = None,
    image: str = DEFAULT_IMAGE,
) -> int:
    """Run ``benchmark-regen *command`` in the pinned image; return its exit code.

    For ``generate --in-container`` and ``diff apply --in-container``: the
    caller passes its own argv (host paths, without ``--in-container``); paths
    under ``original``/``out``/``diff`` are rewritten to /original, /out, /diff.
    """
    from toolchain.container.run import run_in_container

    return run_in_container(
        list(command),
        image=image,
        original=original,
        out=out,
        diff=diff,
        stream=click.echo,
        stream_err=lambda line: click.echo(line, err=True),
    )
