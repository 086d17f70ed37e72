"""The ``README.md`` dataset card: Hub metadata (YAML) and the benchmark's provenance,
written deterministically without a YAML library, other people's text escaped
(``docs/huggingface.md``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from toolchain._internal.terminal import printable
from toolchain.model.columns import ColumnSpec
from toolchain.model.layout import FORMATS

if TYPE_CHECKING:
    from toolchain.model.manifest import Manifest

__all__ = [
    "CardInfo",
    "code",
    "data_files",
    "one_line",
    "render_card",
    "yaml_header",
]


@dataclass(frozen=True, kw_only=True)
class CardInfo:
    """What the card says, as plain values (the lead fills it from the manifest)."""

    pretty_name: str
    format: str
    """``parquet`` or ``folder``."""
    sample_count: int
    root: str
    """``sha256:<hex>``."""
    original_name: str
    original_terms: str
    samples_in_original: int
    fraction: str
    recipe_name: str
    recipe_version: str
    recipe_seed: int
    recipe_params: Mapping[str, str | int | bool] = field(default_factory=dict)
    recipe_select: str = "all"
    recipe_license: str = ""
    columns: tuple[ColumnSpec, ...] = ()
    split: str = "train"
    license: str = "other"
    """A Hub license id (``apache-2.0``, ``cc-by-4.0``, ...), or ``other``: the benchmark's
    images derive from the original, so its terms apply."""
    license_name: str | None = None
    license_link: str | None = None

    @classmethod
    def from_manifest(
        cls,
        manifest: Manifest,
        *,
        format: str,
        columns: Sequence[ColumnSpec] = (),
        split: str = "train",
        pretty_name: str | None = None,
        license: str = "other",
        license_name: str | None = None,
        license_link: str | None = None,
    ) -> CardInfo:
        """Fill the card from a manifest (and the columns it carries)."""
        p, r = manifest.provenance, manifest.recipe
        terms = p.original_terms
        return cls(
            pretty_name=pretty_name
            or f"{r.name} {r.version} on {p.original_name or 'an original'}",
            format=format,
            sample_count=len(manifest.entries),
            root=str(manifest.root),
            original_name=p.original_name,
            original_terms=terms,
            samples_in_original=p.samples_in_original,
            fraction=p.fraction,
            recipe_name=r.name,
            recipe_version=r.version,
            recipe_seed=r.seed,
            recipe_params=dict(r.params),
            recipe_select=r.select,
            recipe_license=p.recipe_license,
            columns=tuple(columns),
            split=split,
            license=license,
            license_name=license_name
            if license_name is not None or license != "other"
            else f"terms of {p.original_name or 'the original dataset'}",
            license_link=license_link
            if license_link is not None or license != "other"
            else (terms if terms.startswith(("https://", "http://")) else None),
        )


def _q(text: str) -> str:
    """A YAML double-quoted scalar, ASCII only (readable by any YAML 1.1 or 1.2 parser)."""
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def data_files(format: str, split: str) -> tuple[str, ...]:
    """The ``data_files`` patterns of an output format, relative to the benchmark folder."""
    if format == "parquet":
        return (f"data/{split}-*.parquet",)
    if format == "folder":
        return ("**/*.png", "metadata.jsonl")
    raise ValueError(f"format must be one of {FORMATS}, not {format!r}")


def _feature_yaml(name: str, dtype: str | ColumnSpec) -> list[str]:
    lines = [f"  - name: {_q(name)}"]
    if isinstance(dtype, str):
        return [*lines, f"    dtype: {dtype}"]
    spec = dtype
    if spec.type == "class_label":
        lines += ["    dtype:", "      class_label:", "        names:"]
        lines += [f"          {_q(str(i))}: {_q(n)}" for i, n in enumerate(spec.names)]
        return lines
    return [
        *lines,
        "    dtype: "
        + {"int": "int64", "string": "string", "bool": "bool", "float": "float64"}[spec.type],
    ]


def yaml_header(
    *,
    license: str,
    license_name: str | None,
    license_link: str | None,
    pretty_name: str,
    tags: Sequence[str],
    files: Sequence[str],
    split: str,
    features: Sequence[tuple[str, str | ColumnSpec]],
    num_examples: int,
) -> list[str]:
    lines = ["---", f"license: {_q(license)}"]
    if license_name is not None:
        lines.append(f"license_name: {_q(license_name)}")
    if license_link is not None:
        lines.append(f"license_link: {_q(license_link)}")
    lines.append(f"pretty_name: {_q(pretty_name)}")
    lines.append("tags:")
    lines += [f"- {_q(t)}" for t in tags]
    lines += [
        "configs:",
        f"- config_name: {_q('default')}",
        "  data_files:",
        f"  - split: {_q(split)}",
        "    path:",
    ]
    lines += [f"    - {_q(f)}" for f in files]
    # The features twice: in the config, where the builders use them (imagefolder would
    # otherwise read `label` from metadata.jsonl as a plain integer), and in dataset_info.
    lines.append("  features:")
    for name, dtype in features:
        lines += _feature_yaml(name, dtype)
    lines += ["dataset_info:", f"  config_name: {_q('default')}", "  features:"]
    for name, dtype in features:
        lines += _feature_yaml(name, dtype)
    # The shape datasets reads (SplitDict._from_yaml_list): name, num_bytes and num_examples,
    # or it warns on every load. num_bytes is the split's Arrow size on the loader's side
    # (absolute paths in a folder's rows): 0 is datasets' own "not known"; it is not checked.
    lines += [
        "  splits:",
        f"  - name: {_q(split)}",
        "    num_bytes: 0",
        f"    num_examples: {num_examples}",
        "---",
    ]
    return lines


_MARKUP = re.compile(r"([\\`<>\[\]])")
"""What turns text into markup: HTML and autolinks (``<``), links and images (``[``),
code spans (a backtick), and the backslash that would undo an escape."""


def _plain(text: str) -> str:
    """One line, its control characters shown as escapes (:func:`printable`)."""
    return printable(" ".join(text.split()))


def one_line(text: str) -> str:
    """Other people's text as Markdown that shows it, on one line: no HTML, link, image
    or code span can come of it (CommonMark backslash escapes)."""
    return _MARKUP.sub(r"\\\1", _plain(text)) or "(not given)"


def code(text: str) -> str:
    """Other people's text as one Markdown code span: delimited by more backticks than
    it holds in a row, so that it cannot close the span early."""
    body = _plain(text) or "(not given)"
    fence = "`" * (max((len(r) for r in re.findall("`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def render_card(info: CardInfo) -> bytes:
    """The benchmark's ``README.md``: deterministic bytes (UTF-8, LF, one final newline)."""
    files = data_files(info.format, info.split)
    features: list[tuple[str, str | ColumnSpec]] = [("image", "image"), ("sample_id", "string")]
    features += [(c.name, c) for c in info.columns]
    lines = yaml_header(
        license=info.license,
        license_name=info.license_name,
        license_link=info.license_link,
        pretty_name=info.pretty_name,
        tags=("benchmark-regen", "reproducible"),
        files=files,
        split=info.split,
        features=features,
        num_examples=info.sample_count,
    )
    params = ", ".join(code(f"{k}={v}") for k, v in sorted(info.recipe_params.items())) or "none"
    how = (
        '`load_dataset("parquet", data_dir="OUT")`'
        if info.format == "parquet"
        else '`load_dataset("imagefolder", data_dir="OUT")`'
    )
    columns = (
        ", ".join(
            f"{code(c.name)} ({c.type}" + (f": {len(c.names)} classes" if c.names else "") + ")"
            for c in info.columns
        )
        or "none"
    )
    lines += [
        "",
        f"# {one_line(info.pretty_name)}",
        "",
        "A benchmark regenerated bit for bit by "
        "benchmark-regen (`pip install benchmark-regen`) from an original dataset.",
        "",
        "## Provenance",
        "",
        f"- Original: {one_line(info.original_name)}",
        f"- Its terms: {one_line(info.original_terms)}",
        f"- Samples used: {info.sample_count} of {info.samples_in_original} "
        f"(fraction {info.fraction})",
        f"- Carried columns: {columns}",
        "",
        "## Recipe",
        "",
        f"- Name and version: {code(info.recipe_name)} {one_line(info.recipe_version)}",
        f"- Seed: {info.recipe_seed}",
        f"- Parameters: {params}",
        f"- Selection: {code(info.recipe_select)}",
        f"- Recipe licence: {one_line(info.recipe_license)}",
        "",
        "## Root hash",
        "",
        code(info.root),
        "",
        "Every sample's pixel hash and the root hash over them are in `manifest.json`.",
        "",
        "## Verify and load",
        "",
        "```sh",
        "benchmark-regen verify OUT      # exit 0 only if every sample is bit-exact",
        "```",
        "",
        "```python",
        "import toolchain",
        'ds = toolchain.load_benchmark("OUT")   # verifies, then loads images and labels',
        "```",
        "",
        f'Without benchmark-regen: {how}, or `load_dataset("OUT")` with this card.',
        "",
    ]
    return "\n".join(lines).encode("utf-8")
