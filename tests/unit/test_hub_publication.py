"""toolchain.hub.publication: publication.json round-trips and is parsed strictly; every file it
lists is checked by size and SHA-256, through the links of a Hub cache too."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.hub_cases import flip_byte, lay_out
from toolchain.errors import InputError
from toolchain.hub.publication import (
    FORMAT,
    PUBLICATION_NAME,
    Publication,
    PublishedFile,
    is_publication,
    list_files,
    read_publication,
)
from toolchain.model.hashing import Digest

COMMIT = "c0" * 20


def _folder(root: Path) -> Path:
    root.mkdir()
    (root / "manifest.json").write_bytes(b'{"a manifest": true}\n')
    (root / "diff").mkdir()
    (root / "diff" / "diff.json").write_bytes(b"{}\n")
    (root / "README.md").write_text("a card\n")
    return root


def _publication(root: Path) -> Publication:
    files = tuple(list_files(root, skip=frozenset({"README.md", PUBLICATION_NAME})))
    pub = Publication(kind="diff", root=Digest.of(b"root"), samples=3, files=files)
    (root / PUBLICATION_NAME).write_bytes(pub.render())
    return pub


def test_render_parse_round_trip_and_listing(tmp_path: Path) -> None:
    root = _folder(tmp_path / "pub")
    pub = _publication(root)
    assert [f.path for f in pub.files] == ["diff/diff.json", "manifest.json"]
    data = (root / "manifest.json").read_bytes()
    assert pub.manifest == PublishedFile(
        path="manifest.json", size=len(data), sha256=Digest(hex=hashlib.sha256(data).hexdigest())
    )
    assert Publication.parse(pub.render(), where="x") == pub
    assert read_publication(root) == pub and is_publication(root) and not pub.signed
    assert json.loads(pub.render())["format"] == FORMAT


def _doc(pub: Publication, **change: Any) -> bytes:
    doc = pub.to_json() | change
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "benchmark-regen.publication/v9"}, "published by another version"),
        ({"kind": "torrent"}, "kind 'torrent' is not one of diff, regenerate"),
        ({"kind": "regenerate"}, "recipe must name the recipe object"),
        ({"recipe": "shift"}, "recipe must name the recipe object"),
        ({"samples": 0}, "samples must be a positive integer"),
        ({"samples": True}, "samples must be a positive integer"),
        ({"root": "sha256:abc"}, "root must be"),
        ({"extra": 1}, "exactly the fields"),
        ({"files": []}, "non-empty list"),
        (
            {"files": [{"path": "../x", "sha256": "sha256:" + "0" * 64, "size": 1}]},
            "plain relative",
        ),
        ({"files": [{"path": "/etc/x", "sha256": "sha256:" + "0" * 64, "size": 1}]}, "plain"),
        ({"files": [{"path": "a//b", "sha256": "sha256:" + "0" * 64, "size": 1}]}, "plain"),
        ({"files": [{"path": "README.md", "sha256": "sha256:" + "0" * 64, "size": 1}]}, "plain"),
        ({"files": [{"path": "x", "sha256": "md5:00", "size": 1}]}, "sha256"),
        ({"files": [{"path": "x", "sha256": "sha256:" + "0" * 64, "size": -1}]}, "plain"),
    ],
)
def test_a_malformed_publication_json_says_what(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    pub = _publication(_folder(tmp_path / "pub"))
    with pytest.raises(InputError, match=message):
        Publication.parse(_doc(pub, **change), where="publication.json")


@pytest.mark.parametrize(
    ("data", "detail"),
    [(b"[" * 5000 + b"]" * 5000, "nested too deep"), (b'{"samples": NaN}', "NaN is not JSON"),
     (b"\xff{}", "not UTF-8")],
)  # fmt: skip
def test_publication_json_is_read_by_the_bounded_reader(data: bytes, detail: str) -> None:
    with pytest.raises(InputError, match=f"publication.json: not valid JSON \\({detail}"):
        Publication.parse(data, where="publication.json")


def test_files_sorted_once_and_the_manifest_and_diff_present(tmp_path: Path) -> None:
    pub = _publication(_folder(tmp_path / "pub"))
    files = pub.to_json()["files"]
    assert isinstance(files, list)
    with pytest.raises(InputError, match="sorted by path, each once"):
        Publication.parse(_doc(pub, files=files[::-1]), where="p")
    with pytest.raises(InputError, match="sorted by path, each once"):
        Publication.parse(_doc(pub, files=[files[0], files[0], files[1]]), where="p")
    with pytest.raises(InputError, match=r"lists no manifest\.json"):
        Publication.parse(_doc(pub, files=files[:1]), where="p")
    with pytest.raises(InputError, match="lists no diff/"):
        Publication.parse(_doc(pub, files=files[1:]), where="p")
    with pytest.raises(InputError, match=r"lists no recipe\.py"):
        Publication.parse(_doc(pub, kind="regenerate", recipe="shift"), where="p")
    for bad in (b"\xff", b"[1, 2]", b"{"):
        with pytest.raises(InputError, match=r"not valid JSON|exactly the fields"):
            Publication.parse(bad, where="p")


def test_a_changed_missing_or_grown_file_is_refused(tmp_path: Path) -> None:
    root = _folder(tmp_path / "pub")
    _publication(root)
    flip_byte(root / "manifest.json", 3)  # same size, other bytes
    with pytest.raises(InputError, match=r"manifest.json has SHA-256 [0-9a-f]{64}; .*changed"):
        read_publication(root)
    read_publication(root, check=("diff/diff.json",))  # only what is asked is checked
    (root / "diff" / "diff.json").write_bytes(b"{}\n\n")
    with pytest.raises(InputError, match=r"diff.json is 4 bytes; publication.json says 3"):
        read_publication(root, check=("diff/diff.json",))
    (root / "diff" / "diff.json").unlink()
    with pytest.raises(InputError, match=r"diff\.json is missing") as e:
        read_publication(root, check=("diff/diff.json",))
    assert "download the publication again" in (e.value.hint or "")


def test_a_folder_without_publication_json(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a benchmark-regen publication") as e:
        read_publication(tmp_path)
    assert "benchmark-regen publish" in (e.value.hint or "") and not is_publication(tmp_path)


def test_read_through_the_links_of_a_hub_cache_snapshot(tmp_path: Path) -> None:
    root = _folder(tmp_path / "pub")
    pub = _publication(root)
    snapshot = lay_out(tmp_path / "cache", "org/pub", root, COMMIT)
    assert (snapshot / "manifest.json").is_symlink()
    assert read_publication(snapshot) == pub
    flip_byte((snapshot / "manifest.json").resolve(), 0)
    with pytest.raises(InputError, match="changed after publishing"):
        read_publication(snapshot)


def test_list_files_refuses_a_link(tmp_path: Path) -> None:
    root = _folder(tmp_path / "pub")
    (root / "elsewhere").symlink_to(tmp_path)
    with pytest.raises(InputError, match="elsewhere is a link, not a regular file"):
        list(list_files(root))
