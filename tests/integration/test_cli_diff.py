"""``benchmark-regen diff ...`` through Click's CliRunner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import Result

from tests.cli import diff_apply_args, diff_create_args, generate_args, run_cli
from tests.diff_cases import pinned, tiny_original
from tests.hf_cases import class_records, hf_offline, make_dataset, to_hub_parquet
from toolchain.cluster.jobs import JobSpec
from toolchain.diff import create_diff
from toolchain.diff.dataset import is_diff_dataset
from toolchain.errors import ExitCode
from toolchain.model.manifest import MANIFEST_NAME, load_manifest

__all__ = ["hf_offline"]  # the fixture, used by name below


def run(*args: str | Path) -> Result:
    """In this process, pinned (no worker pool to spawn); an exception is a test failure."""
    return run_cli(*args, pinned=True, catch_exceptions=False)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("cli")
    original = tiny_original(work / "original")
    bench, bdiff = work / "bench", work / "x.bdiff"
    r = run(*generate_args(original, bench, "adversarial", quiet=True))
    assert r.exit_code == 0, r.output
    r = run(*diff_create_args(original, bench, bdiff, quiet=True))
    assert r.exit_code == 0, r.output
    # adversarial is shipped: by default every sample it reproduces is a recipe entry
    assert "5 samples (5 recipe, 0 delta, 0 full)" in r.output
    return original, bench, bdiff


def test_create_inspect_check_apply(published: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, bench, bdiff = published
    root = str(load_manifest(bench / MANIFEST_NAME).root)
    info = json.loads(run("diff", "inspect", bdiff, "--json").output)
    assert info["samples"] == 5 and info["key_on"] == "file" and info["integrity"] == "ok"
    assert info["manifest"]["root"] == root
    assert sum(info["kinds"].values()) == 5
    check = run("diff", "check", "--original", original, "--diff", bdiff, "--json")
    assert check.exit_code == 0
    assert json.loads(check.output)["counts"]["found-by-id"] == 5
    r = run(*diff_apply_args(original, bdiff, tmp_path / "out", quiet=True))
    assert r.exit_code == 0, r.output
    assert f"root {root}" in r.output
    assert run("verify", tmp_path / "out").exit_code == 0


def test_apply_with_two_workers(published: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, bench, bdiff = published
    r = run(*diff_apply_args(original, bdiff, tmp_path / "o", workers=2, json=True))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["ok"] and doc["root"] == str(load_manifest(bench / MANIFEST_NAME).root)
    assert doc["found"]["found-by-id"] == doc["status"]["ok"] == 5
    assert doc["found"]["missing"] == doc["status"]["missing"] == 0


def test_create_is_deterministic(published: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, bench, bdiff = published
    again = tmp_path / "again.bdiff"
    assert run(*diff_create_args(original, bench, again, quiet=True)).exit_code == 0
    assert again.read_bytes() == bdiff.read_bytes()


@pytest.fixture
def damaged(published: tuple[Path, Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """(a copy of the original without b/four.png and with a/two.jpg altered, the .bdiff)."""
    original, _, bdiff = published
    copy = Path(shutil.copytree(original, tmp_path / "damaged"))
    (copy / "b/four.png").unlink()
    p = copy / "a/two.jpg"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x10
    p.write_bytes(bytes(data))
    return copy, bdiff


def test_wrong_original_fails_with_the_message(damaged: tuple[Path, Path], tmp_path: Path) -> None:
    copy, bdiff = damaged
    r = run(*diff_apply_args(copy, bdiff, tmp_path / "out", quiet=True))
    assert r.exit_code == 1
    assert (
        "sample a/two.jpg: your copy of the original differs from the one this benchmark "
        "was made from"
    ) in r.output
    assert "sample b/four.png: not found in the original" in r.output
    assert (
        "3 of 5 samples bit-exact (3 found by id, 0 by content, 1 missing, 1 different)" in r.output
    )
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()
    check = run("diff", "check", "--original", copy, "--diff", bdiff, "--json")
    assert check.exit_code == 1
    doc = json.loads(check.output)
    assert {e["id"]: e["found"] for e in doc["entries"] if e["found"] != "found-by-id"} == {
        "a/two.jpg": "present-but-different",
        "b/four.png": "missing",
    }


def test_partial_exits_5_and_never_verifies(damaged: tuple[Path, Path], tmp_path: Path) -> None:
    copy, bdiff = damaged
    out = tmp_path / "out"
    r = run(*diff_apply_args(copy, bdiff, out, partial=True, quiet=True))
    assert r.exit_code == 5, r.output
    assert (out / "coverage.json").exists() and (out / MANIFEST_NAME).exists()
    assert len(list(out.rglob("*.png"))) == 3
    assert run("verify", out).exit_code == 1


def test_truncated_diff_is_bad_input(published: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, _, bdiff = published
    cut = tmp_path / "cut.bdiff"
    cut.write_bytes(bdiff.read_bytes()[:-100])
    r = run("diff", "inspect", cut)
    assert r.exit_code == 3
    size = cut.stat().st_size
    assert f"offset {size}" in r.output and "truncated" in r.output


def test_create_refuses_a_tampered_benchmark(
    published: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, bench, _ = published
    copy = Path(shutil.copytree(bench, tmp_path / "bench"))
    (copy / "stray.png").write_bytes(b"x")
    r = run(*diff_create_args(original, copy, tmp_path / "x.bdiff"))
    assert r.exit_code == 3
    assert "does not verify" in r.output
    assert not (tmp_path / "x.bdiff").exists()


def test_audit_json(published: tuple[Path, Path, Path], tmp_path: Path) -> None:
    original, _, bdiff = published
    doc = json.loads(run("diff", "audit", "--diff", bdiff, "--original", original, "--json").output)
    # recipe entries hold no delta; their 28-byte payloads count only in the test of all bytes
    assert doc["sealed"]["payloads"] == 0 and doc["sealed"]["degrees_of_freedom"] == 255
    assert doc["recipe_entries"]["count"] == 5 and "delta" not in doc
    assert doc["recipe_entries"]["recipe"] == "adversarial@2.0 (seed 2024)"
    assert doc["recipe_entries"]["reveals"].startswith("nothing about the original")
    text = run("diff", "audit", "--diff", bdiff).output
    assert "recipe entries: 5, naming adversarial@2.0 (seed 2024); each reveals nothing" in text
    with pinned():
        create_diff(original, published[1], tmp_path / "d.bdiff", entries="delta")
    doc = json.loads(
        run(
            "diff", "audit", "--diff", tmp_path / "d.bdiff", "--original", original, "--json"
        ).output
    )
    assert doc["sealed"]["payloads"] == 5 and "recipe_entries" not in doc
    assert "mean_psnr_gain_db" in doc["delta"]


def test_apply_in_shards_merges_to_the_carried_root(
    published: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Each shard runs what a Slurm or Kubernetes task of `jobs` runs (`--shard I/N
    --resume`), the first shard twice, as a task that is run again."""
    original, bench, bdiff = published
    root = str(load_manifest(bench / MANIFEST_NAME).root)
    out = tmp_path / "sharded"
    command = ("diff", "apply", "--original", str(original), "--diff", str(bdiff),
               "--out", str(out), "-q")  # fmt: skip
    spec = JobSpec(name="apply", shards=3, image="unused", command=command, out=str(out),
                   runtime="none")  # fmt: skip
    for i in (2, 0, 0, 1):
        r = run(*spec.shard_argv(str(i))[1:])
        assert r.exit_code == 0, r.output
    assert not (out / MANIFEST_NAME).exists()
    shards = [out / f"manifest.shard-{i}-of-3.json" for i in range(3)]
    r = run("manifest", "merge", *shards, "--out", out / MANIFEST_NAME, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["root"] == root
    assert (out / MANIFEST_NAME).read_bytes() == (bench / MANIFEST_NAME).read_bytes()
    assert run("verify", out).exit_code == 0


def test_apply_checks_the_signature_before_the_original(
    published: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    original, bench, bdiff = published
    key = tmp_path / "k"
    assert run("key", "generate", "--out", key).exit_code == 0
    assert run("sign", bench / MANIFEST_NAME, "--key", key, "--out",
               Path(f"{bdiff}.sig")).exit_code == 0  # fmt: skip
    ok = run(*diff_apply_args(original, bdiff, tmp_path / "a", pubkey=f"{key}.pub", quiet=True))
    assert ok.exit_code == 0 and "signature OK" in ok.output
    other = tmp_path / "other"
    assert run("key", "generate", "--out", other).exit_code == 0
    bad = run(*diff_apply_args(original, bdiff, tmp_path / "b", pubkey=f"{other}.pub", quiet=True))
    assert bad.exit_code == 3 and "signed by another key" in bad.output
    assert not (tmp_path / "b").exists()  # nothing touched before the signature check
    Path(f"{bdiff}.sig").unlink()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_corrupt_payload_is_named_by_the_worker_that_reads_it(
    published: tuple[Path, Path, Path], tmp_path: Path, workers: str
) -> None:
    """A worker reads its payload itself (it does not cross the pipe): a flipped byte in
    it is refused there, named by its entry, and nothing that looks finished is left."""
    original, bench, bdiff = published
    bad = tmp_path / "bad.bdiff"
    data = bytearray(bdiff.read_bytes())
    data[-3] ^= 0x01  # inside the last entry's sealed payload
    bad.write_bytes(bytes(data))
    out = tmp_path / "out"
    r = run(*diff_apply_args(original, bad, out, workers=workers, quiet=True))
    assert r.exit_code == 3, r.output
    last = load_manifest(bench / MANIFEST_NAME).entries[-1].id
    assert f"entry {last!r}" in r.output and "payload digest mismatch" in r.output
    assert "Traceback" not in r.output
    assert not (out / MANIFEST_NAME).exists()


# -- diff create takes the original's options (--split, --config, --ids, ...) and --format --


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hub-layout original that no default reads: two configs, each with two splits."""
    root = tmp_path_factory.mktemp("hub") / "hub"
    rows = class_records(6)
    for config, take in (("full", rows), ("mini", rows[:3])):
        ds = make_dataset(take)
        for split in ("validation", "test"):
            to_hub_parquet(ds, root, split, config=config)
    return root


# The original as a benchmark's generate read it: config `full`, split `test`, row ids,
# the label carried and the caption dropped.
HF_OPTIONS = {"config": "full", "split": "test", "ids": "row", "image_column": "image",
              "columns": "label"}  # fmt: skip


@pytest.mark.parametrize("diff_format", ["bdiff", "parquet"])
def test_create_reads_the_original_as_told_and_writes_the_format_asked(
    hub: Path, tmp_path: Path, hf_offline: Path, diff_format: str
) -> None:
    bench = tmp_path / "bench"
    r = run(*generate_args(hub, bench, "gaussian-noise", quiet=True, **HF_OPTIONS))
    assert r.exit_code == 0, r.output
    manifest = load_manifest(bench / MANIFEST_NAME)
    assert manifest.entries[0].id == "test/0" and [c.name for c in manifest.columns] == ["label"]
    out = tmp_path / ("x.bdiff" if diff_format == "bdiff" else "xdiff")
    r = run(*diff_create_args(hub, bench, out, format=diff_format, quiet=True, **HF_OPTIONS))
    assert r.exit_code == 0, r.output
    assert f"wrote {out}: {len(manifest.entries)} samples" in r.output
    if diff_format == "parquet":
        assert out.is_dir() and is_diff_dataset(out)
        assert (out / "data").is_dir() and (out / MANIFEST_NAME).is_file()
    else:
        assert out.is_file() and not is_diff_dataset(out)
    r = run(*diff_apply_args(hub, out, tmp_path / "again", json=True, **HF_OPTIONS))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["ok"] and doc["root"] == str(manifest.root)
    assert (tmp_path / "again" / MANIFEST_NAME).read_bytes() == (bench / MANIFEST_NAME).read_bytes()


@pytest.mark.parametrize("drop", ["split", "config"])
def test_without_split_or_config_create_and_apply_read_the_recorded_ones(
    hub: Path, tmp_path: Path, hf_offline: Path, drop: str
) -> None:
    """The hub has splits test and validation, configs full and mini: given neither, the
    diff commands read the ones the manifest records instead of asking."""
    bench = tmp_path / "bench"
    assert run(*generate_args(hub, bench, "identity", quiet=True, **HF_OPTIONS)).exit_code == 0
    out, options = tmp_path / "x.bdiff", {**HF_OPTIONS, drop: None}
    r = run_cli(*diff_create_args(hub, bench, out, quiet=True, **options), pinned=True)
    assert r.exit_code == 0, r.output
    r = run(*diff_apply_args(hub, out, tmp_path / "again", json=True, **options))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "again" / MANIFEST_NAME).read_bytes() == (bench / MANIFEST_NAME).read_bytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"config": "mini"}, "3 samples of the benchmark are not in the original"),  # 3 rows
        ({"ids": "auto"}, "6 samples of the benchmark are not in the original"),  # path ids
        ({"image_column": "caption"}, "column 'caption' of split 'test'"),
        ({"columns": "nosuch"}, "no carryable column 'nosuch'"),
    ],
)
def test_create_refuses_the_original_read_otherwise(
    hub: Path, tmp_path: Path, hf_offline: Path, change: dict[str, str | None], message: str
) -> None:
    """Each option reaches the source: read another way, the original is refused."""
    bench = tmp_path / "bench"
    assert run(*generate_args(hub, bench, "identity", quiet=True, **HF_OPTIONS)).exit_code == 0
    out = tmp_path / "x.bdiff"
    r = run_cli(*diff_create_args(hub, bench, out, quiet=True, **{**HF_OPTIONS, **change}),
                pinned=True)  # fmt: skip
    assert r.exit_code == ExitCode.BAD_INPUT, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not out.exists()
