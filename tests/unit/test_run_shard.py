"""toolchain.run.shard: shard membership, and merging shard manifests (the odd shard named
by majority, on synthetic manifests and on real shards of real photographs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.diff_cases import pinned
from toolchain.errors import DeterminismError, ExitCode, ManifestError, ShardSpecError
from toolchain.model.hashing import Digest
from toolchain.model.manifest import (
    Manifest,
    ManifestEntry,
    Provenance,
    RecipeIdentity,
    load_manifest,
    write_manifest,
)
from toolchain.run.executor._worker import check_same_environment
from toolchain.run.generate import generate_benchmark
from toolchain.run.shard import Shard, merge_files, merge_manifests, parse_shard

IDS = [f"class{i % 5}/img{i:04d}.jpg" for i in range(200)]
RECIPE = RecipeIdentity(name="r", version="1", seed=1, source=Digest.of(b"s"))
FP = {"numpy": "2.4.6"}


def _entry(sid: str) -> ManifestEntry:
    d = Digest.of(sid.encode())
    return ManifestEntry(id=sid, path=sid.replace(".jpg", ".png"), pixels=d, file=d, source=d)


def _shards(n: int, ids: list[str] = IDS, recipe: RecipeIdentity = RECIPE) -> list[Manifest]:
    prov = Provenance(samples_used=len(ids), samples_in_original=len(ids))
    out = []
    for i in range(n):
        s = Shard(index=i, count=n)
        out.append(
            Manifest.build(
                recipe=recipe,
                entries=[_entry(x) for x in ids if s.contains(x)],
                fingerprint=FP,
                provenance=prov,
                shard=str(s),
            )
        )
    return out


def test_shards_partition_the_ids() -> None:
    for n in (1, 3, 7):
        owners = [[i for i in range(n) if Shard(index=i, count=n).contains(x)] for x in IDS]
        assert all(len(o) == 1 for o in owners)
    sizes = [sum(Shard(index=i, count=4).contains(x) for x in IDS) for i in range(4)]
    assert min(sizes) > 30  # roughly balanced


def test_merge_equals_unsharded_root_in_any_order() -> None:
    whole = Manifest.build(
        recipe=RECIPE,
        entries=[_entry(x) for x in IDS],
        fingerprint=FP,
        provenance=Provenance(samples_used=200, samples_in_original=200),
    )
    assert merge_manifests(_shards(3)).root == whole.root
    merged = merge_manifests(list(reversed(_shards(7))))
    assert merged.root == whole.root and merged.shard is None


def test_merge_refuses_overlap_gap_and_foreign_shards() -> None:
    three = _shards(3)
    with pytest.raises(ManifestError, match="given twice"):
        merge_manifests([*three, three[1]])
    with pytest.raises(ManifestError, match=r"missing shard\(s\) 2/3"):
        merge_manifests(three[:2])
    other = dataclasses.replace(RECIPE, version="2")
    with pytest.raises(ManifestError, match=r"shard 2/3 was made by another recipe .*version .2."):
        merge_manifests([three[0], three[1], _shards(3, recipe=other)[2]])
    env = dataclasses.replace(three[2], fingerprint={"numpy": "1.26.4"})
    with pytest.raises(DeterminismError, match="shard 2/3 was made in another environment"):
        merge_manifests([three[0], three[1], env])
    with pytest.raises(ManifestError, match=r"shard 2/4 is from another split than the other 2"):
        merge_manifests([three[0], three[1], _shards(4)[2]])


def test_incomplete_shard_is_a_gap() -> None:
    three = _shards(3)
    short = Manifest.build(
        recipe=RECIPE,
        entries=three[1].entries[:-1],
        fingerprint=FP,
        provenance=three[1].provenance,
        shard=three[1].shard,
    )
    with pytest.raises(ManifestError, match="incomplete"):
        merge_manifests([three[0], short, three[2]])


@pytest.mark.parametrize("bad", ["", "1", "3/3", "-1/3", "a/b", "1/0", "1 / 2/3", "0/999999999"])
def test_bad_shard_specs(bad: str) -> None:
    with pytest.raises(ShardSpecError):
        parse_shard(bad)


def test_shard_spec_round_trip() -> None:
    s = parse_shard(" 2/8 ")
    assert (s.index, s.count, str(s), s.slug) == (2, 8, "2/8", "2-of-8")


# -- The odd shard out, by majority ----------------------------------------------------------


def _with(m: Manifest, **changes: object) -> Manifest:
    """``m`` with other fields, its root recomputed, as a shard made so would carry it."""
    fields = {"recipe": m.recipe, "entries": m.entries, "fingerprint": m.fingerprint,
              "provenance": m.provenance, "encoder": m.encoder, "columns": m.columns,
              "shard": m.shard, **changes}  # fmt: skip
    return Manifest.build(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("odd", [0, 1, 3])
def test_the_odd_shard_is_named_wherever_it_is_given(odd: int) -> None:
    four = _shards(4)
    four[odd] = _with(four[odd], fingerprint={"numpy": "1.26.4"})
    with pytest.raises(DeterminismError) as e:
        merge_manifests(four)
    others = ", ".join(f"{i}/4" for i in range(4) if i != odd)
    assert e.value.message == (
        f"shard {odd}/4 was made in another environment than the other 3 ({others}): "
        "numpy '1.26.4' (the others: '2.4.6')"
    )
    assert e.value.hint is not None and f"regenerate shard {odd}/4 where numpy '2.4.6'" in (
        e.value.hint
    )
    assert "container" not in e.value.hint and "image" not in e.value.hint


def test_other_recipes_splits_and_formats_are_named_by_majority_too() -> None:
    four = _shards(4)
    other = dataclasses.replace(RECIPE, seed=2, params={"sigma": 9})
    with pytest.raises(ManifestError) as e:
        merge_manifests([_with(four[0], recipe=other), *four[1:]])
    assert e.value.message.startswith(
        "shard 0/4 was made by another recipe than the other 3 (1/4, 2/4, 3/4): "
    )
    assert "params.sigma '9' (the others: '(absent)')" in e.value.message
    assert "seed '2' (the others: '1')" in e.value.message
    with pytest.raises(ManifestError, match=r"^shard 0/3 is from another split than the other 3"):
        merge_manifests([_shards(3)[0], *four[1:]])
    with pytest.raises(ManifestError, match=r"shard 0/4 has another format version, PNG encoder"):
        merge_manifests([_with(four[0], encoder={"level": 9}), *four[1:]])


def test_two_shards_that_disagree_have_no_majority_and_this_machine_picks_a_side() -> None:
    a, b = _shards(2)
    b = _with(b, fingerprint={"numpy": "1.26.4"})
    with pytest.raises(DeterminismError) as e:
        merge_manifests([a, b], here={"numpy": "1.26.4", "pinned": "true"})
    assert e.value.message == (
        "no environment is shared by a majority of the 2 shards: shard 0/2 has numpy '2.4.6'; "
        "shard 1/2 has numpy '1.26.4'; this machine has the values of shard 1/2"
    )
    assert "regenerate the shards of all but one side" in (e.value.hint or "")
    with pytest.raises(DeterminismError, match=r"this machine has numpy '3\.0\.0' as in no shard"):
        merge_manifests([a, b], here={"numpy": "3.0.0"})


def test_a_tie_names_every_side() -> None:
    four = _shards(4)
    four[1] = _with(four[1], fingerprint={"numpy": "1.26.4"})
    four[3] = _with(four[3], fingerprint={"numpy": "1.26.4"})
    with pytest.raises(DeterminismError) as e:
        merge_manifests(four, here={"numpy": "2.4.6"})
    assert e.value.message.startswith(
        "no environment is shared by a majority of the 4 shards: shards 0/4, 2/4 have numpy "
        "'2.4.6'; shards 1/4, 3/4 have numpy '1.26.4'; this machine has the values of shards "
        "0/4, 2/4"
    )


def test_values_are_shortened_and_control_characters_escaped() -> None:
    four = _shards(4)
    hostile = "2.4.6\x1b[2J\x1b]0;owned\x07" + "x" * 200
    four[2] = _with(four[2], fingerprint={"numpy": hostile, "blas.\x1b[31m": "y"})
    with pytest.raises(DeterminismError) as e:
        merge_manifests(four)
    text = e.value.diagnostics()
    assert "\x1b" not in text and "\x07" not in text  # escaped, not sent to the terminal
    assert "'2.4.6\\x1b[2J\\x1b]0;owned\\x07xxxxx" in text and "x" * 60 not in text
    assert "'blas.\\x1b[31m' 'y' (the others: '(absent)')" in text


# -- Real shards of real photographs -------------------------------------------------------

ANOTHER_NUMPY = {
    "numpy": "1.26.4",
    "numpy.simd.baseline": "SSE SSE2 SSE3",
    "blas.vendor": "openblas64 0.3.23.dev",
    "blas.config": "OpenBLAS 0.3.23.dev DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64",
}
"""The fields numpy 1.26.4 (with the OpenBLAS its wheels ship) writes differently."""


@pytest.fixture(scope="module")
def real_shards(small_original: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The four shard manifests of the identity benchmark of eight photographs."""
    out = tmp_path_factory.mktemp("shards") / "bench"
    with pinned():
        for i in range(4):
            generate_benchmark(small_original, "identity", out, shard=f"{i}/4")
    return [out / f"manifest.shard-{i}-of-4.json" for i in range(4)]


def _made_with_another_numpy(path: Path, dest: Path) -> Path:
    m = load_manifest(path)
    write_manifest(_with(m, fingerprint={**m.fingerprint, **ANOTHER_NUMPY}), dest)
    return dest


def test_real_shard_made_on_another_numpy_is_named_when_given_first(
    real_shards: list[Path], tmp_path: Path
) -> None:
    odd = _made_with_another_numpy(real_shards[0], tmp_path / "manifest.shard-0-of-4.json")
    assert load_manifest(odd).root_is_consistent()
    good = merge_files(real_shards)  # the four as made merge
    with pytest.raises(DeterminismError) as e:
        merge_files([odd, *real_shards[1:]])
    message = e.value.message
    assert message.startswith(
        "shard 0/4 was made in another environment than the other 3 (1/4, 2/4, 3/4): "
    )
    here = load_manifest(real_shards[1]).fingerprint
    assert f"numpy '1.26.4' (the others: '{here['numpy']}')" in message
    assert "blas.config 'OpenBLAS 0.3.23.dev DYNAMIC_ARCH NO_A...'" in message  # shortened
    assert "shard 1/4" not in message.split(":")[0]
    # The same mismatch stops a Dask run, and a resumed one: one error class, one exit code.
    with pytest.raises(DeterminismError) as dask:
        check_same_environment({"tcp://a:1": here, "tcp://b:1": load_manifest(odd).fingerprint})
    assert e.value.exit_code == dask.value.exit_code == ExitCode.ENVIRONMENT
    # The order given does not matter.
    with pytest.raises(DeterminismError, match=r"^shard 0/4 was made in another environment"):
        merge_files([*reversed(real_shards[1:]), odd])
    assert str(good.root) == str(merge_files(list(reversed(real_shards))).root)


def test_missing_shard_files_are_named_together(real_shards: list[Path], tmp_path: Path) -> None:
    gone = [tmp_path / "manifest.shard-1-of-4.json", tmp_path / "manifest.shard-3-of-4.json"]
    with pytest.raises(ManifestError) as e:
        merge_files([real_shards[0], gone[0], real_shards[2], gone[1]])
    assert e.value.message.startswith("2 of the 4 shard manifests are not on ")
    assert all(repr(str(p)) in e.value.message for p in gone)
    assert "filesystem this one shares" in (e.value.hint or "")
