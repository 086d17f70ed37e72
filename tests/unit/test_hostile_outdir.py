"""Never destroy a user's data (issue #15): ``--out``, ``--overwrite`` and shared folders.

Written as an attacker, or a careless user, would try it:

* the issue's two Hugging Face cases: an imagefolder (``train/*.png`` + ``metadata.jsonl``)
  passed as both ``--original`` and ``--out --overwrite``, and a separate HF repository
  folder (``README.md``, ``src/model.py``, ``train/``) passed as ``--out``;
* a planted run journal or a user's own ``README.md`` beside our manifest: ``--overwrite``
  deletes only what we would have written;
* planted symlinks in a shared ``--out`` (sample paths, our state files, guessed temp
  names, a class folder) for ``generate --shard 0/1`` and ``diff apply --shard 0/1``:
  the victim is untouched and nothing is written outside ``--out``;
* a failed or interrupted run's leftovers can be overwritten.

``tests/unit/test_outdir.py`` has the basic cases (lock pid, overlap, unknown files);
these extend them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_image
from tests.diff_cases import build, pinned, tiny_original
from toolchain.audit.verify import verify_benchmark
from toolchain.cli import cli
from toolchain.diff import get_benchmark
from toolchain.errors import Error, ExitCode, Interrupted, OutputError
from toolchain.model.manifest import load_manifest
from toolchain.run.generate import generate_benchmark
from toolchain.run.journal import Journal
from toolchain.run.outdir import open_out


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): path -> content digest / link target."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                found[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                found[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                found[rel] = "dir"
    return found


def hf_imagefolder(root: Path) -> Path:
    """A Hugging Face imagefolder dataset: train/*.png and train/metadata.jsonl."""
    for i in range(3):
        make_image(root / "train" / f"{i}.png", seed=10 + i)
    lines = [json.dumps({"file_name": f"{i}.png", "label": i % 2}) for i in range(3)]
    (root / "train" / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def hf_repo(root: Path) -> Path:
    """A Hugging Face repository folder: a card, code, and a train split."""
    (root / "src").mkdir(parents=True)
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# my dataset\n")
    (root / "src" / "model.py").write_text("import torch\n")
    make_image(root / "train" / "a.png", seed=20)
    make_image(root / "train" / "b.png", seed=21)
    return root


def _cli(*args: str) -> tuple[int, str]:
    with pinned():
        r = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in r.output
    return r.exit_code, r.output


# -- item 1: the Hugging Face cases ------------------------------------------------


def test_hf_imagefolder_as_original_and_out_is_refused_before_any_work(tmp_path: Path) -> None:
    hf = hf_imagefolder(tmp_path / "hf")
    (tmp_path / "alias").symlink_to(hf, target_is_directory=True)
    before = tree(hf)
    _, diff = build(hf, "identity", tmp_path / "work")
    outs = [hf, tmp_path / "alias", hf / "train", hf / "bench", tmp_path]
    for out in outs:
        code, text = _cli("generate", "--recipe", "identity", "--original", str(hf),
                          "--out", str(out), "--overwrite")  # fmt: skip
        assert code == ExitCode.ENVIRONMENT and "overlap" in text, (out, text)
        code, text = _cli("diff", "apply", "--original", str(hf), "--diff", str(diff),
                          "--out", str(out), "--overwrite")  # fmt: skip
        assert code == ExitCode.ENVIRONMENT and "overlap" in text, (out, text)
        with pinned(), pytest.raises(OutputError, match="overlap"):
            generate_benchmark(hf, "identity", out, overwrite=True, shard="0/1", resume=True)
    assert tree(hf) == before  # not even a state folder or a lock was created


def test_hf_repository_as_out_is_never_touched(tmp_path: Path) -> None:
    repo = hf_repo(tmp_path / "repo")
    original = tiny_original(tmp_path / "original")
    _, diff = build(original, "identity", tmp_path / "work")
    before = tree(repo)
    for args in (
        ["generate", "--recipe", "identity", "--original", str(original), "--out", str(repo)],
        ["diff", "apply", "--original", str(original), "--diff", str(diff), "--out", str(repo)],
    ):
        code, text = _cli(*args)
        assert code == ExitCode.ENVIRONMENT and "is not empty" in text
        code, text = _cli(*args, "--overwrite")
        assert code == ExitCode.ENVIRONMENT, text
        assert "does not hold a benchmark made by benchmark-regen" in text
        # A shard shares folders with other shards, but never with files not ours.
        code, text = _cli(*args, "--shard", "0/1")
        assert code == ExitCode.ENVIRONMENT, text
        assert "'README.md'" in text and "'src/model.py'" in text
    assert tree(repo) == before


def test_a_shard_never_overwrites_a_file_it_did_not_write(tmp_path: Path) -> None:
    """The HF imagefolder as --out of a shard whose outputs have the same names."""
    hf = hf_imagefolder(tmp_path / "hf")
    original = tmp_path / "original"
    shutil.copytree(hf / "train", original / "train")
    make_image(original / "train" / "0.png", seed=99)  # a different image, the same name
    before = tree(hf)
    with pinned(), pytest.raises(OutputError, match=r"'train/0.png'"):
        generate_benchmark(original, "identity", hf, shard="0/1")
    assert tree(hf) == before


def test_overwrite_keeps_a_readme_the_user_wrote_beside_our_manifest(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    out = tmp_path / "out"
    with pinned():
        generate_benchmark(original, "identity", out)
    card = "# Notes on this benchmark\nDo not lose me.\n"
    (out / "README.md").write_text(card)
    with pinned(), pytest.raises(OutputError, match=r"'README\.md'"):
        generate_benchmark(original, "identity", out, overwrite=True)
    assert (out / "README.md").read_text() == card and (out / "manifest.json").is_file()


def _forged_journal(out: Path, paths: list[tuple[str, str]], *, writing: bool) -> None:
    state = out / ".benchmark-regen"
    state.mkdir(parents=True, exist_ok=True)
    lines = [{"format": "benchmark-regen.journal/v2", "kind": "generate"}]
    digest = "sha256:" + "0" * 64
    for sid, path in paths:
        if writing:
            lines.append({"writing": path, "id": sid})
        else:
            entry = {"columns": {}, "file": digest, "id": sid, "path": path, "pixels": digest,
                     "source": digest}  # fmt: skip
            lines.append({"entry": entry, "source_file": digest})
    (state / "journal-all.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines))


@pytest.mark.parametrize("writing", [False, True], ids=["entry", "writing"])
def test_a_planted_journal_cannot_make_overwrite_delete_the_users_files(
    tmp_path: Path, writing: bool
) -> None:
    """A journal naming files benchmark-regen never writes is not ours: nothing is deleted."""
    repo = hf_repo(tmp_path / "repo")
    # It names every file there (README.md is a name of ours): obeyed, it deleted them all.
    _forged_journal(
        repo,
        [("src/model.py", "src/model.py"), ("train/a.png", "train/a.png"),
         ("train/b.png", "train/b.png")],
        writing=writing,
    )  # fmt: skip
    before = tree(repo)
    original = tiny_original(tmp_path / "original")
    with pinned(), pytest.raises(OutputError) as e:
        generate_benchmark(original, "identity", repo, overwrite=True)
    assert "names 'src/model.py', which benchmark-regen never writes" in e.value.message
    assert tree(repo) == before
    # Nor does one naming only output paths make the user's other files ours.
    _forged_journal(repo, [("train/a.png", "train/a.png"), ("train/b.png", "train/b.png")],
                    writing=writing)  # fmt: skip
    with pinned(), pytest.raises(OutputError, match=r"'src/model\.py'"):
        generate_benchmark(original, "identity", repo, overwrite=True)
    assert (repo / "src/model.py").is_file() and (repo / "README.md").is_file()


# -- item 4: planted symlinks in a shared --out --------------------------------------------


PLANTS: dict[str, Callable[[Path, Path, Path], None]] = {
    "sample path": lambda out, victim, vdir: (
        (out / "a").mkdir() or (out / "a" / "one.png").symlink_to(victim)
    ),
    "class folder": lambda out, victim, vdir: (out / "a").symlink_to(vdir, True),
    "state folder": lambda out, victim, vdir: (out / ".benchmark-regen").symlink_to(vdir, True),
    "lock": lambda out, victim, vdir: (
        (out / ".benchmark-regen").mkdir()
        or (out / ".benchmark-regen" / "lock-0-of-1").symlink_to(victim)
    ),
    "journal": lambda out, victim, vdir: (
        (out / ".benchmark-regen").mkdir()
        or (out / ".benchmark-regen" / "journal-0-of-1.jsonl").symlink_to(victim)
    ),
    "write probe": lambda out, victim, vdir: (
        (out / ".benchmark-regen").mkdir()
        or (out / ".benchmark-regen" / "write-probe").symlink_to(victim)
    ),
    "shard manifest": lambda out, victim, vdir: (out / "manifest.shard-0-of-1.json").symlink_to(
        victim
    ),
    "guessed temp names": lambda out, victim, vdir: (
        [
            (out / f".tmp-{pid}-{name}").symlink_to(victim)
            for pid in range(os.getpid() - 3, os.getpid() + 40)
            for name in ("one.png", "five.png", "manifest.shard-0-of-1.json")
        ]
        and None
    ),
}


@pytest.mark.parametrize("command", ["generate", "apply"])
@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_planted_symlinks_in_a_shared_out_never_reach_the_victim(
    tmp_path: Path, plant: str, command: str, shared_case: tuple[Path, Path]
) -> None:
    original, diff = shared_case
    victim = tmp_path / "victim"
    victim.write_text("precious")
    vdir = tmp_path / "victim-dir"
    vdir.mkdir()
    out = tmp_path / "shared"
    out.mkdir()
    PLANTS[plant](out, victim, vdir)
    outside = {k: v for k, v in tree(tmp_path).items() if not k.startswith("shared")}
    try:
        with pinned():
            if command == "generate":
                generate_benchmark(original, "identity", out, shard="0/1")
            else:
                result = get_benchmark(original, diff, out, shard="0/1")
                assert result.ok
    except Error as e:  # a refusal is fine: it must say what it refused, and be exit 3/4
        assert e.exit_code in (ExitCode.BAD_INPUT, ExitCode.ENVIRONMENT)
        assert "Traceback" not in e.diagnostics()
    else:
        shard = load_manifest(out / "manifest.shard-0-of-1.json")
        assert all((out / en.path).is_file() and not (out / en.path).is_symlink()
                   for en in shard.entries)  # fmt: skip
    assert victim.read_text() == "precious" and list(vdir.iterdir()) == []
    now = {k: v for k, v in tree(tmp_path).items() if not k.startswith("shared")}
    assert now == outside  # nothing was written outside --out


MID_RUN: dict[str, Callable[[Path, Path, Path], None]] = {
    # After the first sample (a/one.png), before the others: past the checks at the start.
    "class folder": lambda out, victim, vdir: (out / "b").symlink_to(vdir, True),
    "sample path": lambda out, victim, vdir: (out / "five.png").symlink_to(victim),
    "shard manifest": lambda out, victim, vdir: (out / "manifest.shard-0-of-1.json").symlink_to(
        victim
    ),
    "guessed temp names": PLANTS["guessed temp names"],
}


@pytest.mark.parametrize("command", ["generate", "apply"])
@pytest.mark.parametrize("plant", sorted(MID_RUN))
def test_symlinks_planted_mid_run_are_not_followed(
    tmp_path: Path, plant: str, command: str, shared_case: tuple[Path, Path]
) -> None:
    """A co-user of the shared folder plants links once the run has started."""
    original, diff = shared_case
    victim = tmp_path / "victim"
    victim.write_text("precious")
    vdir = tmp_path / "victim-dir"
    vdir.mkdir()
    out = tmp_path / "shared"
    planted: list[int] = []

    def progress(done: int, total: int) -> None:
        if done == 1 and not planted:
            MID_RUN[plant](out, victim, vdir)
            planted.append(done)

    outside = {k: v for k, v in tree(tmp_path).items() if not k.startswith("shared")}
    try:
        with pinned():
            if command == "generate":
                generate_benchmark(original, "identity", out, shard="0/1", progress=progress)
            else:
                get_benchmark(original, diff, out, shard="0/1", progress=progress)
    except Error as e:
        assert plant == "class folder", e.diagnostics()  # the only refusal expected
        assert e.exit_code == ExitCode.ENVIRONMENT and "not followed" in e.message
        assert e.sample == "b/four.png"
    else:
        assert plant != "class folder"
        shard = load_manifest(out / "manifest.shard-0-of-1.json")
        assert len(shard.entries) == 5
        assert not any((out / en.path).is_symlink() for en in shard.entries)
    assert planted and victim.read_text() == "precious" and list(vdir.iterdir()) == []
    now = {k: v for k, v in tree(tmp_path).items() if not k.startswith("shared")}
    assert now == outside


@pytest.fixture(scope="module")
def shared_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("shared")
    original = tiny_original(work / "original")
    _, diff = build(original, "identity", work)
    return original, diff


# -- item 10: leftovers of a failed or interrupted run can be overwritten ------------------


def test_a_failed_applys_leftover_folder_can_be_overwritten(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    bench, diff = build(original, "gaussian-noise", tmp_path / "work")
    wrong = Path(shutil.copytree(original, tmp_path / "wrong"))
    data = bytearray((wrong / "a/one.png").read_bytes())
    data[-20] ^= 1
    (wrong / "a/one.png").write_bytes(bytes(data))
    out = tmp_path / "out"
    with pinned():
        failed = get_benchmark(wrong, diff, out)
    assert not failed.ok and not (out / "manifest.json").exists()
    assert any(out.rglob("*.png"))  # the exact samples were written
    with pinned():
        again = get_benchmark(original, diff, out, overwrite=True)
    assert again.ok and verify_benchmark(out).ok
    assert (out / "manifest.json").read_bytes() == (bench / "manifest.json").read_bytes()


def test_a_file_written_but_not_journaled_when_interrupted_is_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker writes its file, then the collecting process journals it: Ctrl-C between
    the two left a file --overwrite called 'not part of its benchmark'."""
    original = tiny_original(tmp_path / "original")
    out = tmp_path / "out"
    real_append = Journal.append
    calls: list[str] = []

    def append_then_interrupt(self: Journal, entry: object, source_file: object) -> None:
        calls.append("x")
        if len(calls) == 2:
            raise KeyboardInterrupt  # after the 2nd file was written, before its line
        real_append(self, entry, source_file)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "append", append_then_interrupt)
    with pinned(), pytest.raises(Interrupted):
        generate_benchmark(original, "identity", out)
    monkeypatch.undo()
    assert len(list(out.rglob("*.png"))) == 2
    with open_out(out, header={"kind": "another run"}, overwrite=True):
        assert not list(out.rglob("*.png"))
