"""toolchain.run.journal: the plan digest, what a resumed run sees, how a torn or damaged
journal only costs redoing samples, and how a record nobody but the user could have written
is the only one a resumed run trusts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from toolchain.errors import OutputError
from toolchain.model.hashing import Digest
from toolchain.model.manifest import ManifestEntry
from toolchain.run.journal import FORMAT, Journal, plan_digest, record_mac
from toolchain.run.runkey import key_folder

REL = ".benchmark-regen/journal-all.jsonl"
HEADER = {"recipe": "identity@1.0", "shard": None, "plan": "sha256:" + "0" * 64}


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run keys in a folder of this test's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "benchmark-regen"


def _entry(sid: str, label: int | None = None) -> ManifestEntry:
    return ManifestEntry(
        id=sid,
        path=sid.rsplit(".", 1)[0] + ".png",
        pixels=Digest.of(b"pixels " + sid.encode()),
        file=Digest.of(b"file " + sid.encode()),
        source=Digest.of(b"source " + sid.encode()),
        columns={} if label is None else {"label": label},
    )


def _journal(root: Path) -> Journal:
    return Journal(root, REL, HEADER)


def test_plan_digest_commits_to_every_pair_in_any_order() -> None:
    plan = [("b.jpg", "b.png"), ("a.png", "a.png"), ("c/d.webp", "c/d.png")]
    digest = plan_digest(plan)
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    assert plan_digest(reversed(plan)) == digest
    assert plan_digest(plan[:2]) != digest
    assert plan_digest([*plan[:2], ("c/d.webp", "c/e.png")]) != digest
    # the separators make the pairs unambiguous: ("ab", "c") is not ("a", "bc")
    assert plan_digest([("ab", "c")]) != plan_digest([("a", "bc")])
    assert plan_digest([]) == plan_digest(())


def test_a_new_journal_holds_its_header_then_one_line_per_sample(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    assert not j.exists() and j.recorded_header() is None and list(j.samples()) == []
    j.open()
    j.note_fingerprint("abcdef0123456789")
    a, b = _entry("a.jpg"), _entry("cat/b.png", label=1)
    j.append(a, Digest.of(b"original a"))
    j.append(b, Digest.of(b"original b"))
    j.close()
    lines = [json.loads(ln) for ln in j.path.read_text().splitlines()]
    assert lines[0] == {"format": FORMAT, **HEADER}
    assert j.recorded_header() == {"format": FORMAT, **HEADER}
    assert j.recorded_fingerprint() == "abcdef0123456789"
    samples = list(j.samples())
    assert [s.entry for s in samples] == [a, b]
    assert [s.source_file for s in samples] == [Digest.of(b"original a"), Digest.of(b"original b")]
    assert j.paths() == {"a.png", "cat/b.png"}


def test_a_resumed_run_sees_the_finished_samples_and_writes_no_second_header(
    tmp_path: Path,
) -> None:
    first = _journal(tmp_path)
    first.open()
    first.append(_entry("a.png"), Digest.of(b"a"))
    first.close()
    again = _journal(tmp_path)  # a new process, after a kill
    assert again.exists() and [s.entry.id for s in again.samples()] == ["a.png"]
    again.open()
    again.append(_entry("b.png"), Digest.of(b"b"))
    again.append(_entry("a.png"), Digest.of(b"a, redone"))  # later lines win for one id
    again.close()
    text = again.path.read_text()
    assert text.count('"format"') == 1
    latest = {s.entry.id: s.source_file for s in again.samples()}
    assert latest == {"a.png": Digest.of(b"a, redone"), "b.png": Digest.of(b"b")}


def test_a_torn_or_damaged_line_only_costs_its_sample(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.open()
    j.append(_entry("a.png"), Digest.of(b"a"))
    j.append(_entry("b.png"), Digest.of(b"b"))
    j.close()
    good = j.path.read_bytes()
    bad_entry = {"entry": {**_entry("c.png").to_json(), "pixels": "md5:00"}, "source_file": "x"}
    j.path.write_bytes(
        good
        + b"[1, 2]\n"  # valid JSON, not an object
        + json.dumps(bad_entry).encode()
        + b"\n"  # an unparsable entry
        + b'{"entry": 3, "source_file": "sha256:00"}\n'
        + good.splitlines(keepends=True)[1][:40]  # the last line, torn by a kill
    )
    assert [s.entry.id for s in j.samples()] == ["a.png", "b.png"]
    assert j.recorded_header() == {"format": FORMAT, **HEADER}


def test_a_journal_of_another_format_has_no_header(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.path.parent.mkdir()
    j.path.write_text(json.dumps({"format": "benchmark-regen.journal/v1"}) + "\n")
    assert j.exists() and j.recorded_header() is None


def test_an_unreadable_journal_is_an_output_error(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.path.parent.mkdir()
    (tmp_path / "elsewhere.jsonl").write_text(json.dumps({"format": FORMAT}) + "\n")
    os.symlink(tmp_path / "elsewhere.jsonl", j.path)
    assert j.exists()
    with pytest.raises(OutputError, match="cannot read the run journal"):
        j.recorded_header()
    with pytest.raises(OutputError, match="cannot write the run journal"):
        j.open()


def test_remove_drops_the_journal_once_the_manifest_is_durable(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.open()
    j.append(_entry("a.png"), Digest.of(b"a"))
    j.remove()
    assert not j.exists() and list(j.samples()) == []
    j.remove()  # twice is fine


# -- records a resumed run may trust (issue #23, item 4) ------------------------------------


def _lines(j: Journal) -> list[dict[str, object]]:
    return [json.loads(ln) for ln in j.path.read_text().splitlines() if ln.strip()]


def _rewrite(j: Journal, lines: list[dict[str, object]]) -> None:
    j.path.write_text("".join(json.dumps(d, sort_keys=True) + "\n" for d in lines))


def _keyed(root: Path, *entries: ManifestEntry) -> Journal:
    """An interrupted run's journal: header, fingerprint, then ``entries``, keyed."""
    j = _journal(root)
    j.open(keyed=True)
    j.note_fingerprint("abcdef0123456789")
    for e in entries:
        j.note_writing(e.path, e.id)
        j.append(e, Digest.of(b"original " + e.id.encode()))
    j.close()
    return _journal(root)  # read back as a new process does


def test_a_keyed_journal_names_its_run_and_macs_every_record(
    tmp_path: Path, state_home: Path
) -> None:
    j = _keyed(tmp_path, _entry("a.png"), _entry("b.jpg", label=1))
    header, *records = _lines(j)
    run = header.pop("run")
    assert header == {"format": FORMAT, **HEADER}
    assert [p.name for p in state_home.iterdir()] == [f"run-{run}.key"]
    key = (state_home / f"run-{run}.key").read_bytes()
    for record in records:
        assert record["mac"] == record_mac(key, {**header, "run": run}, record)
    trusted = j.trusted()
    assert sorted(trusted.samples) == ["a.png", "b.jpg"] and trusted.notes == ()
    assert trusted.samples["b.jpg"].entry == _entry("b.jpg", label=1)
    assert j.recorded_header() == {"format": FORMAT, **HEADER, "run": run}


def test_an_unkeyed_journal_has_no_run_and_is_never_trusted(
    tmp_path: Path, state_home: Path
) -> None:
    """A run that cannot resume (``diff apply``) keeps no key."""
    j = _journal(tmp_path)
    j.open()
    j.note_fingerprint("abcdef0123456789")
    j.append(_entry("a.png"), Digest.of(b"a"))
    j.close()
    assert all("mac" not in d and "run" not in d for d in _lines(j))
    assert not state_home.exists()
    trusted = j.trusted()
    assert trusted.samples == {}
    assert trusted.notes == (
        f"1 finished sample(s) in the run journal {j.path} are not trusted, and are made "
        "again: the journal names no run key (it was written without one)",
    )


def _changes() -> dict[str, object]:
    """What a co-user might do to the first sample record (line 3) of :func:`_keyed`."""

    def label(doc: dict) -> None:  # type: ignore[type-arg]
        doc["entry"]["columns"]["label"] = 0

    def digests(doc: dict) -> None:  # type: ignore[type-arg]
        doc["entry"]["file"] = str(Digest.of(b"another png"))
        doc["entry"]["pixels"] = str(Digest.of(b"other pixels"))

    def source(doc: dict) -> None:  # type: ignore[type-arg]
        doc["source_file"] = str(Digest.of(b"another original"))

    def mac_dropped(doc: dict) -> None:  # type: ignore[type-arg]
        del doc["mac"]

    def mac_of_another_record(doc: dict) -> None:  # type: ignore[type-arg]
        doc["mac"] = "0" * 64

    def mac_not_ascii(doc: dict) -> None:  # type: ignore[type-arg]
        doc["mac"] = "é" * 64  # hmac.compare_digest raises on it (found by fuzz)

    return {
        f.__name__: f
        for f in (label, digests, source, mac_dropped, mac_of_another_record, mac_not_ascii)
    }


@pytest.mark.parametrize("change", sorted(_changes()))
def test_a_changed_record_is_not_trusted(tmp_path: Path, change: str) -> None:
    j = _keyed(tmp_path, _entry("cat/b.png", label=1), _entry("c.png"))
    lines = _lines(j)
    assert lines[3]["entry"]["id"] == "cat/b.png"  # type: ignore[index]
    _changes()[change](lines[3])  # type: ignore[operator]
    _rewrite(j, lines)
    trusted = j.trusted()
    assert sorted(trusted.samples) == ["c.png"]
    assert "1 finished sample(s)" in trusted.notes[0]
    assert "do not verify under the run's key" in trusted.notes[0]
    assert [s.entry.id for s in j.samples()] == ["cat/b.png", "c.png"]  # for --overwrite


def test_a_record_verifies_only_under_its_own_journals_header(tmp_path: Path) -> None:
    """A record copied from another journal of the user's (another run, shard or recipe),
    even with that run's id put in the header, is not trusted."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "other").mkdir()
    mine = _keyed(tmp_path / "mine", _entry("a.png"))
    other = Journal(tmp_path / "other", REL, {**HEADER, "recipe": "gaussian-noise@1.0"})
    other.open(keyed=True)
    other.note_fingerprint("abcdef0123456789")
    other.append(_entry("b.png"), Digest.of(b"original b.png"))
    other.close()
    header, *records = _lines(mine)
    other_header, *other_records = _lines(other)
    _rewrite(mine, [header, *records, *other_records])
    assert sorted(mine.trusted().samples) == ["a.png"]
    _rewrite(mine, [{**header, "run": other_header["run"]}, *records, *other_records])
    assert mine.trusted().samples == {}  # the other run's key, but not its header


def test_records_before_a_verified_fingerprint_are_not_trusted(tmp_path: Path) -> None:
    """Without the fingerprint line, a resume in another environment would trust what
    this one made: deleting it, or forging one, costs redoing the samples."""
    j = _keyed(tmp_path, _entry("a.png"))
    header, fingerprint, *rest = _lines(j)
    _rewrite(j, [header, *rest])
    assert j.trusted().samples == {}
    _rewrite(j, [header, {**fingerprint, "fingerprint": "0" * 16}, *rest])
    assert j.trusted().samples == {}
    _rewrite(j, [header, *rest, fingerprint])  # after the record: not before it
    assert j.trusted().samples == {}


def test_the_recorded_fingerprint_is_a_verified_one_when_there_is_one(tmp_path: Path) -> None:
    j = _keyed(tmp_path, _entry("a.png"))
    header, fingerprint, *rest = _lines(j)
    forged = {"fingerprint": "0123456789abcdef"}
    _rewrite(j, [header, forged, fingerprint, *rest])
    j.open(keyed=True)  # resumed: the key is loaded
    assert j.recorded_fingerprint() == "abcdef0123456789"
    j.close()
    _rewrite(j, [header, forged, *rest])  # none verifies: the first (a resume refuses)
    j.open(keyed=True)
    assert j.recorded_fingerprint() == "0123456789abcdef"
    j.close()


def test_a_missing_key_trusts_nothing_and_the_resumed_run_makes_a_new_one(
    tmp_path: Path, state_home: Path
) -> None:
    j = _keyed(tmp_path, _entry("a.png"), _entry("b.png"))
    run = _lines(j)[0]["run"]
    (state_home / f"run-{run}.key").unlink()
    trusted = j.trusted()
    assert trusted.samples == {}
    assert trusted.notes == (
        f"2 finished sample(s) in the run journal {j.path} are not trusted, and are made "
        f"again: the run key (run-{run}.key, in {key_folder()}) is missing or damaged",
    )
    j.open(keyed=True)  # the resumed run: a new key, under the same run id
    j.note_fingerprint("abcdef0123456789")
    j.append(_entry("a.png"), Digest.of(b"original a.png"))
    j.close()
    assert (state_home / f"run-{run}.key").is_file()
    trusted = j.trusted()
    assert sorted(trusted.samples) == ["a.png"]  # the old record of b.png: still not trusted
    assert "1 finished sample(s)" in trusted.notes[0]


def test_a_deep_or_damaged_line_is_skipped_with_a_note_never_a_traceback(tmp_path: Path) -> None:
    j = _keyed(tmp_path, _entry("a.png"), _entry("b.png"))
    raw = j.path.read_bytes().splitlines(keepends=True)
    deep = b"[" * 5000 + b"]" * 5000 + b"\n"
    j.path.write_bytes(b"".join([*raw[:3], deep, b"{not json\n", *raw[3:], b'{"entry": ']))
    trusted = j.trusted()  # a RecursionError escaped here before
    assert sorted(trusted.samples) == ["a.png", "b.png"]
    assert trusted.notes == (
        f"the run journal {j.path}, line 4: not valid JSON (nested too deep): skipped",
        f"the run journal {j.path}, line 5: not valid JSON (Expecting property name enclosed "
        "in double quotes: line 1 column 2 (char 1)): skipped",
    )  # the torn last line is no news: a kill leaves one
    assert [s.entry.id for s in j.samples()] == ["a.png", "b.png"]
    j.path.write_bytes(deep + b"".join(raw[1:]))  # as the header: not our journal
    assert j.recorded_header() is None and j.trusted().samples == {}


def test_a_resumed_journal_starts_on_a_new_line(tmp_path: Path) -> None:
    """A line torn by the kill does not swallow the first line the resumed run writes."""
    j = _keyed(tmp_path, _entry("a.png"))
    with j.path.open("ab") as f:
        f.write(b'{"entry": {"columns": {}, "file": "sha2')  # torn
    j.open(keyed=True)
    j.note_fingerprint("abcdef0123456789")
    j.append(_entry("b.png"), Digest.of(b"original b.png"))
    j.close()
    trusted = j.trusted()
    assert sorted(trusted.samples) == ["a.png", "b.png"]
    assert len(trusted.notes) == 1 and "line 5: not valid JSON" in trusted.notes[0]


@pytest.mark.parametrize("spoil", ["open to others", "a file", "a link"])
def test_a_key_that_cannot_be_stored_safely_leaves_a_note_and_trusts_nothing(
    tmp_path: Path, state_home: Path, spoil: str
) -> None:
    elsewhere = tmp_path / "co-user"
    elsewhere.mkdir()
    state_home.parent.mkdir()
    if spoil == "open to others":
        state_home.mkdir(mode=0o777)
        state_home.chmod(0o777)
    elif spoil == "a file":
        state_home.write_bytes(b"")
    else:
        state_home.symlink_to(elsewhere, target_is_directory=True)
    j = _journal(tmp_path)
    j.open(keyed=True)
    j.note_fingerprint("abcdef0123456789")
    j.append(_entry("a.png"), Digest.of(b"original a.png"))
    j.close()
    assert len(j.notes) == 1
    assert j.notes[0].startswith("the run key could not be stored (")
    assert j.notes[0].endswith("if this run is interrupted, --resume makes every sample again")
    assert list(elsewhere.iterdir()) == []  # nothing written through the link
    assert not state_home.is_dir() or list(state_home.iterdir()) == []
    assert all("mac" not in d for d in _lines(j))
    assert _journal(tmp_path).trusted().samples == {}


def test_remove_drops_the_key_of_the_run(tmp_path: Path, state_home: Path) -> None:
    j = _journal(tmp_path)
    j.open(keyed=True)
    j.append(_entry("a.png"), Digest.of(b"a"))
    assert len(list(state_home.iterdir())) == 1
    j.remove()
    assert not j.exists() and list(state_home.iterdir()) == []
