#!/bin/sh
# Create the venv of the image from a wheelhouse, offline and hash-checked.
#
#   sh install-venv.sh WHEELHOUSE VENV
#
# Shared by docker/Dockerfile (RUN) and by the reproducible assembly in
# toolchain/container.py (a `docker run` of the base image), so both routes
# install exactly the same way. WHEELHOUSE/requirements.txt is the hashed
# lockfile plus one hashed line for the project wheel.
#
# --without-pip + `pip --python`: the venv holds our wheels and nothing else.
# Byte code is compiled once, hash-based and unchecked (no timestamps inside),
# with PYTHONHASHSEED=0 so that frozenset constants marshal in a fixed order.
set -eu
wheelhouse="$1"
venv="$2"
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONFIG_FILE=/dev/null \
    PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0
python3 -m venv --without-pip "$venv"
python3 -m pip --python "$venv/bin/python" install --quiet \
    --no-index --find-links "$wheelhouse" --require-hashes --only-binary :all: \
    --no-compile -r "$wheelhouse/requirements.txt"
find "$venv" -name __pycache__ -type d -prune -exec rm -rf {} +
"$venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$venv/lib" >/dev/null
"$venv/bin/python" -c "import toolchain"
