"""Task runner for benchmark-regen.

Every environment installs from the hashed lockfiles in ``lockfiles/`` with
``--require-hashes``: the tests run against exactly the wheels the container
holds, so a host root hash and a container root hash are comparable.
"""

from __future__ import annotations

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


def _install_locked(session: nox.Session, *locks: str) -> None:
    for lock in locks:
        session.install("--require-hashes", "--only-binary", ":all:", "-r", str(LOCKS / lock))
    # The project itself: its dependencies are already pinned above.
    session.install("--no-deps", "--no-build-isolation", "-e", ".")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (docker-marked tests need an engine; .ci/run starts one)."""
    session.install("setuptools>=77")
    _install_locked(session, "test.txt")
    session.run("pytest", *session.posargs, env={"PYTHONDONTWRITEBYTECODE": "1"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, strict mypy, and actionlint over the CI workflow."""
    session.install("setuptools>=77")
    _install_locked(session, "lint.txt")
    session.run("ruff", "check", "toolchain", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "toolchain", "tests", "benchmarks", "noxfile.py")
    session.run("mypy")
    session.run("actionlint", *sorted(str(p) for p in (ROOT / ".github/workflows").glob("*.yml")))


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Regenerate the demo benchmark from scikit-image's bundled photographs and verify it."""
    session.install("setuptools>=77")
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
    session.run(*common, "--extra", "demo", "-o", str(LOCKS / "requirements.txt"), env=env)
    session.run(*common, "--extra", "demo", "--group", "test", "-o", str(LOCKS / "test.txt"), env=env)
    session.run(*common, "--group", "lint", "-o", str(LOCKS / "lint.txt"), env=env)
