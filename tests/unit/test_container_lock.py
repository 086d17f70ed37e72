"""toolchain.container.lock: the canonical lock text and its strict parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolchain.container.lock import ImageLock, PlatformRecord, parse, render
from toolchain.errors import ExitCode, InputError

ROOT = Path(__file__).resolve().parents[2]


def _d(c: str) -> str:
    return "sha256:" + c * 64


def _record(c: str) -> PlatformRecord:
    return PlatformRecord(base=_d(c), dependencies=_d("2"), project=_d("3"), image_id=_d("4"),
                          manifest=_d("5"))  # fmt: skip


def test_render_is_canonical_sorted_and_round_trips() -> None:
    lock = ImageLock(
        index=_d("9"),
        inputs={"project": _d("a"), "base-amd64": _d("b")},
        platforms={"arm64": _record("1"), "amd64": _record("0")},
    )
    text = render(lock)
    again = render(ImageLock(index=lock.index, inputs=dict(reversed(lock.inputs.items())),
                             platforms=dict(reversed(lock.platforms.items()))))  # fmt: skip
    assert text == again and text.endswith("}\n")
    doc = json.loads(text)
    assert list(doc) == sorted(doc) and list(doc["platforms"]) == ["amd64", "arm64"]
    assert parse(text) == lock


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(schema=2),
        lambda d: d["platforms"]["amd64"].update(project="sha256:abc"),
        lambda d: d["platforms"]["amd64"].pop("manifest"),
        lambda d: d.update(index="md5:00"),
    ],
)
def test_a_damaged_lock_is_bad_input_with_a_hint(mutate: object) -> None:
    doc = json.loads(render(ImageLock(index=_d("9"), platforms={"amd64": _record("0")})))
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(InputError) as exc:
        parse(json.dumps(doc), source="image.lock")
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    assert "benchmark-regen image lock" in exc.value.diagnostics()


def test_not_json_is_bad_input() -> None:
    with pytest.raises(InputError, match="not JSON"):
        parse("{", source="image.lock")


def test_the_committed_lock_parses_and_holds_both_architectures() -> None:
    lock = parse((ROOT / "lockfiles" / "image.lock").read_text())
    assert set(lock.platforms) == {"amd64", "arm64"}
    assert lock.index is not None
    assert render(lock) == (ROOT / "lockfiles" / "image.lock").read_text()
