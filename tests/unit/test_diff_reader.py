"""One reader for both diff forms, and the signature check over the manifest it carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.diff_cases import build, tiny_original
from tests.hf_cases import hf_offline
from toolchain.audit.sign import generate_key, sign_manifest
from toolchain.diff.create import create_diff
from toolchain.diff.dataset import DiffDataset, is_diff_dataset
from toolchain.diff.format import DiffReader
from toolchain.diff.reader import check_container_signature, open_diff
from toolchain.errors import ExitCode, SignatureError

__all__ = ["hf_offline"]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("reader")
    original = tiny_original(work / "original")
    bench, bdiff = build(original, "adversarial", work)
    return original, bench, bdiff


def test_a_file_and_a_folder_open_as_one_reader(
    made: tuple[Path, Path, Path], tmp_path: Path, hf_offline: Path
) -> None:
    original, bench, bdiff = made
    folder = tmp_path / "diffds"
    create_diff(original, bench, folder, format="parquet")
    assert is_diff_dataset(folder) and not is_diff_dataset(bdiff)
    with open_diff(folder) as a, open_diff(bdiff) as b:
        assert isinstance(a, DiffDataset) and type(b) is DiffReader
        assert a.manifest_bytes == b.manifest_bytes
        assert [r.fingerprint for r in a.records] == [r.fingerprint for r in b.records]


def test_the_sidecar_signature_is_checked(made: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, bench, bdiff = made
    pair, other = generate_key(tmp_path / "k"), generate_key(tmp_path / "o")
    with pytest.raises(SignatureError, match="no signature at") as e:
        check_container_signature(bdiff, pair.public)
    assert e.value.exit_code == ExitCode.BAD_INPUT
    sig = tmp_path / "sig"
    sign_manifest(bench / "manifest.json", pair.private, out=sig)
    assert check_container_signature(bdiff, pair.public, signature=sig).keyid == pair.keyid
    with pytest.raises(SignatureError, match="another key"):
        check_container_signature(bdiff, other.public, signature=sig)
