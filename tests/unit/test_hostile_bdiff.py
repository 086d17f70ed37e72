"""Hostile ``.bdiff`` files (issue #15, items 5, 6, 7 and 10).

* Item 5: a container built with our own writer (correct digests, canonical manifest,
  consistent root) whose manifest names paths we would never write is refused, exit 3,
  before anything is written, even with ``--shard 0/1`` into a folder holding those files.
* Item 6: a sparse file of a few KiB declaring a 1 GiB manifest is refused without
  reading (allocating) the declared size.
* Item 7: the ``.bdiff`` swapped for another (unsigned) one between the signature check
  and its use, again and again: ``get_benchmark(..., pubkey=...)`` never applies what was
  not checked.
* Item 10: a duplicate original matched by id for one entry is found by content for
  another, by ``apply`` and ``check`` alike.
* Recipe entries (issue #27): a container sealed with the originals' own keys, whose
  recipe entries name code (a file, a module) or hold a plaintext that is not a recipe
  entry's head, runs nothing of it and rebuilds nothing from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from tests.diff_cases import build, pinned, tiny_original
from tests.hostile import bytes_read, peak_allocation
from tests.hostile_bdiff import forge, sparse_header
from toolchain.audit.sign import generate_key, sign_manifest_bytes
from toolchain.audit.verify import verify_benchmark
from toolchain.cli import cli
from toolchain.codec.decode import decode
from toolchain.diff import check_diff, get_benchmark
from toolchain.diff.apply import Status
from toolchain.diff.codec import recipe_payload
from toolchain.diff.crypto import derive_key, fingerprint, seal_payload
from toolchain.diff.format import KeyOn, PayloadKind, SealedEntry, benchmark_id, write_diff
from toolchain.diff.inspect import inspect_diff
from toolchain.diff.locate import Found
from toolchain.diff.reader import open_diff
from toolchain.errors import DiffFormatError, ExitCode, RecipeError, SignatureError
from toolchain.model.manifest import MANIFEST_NAME, Manifest, dump_manifest, load_manifest

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Plaintext = Callable[[npt.NDArray[np.uint8]], bytes]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(an original, a benchmark made from it, its .bdiff)."""
    work = tmp_path_factory.mktemp("bdiff")
    original = tiny_original(work / "original")
    bench, diff = build(original, "identity", work)
    return original, bench, diff


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


HOSTILE_PAIRS = {
    "notes.txt": [("notes.txt", "notes.txt")],
    "src/main.py": [("src/main.py", "src/main.py")],
    "manifest.json": [("manifest.json", "manifest.json")],
    "metadata.jsonl": [("metadata.jsonl", "metadata.jsonl")],
    "our state folder": [(".benchmark-regen/x.png", ".benchmark-regen/x.png")],
    "x and x/y.png": [("x.png", "x.png"), ("x.png/y.png", "x.png/y.png")],
    "x (no suffix) and x/y.png": [("x", "x"), ("x/y.png", "x/y.png")],
    "case collision": [("A.png", "A.png"), ("a.png", "a.png")],
    "path disagrees with its id": [("a/one.png", "b/one.png")],
    "escape": [("../victim.png", "../victim.png")],
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PAIRS))
def test_a_forged_container_naming_paths_we_never_write_is_refused(
    case: tuple[Path, Path, Path], tmp_path: Path, name: str
) -> None:
    original, bench, _ = case
    template = load_manifest(bench / "manifest.json")
    forged = tmp_path / "forged.bdiff"
    forge(forged, template, HOSTILE_PAIRS[name])
    # A folder shared with other shards, holding exactly the files the container names.
    out = tmp_path / "out"
    for rel in ("notes.txt", "src/main.py", "manifest.json", "metadata.jsonl",
                ".benchmark-regen/x.png", "x", "b/one.png", "a.png"):  # fmt: skip
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(b"the user's " + rel.encode())
    before = _files(out)
    for args in (
        ["diff", "apply", "--original", str(original), "--diff", str(forged), "--out", str(out),
         "--shard", "0/1"],
        ["diff", "apply", "--original", str(original), "--diff", str(forged), "--out", str(out),
         "--overwrite"],
        ["diff", "check", "--original", str(original), "--diff", str(forged)],
        ["diff", "inspect", str(forged)],
    ):  # fmt: skip
        with pinned():
            r = CliRunner().invoke(cli, args)
        assert r.exit_code == ExitCode.BAD_INPUT, (args, r.output)
        assert "carried manifest" in r.output and "Traceback" not in r.output
    assert _files(out) == before
    assert not (tmp_path / "victim.png").exists()


def test_the_forger_makes_valid_containers(case: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """The control: with paths we would write, the forged container opens."""
    _, bench, _ = case
    forge(tmp_path / "ok.bdiff", load_manifest(bench / "manifest.json"),
          [("cats/a.png", "cats/a.png"), ("dogs/b.jpg", "dogs/b.png")])  # fmt: skip
    with open_diff(tmp_path / "ok.bdiff") as reader:
        assert [e.path for e in reader.manifest.entries] == ["cats/a.png", "dogs/b.png"]
        assert len(reader.read_sealed(1)) == 64


@pytest.mark.parametrize("entries", [1, 1 << 16, 1 << 20])
@pytest.mark.parametrize("prefix", [0, 3 << 20])
def test_a_sparse_file_declaring_a_1_gib_manifest_costs_nothing(
    tmp_path: Path, entries: int, prefix: int
) -> None:
    """A few KiB on disk, 1 GiB declared. With 65536 entries the declared length is within
    the per-entry bound, and the reader allocated the whole gibibyte (1029 MiB measured)."""
    p = tmp_path / "sparse.bdiff"
    size = sparse_header(p, manifest_length=1 << 30, entry_count=entries,
                         prefix=b"{" + b" " * prefix)  # fmt: skip
    assert os.stat(p).st_blocks * 512 <= prefix + (1 << 16) < size // 256

    def attempt() -> None:
        with pytest.raises(DiffFormatError, match=r"implausible|holds byte 0x00") as e:
            open_diff(p)
        assert e.value.exit_code == ExitCode.BAD_INPUT

    peak = peak_allocation(attempt)
    assert peak < prefix + (8 << 20), f"{peak >> 20} MiB allocated"
    read = bytes_read(attempt)  # the manifest goes 1 MiB at a time: one read past the prefix
    assert read < prefix + (2 << 20), f"{read >> 20} MiB read"


def test_an_index_larger_than_its_manifest_is_refused_before_reading(tmp_path: Path) -> None:
    p = tmp_path / "index.bdiff"
    sparse_header(p, manifest_length=1 << 20, entry_count=1 << 16)
    peak = peak_allocation(lambda: open_diff(p))
    with pytest.raises(DiffFormatError, match="cannot fit in a manifest of"):
        open_diff(p)
    assert peak < 2 << 20  # the 5.5 MiB index is never read: 1 MiB is the open file's buffer


# -- item 7: swapped between the signature check and the use -------------------------------


def test_a_swapped_diff_is_never_applied_unchecked(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    bench_a, signed = build(original, "identity", tmp_path / "a")
    _, unsigned = build(original, "gaussian-noise", tmp_path / "b")
    keys = generate_key(tmp_path / "publisher.key")
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(keys.private.read_bytes(), password=None)
    with open_diff(signed) as reader:
        sig = tmp_path / "signed.bdiff.sig"
        sig.write_bytes(sign_manifest_bytes(reader.manifest_bytes, key))  # type: ignore[arg-type]
    root_a = load_manifest(bench_a / "manifest.json").root
    target = tmp_path / "target.bdiff"
    shutil.copy(signed, target)
    stop = threading.Event()
    swaps = [0]

    def swapper() -> None:
        while not stop.is_set():
            for src in (unsigned, signed):
                tmp = tmp_path / f"swap-{swaps[0]}"
                os.link(src, tmp)
                os.replace(tmp, target)  # atomic: the path names one or the other
                swaps[0] += 1

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    applied = refused = 0
    try:
        for i in range(40):
            out = tmp_path / f"out-{i}"
            try:
                with pinned():
                    result = get_benchmark(original, target, out, pubkey=keys.public,
                                           signature=sig)  # fmt: skip
            except SignatureError:
                refused += 1
                assert not out.exists() or not any(out.rglob("*.png"))
                continue
            applied += 1
            assert result.ok and result.manifest.root == root_a
            assert load_manifest(out / "manifest.json").root == root_a
            assert verify_benchmark(out).ok
    finally:
        stop.set()
        thread.join(10)
    assert swaps[0] > 40 and applied + refused == 40
    assert applied and refused, f"the race was not exercised: {applied} applied, {refused} refused"


# -- item 10: a duplicate original ---------------------------------------------------------


def test_a_duplicate_found_by_id_for_one_entry_is_found_by_content_for_another(
    tmp_path: Path,
) -> None:
    original = tiny_original(tmp_path / "original")
    shutil.copy(original / "a/one.png", original / "b/copy-of-one.png")
    bench, diff = build(original, "identity", tmp_path / "work")
    (original / "b/copy-of-one.png").unlink()  # the user has the image once, at a/one.png
    report = check_diff(original, diff)
    found = {e.id: (e.found, e.source) for e in report.entries}
    assert found["a/one.png"] == (Found.BY_ID, "a/one.png")
    assert found["b/copy-of-one.png"] == (Found.BY_CONTENT, "a/one.png"), found
    assert report.ok
    with pinned():
        result = get_benchmark(original, diff, tmp_path / "out")
    assert result.ok, [o.message for o in result.failures()]
    by_id = {o.id: o.found for o in result.outcomes}
    assert by_id["b/copy-of-one.png"] is Found.BY_CONTENT
    digest = hashlib.sha256((bench / "b/copy-of-one.png").read_bytes()).hexdigest()
    assert hashlib.sha256((tmp_path / "out/b/copy-of-one.png").read_bytes()).hexdigest() == digest


# -- recipe entries (issue #27) ------------------------------------------------------------


def _seal_recipe_entries(
    path: Path, original: Path, manifest: Manifest, plaintext: Plaintext = recipe_payload
) -> None:
    """A container of recipe entries for ``manifest``, each ``plaintext(original pixels)``
    sealed with the key of its original, as the publisher's ``diff create`` seals: every
    digest and every tag is right, whatever the plaintext says."""
    text = dump_manifest(manifest)
    bid = benchmark_id(text)
    sealed = []
    for i, e in enumerate(manifest.entries):
        data = (original / e.id).read_bytes()
        key = derive_key(data, salt=bid, key_on=KeyOn.FILE, sample_id=e.id)
        sealed.append(
            SealedEntry(
                index=i,
                kind=PayloadKind.RECIPE,
                fingerprint=fingerprint(data, key_on=KeyOn.FILE, salt=bid),
                sealed=seal_payload(key, PayloadKind.RECIPE, plaintext(decode(data))),
            )
        )
    write_diff(
        path, key_on=KeyOn.FILE, manifest_bytes=text, entries=sealed, entry_count=len(sealed)
    )


EVIL = '''"""Imported, it leaves a mark: what a diff naming it must never do (test-local)."""

import pathlib

pathlib.Path(__file__).with_name("ran").write_text("a diff ran this code")


def evil(pixels, rng):
    return pixels
'''


@pytest.mark.parametrize("named", ["a file", "a module"])
def test_recipe_entries_naming_code_never_run_it(
    case: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: str
) -> None:
    original, bench, _ = case
    (tmp_path / "evil_recipe.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(tmp_path))  # importable as a module, too
    name = f"{tmp_path / 'evil_recipe.py'}:evil" if named == "a file" else "evil_recipe:evil"
    m = load_manifest(bench / MANIFEST_NAME)
    hostile = Manifest.build(
        recipe=dataclasses.replace(m.recipe, name=name),
        entries=m.entries,
        fingerprint=m.fingerprint,
        encoder=m.encoder,
        provenance=m.provenance,
    )
    forged = tmp_path / "forged.bdiff"
    _seal_recipe_entries(forged, original, hostile)
    out = tmp_path / "out"
    with pinned(), pytest.raises(RecipeError) as e:
        get_benchmark(original, forged, out)
    assert e.value.message.startswith(f"the diff's recipe entries name the recipe {name!r}")
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert inspect_diff(forged).recipe_entries.startswith(
        f"they name {name}@1.0 (seed 0), which cannot be run here: "
    )
    assert not out.exists()
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("plaintext", "detail"),
    [
        (lambda px: recipe_payload(px) + b"\x00", "holds bytes after its header"),
        (lambda px: struct.pack("<BBHII", 1, 3, 0, 4, 4), "method 1 does not match kind RECIPE"),
        (lambda px: struct.pack("<BBHII", 5, 3, 0, 1 << 20, 1 << 20), "is out of bounds"),
    ],
    ids=["trailing bytes", "a delta's head", "a huge shape"],
)
def test_a_recipe_entry_that_is_not_a_recipe_head_is_broken(
    case: tuple[Path, Path, Path], tmp_path: Path, plaintext: Plaintext, detail: str
) -> None:
    original, bench, _ = case
    manifest = load_manifest(bench / MANIFEST_NAME)
    honest, forged = tmp_path / "honest.bdiff", tmp_path / "forged.bdiff"
    _seal_recipe_entries(honest, original, manifest)
    _seal_recipe_entries(forged, original, manifest, plaintext)
    with pinned():
        assert get_benchmark(original, honest, tmp_path / "honest").ok  # the sealing is right
        result = get_benchmark(original, forged, tmp_path / "out")
    bad = result.failures()
    assert [o.id for o in bad] == [e.id for e in manifest.entries]
    assert {o.status for o in bad} == {Status.BROKEN}
    assert all(o.message.startswith(f"sample {o.id}: cannot be rebuilt: ") for o in bad)
    assert all(detail in o.message for o in bad), bad[0].message
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()
