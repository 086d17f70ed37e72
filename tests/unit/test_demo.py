"""toolchain.demo: scikit-image's photographs as the original, found without running its code;
run_demo generates, verifies and reports (on a small stand-in original, and for real: slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import toolchain.demo as demo_mod
from tests.diff_cases import pinned, tiny_original
from toolchain.demo import DEMO_RECIPE, demo_original, run_demo
from toolchain.errors import SourceError


def test_the_original_is_skimages_data_folder(demo_dir: Path) -> None:
    assert demo_dir == demo_original() and demo_dir.name == "data"
    names = {p.name for p in demo_dir.iterdir()}
    assert {"camera.png", "astronaut.png", "rocket.jpg", "chelsea.png"} <= names


def test_skimage_is_found_without_being_imported() -> None:
    code = (
        "import sys; from toolchain.demo import demo_original; demo_original();"
        "print('skimage' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_scikit_image_the_hint_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = demo_mod.importlib.util.find_spec
    monkeypatch.setattr(
        demo_mod.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "skimage" else real(name, *a),
    )
    with pytest.raises(SourceError, match="scikit-image's sample photographs") as e:
        demo_original()
    assert "benchmark-regen[demo]" in (e.value.hint or "") and e.value.exit_code == 3


def test_run_demo_generates_verifies_and_names_its_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = tiny_original(tmp_path / "photos")
    monkeypatch.setattr(demo_mod, "demo_original", lambda: original)
    with pinned():
        result = run_demo(tmp_path / "out")
        again = run_demo(tmp_path / "out", overwrite=True)  # the CLI replaces an old demo
    doc = result.to_json()
    assert doc["verified"] is True and result.verified.ok
    assert doc["recipe"]["name"] == DEMO_RECIPE == "gaussian-noise"
    assert (doc["samples"], doc["samples_in_original"]) == (3, 5)  # a seeded half, by id
    assert doc["original"] == str(original) and doc["out"] == str(tmp_path / "out")
    assert again.generated.root == result.generated.root
    provenance = result.generated.manifest.provenance
    assert provenance.original_name.startswith("scikit-image ")
    assert provenance.recipe_license == "Apache-2.0"


@pytest.mark.slow
def test_the_real_demo_verifies(tmp_path: Path) -> None:
    with pinned():
        result = run_demo(tmp_path / "demo")
    assert result.verified.ok and result.original == demo_original()
    assert result.to_json()["samples_in_original"] == len(
        [p for p in demo_original().iterdir() if p.suffix in (".png", ".jpg")]
    )
