"""toolchain.errors: the one exception tree: exit codes, messages, JSON, and errors that keep
their hint, sample and offset when they cross a process boundary."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle

import pytest

from toolchain import errors
from toolchain.errors import (
    ClusterError,
    ContainerError,
    DecodeError,
    DeterminismError,
    DiffFormatError,
    Error,
    ExecutorError,
    ExitCode,
    InputError,
    Interrupted,
    KeyFileError,
    ManifestError,
    OutputError,
    ParamError,
    RecipeError,
    ShardSpecError,
    SignatureError,
    SourceError,
)

EXPECTED = {
    Error: 4, InputError: 3, SourceError: 3, DecodeError: 3, RecipeError: 3, ParamError: 3,
    ManifestError: 3, DiffFormatError: 3, KeyFileError: 3, SignatureError: 3, ShardSpecError: 3,
    OutputError: 4, DeterminismError: 4, ExecutorError: 4, ClusterError: 4, ContainerError: 4,
    Interrupted: 130,
}  # fmt: skip


def test_exit_codes_are_the_documented_ones() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0, "CHECK_FAILED": 1, "USAGE": 2, "BAD_INPUT": 3, "ENVIRONMENT": 4, "PARTIAL": 5,
        "HANGUP": 129, "INTERRUPTED": 130, "TERMINATED": 143,
    }  # fmt: skip


@pytest.mark.parametrize(("cls", "code"), EXPECTED.items(), ids=lambda x: getattr(x, "__name__", x))
def test_every_class_has_its_exit_code(cls: type[Error], code: int) -> None:
    err = cls("m") if cls is not DiffFormatError else cls("m", offset=1)
    assert err.exit_code == code and isinstance(err, Error)


def test_the_tree_is_complete_and_drawn_in_the_docstring() -> None:
    classes = {getattr(errors, n) for n in errors.__all__ if n[0].isupper() and n != "ExitCode"}
    assert classes == set(EXPECTED)
    assert issubclass(ClusterError, ExecutorError) and issubclass(SignatureError, InputError)
    for cls in classes:
        assert cls.__name__ in (errors.__doc__ or ""), cls


def test_diagnostics_say_where_what_and_what_to_do() -> None:
    err = DecodeError("truncated or corrupt", sample="cat/x.jpg", hint="re-download it")
    assert err.diagnostics() == "sample 'cat/x.jpg': truncated or corrupt\n  hint: re-download it"
    assert str(err) == err.diagnostics()
    assert str(OutputError("disk full")) == "disk full"


def test_to_json_has_every_field_with_stable_keys() -> None:
    err = RecipeError("bad shape", sample="a.png", hint="return uint8")
    assert err.to_json() == {
        "exit_code": 3, "hint": "return uint8", "kind": "RecipeError", "message": "bad shape",
        "sample": "a.png",
    }  # fmt: skip
    assert Interrupted("stop").to_json()["exit_code"] == 130
    assert OutputError("x").to_json() == {
        "exit_code": 4, "hint": None, "kind": "OutputError", "message": "x", "sample": None,
    }  # fmt: skip


def test_diff_format_errors_name_the_entry_and_offset() -> None:
    err = DiffFormatError("bad tag", entry="a.png", offset=104, hint="re-download the diff")
    assert err.message == "diff container, entry 'a.png', offset 104: bad tag"
    assert (err.entry, err.offset) == ("a.png", 104)
    assert DiffFormatError("truncated").message == "diff container: truncated"


ERRS = [
    DecodeError("not an image", sample="x/y.png", hint="check it"),
    DiffFormatError("bad tag", entry="a.png", offset=7, hint="re-download"),
    ClusterError("scheduler silent", hint="start one"),
    Interrupted("interrupted"),
]


@pytest.mark.parametrize("err", ERRS, ids=lambda e: type(e).__name__)
def test_pickling_keeps_everything(err: Error) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and back.__dict__ == err.__dict__
    assert str(back) == str(err) and back.args == (err.message,)


def _raise(i: int) -> None:
    raise ERRS[i]


def test_errors_raised_in_another_process_arrive_whole() -> None:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        for i, sent in enumerate(ERRS):
            with pytest.raises(type(sent)) as got:
                pool.submit(_raise, i).result(timeout=60)
            assert got.value.to_json() == sent.to_json()
            assert getattr(got.value, "offset", None) == getattr(sent, "offset", None)


def test_os_error_text_is_what_the_system_said() -> None:
    assert errors.os_error_text(FileNotFoundError(2, "No such file or directory")) == (
        "No such file or directory"
    )
    assert errors.os_error_text(OSError("no errno here")) == "no errno here"
