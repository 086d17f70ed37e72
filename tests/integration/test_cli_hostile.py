"""CLI over hostile inputs: a documented exit code and a message, never a traceback."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from unittest import mock

import pytest
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli import generate_args, no_traceback, run_cli
from tests.hostile import HOSTILE, mutations, no_hang
from tests.unit.test_hostile_manifest import GOOD
from tests.unit.test_hostile_recipes import _guarded_import
from tests.unit.test_hostile_sign import ENVELOPE, KEY
from tests.unit.test_hostile_tar import SEED_TAR, _tar
from toolchain.errors import ExitCode

CLI_EXAMPLES = settings(HOSTILE, max_examples=100)
"""Fewer examples than the library properties: each one runs a whole command."""


def _run(*args: str | Path) -> Result:
    with no_hang():
        return no_traceback(run_cli(*args))


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


@CLI_EXAMPLES
@given(mutations(GOOD))
def test_verify_hostile_manifest(bench: Path, data: bytes) -> None:
    (bench / "manifest.json").write_bytes(data)
    r = _run("verify", bench, "-q")
    assert r.exit_code in (ExitCode.CHECK_FAILED, ExitCode.BAD_INPUT)
    if r.exit_code == ExitCode.BAD_INPUT:
        assert r.output.startswith("error: ")


@CLI_EXAMPLES
@given(mutations(ENVELOPE))
def test_verify_pubkey_hostile_signature(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    from cryptography.hazmat.primitives import serialization

    d = tmp_path_factory.mktemp("sig")
    (d / "manifest.json").write_bytes(GOOD)
    (d / "manifest.sig").write_bytes(data)
    (d / "k.pub").write_bytes(
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    r = _run("verify", d, "--pubkey", d / "k.pub", "-q")
    # The files are missing either way, so the verdict always fails; the message says why.
    assert r.exit_code == ExitCode.CHECK_FAILED
    assert "signature: " in r.output


@CLI_EXAMPLES
@given(mutations(SEED_TAR))
def test_generate_from_hostile_tar(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    d = tmp_path_factory.mktemp("tar")
    (d / "o.tar").write_bytes(data)
    r = _run(*generate_args(d / "o.tar", d / "out", quiet=True))
    assert r.exit_code in (ExitCode.OK, ExitCode.BAD_INPUT), r.output
    if r.exit_code != ExitCode.OK:
        assert not (d / "out" / "manifest.json").exists()
    shutil.rmtree(d)


@pytest.mark.parametrize(
    ("name", "words"),
    [("../evil.png", "'..' path component"), ("/abs.png", "absolute path"),
     ("x\\y.png", "backslash")],
)  # fmt: skip
def test_generate_refuses_unsafe_tar_member(tmp_path: Path, name: str, words: str) -> None:
    (tmp_path / "o.tar").write_bytes(_tar([("ok.png", "file", ""), (name, "file", "")]))
    r = _run(*generate_args(tmp_path / "o.tar", tmp_path / "out"))
    assert r.exit_code == ExitCode.BAD_INPUT
    assert words in r.output
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.png").exists()


@CLI_EXAMPLES
@given(st.text(max_size=40).filter(lambda s: not s.startswith("-")))
def test_generate_hostile_recipe_ref(tmp_path_factory: pytest.TempPathFactory, spec: str) -> None:
    d = tmp_path_factory.mktemp("rec")
    with mock.patch.object(importlib, "import_module", _guarded_import):
        r = _run(*generate_args(d, d / "out", spec))
    assert r.exit_code in (ExitCode.OK, ExitCode.USAGE, ExitCode.BAD_INPUT), r.output


@CLI_EXAMPLES
@given(st.lists(st.text(max_size=30), min_size=1, max_size=3))
def test_generate_hostile_params(tmp_path_factory: pytest.TempPathFactory, ps: list[str]) -> None:
    d = tmp_path_factory.mktemp("par")
    r = _run(*generate_args(d, d / "o", "gaussian-noise", param=ps))
    assert r.exit_code in (ExitCode.OK, ExitCode.USAGE, ExitCode.BAD_INPUT), r.output
