#!/bin/sh
# Install wheels into the venv of the image, offline and hash-checked.
#
#   sh install-venv.sh WHEELHOUSE VENV [REQUIREMENTS [COMPILE_DIR [STEPS]]]
#
# Shared by docker/Dockerfile (RUN, everything at once) and by the
# reproducible assembly in toolchain/container/assemble.py (a `docker run` of the base
# image per layer: first WHEELHOUSE/dependencies.txt, then
# WHEELHOUSE/project.txt with COMPILE_DIR = the toolchain package), so both
# routes install exactly the same way. REQUIREMENTS defaults to
# WHEELHOUSE/requirements.txt (the hashed lockfile plus the project wheel),
# COMPILE_DIR to VENV/lib. STEPS is "install compile" (default), or one of
# them: for a foreign architecture the assembly installs under emulation and
# compiles the byte code with the host architecture's base, whose Debian
# python3 is the same version (byte code does not depend on the CPU; the
# package locks pin python3.11 to one version for both architectures).
#
# --without-pip + `pip --python`: the venv holds our wheels and nothing else.
# Byte code is compiled once, hash-based and unchecked (no timestamps inside),
# with PYTHONHASHSEED=0 so that frozenset constants marshal in a fixed order.
set -eu
wheelhouse="$1"
venv="$2"
requirements="${3:-$wheelhouse/requirements.txt}"
compile_dir="${4:-$venv/lib}"
steps="${5:-install compile}"
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONFIG_FILE=/dev/null \
    PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0 SOURCE_DATE_EPOCH=1767225600
umask 022
case " $steps " in *" install "*)
    [ -x "$venv/bin/python" ] || python3 -m venv --without-pip "$venv"
    python3 -m pip --python "$venv/bin/python" install --quiet \
        --no-index --find-links "$wheelhouse" --require-hashes --only-binary :all: \
        --no-compile -r "$requirements"
    if [ -d "$venv/lib/python3.11/site-packages/toolchain" ]; then
        "$venv/bin/python" -c "import toolchain"
    fi
    ;;
esac
case " $steps " in *" compile "*)
    find "$compile_dir" -name __pycache__ -type d -prune -exec rm -rf {} +
    # The venv's python is a symlink to /usr/bin/python3 of whichever base runs this.
    "$venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$compile_dir" \
        >/dev/null
    ;;
esac
