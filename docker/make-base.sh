#!/usr/bin/env bash
# Build the offline base image `benchmark-regen-base:bookworm-ARCH` without a registry.
#
#   bash docker/make-base.sh [--arch amd64|arm64] [--mirror URL] [--force] [--update-lock]
#                            [--tag TAG] [--lock FILE]
#
# debootstrap (minbase, --foreign + second stage) a Debian bookworm root file
# system with python3 (3.11), python3-venv, python3-pip and ca-certificates for
# ARCH (default: this machine's; arm64 on an x86-64 machine runs the second
# stage under qemu-user-static, see .ci/binfmt.sh), check every installed
# package and version against lockfiles/debian-base-ARCH.txt, strip what
# changes from run to run (apt lists, caches, logs, machine id, /dev), and load
# it as one deterministic layer with a canonical config (written by
# toolchain.container.base.load_base_rootfs: the same packages give the same layer
# diff ID and the same image ID on any machine).
#
#   --mirror URL    the Debian mirror (default: the bookworm source in this
#                   machine's APT configuration, else debootstrap's own default
#                   for the suite), e.g. a dated snapshot archive that still
#                   serves the locked versions
#   --update-lock   write the package lock from what was installed instead of
#                   checking against it (then review `git diff lockfiles/`)
#   --force         rebuild even when TAG exists
#
# Exit codes: 0 done, 1 the mirror serves other versions than the lock,
# 2 usage, 4 a missing tool or a failed step (the message says what to do).
# Needs root (debootstrap, chroot), a Docker engine on $DOCKER_HOST, and a
# Python that imports toolchain ($PYTHON, default python3).
set -euo pipefail
umask 022  # files made by maintainer scripts get the same modes whatever the caller's umask

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOCKDIR="$HERE/../lockfiles"
SUITE=bookworm
INCLUDE="python3,python3-venv,python3-pip,ca-certificates"
PYTHON="${PYTHON:-python3}"
# 2026-01-01T00:00:00Z unless the caller pins another instant.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1767225600}"

host_arch() {
    case "$(uname -m)" in
        x86_64) echo amd64 ;;
        aarch64 | arm64) echo arm64 ;;
        *) uname -m ;;
    esac
}

ARCH="$(host_arch)"
TAG=""
LOCK=""
MIRROR=""
FORCE=0
UPDATE_LOCK=0
COMPARE_LOCK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH="$2"; shift ;;
        --arch=*) ARCH="${1#*=}" ;;
        --mirror) MIRROR="$2"; shift ;;
        --mirror=*) MIRROR="${1#*=}" ;;
        --tag) TAG="$2"; shift ;;
        --lock) LOCK="$2"; shift ;;
        --force) FORCE=1 ;;
        --update-lock) UPDATE_LOCK=1 ;;
        --compare-lock) COMPARE_LOCK=1 ;;
        -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "make-base.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$ARCH" in
    amd64 | arm64) ;;
    *) echo "make-base.sh: --arch must be amd64 or arm64, not $ARCH" >&2; exit 2 ;;
esac
TAG="${TAG:-benchmark-regen-base:$SUITE-$ARCH}"
LOCK="${LOCK:-$LOCKDIR/debian-base-$ARCH.txt}"

log() { printf 'make-base.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 4; }

# --- the package lock ---------------------------------------------------------------
lock_header() {
    echo "# Debian packages of $TAG: debootstrap --variant=minbase --arch=$ARCH $SUITE"
    echo "# with $INCLUDE. Checked by docker/make-base.sh; refresh on purpose with"
    echo "# \`bash docker/make-base.sh --arch $ARCH --update-lock\` and review the diff."
}

# check_lock WHAT < "name=version arch" lines: compare with the lock, name every difference.
check_lock() {
    local what="$1" got
    got="$(LC_ALL=C sort)"
    if [ "$UPDATE_LOCK" = 1 ]; then
        return 0
    fi
    local report
    report="$(LC_ALL=C join -a1 -a2 -e '(none)' -o '0,1.2,2.2' -t ' ' \
        <(grep -v '^#' "$LOCK" | sed 's/=/ /' | awk '{ print $1, $2 }' | LC_ALL=C sort) \
        <(printf '%s\n' "$got" | sed 's/=/ /' | awk '{ print $1, $2 }' | LC_ALL=C sort) \
        | awk '$2 != $3 { printf "  %s: locked %s, %s %s\n", $1, $2, "'"$what"'", $3 }')"
    if [ -n "$report" ]; then
        log "the mirror no longer serves the locked packages ($LOCK):"
        printf '%s\n' "$report" >&2
        log "use a mirror that still has them (--mirror URL, e.g. a dated snapshot archive of"
        log "Debian), or refresh the lock on purpose with --update-lock and review the diff"
        exit 1
    fi
}

# --compare-lock (for tests): compare "name=version arch" lines on stdin with the lock.
if [ "$COMPARE_LOCK" = 1 ]; then
    check_lock "the mirror has"
    exit 0
fi


# --- what this machine must have ---------------------------------------------------
BINFMT="${BENCHMARK_REGEN_BINFMT_DIR:-/proc/sys/fs/binfmt_misc}"  # overridable for tests
[ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot): run it with sudo"
command -v debootstrap >/dev/null \
    || die "debootstrap not found: install Debian's package (apt-get install -y debootstrap)"
if [ "$ARCH" != "$(host_arch)" ]; then
    if [ ! -e "$BINFMT/register" ]; then
        die "binfmt_misc is not mounted, so $ARCH binaries cannot run here: run \
bash .ci/binfmt.sh (it mounts it and registers qemu-aarch64; needs Debian's qemu-user-static)"
    fi
    if [ ! -e "$BINFMT/qemu-aarch64" ] || ! grep -qx enabled "$BINFMT/qemu-aarch64"; then
        die "qemu-aarch64 is not registered with binfmt_misc: install Debian's qemu-user-static \
and binfmt-support (apt-get install -y qemu-user-static binfmt-support), then run bash .ci/binfmt.sh"
    fi
    grep -q '^flags:.*F' "$BINFMT/qemu-aarch64" \
        || die "qemu-aarch64 is registered without the F flag (chroots cannot find it): run bash .ci/binfmt.sh"
fi
command -v docker >/dev/null \
    || die "the docker client is not installed (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 \
    || die "no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}; \
start one with: eval \"\$(bash .ci/dockerd.sh start)\""
"$PYTHON" -c 'import toolchain.container.base' 2>/dev/null \
    || die "$PYTHON cannot import toolchain: install the project first \
(pip install --no-deps .), or set PYTHON to the interpreter that has it"
if [ "$UPDATE_LOCK" = 0 ] && [ ! -f "$LOCK" ]; then
    die "no package lock at $LOCK: create it with --update-lock (and commit it)"
fi

if [ "$FORCE" = 0 ] && [ "$UPDATE_LOCK" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG already exists (use --force to rebuild)"
    exit 0
fi

# --- the mirror ---------------------------------------------------------------------
# Default: the URIs of the deb822 stanza (*.sources) or one-line entry (*.list)
# that serves the plain bookworm suite. Never hard-coded, so the script
# follows whatever proxy or snapshot this machine uses.
find_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$SUITE" '
            function flush() {
                if (uris != "" && types ~ /(^|[ \t])deb([ \t]|$)/) {
                    n = split(suites, s, /[ \t]+/)
                    for (i = 1; i <= n; i++) if (s[i] == suite) { split(uris, u, /[ \t]+/); print u[1]; found = 1; exit }
                }
                uris = ""; suites = ""; types = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]*#/ { next }
            tolower($1) == "uris:"   { sub(/^[^:]*:[ \t]*/, ""); uris = $0 }
            tolower($1) == "suites:" { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
            tolower($1) == "types:"  { sub(/^[^:]*:[ \t]*/, ""); types = $0 }
            END { if (!found) flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [options] URI SUITE COMPONENTS...
        awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }
        ' "$f"
    done
}
if [ -z "$MIRROR" ]; then
    MIRROR="$(find_mirror | head -n 1)"
fi
# No bookworm source here (an Ubuntu host): debootstrap's own default mirror for the
# suite, which is the one Debian's machines list, so the base's sources.list matches.
MIRROR_ARG=()
[ -n "$MIRROR" ] && MIRROR_ARG=("$MIRROR")
log "arch $ARCH, mirror ${MIRROR:-the default of debootstrap for $SUITE}"

WORK="$(mktemp -d /var/tmp/benchmark-regen-base.XXXXXX)"
ROOTFS="$WORK/rootfs"
cleanup() {
    # Unmount whatever the second stage left mounted (proc, sys) before removing.
    local m
    for m in $(awk -v root="$ROOTFS" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

# A clean environment for debootstrap and the chroot: nothing of the caller's
# locale, time zone or PATH reaches the maintainer scripts.
clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C TZ=UTC HOME=/root
    SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" DEBIAN_FRONTEND=noninteractive)
for proxy in http_proxy https_proxy no_proxy; do
    [ -n "${!proxy:-}" ] && clean_env+=("$proxy=${!proxy}")
done

log "debootstrap --foreign --variant=minbase --arch=$ARCH $SUITE (include: $INCLUDE)"
"${clean_env[@]}" debootstrap --foreign --arch="$ARCH" --variant=minbase --include="$INCLUDE" \
    "$SUITE" "$ROOTFS" "${MIRROR_ARG[@]}" >"$WORK/debootstrap.log" 2>&1 || {
    cp "$WORK/debootstrap.log" "/var/tmp/benchmark-regen-base-$ARCH.log" 2>/dev/null || true
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap (first stage) failed; the lines above say why"
}
# Cheap early check, before the (emulated) second stage: the downloaded .debs
# are named PACKAGE_VERSION_ARCH.deb, with the epoch's ':' written %3a.
for deb in "$ROOTFS"/var/cache/apt/archives/*.deb; do
    base="$(basename "$deb" .deb)"
    IFS=_ read -r pkg ver parch <<<"$base"
    printf '%s=%s %s\n' "$pkg" "${ver//%3a/:}" "$parch"
done | check_lock "the mirror has"

log "second stage (chroot$([ "$ARCH" != "$(host_arch)" ] && echo ", emulated by qemu-aarch64"))"
"${clean_env[@]}" chroot "$ROOTFS" /debootstrap/debootstrap --second-stage \
    >"$WORK/second-stage.log" 2>&1 || {
    saved="/var/tmp/benchmark-regen-base-$ARCH.log"
    cat "$WORK/second-stage.log" "$ROOTFS/debootstrap/debootstrap.log" >"$saved" 2>/dev/null || true
    tail -n 30 "$saved" >&2 || true
    die "debootstrap (second stage) failed; the lines above say why (whole log: $saved)"
}

installed="$("${clean_env[@]}" chroot "$ROOTFS" dpkg-query -W -f '${Package}=${Version} ${Architecture}\n' | LC_ALL=C sort)"
printf '%s\n' "$installed" | check_lock "installed"
if [ "$UPDATE_LOCK" = 1 ]; then
    mkdir -p "$(dirname "$LOCK")"
    { lock_header; printf '%s\n' "$installed"; } >"$LOCK"
    log "wrote $LOCK ($(grep -vc '^#' "$LOCK") packages)"
else
    log "all $(printf '%s\n' "$installed" | wc -l) packages match $LOCK"
fi

# --- strip run-to-run noise ---------------------------------------------------------
# Downloaded indexes and .debs, logs, machine identity, dpkg/debconf backup
# files that only hold the previous state, ldconfig's aux-cache (keyed by
# inode and ctime), byte-code caches (python3 rebuilds them in memory;
# PYTHONDONTWRITEBYTECODE is set in the image) and /dev (the engine mounts
# its own).
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/archives/partial/* \
    "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old \
    "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* \
    "$ROOTFS"/var/cache/ldconfig/aux-cache \
    "$ROOTFS"/debootstrap
find "$ROOTFS/dev" -mindepth 1 -delete
: >"$ROOTFS/etc/machine-id" 2>/dev/null || true
rm -f "$ROOTFS/var/lib/dbus/machine-id"
find "$ROOTFS" -xdev -name __pycache__ -type d -prune -exec rm -rf {} +
# The resolver config and host names are bind-mounted by the engine at run time.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"

log "packing and loading as $TAG"
"$PYTHON" -c '
import sys
from pathlib import Path
from toolchain.container.base import load_base_rootfs
from toolchain.container.inputs import base_inputs
rootfs, tag, arch, epoch, project = sys.argv[1:]
inputs = base_inputs(arch, Path(project))
print(load_base_rootfs(Path(rootfs), tag=tag, arch=arch, epoch=int(epoch), inputs=inputs).id)
' "$ROOTFS" "$TAG" "$ARCH" "$SOURCE_DATE_EPOCH" "$HERE/.." >"$WORK/id" \
    || die "loading the base into the engine failed"
log "done: $TAG = $(cat "$WORK/id")"
