"""Issue #15, the smaller items, through the command line.

* files the original holds but that are not samples (``.gif``, ``.tif``, hidden) are
  counted in ``generate``'s summary and ``--json``;
* ``--json`` errors are one JSON object on stdout (the message on stderr), never a
  traceback; a second run into a folder being written is told the writer's pid;
* a PNG whose CRC is wrong says so, naming the sample and the chunk;
* ``sign --out`` and ``diff create --out`` never overwrite a manifest;
* ``NO_COLOR`` leaves no escape sequence on a real terminal, progress bar included;
* (issue #23) other people's text (an original's name, a sample id, a config folder)
  reaches the terminal with its control characters escaped, colour on or off.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from tests.cli import no_traceback
from tests.conftest import make_image
from tests.diff_cases import build, pinned, tiny_original
from tests.terminal import start
from toolchain.cli import cli
from toolchain.errors import ExitCode
from toolchain.run.generate import generate_benchmark


def _invoke(*args: str) -> Result:
    with pinned():  # in this process: no worker pool to spawn
        return CliRunner().invoke(cli, list(args))


def png_with_bad_crc(chunk: bytes = b"IDAT") -> bytes:
    """A valid PNG, but for one bit of ``chunk``'s CRC (its data decodes fine)."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (16, 24, 3), np.uint8)).save(
        buf, format="PNG"
    )
    data = bytearray(buf.getvalue())
    at = data.index(chunk) - 4
    length = int.from_bytes(data[at : at + 4], "big")
    data[at + 8 + length] ^= 0x01  # the first CRC byte
    return bytes(data)


# -- ignored files are counted -------------------------------------------------------------


def test_ignored_files_are_counted_in_the_summary_and_json(tmp_path: Path) -> None:
    original = tmp_path / "original"
    make_image(original / "a.png")
    make_image(original / "sub" / "b.png", seed=1)
    (original / "anim.gif").write_bytes(b"GIF89a")
    (original / "sub" / "scan.tif").write_bytes(b"II*\x00")
    (original / "scan2.TIF").write_bytes(b"II*\x00")
    (original / ".DS_Store").write_bytes(b"\x00")
    r = _invoke("generate", "--recipe", "identity", "--original", str(original),
                "--out", str(tmp_path / "o1"), "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (
        "ignored 4 file(s) of the original that are not JPEG, PNG or WebP: "
        "1 .gif, 2 .tif, 1 hidden" in r.stdout
    )
    r = _invoke("generate", "--recipe", "identity", "--original", str(original),
                "--out", str(tmp_path / "o2"), "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ignored"] == {".gif": 1, ".tif": 2, "hidden": 1} and doc["samples"] == 2
    # Nothing ignored: no line, and an empty object.
    clean = tmp_path / "clean"
    make_image(clean / "a.png")
    r = _invoke("generate", "--recipe", "identity", "--original", str(clean),
                "--out", str(tmp_path / "o3"), "-q")  # fmt: skip
    assert r.exit_code == 0 and not [x for x in r.stdout.splitlines() if x.startswith("ignored")]


# -- errors as JSON, a bad CRC, the lock ---------------------------------------------------


@pytest.fixture
def locked_out(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A folder whose lock another process holds (as a running generate would)."""
    out = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom toolchain.run.outdir import open_out\n"
         f"with open_out({str(out)!r}, header={{'kind': 'test'}}):\n"
         "    print('locked', flush=True)\n    time.sleep(120)\n"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield out, holder.pid
    finally:
        holder.kill()
        holder.communicate()


def _json_error(r: Result, kind: str, code: int) -> dict[str, object]:
    assert r.exit_code == code, r.output
    doc = json.loads(r.stdout)  # stdout holds exactly one JSON document
    assert set(doc) == {"error"}
    err = doc["error"]
    assert err["kind"] == kind and err["exit_code"] == code and err["message"]
    assert "error: " in r.stderr and "Traceback" not in r.output
    return err  # type: ignore[no-any-return]


def test_json_errors_are_one_object_on_stdout(tmp_path: Path) -> None:
    original = tmp_path / "original"
    make_image(original / "ok.png")
    (original / "bad.png").write_bytes(png_with_bad_crc())
    err = _json_error(
        _invoke("generate", "--recipe", "identity", "--original", str(original),
                "--out", str(tmp_path / "out"), "--json"),
        "DecodeError", ExitCode.BAD_INPUT,
    )  # fmt: skip
    assert err["sample"] == "bad.png" and "bad CRC" in str(err["message"])
    assert not (tmp_path / "out" / "manifest.json").exists()
    (tmp_path / "empty").mkdir()
    _json_error(_invoke("verify", str(tmp_path / "empty"), "--json"), "ManifestError", 3)
    junk = tmp_path / "junk.bdiff"
    junk.write_bytes(os.urandom(300))
    _json_error(
        _invoke("diff", "apply", "--original", str(original), "--diff", str(junk),
                "--out", str(tmp_path / "applied"), "--json"),
        "DiffFormatError", ExitCode.BAD_INPUT,
    )  # fmt: skip
    _json_error(_invoke("diff", "inspect", str(junk), "--json"), "DiffFormatError", 3)


@pytest.mark.parametrize("chunk", [b"IHDR", b"IDAT", b"IEND"])
def test_a_png_with_a_bad_crc_says_so(tmp_path: Path, chunk: bytes) -> None:
    """Pillow checks the CRCs before the image data only (an IDAT or IEND CRC error was
    decoded silently; an IHDR one was 'not a JPEG, PNG or WebP image')."""
    original = tmp_path / "original"
    make_image(original / "ok.png")
    (original / "cats" / "bad.png").parent.mkdir()
    (original / "cats" / "bad.png").write_bytes(png_with_bad_crc(chunk))
    r = _invoke("generate", "--recipe", "identity", "--original", str(original),
                "--out", str(tmp_path / "out"), "-q")  # fmt: skip
    assert r.exit_code == ExitCode.BAD_INPUT, r.output
    name = chunk.decode()
    said = (
        rf"sample 'cats/bad.png': corrupt PNG: chunk '{name}' at offset \d+ has a "
        r"bad CRC \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\)"
    )
    assert re.search(said, r.stderr), r.stderr
    assert "replace it with a good copy" in r.stderr
    # The CRC is what is wrong: the same bytes with the CRC recomputed decode.
    data = bytearray(png_with_bad_crc(chunk))
    at = data.index(chunk) - 4
    length = int.from_bytes(data[at : at + 4], "big")
    data[at + 8 + length : at + 12 + length] = zlib.crc32(data[at + 4 : at + 8 + length]).to_bytes(
        4, "big"
    )
    (original / "cats" / "bad.png").write_bytes(bytes(data))
    r = _invoke("generate", "--recipe", "identity", "--original", str(original),
                "--out", str(tmp_path / "out2"), "-q")  # fmt: skip
    assert r.exit_code == 0, r.output


def test_a_second_run_is_told_which_process_is_writing(
    locked_out: tuple[Path, int], tmp_path: Path
) -> None:
    out, pid = locked_out
    original = tiny_original(tmp_path / "original")
    r = _invoke("generate", "--recipe", "identity", "--original", str(original),
                "--out", str(out), "--json")  # fmt: skip
    err = _json_error(r, "OutputError", ExitCode.ENVIRONMENT)
    assert f"another run (pid {pid}) is writing to" in str(err["message"])
    _, diff = build(original, "identity", tmp_path)
    r = _invoke("diff", "apply", "--original", str(original), "--diff", str(diff),
                "--out", str(out), "--overwrite")  # fmt: skip
    assert r.exit_code == ExitCode.ENVIRONMENT and f"(pid {pid})" in r.stderr
    # The holder's folder is untouched: only its own lock is there.
    assert [p.name for p in out.iterdir()] == [".benchmark-regen"]


# -- sign --out and diff create --out never overwrite a manifest ---------------------------


def test_sign_and_diff_create_never_overwrite_a_manifest(tmp_path: Path) -> None:
    original = tiny_original(tmp_path / "original")
    bench, _ = build(original, "identity", tmp_path)
    manifest = bench / "manifest.json"
    before = manifest.read_bytes()
    copy = tmp_path / "published.json"  # our manifest, under another name
    shutil.copy(manifest, copy)
    link = tmp_path / "link.bdiff"
    link.symlink_to(manifest)
    key = tmp_path / "k"
    assert _invoke("key", "generate", "--out", str(key)).exit_code == 0
    for target in (manifest, copy, link):
        r = _invoke("sign", str(manifest), "--key", str(key), "--out", str(target))
        assert r.exit_code == ExitCode.ENVIRONMENT and "refusing to overwrite" in r.stderr, target
    for target in (manifest, copy, bench / "manifest.shard-0-of-2.json"):
        r = _invoke("diff", "create", "--original", str(original), "--benchmark", str(bench),
                    "--out", str(target))  # fmt: skip
        assert r.exit_code == ExitCode.BAD_INPUT and "refusing to overwrite" in r.stderr, target
    assert manifest.read_bytes() == before and copy.read_bytes() == before
    # A symlink named like a diff is replaced by the diff, never written through.
    r = _invoke("diff", "create", "--original", str(original), "--benchmark", str(bench),
                "--out", str(link), "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert not link.is_symlink() and manifest.read_bytes() == before


# -- NO_COLOR on a terminal ----------------------------------------------------------------


@pytest.mark.slow
def test_no_color_leaves_no_escape_sequence_on_a_terminal(tmp_path: Path) -> None:
    original = tmp_path / "original"
    for i in range(6):
        make_image(original / f"{i}.png", seed=i, size=(300, 200))
    (original / "x.gif").write_bytes(b"GIF89a")
    runs: dict[bool, bytes] = {}
    for no_color in (False, True):
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        if no_color:
            env["NO_COLOR"] = "1"
        out = tmp_path / f"out-{no_color}"
        text = b""
        for args in (
            ["generate", "--recipe", "identity", "--original", str(original), "--out", str(out)],
            ["verify", str(out)],
            ["generate", "--recipe", "identity", "--original", str(original), "--out", str(out)],
        ):  # a success with a progress bar, another, and an error ("--out is not empty")
            with start(args, env=env) as term:
                code = term.wait(300)
            text += bytes(term.output)
        assert code == ExitCode.ENVIRONMENT and b"is not empty" in text
        assert b"verify" in text and b"generate" in text  # the progress bars were drawn
        runs[no_color] = text
    # The positive control: on a terminal the same commands do write escape sequences.
    assert b"\x1b[" in runs[False]
    stray = re.findall(rb"\x1b[^a-zA-Z]*[a-zA-Z]?", runs[True])
    assert not stray, f"escape sequences with NO_COLOR: {stray[:5]}"


def test_the_api_result_exposes_ignored_kinds(tmp_path: Path) -> None:
    original = tmp_path / "original"
    make_image(original / "a.png")
    (original / "a.gif").write_bytes(b"GIF89a")
    (original / ".hidden.png").write_bytes(b"x")
    with pinned():
        result = generate_benchmark(original, "identity", tmp_path / "out")
    assert result.ignored == {".gif": 1, "hidden": 1}


# -- Other people's text on a terminal (issue #23, item 6) ---------------------------------

HOSTILE = "x\x1b]0;owned\x07\x1b]52;c;b3duZWQ=\x07\u009b31m\u009d0;t\u009c\u202eevil"
"""OSC 0 (the window title), OSC 52 (the clipboard), C1 CSI/OSC/ST, a bidi override."""
SHOWN = "x\\x1b]0;owned\\x07\\x1b]52;c;b3duZWQ=\\x07\\u009b31m\\u009d0;t\\u009c\\u202eevil"
RAW = ("\x07", "\u009b", "\u009d", "\u009c", "\u202e")


def _no_raw(text: str) -> None:
    """Nothing a terminal acts on but SGR colour codes (``ESC [ ... m``) of our own."""
    assert not [c for c in RAW if c in text], repr(text)
    assert re.sub(r"\x1b\[[0-9;]*m", "", text).count("\x1b") == 0, repr(text)


def _hostile_config_original(tmp_path: Path) -> Path:
    """A Hugging Face parquet layout whose second config folder is named ``HOSTILE``."""
    original = tmp_path / "hf-original"
    for config in ("plain", HOSTILE):
        (original / config / "train").mkdir(parents=True)
        (original / config / "train" / "0000.parquet").write_bytes(b"PAR1")
    return original


@pytest.mark.parametrize("no_color", [True, False])
def test_other_peoples_text_reaches_the_terminal_escaped(tmp_path: Path, no_color: bool) -> None:
    """A .bdiff naming a hostile original (`diff inspect`), an original whose sample id
    holds a bidi override (`diff check`), a config folder name in an error: all escaped,
    while our own colours still work."""
    original = tmp_path / "original"
    make_image(original / "a\u202egnp.png")
    bench, diff = tmp_path / "bench", tmp_path / "d.bdiff"
    r = _invoke("generate", "--recipe", "identity", "--original", str(original), "--out",
                str(bench), "--original-name", HOSTILE, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = _invoke("diff", "create", "--original", str(original), "--benchmark", str(bench),
                "--out", str(diff), "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    env = {"NO_COLOR": "1"} if no_color else {}
    runs = {
        "inspect": ["diff", "inspect", str(diff)],
        "check": ["diff", "check", "--original", str(original), "--diff", str(diff)],
        "verify": ["verify", str(bench)],
        "error": ["generate", "--recipe", "identity", "--original",
                  str(_hostile_config_original(tmp_path)), "--out", str(tmp_path / "out")],
    }  # fmt: skip
    out = {}
    for name, args in runs.items():
        with pinned():
            r = no_traceback(CliRunner().invoke(cli, args, env=env, color=True))
        _no_raw(r.output)
        out[name] = r.output
    assert f"original   {SHOWN}\n" in out["inspect"]
    assert "found-by-id  a\\u202egnp.png\n" in out["check"]
    assert f"has several configs: plain, {SHOWN}\n" in out["error"]
    # Our own styling: colour on a terminal, none with NO_COLOR.
    assert ("\x1b[32m\x1b[1mOK\x1b[0m" in out["verify"]) is not no_color
    assert ("\x1b[31m\x1b[1merror: \x1b[0m" in out["error"]) is not no_color
    assert ("\x1b" in out["verify"] + out["error"]) is not no_color


def test_json_keeps_other_peoples_text_exact_and_ascii(tmp_path: Path) -> None:
    original = _hostile_config_original(tmp_path)
    args = ["generate", "--recipe", "identity", "--original", str(original), "--out",
            str(tmp_path / "out"), "--json"]  # fmt: skip
    r = no_traceback(CliRunner().invoke(cli, args, color=True))
    assert r.exit_code == ExitCode.BAD_INPUT
    assert r.stdout.isascii()
    message = json.loads(r.stdout)["error"]["message"]
    assert message.endswith(f"has several configs: plain, {HOSTILE}")
    _no_raw(r.stderr)


def test_no_color_on_a_terminal_shows_hostile_names_escaped(tmp_path: Path) -> None:
    """What the issue saw: with NO_COLOR=1 on a real terminal, OSC 0 and OSC 52 in a config
    folder name went through (click strips colour codes, not OSC)."""
    original = _hostile_config_original(tmp_path)
    env = {**os.environ, "NO_COLOR": "1"}
    with start(["generate", "--recipe", "identity", "--original", str(original), "--out",
                str(tmp_path / "out")], env=env) as term:  # fmt: skip
        code = term.wait(120)
    text = bytes(term.output)
    assert code == ExitCode.BAD_INPUT and b"has several configs" in text
    assert SHOWN.encode() in text
    assert not [c for c in ("\x1b", *RAW) if c.encode() in text], text
