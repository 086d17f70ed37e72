"""toolchain.run.session: run options checked when made, and the run's steps in their order,
journaled, with Ctrl-C leaving a folder to resume or redo."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.diff_cases import pinned, tiny_original
from toolchain.errors import InputError, Interrupted, ShardSpecError
from toolchain.model.layout import plan_outputs
from toolchain.run.journal import JournaledSample, plan_digest
from toolchain.run.session import Plan, RunOptions, Session, run_session
from toolchain.run.shard import Shard
from toolchain.source import Source, SourceOptions


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run keys in a folder of this test's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "benchmark-regen"


def test_options_are_checked_when_made() -> None:
    assert RunOptions() == RunOptions(workers=1, executor="local", format="folder")
    with pytest.raises(InputError, match="unknown output format 'zip'") as e:
        RunOptions(format="zip")
    assert e.value.hint == "use one of: folder, parquet"
    with pytest.raises(ValueError, match="at least 1"):
        RunOptions(workers=0)
    with pytest.raises(ValueError, match="unknown executor 'slurm'"):
        RunOptions(executor="slurm")
    with pytest.raises(ValueError, match="needs --executor dask"):
        RunOptions(scheduler="tcp://head:8786")
    assert RunOptions(executor="dask", scheduler="tcp://head:8786").scheduler == "tcp://head:8786"


def test_options_come_from_keywords_or_whole_never_both() -> None:
    made = RunOptions.of(None, {"workers": 2, "shard": "1/4", "source_options": None}, caller="f")
    assert made == RunOptions(workers=2, shard=Shard(index=1, count=4))
    assert made.source_options == SourceOptions()
    given = RunOptions(overwrite=True)
    assert RunOptions.of(given, {}, caller="f") is given
    with pytest.raises(TypeError, match=r"f\(\) takes options= or the run keywords, not both"):
        RunOptions.of(given, {"workers": 1}, caller="f")
    with pytest.raises(TypeError, match=r"f\(\) got an unexpected keyword argument 'worker'"):
        RunOptions.of(None, {"worker": 2}, caller="f")  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ShardSpecError, match="not of the form I/N"):
        RunOptions.of(None, {"shard": "half"}, caller="f")


def test_a_run_selects_its_shard() -> None:
    ids = [f"s{i}" for i in range(40)]
    assert all(RunOptions().selects(i) for i in ids)
    shards = [RunOptions(shard=Shard(index=k, count=3)) for k in range(3)]
    assert sorted(i for o in shards for i in ids if o.selects(i)) == sorted(ids)


def test_the_plan_names_the_run_in_the_journal_header() -> None:
    pairs = [("b.png", "b.png"), ("a.jpg", "a.png")]
    plan = Plan(kind="generate", made_from={"recipe": {"name": "x"}}, pairs=pairs)
    assert plan.header(Shard(index=0, count=2)) == {
        "kind": "generate",
        "plan": plan_digest(pairs),
        "recipe": {"name": "x"},
        "samples": 2,
        "shard": "0/2",
    }
    assert plan.header(None)["shard"] == ""


class _Sizes:
    """Steps that "make" each sample's byte count: the skeleton without pixels."""

    command = "sizes"

    def __init__(self, *, resumable: bool = True, stop_after: int | None = None):
        self.resumable = resumable
        self.stop_after = stop_after
        self.calls: list[str] = []
        self.sizes: dict[str, int] = {}

    @contextlib.contextmanager
    def inputs(self) -> Iterator[None]:
        self.calls.append("inputs")
        yield
        self.calls.append("inputs closed")

    def source_options(self, given: SourceOptions) -> SourceOptions:
        self.calls.append("source options")
        return given

    def plan(self, source: Source) -> Plan:
        self.calls.append("plan")
        return Plan(kind="sizes", made_from={}, pairs=plan_outputs(source.listing().ids))

    def produce(
        self, session: Session, source: Source, finished: Mapping[str, JournaledSample]
    ) -> None:
        self.calls.append("produce")
        ids = [sid for sid, _ in plan_outputs(source.listing().ids)]
        handed: list[str] = []

        def tasks() -> Iterator[bytes]:
            for sample in source.iter_samples(ids):
                session.handing_out(f"{sample.id}.png", sample.id)
                handed.append(sample.id)
                yield sample.data

        def collect(size: int) -> None:  # results come in task order
            if len(self.sizes) == self.stop_after:
                raise KeyboardInterrupt
            self.sizes[handed[len(self.sizes)]] = size
            session.tick(len(self.sizes))

        session.execute(len, tasks(), collect)

    def commit(self, session: Session, source: Source) -> int:
        self.calls.append("commit")
        self.notes = list(session.notes)
        return session.done


def test_the_steps_run_in_their_declared_order(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    steps, ticks = _Sizes(), []
    options = RunOptions(progress=lambda done, total: ticks.append((done, total)))
    with pinned():
        done = run_session(steps, original, tmp_path / "out", options)
    assert steps.calls == ["inputs", "source options", "plan", "produce", "commit", "inputs closed"]
    assert done == 5 and ticks == [(k, 5) for k in range(1, 6)]
    assert steps.sizes == {p.relative_to(original).as_posix(): p.stat().st_size
                           for p in original.rglob("*.*")}  # fmt: skip


@pytest.mark.parametrize(
    ("resumable", "hint"),
    [(True, "again with --resume to finish the rest"),
     (False, "again with --overwrite to start over")],
)  # fmt: skip
def test_ctrl_c_leaves_no_manifest_and_says_how_to_go_on(
    tmp_path: Path, resumable: bool, hint: str
) -> None:
    original = tiny_original(tmp_path / "original")
    out = tmp_path / "out"
    with pinned(), pytest.raises(Interrupted, match="interrupted after 2 of 5 samples") as e:
        run_session(_Sizes(resumable=resumable, stop_after=2), original, out, RunOptions())
    assert hint in (e.value.hint or "")
    assert not (out / "manifest.json").exists()
    assert (out / ".benchmark-regen" / "journal-all.jsonl").is_file()  # for --overwrite, too


def test_a_run_that_cannot_resume_refuses_before_anything(tmp_path: Path) -> None:
    steps = _Sizes(resumable=False)
    with pytest.raises(InputError, match="sizes cannot resume an interrupted run") as e:
        run_session(steps, tmp_path / "original", tmp_path / "out", RunOptions(resume=True))
    assert e.value.hint == "run it again with --overwrite to start over"
    assert steps.calls == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("resumable", [True, False])
def test_a_run_that_can_resume_keys_its_journal_one_that_cannot_does_not(
    tmp_path: Path, state_home: Path, resumable: bool
) -> None:
    original = tiny_original(tmp_path / "original")
    out = tmp_path / "out"
    with pinned(), pytest.raises(Interrupted):
        run_session(_Sizes(resumable=resumable, stop_after=2), original, out, RunOptions())
    journal = out / ".benchmark-regen" / "journal-all.jsonl"
    header, *records = [json.loads(ln) for ln in journal.read_text().splitlines()]
    assert records and all(("mac" in d) is resumable for d in records)
    assert ("run" in header) is resumable
    keys = sorted(p.name for p in state_home.iterdir()) if state_home.exists() else []
    assert keys == ([f"run-{header['run']}.key"] if resumable else [])


def test_a_key_that_cannot_be_stored_is_noted_and_the_run_goes_on(
    tmp_path: Path, state_home: Path
) -> None:
    state_home.parent.mkdir()
    state_home.write_text("not a folder")
    steps = _Sizes()
    with pinned():
        assert run_session(steps, tiny_original(tmp_path / "original"), tmp_path / "out",
                           RunOptions()) == 5  # fmt: skip
    assert len(steps.notes) == 1 and steps.notes[0].startswith("the run key could not be stored")
