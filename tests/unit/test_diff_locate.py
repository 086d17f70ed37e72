"""toolchain.diff.locate: key material from a candidate original, unsealing with it, and the
content scan that finds moved originals (only the AEAD accepts a candidate)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.diff_cases import build, tiny_original
from toolchain.codec.decode import decode
from toolchain.diff.crypto import fingerprint, pixels_key_material
from toolchain.diff.format import KeyOn
from toolchain.diff.locate import Found, key_material, scan_by_content, unseal
from toolchain.diff.reader import open_diff
from toolchain.errors import DecodeError
from toolchain.source import FolderSource, Sample


@pytest.fixture(scope="module", params=["file", "pixels"])
def sealed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp(f"locate-{request.param}")
    original = tiny_original(work / "original")
    _, diff = build(original, "identity", work, key_on=request.param)
    return original, diff


def test_found_values_are_the_reports_words() -> None:
    assert [str(f) for f in Found] == [
        "found-by-id", "found-by-content", "missing", "present-but-different",
        "finished-before-resume",
    ]  # fmt: skip


def test_key_material_is_the_file_or_its_canonical_pixels(tmp_path: Path) -> None:
    data = tiny_original(tmp_path / "o").joinpath("a/one.png").read_bytes()
    assert key_material(data, KeyOn.FILE) == (data, None)
    ikm, pixels = key_material(data, KeyOn.PIXELS)
    assert pixels is not None and np.array_equal(pixels, decode(data))
    assert ikm == pixels_key_material(pixels) and ikm != data
    with pytest.raises(DecodeError):
        key_material(b"not an image", KeyOn.PIXELS)
    assert key_material(b"not an image", KeyOn.FILE) == (b"not an image", None)


def test_only_the_very_original_opens_its_payload(sealed: tuple[Path, Path]) -> None:
    original, diff = sealed
    with open_diff(diff) as reader:
        h = reader.header
        for i, entry in enumerate(reader.manifest.entries):
            kw = dict(key_on=h.key_on, salt=h.benchmark_id, sample_id=entry.id,
                      kind=reader.records[i].kind, sealed=reader.read_sealed(i))  # fmt: skip
            mine = unseal((original / entry.id).read_bytes(), **kw)  # type: ignore[arg-type]
            assert mine.plaintext is not None
            assert (mine.pixels is not None) is (h.key_on is KeyOn.PIXELS)
            other = reader.manifest.entries[(i + 1) % 5].id
            wrong = unseal((original / other).read_bytes(), **kw)  # type: ignore[arg-type]
            assert wrong.plaintext is None
            junk = unseal(b"\x89PNG garbage", **kw)  # type: ignore[arg-type]
            assert junk.plaintext is None and junk.pixels is None


class Counting(FolderSource):
    """A folder source that counts the samples it reads."""

    read_ids: list[str]

    def iter_samples(self, ids: Iterable[str]) -> Iterator[Sample]:
        for sample in super().iter_samples(ids):
            self.read_ids.append(sample.id)
            yield sample


def test_the_scan_maps_each_fingerprint_to_the_first_file_with_it(
    sealed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, diff = sealed
    moved = tiny_original(tmp_path / "moved")
    (moved / "a/one.png").rename(moved / "z-one.png")
    (moved / "copy-of-one.png").write_bytes((moved / "z-one.png").read_bytes())
    (moved / "broken.png").write_bytes(b"\x89PNG not really")
    with open_diff(diff) as reader:
        h = reader.header
        i = [e.id for e in reader.manifest.entries].index("a/one.png")
        wanted = {reader.records[i].fingerprint}
    source = Counting(moved)
    source.read_ids = []
    ids = source.listing().ids
    found = scan_by_content(source, ids, h.key_on, h.benchmark_id, wanted)
    assert found == {reader.records[i].fingerprint: "copy-of-one.png"}  # source order: first
    assert source.read_ids == [
        "a/two.jpg",
        "b/four.png",
        "b/three.png",
        "broken.png",
        "copy-of-one.png",
    ]  # fmt: skip  (stops once all are found)
    ikm, _ = key_material((moved / "z-one.png").read_bytes(), h.key_on)
    assert fingerprint(ikm, key_on=h.key_on, salt=h.benchmark_id) in wanted


def test_nothing_wanted_reads_nothing(sealed: tuple[Path, Path]) -> None:
    original, diff = sealed
    source = Counting(original)
    source.read_ids = []
    with open_diff(diff) as reader:
        h = reader.header
    assert scan_by_content(source, source.listing().ids, h.key_on, h.benchmark_id, set()) == {}
    assert source.read_ids == []
