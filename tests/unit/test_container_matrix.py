"""toolchain.container.matrix: one image per lockfile, the demo and ``adversarial`` run in
each, against the fake engine of tests/fakes.py (the image builds themselves are stubbed: they
are toolchain.container.build's, tested in test_container_build.py and, for real, in the docker
tests)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.fakes import FakeBackend
from toolchain.container import matrix
from toolchain.container.config import ImageRef
from toolchain.container.docker import ImageInfo
from toolchain.container.run import run_in_container
from toolchain.demo import demo_original
from toolchain.errors import ContainerError


def _image(image_id: str) -> ImageInfo:
    return ImageInfo(id=image_id, diff_ids=(), env=(), labels={}, architecture="amd64", os="linux")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[FakeBackend, list[dict]]:
    """A fake engine that runs containers; builds recorded and answered with a made-up id."""
    fake = FakeBackend()
    builds: list[dict] = []

    def wheelhouse(*, dest: Path, lockfile: Path) -> str:
        builds.append({"wheelhouse": dest, "lockfile": lockfile})
        return f"wheels-of-{lockfile.stem}"

    def build_image(*, tag: str, wheelhouse: str) -> ImageRef:
        image_id = "sha256:" + format(len(builds), "x") * 64
        builds[-1].update(tag=tag, wheels=wheelhouse, id=image_id)
        fake.images[image_id] = _image(image_id)
        return ImageRef(id=image_id, tag=tag)

    monkeypatch.setattr(matrix, "build_wheelhouse", wheelhouse)
    monkeypatch.setattr(matrix, "build_image", build_image)
    monkeypatch.setattr(
        matrix, "run_in_container", functools.partial(run_in_container, backend=fake)
    )
    return fake, builds


def test_each_lockfile_gets_an_image_and_two_confined_runs(
    engine: tuple[FakeBackend, list[dict]], tmp_path: Path
) -> None:
    fake, builds = engine
    locks = [tmp_path / "lockfiles/matrix/numpy1-pillow10.txt", tmp_path / "lockfiles/req.txt"]
    log: list[str] = []
    out = tmp_path / "out"
    runs = matrix.run_matrix_images(locks, out, log=log.append)
    assert [r.name for r in runs] == ["numpy1-pillow10", "locked"]
    assert [b["tag"] for b in builds] == [
        "benchmark-regen:matrix-numpy1-pillow10", "benchmark-regen:matrix-locked",
    ]  # fmt: skip
    assert [b["wheelhouse"] for b in builds] == [
        out / ".wheelhouse/numpy1-pillow10", out / ".wheelhouse/locked",
    ]  # fmt: skip
    assert [r.image for r in runs] == [b["id"] for b in builds]
    assert runs[0].outputs == (out / "numpy1-pillow10-image/demo",
                               out / "numpy1-pillow10-image/adversarial")  # fmt: skip
    assert all(p.is_dir() for r in runs for p in r.outputs)
    demo, adversarial = fake.runs[:2]
    assert demo.image == builds[0]["id"]
    assert demo.argv == ("demo", "--quiet", "--out", "/out")
    assert adversarial.argv == ("generate", "--recipe", "adversarial", "--quiet",
                                "--original", "/original", "--out", "/out")  # fmt: skip
    mounts = {m.target: m for m in adversarial.mounts}
    assert mounts["/original"].read_only and mounts["/original"].source == demo_original()
    assert not mounts["/out"].read_only
    assert mounts["/out"].source == (out / "numpy1-pillow10-image/adversarial").resolve()
    assert all(r.network == "none" for r in fake.runs) and len(fake.runs) == 4
    assert log[0] == f"matrix: building benchmark-regen:matrix-numpy1-pillow10 from {locks[0]}"


def test_a_benchmark_that_is_not_bit_exact_is_a_finding_not_an_error(
    engine: tuple[FakeBackend, list[dict]], tmp_path: Path
) -> None:
    fake, _ = engine
    fake.exit_code = 1
    (run,) = matrix.run_matrix_images([tmp_path / "a.txt"], tmp_path / "out", log=print)
    assert len(run.outputs) == 2


@pytest.mark.parametrize("code", [2, 3, 4, 130])
def test_any_other_exit_code_stops_the_matrix_naming_the_run(
    engine: tuple[FakeBackend, list[dict]], tmp_path: Path, code: int
) -> None:
    fake, _ = engine
    fake.exit_code = code
    with pytest.raises(ContainerError, match=f"demo in benchmark-regen:matrix-locked exited "
                                             f"with {code}"):  # fmt: skip
        matrix.run_matrix_images([tmp_path / "a.txt", tmp_path / "b.txt"], tmp_path / "out")
    assert len(fake.runs) == 1  # stopped at once
