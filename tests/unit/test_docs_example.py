"""The auditor's 20-line snippet in docs/manifest.md really recomputes the root."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from toolchain.run.generate import generate_benchmark

DOC = Path(__file__).resolve().parents[2] / "docs" / "manifest.md"


def test_manifest_doc_snippet_recomputes_the_root(small_original: Path, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    (snippet,) = [b for b in blocks if "benchmark-regen/root/v2" in b]
    script = tmp_path / "audit.py"
    script.write_text(snippet)
    result = generate_benchmark(small_original, "gaussian-noise", tmp_path / "bench")
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "bench")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == str(result.root)
    assert len(snippet.strip().splitlines()) <= 25
