"""Task runner for benchmark-regen.

Every environment installs from the hashed lockfiles in ``lockfiles/`` with
``--require-hashes``: the tests run against exactly the wheels the container
holds, so a host root hash and a container root hash are comparable.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
LOCKS = ROOT / "lockfiles"
PYTHON = "3.11"
# Resolution is frozen at this instant, so `nox -s lock` is a pure function of
# pyproject.toml: re-running it gives byte-identical lockfiles.
EXCLUDE_NEWER = "2026-11-20T00:00:00Z"
PLATFORM = "x86_64-manylinux_2_28"


def _install_build_backend(session: nox.Session) -> None:
    """The build backend, pinned by hash (the project is installed without build isolation)."""
    session.install("--require-hashes", "--only-binary", ":all:", "-r", str(LOCKS / "build.txt"))


# Locked packages that publish no wheel: built from their hash-checked sdist with
# the pinned build backend (mlcroissant needs jsonpath-rw, pure Python).
SDIST_ONLY = ["jsonpath-rw"]


def _locked_install_args(lock: Path) -> list[str]:
    sdists = [a for name in SDIST_ONLY for a in ("--no-binary", name)]
    return ["--require-hashes", "--only-binary", ":all:", *sdists, "--no-build-isolation",
            "-r", str(lock)]  # fmt: skip


def _install_locked(session: nox.Session, *locks: str) -> None:
    _install_build_backend(session)
    for lock in locks:
        session.install(*_locked_install_args(LOCKS / lock))
    # The project itself: its dependencies are already pinned above.
    session.install("--no-deps", "--no-build-isolation", "-e", ".")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (docker-marked tests need an engine; .ci/run starts one)."""
    _install_locked(session, "test.txt")
    session.run("pytest", *session.posargs, env={"PYTHONDONTWRITEBYTECODE": "1"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, strict mypy, and actionlint over the CI workflow."""
    _install_locked(session, "lint.txt")
    session.run("ruff", "check", "toolchain", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "toolchain", "tests", "benchmarks", "noxfile.py")
    session.run("mypy")
    session.run("actionlint", *sorted(str(p) for p in (ROOT / ".github/workflows").glob("*.yml")))


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Regenerate the demo benchmark from scikit-image's bundled photographs and verify it."""
    _install_locked(session, "requirements.txt")
    out = session.posargs[0] if session.posargs else str(ROOT / "demo-out")
    session.run("benchmark-regen", "demo", "--out", out, *session.posargs[1:])


@nox.session(python=PYTHON, default=False)
def lock(session: nox.Session) -> None:
    """Regenerate the hashed lockfiles from pyproject.toml (deterministic)."""
    session.install("uv")
    common = [
        "uv", "pip", "compile", "pyproject.toml", "--generate-hashes", "--no-header",
        "--python-version", PYTHON, "--python-platform", PLATFORM,
        "--exclude-newer", EXCLUDE_NEWER, "--quiet",
    ]  # fmt: skip
    env = {"UV_CUSTOM_COMPILE_COMMAND": "nox -s lock"}
    # The runtime (and the image): every extra, so the image serves the demo,
    # Hugging Face originals and outputs, and Dask workers.
    extras = ["--extra", "demo", "--extra", "hf", "--extra", "dask"]
    session.run(*common, *extras, "-o", str(LOCKS / "requirements.txt"), env=env)
    session.run(*common, *extras, "--group", "test", "-o", str(LOCKS / "test.txt"), env=env)
    session.run(*common, "--group", "lint", "-o", str(LOCKS / "lint.txt"), env=env)
    # The build backend alone: `--group` without a source file takes no project dependency.
    build = [a for a in common if a != "pyproject.toml"]
    session.run(*build, "--group", "build", "-o", str(LOCKS / "build.txt"), env=env)


# -- version matrix (GitHub issue #5) --------------------------------------------------
# Each combination is a constraints file lockfiles/matrix/<name>.in on top of
# pyproject.toml's [demo] extra, compiled into a hashed <name>.txt. "locked" is
# the project's own lockfile, the reference every other combination is held to.
MATRIX = LOCKS / "matrix"
MATRIX_OUT = ROOT / ".matrix"
MATRIX_COMBOS = ["locked", *sorted(p.stem for p in MATRIX.glob("*.in"))]


def _matrix_lock(combo: str) -> Path:
    return LOCKS / "requirements.txt" if combo == "locked" else MATRIX / f"{combo}.txt"


@nox.session(python=PYTHON, default=False)
def matrix_lock(session: nox.Session) -> None:
    """Compile the version-matrix lockfiles from lockfiles/matrix/*.in (deterministic)."""
    session.install("uv")
    for src in sorted(MATRIX.glob("*.in")):
        session.run(
            "uv", "pip", "compile", "pyproject.toml", "--extra", "demo", "-c", str(src),
            "--generate-hashes", "--no-header", "--python-version", PYTHON,
            "--python-platform", PLATFORM, "--exclude-newer", EXCLUDE_NEWER, "--quiet",
            "-o", str(src.with_suffix(".txt")),
            env={"UV_CUSTOM_COMPILE_COMMAND": "nox -s matrix_lock"},
        )  # fmt: skip


@nox.session(python=PYTHON, default=False)
@nox.parametrize("combo", MATRIX_COMBOS, ids=MATRIX_COMBOS)
def matrix(session: nox.Session, combo: str) -> None:
    """Regenerate the demo and adversarial benchmarks under one library combination.

    Writes .matrix/<combo>/{demo,adversarial}/ (outputs and manifest), then
    queues matrix_report, which compares every combination with "locked".
    """
    _install_build_backend(session)
    session.install(*_locked_install_args(_matrix_lock(combo)))
    session.install("--no-deps", "--no-build-isolation", ".")
    out = MATRIX_OUT / combo
    session.run("benchmark-regen", "env", "--json", silent=True)  # fails early if broken
    session.run("benchmark-regen", "demo", "--quiet", "--out", str(out / "demo"))
    original = session.run(
        "python", "-c", "from toolchain.demo import demo_original; print(demo_original())",
        silent=True,
    )  # fmt: skip
    assert isinstance(original, str)
    session.run(
        "benchmark-regen", "generate", "--recipe", "adversarial", "--quiet", "--overwrite",
        "--original", original.strip(), "--out", str(out / "adversarial"), *session.posargs,
    )  # fmt: skip
    session.notify("matrix_report")


@nox.session(python=PYTHON, default=False)
def matrix_report(session: nox.Session) -> None:
    """Print the compatibility table of .matrix/ and write .matrix/report/index.html."""
    _install_locked(session, "requirements.txt")
    combos = [c for c in MATRIX_COMBOS if (MATRIX_OUT / c).is_dir()]
    # The report is ours to replace: compare --report writes only into a new folder or
    # over its own index.html, and an older layout (index.html plus img/) is neither.
    shutil.rmtree(MATRIX_OUT / "report", ignore_errors=True)
    for bench in ("demo", "adversarial"):
        session.run(
            "benchmark-regen", "compare", "--matrix",
            *(str(MATRIX_OUT / c / bench) for c in combos),
            "--report", str(MATRIX_OUT / "report" / bench),
            success_codes=[0, 1],  # 1 = some combination is not bit-exact: the finding
        )  # fmt: skip


@nox.session(python=PYTHON, default=False)
def fuzz(session: nox.Session) -> None:
    """atheris over every parser of other people's bytes (fuzz/atheris_*.py), one after
    another, 60 s each; prints executions and crashes per harness, fails on any crash.

    ``nox -s fuzz -- -max_total_time=45`` or ``-- -runs=1000000`` bounds each harness
    otherwise; ``-- atheris_journal.py`` runs one. atheris is not in the hashed lockfiles
    (it is a fuzzing tool, never shipped), so it is pinned by version here.
    """
    _install_locked(session, "test.txt")
    session.install("--only-binary", ":all:", "atheris==3.0.0")
    session.run("python", str(ROOT / "fuzz" / "run.py"), *session.posargs)


@nox.session(python=PYTHON, default=False)
def image(session: nox.Session) -> None:
    """Build, check, lock or save the pinned image (needs an engine; see docker/README.md).

    posargs are a `benchmark-regen image` command, `build` by default:
    ``nox -s image -- build --check`` (what .ci/run does), ``nox -s image -- lock``.
    A missing offline base is made first (docker/make-base.sh, needs root).
    """
    _install_locked(session, "requirements.txt")
    session.run("benchmark-regen", "image", *(session.posargs or ["build"]))


@nox.session(python=PYTHON, default=False)
def matrix_images(session: nox.Session) -> None:
    """The version matrix as container images, one per lockfile, through the docker SDK.

    Needs an engine and the offline base (see docker/README.md). Writes
    .matrix/<combo>-image/{demo,adversarial}/ and prints the compatibility table.
    ``nox -s matrix_images -- np2-pil10 locked`` limits the combinations.
    """
    _install_locked(session, "requirements.txt")
    combos = session.posargs or MATRIX_COMBOS
    locks = ", ".join(repr(str(_matrix_lock(c))) for c in combos)
    session.run(
        "python", "-c",
        "from pathlib import Path; from toolchain.container.matrix import run_matrix_images; "
        f"run_matrix_images([Path(p) for p in ({locks},)], Path({str(MATRIX_OUT)!r}))",
    )  # fmt: skip
    for bench in ("demo", "adversarial"):
        session.run(
            "benchmark-regen", "compare", "--matrix",
            *(str(MATRIX_OUT / f"{c}-image" / bench) for c in combos),
            success_codes=[0, 1],
        )  # fmt: skip
