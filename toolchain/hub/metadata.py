"""The publication's descriptions: its ``README.md`` dataset card, whose first code block is the
line users run, and its ``croissant.json``; deterministic bytes (``docs/hub.md``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from toolchain.hf.card import CardInfo, code, one_line
from toolchain.hf.croissant import CONFORMS_TO, CONTEXT
from toolchain.hub.publication import DIFF_DIR, RECIPE_NAME, Publication, PublishedFile
from toolchain.model.hashing import pretty_json
from toolchain.model.manifest import Manifest

__all__ = ["PLACEHOLDER_REPO", "load_line", "render_croissant", "render_readme"]

PLACEHOLDER_REPO = "ORG/NAME"
"""The repo id the card names when the publication's is not known yet."""
DIFF_FILES = f"{DIFF_DIR}/data/train-*.parquet"
_FORMATS = {
    ".json": "application/json",
    ".sig": "application/json",
    ".parquet": "application/x-parquet",
    ".py": "text/x-python",
    ".md": "text/markdown",
}


def _q(text: str) -> str:
    """A YAML double-quoted scalar: JSON's ASCII escapes are YAML's too."""
    return json.dumps(text, ensure_ascii=True)


def load_line(repo: str, pub: Publication, manifest: Manifest) -> str:
    """The one line users run: import, then load (trusting the recipe, for ``regenerate``)."""
    extra = ""
    if pub.kind == "regenerate":
        extra += ", trust_recipe=True"
    ref = manifest.provenance.original
    if ref is None or not ref.repo:
        extra += ', original="path/to/your/copy"'
    return f'import toolchain; bench = toolchain.load_benchmark("{repo}"{extra})'


def _info(manifest: Manifest) -> CardInfo:
    return CardInfo.from_manifest(manifest, format="folder", columns=manifest.columns)


def render_readme(repo: str, pub: Publication, manifest: Manifest) -> bytes:
    """``README.md``: Hub metadata (YAML), the line to run, then what the publication holds."""
    info = _info(manifest)
    lines = ["---", f"license: {_q(info.license)}"]
    if info.license_name is not None:
        lines.append(f"license_name: {_q(info.license_name)}")
    if info.license_link is not None:
        lines.append(f"license_link: {_q(info.license_link)}")
    lines += [
        f"pretty_name: {_q(info.pretty_name)}",
        "tags:",
        f"- {_q('benchmark-regen')}",
        f"- {_q('benchmark-regen-publication')}",
    ]
    if pub.kind == "diff":  # the Hub's viewer shows the diff's rows (no image: sealed payloads)
        lines += [
            "configs:",
            f"- config_name: {_q('diff')}",
            "  data_files:",
            f"  - split: {_q('train')}",
            "    path:",
            f"    - {_q(DIFF_FILES)}",
        ]
    else:
        lines.append("viewer: false")
    ref = manifest.provenance.original
    original = ref.describe() if ref is not None and ref.repo else "not recorded"
    how = (
        "applies the diff in `diff/` to the original"
        if pub.kind == "diff"
        else f"runs the recipe in `{RECIPE_NAME}` (Python code: read it first) on the original"
    )
    lines += [
        "---",
        "",
        f"# {one_line(info.pretty_name)}",
        "",
        "```python",
        load_line(repo, pub, manifest),
        "```",
        "",
        f"This repository publishes a benchmark of {pub.samples} images made by "
        "benchmark-regen (`pip install benchmark-regen`) from an original dataset. "
        "It holds no image of the original or of the benchmark. `load_benchmark` fetches the "
        f"original, {how}, checks every sample against the root hash and returns a "
        "`datasets.Dataset`; later calls reuse the verified copy.",
        "",
        "## Original",
        "",
        f"- Name: {one_line(info.original_name)}",
        f"- On the Hub: {original}",
        f"- Terms: {one_line(info.original_terms)}",
        "- Gated on the Hub? Accept its terms on its page and run `huggingface-cli login` first.",
        f"- Samples used: {pub.samples} of {info.samples_in_original} (fraction {info.fraction})",
        "",
        "## Recipe",
        "",
        f"- {code(info.recipe_name)} {one_line(info.recipe_version)}, seed {info.recipe_seed}",
        f"- Recipe licence: {one_line(info.recipe_license)}",
        "",
        "## Root hash",
        "",
        f"`{pub.root}`",
        "",
        "## Without Python",
        "",
        "```sh",
        f"benchmark-regen get {repo} --out ./bench"
        + (" --trust-recipe" if pub.kind == "regenerate" else "")
        + ("" if ref is not None and ref.repo else " --original ./your-copy"),
        "benchmark-regen verify ./bench",
        "```",
        "",
        "The files of this repository and how they are checked: `docs/hub.md` in benchmark-regen.",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _field(record_set: str, name: str, data_type: str, description: str) -> dict[str, object]:
    return {
        "@type": "cr:Field",
        "@id": f"{record_set}/{name}",
        "name": f"{record_set}/{name}",
        "description": description,
        "dataType": data_type,
        "source": {"fileSet": {"@id": "diff-shards"}, "extract": {"column": name}},
    }


def render_croissant(
    repo: str, pub: Publication, manifest: Manifest, files: Sequence[PublishedFile]
) -> bytes:
    """``croissant.json``: the publication's files with their SHA-256 and, for a diff, its
    rows (sample id, payload kind, sealed length)."""
    info = _info(manifest)
    distribution: list[dict[str, object]] = [
        {
            "@type": "cr:FileObject",
            "@id": f.path,
            "name": f.path,
            "contentUrl": f.path,
            "contentSize": f"{f.size} B",
            "encodingFormat": _FORMATS.get("." + f.path.rpartition(".")[2], "text/plain"),
            "sha256": f.sha256.hex,
        }
        for f in sorted(files, key=lambda f: f.path.encode("utf-8"))
    ]
    record_sets: list[dict[str, object]] = []
    if pub.kind == "diff":
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": "diff-shards",
                "name": "diff-shards",
                "description": "The diff's parquet shards (each listed above with its hash).",
                "encodingFormat": "application/x-parquet",
                "includes": [DIFF_FILES],
            }
        )
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": "diff",
                "name": "diff",
                "description": "One sealed payload per benchmark sample; it opens only with "
                "a key derived from the matching sample of the original.",
                "key": {"@id": "diff/sample_id"},
                "field": [
                    _field("diff", "sample_id", "sc:Text", "The sample id."),
                    _field("diff", "kind", "sc:Text", "delta or full."),
                    _field("diff", "sealed_length", "sc:Integer", "The sealed payload's size."),
                ],
            }
        )
    doc: dict[str, object] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": info.pretty_name,
        "description": (
            f"A benchmark-regen publication ({pub.kind}) of {pub.samples} samples: "
            f"{info.recipe_name} {info.recipe_version} (seed {info.recipe_seed}) applied to "
            f"{info.original_name or 'an original dataset'}; root hash {pub.root}. It holds "
            "no image: load it with toolchain.load_benchmark."
        ),
        "license": info.license_link or info.license,
        "version": info.recipe_version,
        "keywords": ["benchmark-regen", "reproducible"],
        "citeAs": f"{info.pretty_name} ({pub.root})",
        "distribution": distribution,
        "recordSet": record_sets,
    }
    if repo != PLACEHOLDER_REPO:
        doc["url"] = f"https://huggingface.co/datasets/{repo}"
    return pretty_json(doc)
