from __future__ import annotations

import dataclasses

import pytest

from toolchain.errors import ManifestError, ShardSpecError
from toolchain.model.hashing import Digest
from toolchain.model.manifest import Manifest, ManifestEntry, Provenance, RecipeIdentity
from toolchain.run.shard import Shard, merge_manifests, parse_shard

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
    with pytest.raises(ManifestError, match="was made by recipe"):
        merge_manifests([three[0], three[1], _shards(3, recipe=other)[2]])
    env = dataclasses.replace(three[2], fingerprint={"numpy": "1.26.4"})
    with pytest.raises(ManifestError, match="different environment"):
        merge_manifests([three[0], three[1], env])
    with pytest.raises(ManifestError, match="comes from a 4-way split"):
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
