"""The one exception tree: each error carries its user-facing text and its exit code.

::

    Error                              exit 4 unless overridden
    ├── InputError                     exit 3: something we were given is bad
    │   ├── SourceError                the original tree / tar cannot be read safely
    │   ├── DecodeError                one original sample cannot be decoded
    │   ├── RecipeError                the recipe cannot be loaded, or misbehaves
    │   ├── ParamError                 a --param value is malformed or unknown
    │   ├── ManifestError              a manifest is malformed or inconsistent
    │   ├── DiffFormatError            a .bdiff container is corrupt or truncated
    │   ├── KeyFileError               a signing / public key file is unusable
    │   ├── SignatureError             a manifest signature is missing, malformed or wrong
    │   └── ShardSpecError             a --shard value is malformed
    ├── OutputError                    exit 4: the output cannot be written
    ├── DeterminismError               exit 4: the pinned environment is not in force
    ├── ExecutorError                  exit 4: a worker died or could not start
    │   └── ClusterError                       Slurm or a Dask scheduler is missing, silent,
    │                                          or a job on it failed or timed out
    ├── ContainerError                 exit 4: the Docker engine or image failed
    └── Interrupted                    exit 130: Ctrl-C (129 SIGHUP, 143 SIGTERM)

A check that *fails* (not bit-exact) is a result with ``ok == False`` (exit 1), not an error.
"""

from __future__ import annotations

import enum

__all__ = [
    "ClusterError",
    "ContainerError",
    "DecodeError",
    "DeterminismError",
    "DiffFormatError",
    "Error",
    "ExecutorError",
    "ExitCode",
    "InputError",
    "Interrupted",
    "KeyFileError",
    "ManifestError",
    "OutputError",
    "ParamError",
    "RecipeError",
    "ShardSpecError",
    "SignatureError",
    "SourceError",
    "os_error_text",
]


class ExitCode(enum.IntEnum):
    """Exit codes of the ``benchmark-regen`` CLI (documented in the README)."""

    OK = 0
    CHECK_FAILED = 1
    """A check ran and failed: the output is not bit-exact, or manifests differ."""
    USAGE = 2
    """Bad command-line usage (Click's own code)."""
    BAD_INPUT = 3
    """An input (original, recipe, manifest, diff, parameter) is malformed."""
    ENVIRONMENT = 4
    """The environment failed us: unwritable output, non-pinned worker, Docker."""
    PARTIAL = 5
    """``diff apply --partial`` wrote only some samples."""
    HANGUP = 129
    """Interrupted by SIGHUP (the terminal closed), as by Ctrl-C; the run can be resumed."""
    INTERRUPTED = 130
    """Interrupted by the user (Ctrl-C); the run can be resumed."""
    TERMINATED = 143
    """Interrupted by SIGTERM (``scancel``, ``timeout``, ``docker stop``), as by Ctrl-C."""


class Error(Exception):
    """Base class: every deliberate failure of benchmark-regen."""

    exit_code: ExitCode = ExitCode.ENVIRONMENT

    def __init__(self, message: str, *, hint: str | None = None, sample: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.sample = sample

    def __reduce__(self) -> tuple[object, ...]:
        # Keep hint/sample/offset when an error crosses a process boundary.
        return (_restore, (type(self), self.__dict__.copy()))

    def diagnostics(self) -> str:
        """The full user-facing text: what, where, and what to do."""
        where = f"sample {self.sample!r}: " if self.sample else ""
        text = f"{where}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.diagnostics()

    def to_json(self) -> dict[str, object]:
        """The error for ``--json`` output: kind, message, hint, sample, exit code."""
        return {
            "exit_code": int(self.exit_code),
            "hint": self.hint,
            "kind": type(self).__name__,
            "message": self.message,
            "sample": self.sample,
        }


def os_error_text(e: OSError) -> str:
    """What the operating system said, for a message: its text, else the whole error."""
    return e.strerror or str(e)


def _restore(cls: type[Error], state: dict[str, object]) -> Error:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class InputError(Error):
    """Something the user gave us is malformed."""

    exit_code = ExitCode.BAD_INPUT


class SourceError(InputError):
    """The original dataset (folder or tar) cannot be listed or read safely."""


class DecodeError(InputError):
    """An original sample is not a decodable JPEG, PNG or WebP image."""


class RecipeError(InputError):
    """A recipe cannot be found or loaded, or it returned something invalid."""


class ParamError(InputError):
    """A ``--param`` value is malformed, unknown, or of the wrong type."""


class ManifestError(InputError):
    """A manifest is malformed, from an unknown format version, or inconsistent."""


class DiffFormatError(InputError):
    """A ``.bdiff`` container is corrupt, truncated, or of an unknown version."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        entry: str | None = None,
        hint: str | None = None,
    ):
        where = []
        if entry is not None:
            where.append(f"entry {entry!r}")
        if offset is not None:
            where.append(f"offset {offset}")
        prefix = f"diff container, {', '.join(where)}: " if where else "diff container: "
        super().__init__(prefix + message, hint=hint)
        self.offset = offset
        self.entry = entry


class KeyFileError(InputError):
    """A key file is missing, unreadable, or not an Ed25519 key of the expected kind."""


class SignatureError(InputError):
    """A manifest signature is missing, malformed, made by another key, or does not match.

    ``verify --pubkey`` reports it as a failed check (exit 1); commands that must
    refuse to act on an unsigned input (``diff apply --pubkey``) let it propagate.
    """


class ShardSpecError(InputError):
    """A ``--shard I/N`` value is malformed."""


class OutputError(Error):
    """The output folder cannot be written (read-only, full disk, not empty)."""


class DeterminismError(Error):
    """A process that computes pixels is not running in the pinned environment."""


class ExecutorError(Error):
    """A worker process died or could not start, or a cluster scheduler did not answer."""


class ContainerError(Error):
    """The Docker engine is unreachable, or an image build or run failed."""


class ClusterError(ExecutorError):
    """A cluster engine (Slurm, a Dask scheduler) is not installed, does not answer,
    or a job on it failed or ran out of time. The message names the engine."""


class Interrupted(Error):
    """The user interrupted the run; finished work is kept and can be resumed."""

    exit_code = ExitCode.INTERRUPTED
