"""toolchain.run.journal: the plan digest, what a resumed run sees, and how a torn or
damaged journal only costs redoing samples."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from toolchain.errors import OutputError
from toolchain.model.hashing import Digest
from toolchain.model.manifest import ManifestEntry
from toolchain.run.journal import FORMAT, Journal, plan_digest

REL = ".benchmark-regen/journal-all.jsonl"
HEADER = {"recipe": "identity@1.0", "shard": None, "plan": "sha256:" + "0" * 64}


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
