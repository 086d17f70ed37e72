"""``croissant.json``: the benchmark described in Croissant 1.1 (JSON-LD), in deterministic
bytes (``docs/huggingface.md``, "Croissant")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from toolchain.hf.card import CardInfo, data_files
from toolchain.model.columns import ColumnSpec
from toolchain.model.hashing import pretty_json

__all__ = ["CONFORMS_TO", "CONTEXT", "CroissantFile", "render_croissant"]

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"

CONTEXT: dict[str, object] = {  # the one standard @context (hub/metadata.py uses it too)
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
"""The Croissant 1.1 @context, as the spec's examples and mlcroissant 1.1 write it."""

_DATA_TYPES = {
    "class_label": "sc:Integer",
    "int": "sc:Integer",
    "string": "sc:Text",
    "bool": "sc:Boolean",
    "float": "sc:Float",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class CroissantFile:
    """A file of the benchmark: path relative to the folder, SHA-256 (hex), MIME type."""

    path: str
    sha256: str
    encoding_format: str


def _ref(uuid: str) -> dict[str, str]:
    return {"@id": uuid}


def _field(
    name: str, data_type: str, source: dict[str, object], description: str
) -> dict[str, object]:
    return {
        "@type": "cr:Field",
        "@id": f"samples/{name}",
        "name": f"samples/{name}",
        "description": description,
        "dataType": data_type,
        "source": source,
    }


def _classes(spec: ColumnSpec) -> dict[str, object]:
    rs = f"{spec.name}_classes"
    return {
        "@type": "cr:RecordSet",
        "@id": rs,
        "name": rs,
        "description": f"The class names of column {spec.name!r}, by index.",
        "key": _ref(f"{rs}/index"),
        "field": [
            {
                "@type": "cr:Field",
                "@id": f"{rs}/index",
                "name": f"{rs}/index",
                "dataType": "sc:Integer",
            },
            {"@type": "cr:Field", "@id": f"{rs}/name", "name": f"{rs}/name", "dataType": "sc:Text"},
        ],
        "data": [{f"{rs}/index": i, f"{rs}/name": n} for i, n in enumerate(spec.names)],
    }


def render_croissant(
    info: CardInfo,
    files: Sequence[CroissantFile],
    *,
    url: str | None = None,
    cite_as: str | None = None,
    date_published: str | None = None,
) -> bytes:
    """``croissant.json`` for a benchmark in ``info.format``, listing ``files`` with their hashes.

    ``files``: for ``parquet``, the shards; for ``folder``, ``metadata.jsonl``
    and ``manifest.json`` (both required).
    """
    paths = {f.path for f in files}
    distribution: list[dict[str, object]] = [
        {
            "@type": "cr:FileObject",
            "@id": f.path,
            "name": f.path,
            "contentUrl": f.path,
            "encodingFormat": f.encoding_format,
            "sha256": f.sha256,
        }
        for f in sorted(files, key=lambda f: f.path.encode("utf-8"))
    ]
    if info.format == "parquet":
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": "parquet-files",
                "name": "parquet-files",
                "description": "The benchmark's parquet shards (each listed above with its hash).",
                "encodingFormat": "application/x-parquet",
                "includes": list(data_files("parquet", info.split)),
            }
        )

        def column(name: str) -> dict[str, object]:
            return {"fileSet": _ref("parquet-files"), "extract": {"column": name}}

        image = {**column("image"), "transform": {"jsonPath": "bytes"}}
        fields = [
            _field("image", "sc:ImageObject", image, "The benchmark image (lossless PNG)."),
            _field("sample_id", "sc:Text", column("sample_id"), "The sample id."),
        ]
    elif info.format == "folder":
        missing = {"metadata.jsonl", "manifest.json"} - paths
        if missing:
            raise ValueError(f"the folder format's croissant.json needs {sorted(missing)}")
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": "png-files",
                "name": "png-files",
                "description": "The benchmark images; their SHA-256 are in manifest.json.",
                "encodingFormat": "image/png",
                "includes": ["*.png", "**/*.png"],
            }
        )

        def column(name: str) -> dict[str, object]:
            return {"fileObject": _ref("metadata.jsonl"), "extract": {"column": name}}

        image_path: dict[str, object] = {
            "fileSet": _ref("png-files"),
            "extract": {"fileProperty": "fullpath"},
            "transform": {"regex": "^(.*)$"},  # the path as text, to join on
        }
        fields = [
            _field(
                "image",
                "sc:ImageObject",
                {"fileSet": _ref("png-files"), "extract": {"fileProperty": "content"}},
                "The benchmark image (lossless PNG).",
            ),
            {
                **_field("file_name", "sc:Text", image_path, "The image's path in the folder."),
                "references": column("file_name"),
            },
            _field("sample_id", "sc:Text", column("sample_id"), "The sample id."),
        ]
    else:
        raise ValueError(f"format must be parquet or folder, not {info.format!r}")
    record_sets: list[dict[str, object]] = []
    for spec in info.columns:
        f = _field(
            spec.name, _DATA_TYPES[spec.type], column(spec.name), f"Carried column {spec.name!r}."
        )
        if spec.type == "class_label":
            record_sets.append(_classes(spec))
            f["references"] = {"field": _ref(f"{spec.name}_classes/index")}
        fields.append(f)
    record_sets.append(
        {
            "@type": "cr:RecordSet",
            "@id": "samples",
            "name": "samples",
            "description": f"The {info.sample_count} samples of split {info.split!r}.",
            "key": _ref("samples/sample_id"),
            "field": fields,
        }
    )
    doc: dict[str, object] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": info.pretty_name,
        "description": (
            f"{info.recipe_name} {info.recipe_version} (seed {info.recipe_seed}) applied to "
            f"{info.sample_count} of {info.samples_in_original} samples of "
            f"{info.original_name or 'an original dataset'}; root hash {info.root}. "
            "Regenerate or verify it with benchmark-regen."
        ),
        "license": info.license_link or info.license,
        "version": info.recipe_version,
        "keywords": ["benchmark-regen", "reproducible"],
        "citeAs": cite_as or f"{info.pretty_name} ({info.root})",
        "distribution": distribution,
        "recordSet": record_sets,
    }
    if url is not None:
        doc["url"] = url
    if date_published is not None:
        doc["datePublished"] = date_published
    return pretty_json(doc)
