"""toolchain.hf.card: the dataset card (README.md), for both output formats (load_benchmark's
own tests: test_hf_load.py)."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import string
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.diff_cases import pinned
from tests.hf_cases import LABELS, class_records, hf_offline, make_dataset, to_hub_parquet
from tests.hf_outputs import assert_same_samples, card_info, folder_benchmark, parquet_benchmark
from toolchain._internal.terminal import printable
from toolchain.diff import create_diff
from toolchain.diff.dataset import is_diff_dataset
from toolchain.hf.card import CardInfo, render_card
from toolchain.model.columns import ColumnSpec
from toolchain.model.manifest import Manifest
from toolchain.run.generate import generate_benchmark
from toolchain.source import SourceOptions

__all__ = ["hf_offline"]

pytestmark = pytest.mark.usefixtures("hf_offline")

Bench = tuple[Path, Manifest, tuple[ColumnSpec, ...]]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return folder_benchmark(tmp_path_factory.mktemp("card"))


def _front_matter(card: bytes) -> dict[str, Any]:
    import yaml

    text = card.decode("utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])  # type: ignore[no-any-return]


def test_card_metadata_is_valid_and_deterministic(bench: Bench) -> None:
    from huggingface_hub import DatasetCard

    _, manifest, columns = bench
    info = card_info(manifest, columns, "parquet")
    card = render_card(info)
    assert card == render_card(info)
    meta = _front_matter(card)
    assert meta["license"] == "other"
    assert meta["license_name"] == "terms of Demo photographs (café edition)"
    assert meta["license_link"].startswith("https://scikit-image.org/")
    (config,) = meta["configs"]
    assert config["config_name"] == "default"
    assert config["data_files"] == [{"split": "train", "path": ["data/train-*.parquet"]}]
    features = meta["dataset_info"]["features"]
    assert config["features"] == features
    assert features[2] == {
        "name": "label",
        "dtype": {"class_label": {"names": {"0": LABELS[0], "1": LABELS[1]}}},
    }
    # the shape datasets' SplitDict._from_yaml_list takes without a warning
    assert meta["dataset_info"]["splits"] == [{"name": "train", "num_bytes": 0, "num_examples": 6}]
    parsed = DatasetCard(card.decode("utf-8"))
    assert parsed.data.pretty_name == info.pretty_name
    text = card.decode()
    assert manifest.root.hex in text or str(manifest.root) in text
    assert "benchmark-regen verify OUT" in text and "toolchain.load_benchmark" in text
    assert "Samples used: 6 of 6 (fraction 1.000000)" in text


def test_yaml_strings_survive_any_character() -> None:
    import datasets

    odd = 'a "quoted" \\ name: with # and \U0001f600, tab\tand é'
    info = CardInfo(
        pretty_name=odd,
        format="folder",
        sample_count=1,
        root="sha256:" + "0" * 64,
        original_name=odd,
        original_terms="none",
        samples_in_original=2,
        fraction="0.500000",
        recipe_name="r",
        recipe_version="1",
        recipe_seed=1,
        columns=(ColumnSpec(name="label", type="class_label", names=(odd, "b")),),
        license="cc-by-4.0",
    )
    card = render_card(info)
    assert card.split(b"---\n")[1].isascii()
    meta = _front_matter(card)
    assert meta["pretty_name"] == odd and meta["license"] == "cc-by-4.0"
    assert "license_name" not in meta
    parsed = datasets.DatasetInfo._from_yaml_dict(meta["dataset_info"])
    assert parsed.features["label"].names == [odd, "b"]
    assert (
        isinstance(parsed.splits, datasets.SplitDict) and parsed.splits["train"].num_examples == 1
    )


def test_parquet_output_loads_with_its_card(bench: Bench, tmp_path: Path, hf_offline: Path) -> None:
    import datasets

    folder, manifest, columns = bench
    out = tmp_path / "pq"
    parquet_benchmark(folder, manifest, columns, out)
    (out / "README.md").write_bytes(render_card(card_info(manifest, columns, "parquet")))
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(hf_offline / "c"))
    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    assert isinstance(ds.features["image"], datasets.Image)
    assert_same_samples(ds, folder, manifest)


def test_folder_output_loads_with_its_card(bench: Bench, tmp_path: Path, hf_offline: Path) -> None:
    import datasets

    folder, manifest, columns = bench
    out = tmp_path / "folder"
    shutil.copytree(folder, out)
    (out / "README.md").write_bytes(render_card(card_info(manifest, columns, "folder")))
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(hf_offline / "c"))
    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    assert sorted(ds.column_names) == ["image", "label", "sample_id"]
    assert_same_samples(ds, folder, manifest)


# -- loading our outputs says nothing: no warning, no log record --------------------------


@contextlib.contextmanager
def warnings_and_log_records() -> Iterator[list[str]]:
    """What ``datasets`` and ``huggingface_hub`` warn about inside the block: warnings
    and log records at WARNING or above (``datasets`` logs its card complaints), whether
    or not their loggers propagate."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(f"{record.name} {record.levelname}: {record.getMessage()}")

    keep = Keep(logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("datasets", "huggingface_hub", "")]
    for logger in loggers:
        logger.addHandler(keep)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield said
        said += [f"{w.category.__name__}: {w.message}" for w in caught]
    finally:
        for logger in loggers:
            logger.removeHandler(keep)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hub-layout original of real photographs with a class label."""
    root = tmp_path_factory.mktemp("card-hub") / "hub"
    to_hub_parquet(make_dataset(class_records(6)), root, "validation")
    return root


@pytest.mark.parametrize("fmt", ["folder", "parquet"])
def test_a_generated_benchmark_loads_without_a_word(
    hub: Path, tmp_path: Path, hf_offline: Path, fmt: str
) -> None:
    import datasets

    out = tmp_path / "bench"
    with pinned():
        result = generate_benchmark(
            hub, "identity", out, format=fmt, source_options=SourceOptions(columns="label")
        )
    card = (out / "README.md").read_bytes()
    splits = [{"name": "validation", "num_bytes": 0, "num_examples": 6}]  # the original's split
    assert _front_matter(card)["dataset_info"]["splits"] == splits
    with warnings_and_log_records() as said:
        ds = datasets.load_dataset(str(out), split="validation", cache_dir=str(hf_offline / "c"))
    assert said == []
    assert len(ds) == len(result.manifest.entries) == 6
    assert ds.features["label"] == datasets.ClassLabel(names=list(LABELS))
    assert_same_samples(ds, out, result.manifest)
    # The positive control: the card as it was (splits without num_bytes) is heard.
    (out / "README.md").write_bytes(card.replace(b"    num_bytes: 0\n", b""))
    with warnings_and_log_records() as said:
        datasets.load_dataset(str(out), split="validation", cache_dir=str(hf_offline / "c2"))
    assert [s for s in said if "splits" in s and "malformed" in s], said


def test_a_diff_dataset_loads_without_a_word(hub: Path, tmp_path: Path, hf_offline: Path) -> None:
    """The diff dataset's card shares the header (``render_diff_card`` calls ``yaml_header``)."""
    import datasets

    bench, xdiff = tmp_path / "bench", tmp_path / "xdiff"
    with pinned():
        result = generate_benchmark(hub, "gaussian-noise", bench)
        create_diff(hub, bench, xdiff, format="parquet")
    assert is_diff_dataset(xdiff)
    meta = _front_matter((xdiff / "README.md").read_bytes())
    n = len(result.manifest.entries)
    assert meta["dataset_info"]["splits"] == [{"name": "train", "num_bytes": 0, "num_examples": n}]
    with warnings_and_log_records() as said:
        rows = datasets.load_dataset(str(xdiff), split="train", cache_dir=str(hf_offline / "c"))
    assert said == []
    assert rows["sample_id"] == [e.id for e in result.manifest.entries]


# -- Other people's text in the Markdown body (issue #23, item 6) --------------------------

MARKUP = (
    "<img src=x onerror=alert(document.domain)>",
    "[click](javascript:alert(1))",
    "![t](https://evil.example/t.png)",
    "<javascript:alert(1)>",
    "\\<img src=x onerror=alert(1)>",  # a backslash to undo our escape
    "` <img src=x onerror=alert(1)> `",  # to close our code span early
    "``x`` `y` <b>",
    "line\n# a heading\n<script>alert(1)</script>",
    "\x1b]0;owned\x07\u202eevil",
)


def _shown(md: str) -> tuple[str, bool]:
    """What a CommonMark renderer shows of inline text made of backslash escapes, code
    spans and plain characters (spec 0.31, sections 2.4 and 6.1); and whether anything in it
    would be other markup: a bare ``<``, ``[`` or ``]``, or a backtick run left unpaired."""
    out, markup, i = [], False, 0
    while i < len(md):
        c = md[i]
        if c == "\\" and i + 1 < len(md) and md[i + 1] in string.punctuation:
            out.append(md[i + 1])
            i += 2
        elif c == "`":
            run = len(md[i:]) - len(md[i:].lstrip("`"))
            close = re.compile(f"(?<!`)`{{{run}}}(?!`)").search(md, i + run)
            if close is None:
                markup = True
                out.append("`" * run)
                i += run
                continue
            body = md[i + run : close.start()]
            if len(body) > 2 and body[0] == body[-1] == " " and body.strip(" "):
                body = body[1:-1]
            out.append(body)
            i = close.end()
        else:
            markup = markup or c in "<[]"
            out.append(c)
            i += 1
    return "".join(out), markup


def _field(card: bytes, label: str) -> str:
    (line,) = [ln for ln in card.decode().splitlines() if ln.startswith(label)]
    return line.removeprefix(label)


def _as_shown(text: str) -> str:
    return printable(" ".join(text.split()))


@pytest.mark.parametrize("hostile", MARKUP)
def test_other_peoples_text_is_shown_never_rendered(hostile: str) -> None:
    """Column names and provenance strings: what a reader sees is the text itself (control
    characters escaped), never HTML, a link, an image, or a code span broken open."""
    info = CardInfo(
        pretty_name=hostile,
        format="parquet",
        sample_count=1,
        root="sha256:" + "0" * 64,
        original_name=hostile,
        original_terms=hostile,
        samples_in_original=1,
        fraction="1.000000",
        recipe_name=hostile,
        recipe_version=hostile,
        recipe_seed=1,
        recipe_params={hostile: hostile},
        recipe_select=hostile,
        recipe_license=hostile,
        columns=(ColumnSpec(name=hostile, type="string"),),
    )
    card = render_card(info)
    shown = _as_shown(hostile)
    fields = {
        "# ": shown,
        "- Original: ": shown,
        "- Its terms: ": shown,
        "- Carried columns: ": f"{shown} (string)",
        "- Name and version: ": f"{shown} {shown}",
        "- Parameters: ": f"{shown}={shown}" if "\n" not in hostile else None,
        "- Selection: ": shown,
        "- Recipe licence: ": shown,
    }
    for label, expected in fields.items():
        got, markup = _shown(_field(card, label))
        assert not markup, (label, _field(card, label))
        if expected is not None:
            assert got == expected, (label, _field(card, label))
    body = card.decode().split("---\n")[2]
    assert "\x1b" not in body and "\u202e" not in body
    assert card == render_card(info)


def test_ordinary_names_are_written_as_before() -> None:
    """Escaping changes nothing a benign card says: the bytes of these lines are as they were."""
    info = CardInfo(
        pretty_name="identity 1.0 on Demo photographs (café edition)",
        format="folder",
        sample_count=2,
        root="sha256:" + "ab" * 32,
        original_name="Demo photographs (café edition)",
        original_terms="https://scikit-image.org/docs/stable/license.html?a=1&b=2",
        samples_in_original=2,
        fraction="1.000000",
        recipe_name="gaussian-noise",
        recipe_version="1.0",
        recipe_seed=7,
        recipe_params={"sigma": "2.5"},
        recipe_select="all",
        recipe_license="CC-BY-4.0",
        columns=(ColumnSpec(name="label", type="class_label", names=("cat", "dog")),),
    )
    text = render_card(info).decode()
    for line in (
        "# identity 1.0 on Demo photographs (café edition)",
        "- Original: Demo photographs (café edition)",
        "- Its terms: https://scikit-image.org/docs/stable/license.html?a=1&b=2",
        "- Carried columns: `label` (class_label: 2 classes)",
        "- Name and version: `gaussian-noise` 1.0",
        "- Parameters: `sigma=2.5`",
        "- Selection: `all`",
        "- Recipe licence: CC-BY-4.0",
        "`sha256:" + "ab" * 32 + "`",
    ):
        assert f"\n{line}\n" in text


def test_a_generated_card_and_a_diff_datasets_card_escape_the_provenance(
    hub: Path, tmp_path: Path
) -> None:
    """Through generate (--original-name, --original-terms) and diff create --format parquet."""
    from toolchain.model.manifest import Provenance

    name, terms = MARKUP[0], MARKUP[1]
    bench, xdiff = tmp_path / "bench", tmp_path / "xdiff"
    with pinned():
        generate_benchmark(
            hub, "identity", bench, format="parquet",
            provenance=Provenance(original_name=name, original_terms=terms),
        )  # fmt: skip
        create_diff(hub, bench, xdiff, format="parquet")
    card = (bench / "README.md").read_bytes()
    assert _shown(_field(card, "- Original: ")) == (name, False)
    assert _shown(_field(card, "- Its terms: ")) == (terms, False)
    body = (xdiff / "README.md").read_text().split("---\n")[2]  # the YAML quotes its own
    assert name.replace("<", "\\<").replace(">", "\\>") in body
    assert not _shown(body.replace("`", ""))[1]  # no bare <, [ or ] left in the body
