"""Do recipes give the same pixels on arm64? Run them natively and in an arm64 chroot (qemu).

This is a script, not a pytest module (it needs root, qemu and minutes of emulation)::

    # once, as root (a few minutes): binfmt_misc, qemu, debootstrap, the aarch64 wheels
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc   # unless already mounted
    apt-get install -y qemu-user-static binfmt-support debootstrap
    python tests/arm64_portability.py setup --root /var/tmp/arm64-root

    # compare: the built-in adversarial (v2, exact integer model) and the v1 float32 model
    python tests/arm64_portability.py run --root /var/tmp/arm64-root [--all] [--json]

``setup`` bootstraps Debian bookworm for arm64 (minbase, python3) from the mirror
named in /etc/apt/sources.list*, downloads the aarch64 wheels of numpy and Pillow
at the versions *and hashes* of ``lockfiles/requirements.txt``, and installs them
into /opt/venv inside the chroot. ``run`` copies ``toolchain/``, the v1 float32
recipe (``tests/float_adversarial.py``), this script and some demo photographs
into /opt/portability in the chroot, then runs ``hashes`` twice: natively, and
under qemu-aarch64 in the chroot. Each side pins its own environment exactly as
``benchmark-regen`` does (``OPENBLAS_CORETYPE`` = Haswell on x86-64, ARMV8 on
arm64; one thread; numpy's SIMD dispatch off), decodes each photograph
canonically, applies the recipe and prints the pixel digest. The exit status is
0 only when every ``adversarial`` digest is the same on both sides.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INSIDE = Path("/opt/portability")
VENV_PYTHON = "/opt/venv/bin/python"
FLOAT_RECIPE = "float_adversarial.py:float_adversarial"
RECIPES = ("adversarial", FLOAT_RECIPE)
# A few photographs: RGB, greyscale, RGBA, PNG and JPEG; coins and moon are two on which
# adversarial 1.0 (float32) drifts on arm64, so the default run shows both outcomes.
FEW = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coins.png",
    "horse.png",
    "moon.png",
    "rocket.jpg",
)


# -- the side that computes (runs natively and inside the chroot) ------------------------


def hashes(photos: Path, names: list[str], recipe_dir: Path) -> dict[str, object]:
    """Pixel digests of each recipe on each photograph, in a pinned process."""
    from toolchain.run.determinism import pinned_environ, process_is_pinned

    if not process_is_pinned():  # pin before numpy loads: re-run this process pinned
        argv = [sys.executable, __file__, "hashes", str(photos), str(recipe_dir), *names]
        os.execve(sys.executable, argv, pinned_environ())
    import numpy as np
    import PIL

    from toolchain.codec.decode import decode
    from toolchain.model.hashing import pixel_digest
    from toolchain.recipes import load_recipe

    results: dict[str, dict[str, str]] = {}
    for ref in RECIPES:
        spec = str(recipe_dir / ref) if ref.endswith(FLOAT_RECIPE) else ref
        recipe = load_recipe(spec)
        digests = {}
        for name in names:
            pixels = decode((photos / name).read_bytes())
            digests[name] = str(pixel_digest(recipe.apply(name, pixels)))
            print(f"{platform.machine()} {recipe.name} {name} {digests[name]}", file=sys.stderr)
        results[f"{recipe.name}@{recipe.version}"] = digests
    return {
        "machine": platform.machine(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "npy_disable_cpu_features": os.environ.get("NPY_DISABLE_CPU_FEATURES", ""),
        "results": results,
    }


# -- setup -------------------------------------------------------------------------------


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (never hard-coded here)."""
    texts = [p.read_text() for p in sorted(Path("/etc/apt").glob("sources.list*")) if p.is_file()]
    texts += [p.read_text() for p in sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    texts += [p.read_text() for p in sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            uri = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uri and suites and "bookworm" in suites.group(1).split():
                return uri.group(1)
        for line in text.splitlines():
            m = re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if m:
                return m.group(1)
    raise SystemExit("no bookworm mirror in /etc/apt/sources.list*: pass --mirror")


def locked_requirements(names: tuple[str, ...] = ("numpy", "pillow")) -> str:
    """The requirement blocks (with every --hash) of ``names`` from the hashed lockfile."""
    text = (REPO / "lockfiles" / "requirements.txt").read_text()
    block = r"^([a-z0-9_.-]+==\S+(?: \\\n(?:[ \t]+--hash=\S+(?: \\)?\n?)+))"
    blocks = re.findall(block, text, re.M)
    picked = [b.rstrip("\\\n ") for b in blocks if b.split("==")[0] in names]
    if len(picked) != len(names):
        raise SystemExit(f"lockfiles/requirements.txt does not pin all of {names}")
    return "\n".join(picked) + "\n"


def setup(root: Path, mirror: str | None) -> None:
    if not (root / "usr" / "bin" / "python3").exists():
        subprocess.run(
            ["debootstrap", "--arch=arm64", "--variant=minbase",
             "--include=python3,python3-venv,python3-pip", "bookworm", str(root),
             mirror or apt_mirror()],
            check=True,
        )  # fmt: skip
    wheels = root / "opt" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    (wheels / "requirements.txt").write_text(locked_requirements())
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary",
         ":all:", "--platform", "manylinux_2_28_aarch64", "--python-version", "3.11",
         "--implementation", "cp", "--abi", "cp311", "--require-hashes",
         "-r", str(wheels / "requirements.txt"), "-d", str(wheels)],
        check=True,
    )  # fmt: skip
    if not (root / VENV_PYTHON.lstrip("/")).exists():
        subprocess.run(["chroot", str(root), "python3", "-m", "venv", "/opt/venv"], check=True)
    subprocess.run(
        ["chroot", str(root), VENV_PYTHON, "-m", "pip", "install", "--quiet", "--no-index",
         "--find-links", "/opt/wheels", "--require-hashes", "-r", "/opt/wheels/requirements.txt"],
        check=True,
    )  # fmt: skip


# -- run ---------------------------------------------------------------------------------


def _stage(root: Path, photos: Path, names: list[str]) -> None:
    """Copy the code and the photographs into the chroot (replacing an older copy)."""
    dest = root / INSIDE.relative_to("/")
    shutil.rmtree(dest, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "toolchain", dest / "toolchain", ignore=ignore)
    (dest / "tests").mkdir(parents=True)
    shutil.copy2(REPO / "tests" / "float_adversarial.py", dest / "tests" / "float_adversarial.py")
    shutil.copy2(Path(__file__), dest / "tests" / "arm64_portability.py")
    (dest / "photos").mkdir()
    for name in names:
        shutil.copy2(photos / name, dest / "photos" / name)


def _side(cmd: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run one side; its progress (one line per sample) goes to our stderr as it comes."""
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed with exit code {proc.returncode}")
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def summary_digest(digests: dict[str, str]) -> str:
    """One digest over the sorted (sample, pixel digest) pairs of a side."""
    h = hashlib.sha256()
    for name in sorted(digests):
        h.update(f"{name}\0{digests[name]}\n".encode())
    return "sha256:" + h.hexdigest()


def run(root: Path, names: list[str], as_json: bool) -> int:
    from toolchain.demo import demo_original

    photos = demo_original()
    _stage(root, photos, names)
    clean = {k: v for k, v in os.environ.items() if k != "BENCHMARK_REGEN_PINNED"}
    native = _side(
        [sys.executable, __file__, "hashes", str(photos), str(REPO / "tests"), *names], clean
    )
    inside_env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "PYTHONPATH": str(INSIDE)}
    script = str(INSIDE / "tests" / "arm64_portability.py")
    emulated = _side(
        [shutil.which("chroot") or "/usr/sbin/chroot", str(root), VENV_PYTHON, script, "hashes",
         str(INSIDE / "photos"),
         str(INSIDE / "tests"), *names],
        inside_env,
    )  # fmt: skip
    report: dict[str, object] = {"native": native, "emulated": emulated, "recipes": {}}
    ok = True
    lines = []
    a_res, b_res = native["results"], emulated["results"]
    assert isinstance(a_res, dict) and isinstance(b_res, dict)
    for recipe in a_res:
        a, b = a_res[recipe], b_res[recipe]
        differ = sorted(n for n in names if a[n] != b[n])
        report["recipes"][recipe] = {  # type: ignore[index]
            "samples": len(names),
            "differ": differ,
            "native_digest": summary_digest(a),
            "emulated_digest": summary_digest(b),
        }
        if recipe.startswith("adversarial@") and differ:
            ok = False
        lines.append(
            f"{recipe}: {len(names) - len(differ)}/{len(names)} samples equal; "
            f"{native['machine']} {summary_digest(a)} | {emulated['machine']} {summary_digest(b)}"
        )
        for n in names:
            mark = "=" if a[n] == b[n] else "DIFFERS"
            lines.append(f"  {n:<22} {a[n][7:23]}  {b[n][7:23]}  {mark}")
    report["ok"] = ok
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for side in (native, emulated):
            print(
                f"{side['machine']}: numpy {side['numpy']}, Pillow {side['pillow']}, "
                f"OPENBLAS_CORETYPE={side['openblas_coretype']}, "
                f"NPY_DISABLE_CPU_FEATURES={side['npy_disable_cpu_features']!r}"
            )
        print("\n".join(lines))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_setup = sub.add_parser("setup", help="debootstrap the arm64 chroot and install the wheels")
    p_setup.add_argument("--root", type=Path, default=Path("/var/tmp/arm64-root"))
    p_setup.add_argument("--mirror", help="Debian mirror URL (default: the one apt uses)")
    p_run = sub.add_parser("run", help="compare native and emulated arm64 pixel digests")
    p_run.add_argument("--root", type=Path, default=Path("/var/tmp/arm64-root"))
    p_run.add_argument("--all", action="store_true", help="every demo photograph, not a few")
    p_run.add_argument("--samples", nargs="+", help="these demo photographs (file names)")
    p_run.add_argument("--json", action="store_true")
    p_hashes = sub.add_parser("hashes", help="(internal) digests on this machine, as JSON")
    p_hashes.add_argument("photos", type=Path)
    p_hashes.add_argument("recipe_dir", type=Path)
    p_hashes.add_argument("names", nargs="+")
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.root, args.mirror)
        return 0
    if args.command == "hashes":
        print(json.dumps(hashes(args.photos, args.names, args.recipe_dir), sort_keys=True))
        return 0
    names = list(args.samples or FEW)
    if args.all:
        from toolchain.demo import demo_original

        suffixes = (".png", ".jpg", ".jpeg", ".webp")
        found = [p.name for p in demo_original().iterdir() if p.suffix.lower() in suffixes]
        names = sorted(found, key=lambda n: n.encode("utf-8"))
    return run(args.root, names, args.json)


if __name__ == "__main__":
    sys.exit(main())
