"""toolchain.source.folder: a folder tree as an original: listing, labels, links, safe reads."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.conftest import make_image
from toolchain.errors import SourceError
from toolchain.model.columns import ColumnSpec
from toolchain.source import FolderSource, open_source


def test_listing_is_sorted_and_skips_hidden_and_non_images(tmp_path: Path) -> None:
    for name in ["b/z.png", "a/y.JPG", "a/x.webp", ".hidden/q.png", "a/.dot.png"]:
        make_image(
            tmp_path / name,
            fmt={"png": "PNG", "JPG": "JPEG", "webp": "WEBP"}[name.rsplit(".", 1)[1]],
        )
    (tmp_path / "README.txt").write_text("not an image")
    listing = open_source(tmp_path).listing()
    assert listing.ids == ("a/x.webp", "a/y.JPG", "b/z.png")
    assert listing.ignored == 3  # README.txt and the two hidden images


def test_listing_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    names = [f"d{i % 3}/img{i}.png" for i in range(9)]
    one, two = tmp_path / "one", tmp_path / "two"
    for n in names:
        make_image(one / n, seed=len(n))
    for n in reversed(names):
        make_image(two / n, seed=len(n))
    assert open_source(one).listing().ids == open_source(two).listing().ids


def test_symlink_escaping_the_original_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make_image(outside / "secret.png")
    root = tmp_path / "orig"
    make_image(root / "ok.png")
    os.symlink(outside / "secret.png", root / "link.png")
    with pytest.raises(SourceError, match="points outside the original"):
        FolderSource(root).listing()
    with pytest.raises(SourceError, match="symlink: not followed"):
        FolderSource(root).read("link.png")  # never followed, listed or not


def test_case_collision_is_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "A.png")
    make_image(tmp_path / "a.png")
    if len(list(tmp_path.iterdir())) < 2:
        pytest.skip("case-insensitive file system")
    with pytest.raises(SourceError, match="collide"):
        open_source(tmp_path).listing()


def test_vanished_file_names_the_sample(tmp_path: Path) -> None:
    make_image(tmp_path / "gone.png")
    src = open_source(tmp_path)
    (tmp_path / "gone.png").unlink()
    with pytest.raises(SourceError, match="vanished") as e:
        src.read("gone.png")
    assert e.value.sample == "gone.png"


def test_ignored_files_are_counted_by_kind(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png")
    (tmp_path / "b.gif").write_bytes(b"GIF89a")
    (tmp_path / "c.GIF").write_bytes(b"GIF89a")
    (tmp_path / "notes").write_text("x")
    make_image(tmp_path / ".cache/x.png")
    listing = FolderSource(tmp_path).listing()
    assert listing.ids == ("a.png",)
    assert dict(listing.ignored_kinds) == {"(none)": 1, ".gif": 2, "hidden": 1}
    assert listing.ignored == 4


def test_a_link_inside_the_tree_is_listed_under_its_name_and_read_from_its_target(
    tmp_path: Path,
) -> None:
    data = make_image(tmp_path / "sub/real.png")
    os.symlink("sub/real.png", tmp_path / "alias.png")
    src = FolderSource(tmp_path)
    assert src.listing().ids == ("alias.png", "sub/real.png")
    assert src.read("alias.png") == data == src.read("sub/real.png")


def test_a_folder_linked_twice_is_refused_not_listed_twice(tmp_path: Path) -> None:
    make_image(tmp_path / "sub/a.png")
    os.symlink("sub", tmp_path / "again")
    with pytest.raises(SourceError, match="second path"):
        FolderSource(tmp_path).listing()
    loop = tmp_path / "loop"
    make_image(loop / "sub/a.png")
    os.symlink("..", loop / "sub/up")  # a cycle inside the tree: walked forever if followed
    with pytest.raises(SourceError, match="second path"):
        FolderSource(loop).listing()


def test_folder_per_class_originals_carry_a_label(tmp_path: Path) -> None:
    for rel in ("dog/1.png", "cat/2.png", "dog/3.png"):
        make_image(tmp_path / rel)
    src = FolderSource(tmp_path)
    assert src.listing().columns == (
        ColumnSpec(name="label", type="class_label", names=("cat", "dog")),
    )
    assert [src.columns_of(i) for i in src.listing().ids] == [
        {"label": 0},
        {"label": 1},
        {"label": 1},
    ]
    dropped = FolderSource(tmp_path, columns="")
    assert dropped.listing().columns == () and dropped.columns_of("cat/2.png") == {}
    with pytest.raises(SourceError, match="no carryable column 'caption'"):
        FolderSource(tmp_path, columns="caption").listing()


def test_a_metadata_file_turns_the_labels_off_as_in_imagefolder(tmp_path: Path) -> None:
    for rel in ("dog/1.png", "cat/2.png"):
        make_image(tmp_path / rel)
    (tmp_path / "metadata.jsonl").write_text("{}\n")
    listing = FolderSource(tmp_path).listing()
    assert listing.columns == () and listing.ignored_kinds == {".jsonl": 1}


def test_a_fifo_swapped_in_is_refused_without_hanging(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png")
    src = FolderSource(tmp_path)
    assert src.listing().ids == ("a.png",)
    (tmp_path / "a.png").unlink()
    os.mkfifo(tmp_path / "a.png")
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            src.read("a.png")
        except BaseException as e:
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    (err,) = outcome
    assert isinstance(err, SourceError) and err.sample == "a.png"
    assert "not a regular file" in err.message


def test_a_file_swapped_for_a_link_is_refused_not_followed(tmp_path: Path) -> None:
    make_image(tmp_path / "orig/a.png")
    make_image(tmp_path / "orig/b.png", seed=1)
    src = FolderSource(tmp_path / "orig")
    assert src.listing().ids == ("a.png", "b.png")
    (tmp_path / "orig/a.png").unlink()
    os.symlink("b.png", tmp_path / "orig/a.png")  # inside the tree, but not listed as a link
    with pytest.raises(SourceError, match="symlink: not followed") as e:
        src.read("a.png")
    assert e.value.sample == "a.png"


def test_unsafe_ids_are_refused_before_any_read(tmp_path: Path) -> None:
    make_image(tmp_path / "orig/a.png")
    make_image(tmp_path / "secret.png")
    with pytest.raises(SourceError, match="unsafe sample id"):
        FolderSource(tmp_path / "orig").read("../secret.png")


def test_a_walk_out_of_utf8_order_is_still_listed_in_it(tmp_path: Path) -> None:
    """A folder walk gives ``a/…`` before ``a-b/…`` and ``a.b/…``, but '-' and '.' sort
    before '/': the ids are packed as walked, then sorted once."""
    names = ["a/z.png", "a-b/y.png", "a.b/x.png", "a/b/w.png", "ab.png", "é/v.png"]
    for n in names:
        make_image(tmp_path / n)
    listing = open_source(tmp_path).listing()
    assert list(listing.ids) == sorted(names, key=lambda s: s.encode("utf-8"))
    assert all(n in listing.ids for n in names) and "a" not in listing.ids


def test_a_file_name_that_is_not_utf8_is_named_not_a_traceback(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png")
    make_image(Path(os.fsdecode(bytes(tmp_path) + b"/b\xff.png")))
    with pytest.raises(SourceError, match="not valid UTF-8"):
        open_source(tmp_path).listing()
