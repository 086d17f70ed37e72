"""Resume after the original changed under an interrupted run (issue #15, item 3).

* an original renamed (or removed) since: the plan changed, so ``--resume`` is refused
  as a different run, and the message names the sample the journal holds that the
  original no longer has;
* an original whose content changed since: the finished sample is made again
  (``GenerateResult.redone``), and the root equals a fresh run's on the changed original.

The interruption is a KeyboardInterrupt from the progress callback, raised after a
sample was journaled, exactly where Ctrl-C lands between two samples.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_image
from tests.diff_cases import pinned, tiny_original
from toolchain.audit.verify import verify_benchmark
from toolchain.cli import cli
from toolchain.errors import ExitCode, Interrupted, OutputError
from toolchain.run.generate import generate_benchmark


def _interrupt_after(n: int):  # type: ignore[no-untyped-def]
    def progress(done: int, total: int) -> None:
        if done == n:
            raise KeyboardInterrupt

    return progress


def _interrupted(original: Path, out: Path, recipe: str = "identity") -> None:
    with pinned(), pytest.raises(Interrupted):
        generate_benchmark(original, recipe, out, progress=_interrupt_after(2))
    assert not (out / "manifest.json").exists()


def test_a_renamed_original_is_refused_naming_the_sample(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    out = tmp_path / "out"
    _interrupted(original, out)  # a/one.png and a/two.jpg are done
    (original / "a/one.png").rename(original / "a/uno.png")
    with pinned(), pytest.raises(OutputError) as e:
        generate_benchmark(original, "identity", out, resume=True)
    assert "is a different run" in e.value.message
    assert "sample 'a/one.png', made by the interrupted run, is no longer in the original" in (
        e.value.message
    )
    assert e.value.exit_code == ExitCode.ENVIRONMENT
    # The CLI says the same, without a traceback; nothing was deleted.
    args = ["generate", "--recipe", "identity", "--original", str(original), "--out", str(out)]
    with pinned():
        r = CliRunner().invoke(cli, [*args, "--resume", "-q"])
    assert r.exit_code == ExitCode.ENVIRONMENT and "'a/one.png'" in r.output
    assert "Traceback" not in r.output and (out / "a/one.png").is_file()


def test_a_removed_original_and_a_renamed_pending_one_are_described(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    out = tmp_path / "out"
    _interrupted(original, out)
    (original / "five.jpg").rename(original / "six.jpg")  # not made yet: not in the journal
    with pinned(), pytest.raises(OutputError, match="a sample not made yet was renamed"):
        generate_benchmark(original, "identity", out, resume=True)
    (original / "six.jpg").unlink()
    with pinned(), pytest.raises(OutputError, match="5 samples then, 4 now"):
        generate_benchmark(original, "identity", out, resume=True)
    # A different recipe is not blamed on the original.
    make_image(original / "five.jpg", seed=5, size=(64, 32))
    with pinned(), pytest.raises(OutputError) as e:
        generate_benchmark(original, "gaussian-noise", out, resume=True)
    assert "different run" in e.value.message and "no longer" not in e.value.message


@pytest.mark.parametrize("recipe", ["identity", "gaussian-noise"])
def test_a_changed_original_is_redone_and_the_root_is_a_fresh_runs(
    tmp_path: Path, recipe: str
) -> None:
    original = tiny_original(tmp_path / "original")
    out = tmp_path / "out"
    with pinned():
        chosen = sorted(p.relative_to(original).as_posix() for p in original.rglob("*.*"))
    _interrupted(original, out, recipe)
    done = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(done) == 2
    # Change the content of one finished sample's original (same name, same format).
    victim = next(s for s in chosen if any(s.rsplit(".", 1)[0] + ".png" == d for d in done))
    size = (48, 40) if victim == "a/two.jpg" else (40, 32)
    make_image(original / victim, seed=1234, size=size)
    with pinned():
        resumed = generate_benchmark(original, recipe, out, resume=True)
    assert resumed.redone == 1
    fresh_out = tmp_path / "fresh"
    with pinned():
        fresh = generate_benchmark(Path(shutil.copytree(original, tmp_path / "copy")), recipe,
                                   fresh_out)  # fmt: skip
    assert resumed.root == fresh.root
    assert (out / "manifest.json").read_bytes().replace(b"copy", b"original") == (
        fresh_out / "manifest.json"
    ).read_bytes().replace(b"copy", b"original")
    assert verify_benchmark(out).ok


def test_an_unchanged_resume_redoes_nothing(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    out = tmp_path / "out"
    _interrupted(original, out)
    with pinned():
        resumed = generate_benchmark(original, "identity", out, resume=True)
        fresh = generate_benchmark(original, "identity", tmp_path / "fresh")
    assert resumed.redone == 0 and resumed.root == fresh.root
