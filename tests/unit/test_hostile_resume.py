"""Resume after the original changed under an interrupted run (issue #15, item 3), and
after a co-user changed what the run left (issue #23, item 4).

* an original renamed (or removed) since: the plan changed, so ``--resume`` is refused
  as a different run, and the message names the sample the journal holds that the
  original no longer has;
* an original whose content changed since: the finished sample is made again
  (``GenerateResult.redone``), and the root equals a fresh run's on the changed original;
  whose carried columns changed (a label): they are the original's, not the journal's;
* a journal record flipped, a finished PNG swapped with its digests written into the
  journal, a record replayed from another run, the run key deleted, a line nested 5,000
  deep: ``--resume`` makes the benchmark of an uninterrupted run, and says what it redid.

The interruption is a KeyboardInterrupt from the progress callback, raised after a
sample was journaled, exactly where Ctrl-C lands between two samples (the journal a
``kill -9`` leaves differs only in lines not yet synced: tests/integration/test_scale.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.cli import generate_args, no_traceback, run_cli
from tests.conftest import make_image
from tests.diff_cases import pinned, tiny_original
from tests.hf_cases import class_records, hf_offline, make_dataset, to_hub_parquet
from toolchain.audit.verify import verify_benchmark
from toolchain.cli import cli
from toolchain.codec.decode import decode
from toolchain.errors import ExitCode, Interrupted, OutputError
from toolchain.model.hashing import file_digest, pixel_digest
from toolchain.model.manifest import MANIFEST_NAME, load_manifest
from toolchain.run.generate import generate_benchmark

__all__ = ["hf_offline"]

JOURNAL = ".benchmark-regen/journal-all.jsonl"


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run keys in a folder of this test's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "benchmark-regen"


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


# -- a co-user edits what the interrupted run left (issue #23, item 4) ----------------------


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (out / JOURNAL).read_text().splitlines() if ln.strip()]


def _rewrite(out: Path, lines: list[dict[str, Any]]) -> None:
    (out / JOURNAL).write_text("".join(json.dumps(d, sort_keys=True) + "\n" for d in lines))


def _killed(original: Path, out: Path, recipe: str = "identity") -> list[dict[str, Any]]:
    """Three samples made and journaled, then the run stopped; its journal's lines."""
    with pinned(), pytest.raises(Interrupted):
        generate_benchmark(original, recipe, out, progress=_interrupt_after(3))
    return _records(out)


def _sample_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in lines if "entry" in d]


def _resumed(original: Path, out: Path) -> dict[str, Any]:
    """``generate --resume --json`` through the CLI: it must succeed; its report."""
    r = no_traceback(run_cli(*generate_args(original, out, resume=True, json=True), pinned=True))
    assert r.exit_code == ExitCode.OK, r.output
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def _verifies(out: Path) -> None:
    r = no_traceback(run_cli("verify", out))
    assert r.exit_code == ExitCode.OK, r.output


def _flip_label(out: Path, lines: list[dict[str, Any]], state: Path) -> str:
    record = _sample_lines(lines)[0]
    record["entry"]["columns"]["label"] = 1 - record["entry"]["columns"]["label"]
    _rewrite(out, lines)
    return "do not verify under the run's key"


def _swap_png(out: Path, lines: list[dict[str, Any]], state: Path) -> str:
    """Another valid PNG in place of a finished one, its digests written into the journal:
    ``verify`` cannot tell, as the manifest agrees with the file."""
    victim, other = _sample_lines(lines)[:2]
    png = (out / other["entry"]["path"]).read_bytes()
    (out / victim["entry"]["path"]).write_bytes(png)
    victim["entry"]["file"] = str(file_digest(png))
    victim["entry"]["pixels"] = str(pixel_digest(decode(png)))
    _rewrite(out, lines)
    return "do not verify under the run's key"


def _delete_key(out: Path, lines: list[dict[str, Any]], state: Path) -> str:
    (key,) = state.iterdir()
    key.unlink()
    return "is missing or damaged"


def _deep_line(out: Path, lines: list[dict[str, Any]], state: Path) -> str:
    raw = (out / JOURNAL).read_bytes().splitlines(keepends=True)
    deep = b"[" * 5000 + b"]" * 5000 + b"\n"
    (out / JOURNAL).write_bytes(b"".join([*raw[:2], deep, *raw[2:]]))
    return "line 3: not valid JSON (nested too deep): skipped"


ATTACKS: dict[str, Callable[[Path, list[dict[str, Any]], Path], str]] = {
    "a label flipped": _flip_label,
    "a png swapped, its digests journaled": _swap_png,
    "the run key deleted": _delete_key,
    "a line nested 5000 deep": _deep_line,
}


def test_an_untouched_resume_trusts_what_was_made(
    small_original: Path, identity_bench: Path, tmp_path: Path
) -> None:
    """The key is what makes the records count: finished files are not made again."""
    out = tmp_path / "out"
    finished = _sample_lines(_killed(small_original, out))
    assert all(len(d["mac"]) == 64 for d in finished) and len(finished) == 3
    made = {d["entry"]["path"]: (out / d["entry"]["path"]).stat().st_ino for d in finished}
    doc = _resumed(small_original, out)
    assert doc["root"] == str(load_manifest(identity_bench / MANIFEST_NAME).root)
    assert "notes" not in doc
    assert {p: (out / p).stat().st_ino for p in made} == made  # not rewritten
    _verifies(out)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_changed_journal_never_gives_a_poisoned_benchmark(
    small_original: Path, identity_bench: Path, tmp_path: Path, state_home: Path, attack: str
) -> None:
    out = tmp_path / "out"
    lines = _killed(small_original, out)
    said = ATTACKS[attack](out, lines, state_home)
    doc = _resumed(small_original, out)
    # The benchmark an uninterrupted run makes, file for file, and the user is told.
    assert doc["root"] == str(load_manifest(identity_bench / MANIFEST_NAME).root)
    for entry in load_manifest(out / MANIFEST_NAME).entries:
        assert (out / entry.path).read_bytes() == (identity_bench / entry.path).read_bytes()
    assert any(said in note for note in doc.get("notes", [])), doc
    _verifies(out)
    assert not state_home.exists() or list(state_home.iterdir()) == []  # the key went too


@pytest.mark.parametrize("their_run_id", [False, True])
def test_a_record_replayed_from_another_run_of_the_user_is_not_trusted(
    small_original: Path, identity_bench: Path, tmp_path: Path, their_run_id: bool
) -> None:
    """Another interrupted run of the user's, on the same original with another recipe:
    its records and files (and its run id, whose key is there) copied over ours."""
    out, other = tmp_path / "out", tmp_path / "other"
    ours = _killed(small_original, out)
    theirs = _killed(small_original, other, recipe="gaussian-noise")
    planned = {e.path for e in load_manifest(identity_bench / MANIFEST_NAME).entries}
    assert {d["entry"]["path"] for d in _sample_lines(theirs)} <= planned  # other pixels
    for d in _sample_lines(theirs):
        (out / d["entry"]["path"]).parent.mkdir(exist_ok=True)
        shutil.copyfile(other / d["entry"]["path"], out / d["entry"]["path"])
    header, *rest = ours
    if their_run_id:
        header = {**header, "run": theirs[0]["run"]}
    _rewrite(out, [header, *rest, *theirs[1:]])
    doc = _resumed(small_original, out)
    assert doc["root"] == str(load_manifest(identity_bench / MANIFEST_NAME).root)
    _verifies(out)


def test_carried_columns_come_from_the_original_not_the_journal(
    tmp_path: Path, hf_offline: Path
) -> None:
    """A dataset whose labels changed since the run was stopped, its images not: the
    resumed benchmark carries the labels of the original it was resumed on."""
    rows = class_records(6)
    original = tmp_path / "original"
    to_hub_parquet(make_dataset(rows), original, "train")
    out = tmp_path / "out"
    finished = _sample_lines(_killed(original, out))
    shutil.rmtree(original)
    relabeled = [{**r, "label": 1 - r["label"], "caption": r["caption"] + "!"} for r in rows]
    to_hub_parquet(make_dataset(relabeled), original, "train")
    with pinned():
        resumed = generate_benchmark(original, "identity", out, resume=True)
        fresh = generate_benchmark(original, "identity", tmp_path / "fresh")
    assert resumed.root == fresh.root
    assert resumed.redone == 0 and resumed.notes == ()  # the images are the same
    labels = {e.id: e.columns["label"] for e in resumed.manifest.entries}
    assert [labels[d["entry"]["id"]] for d in finished] == [
        1 - d["entry"]["columns"]["label"] for d in finished
    ]
    assert verify_benchmark(out).ok


def test_without_json_the_notes_go_to_stderr(
    small_original: Path, tmp_path: Path, state_home: Path
) -> None:
    out = tmp_path / "out"
    lines = _killed(small_original, out)
    said = _flip_label(out, lines, state_home)
    r = no_traceback(run_cli(*generate_args(small_original, out, resume=True), pinned=True))
    assert r.exit_code == ExitCode.OK, r.output
    assert any(line.startswith("note: ") and said in line for line in r.stderr.splitlines())
