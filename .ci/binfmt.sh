#!/usr/bin/env bash
# Let this machine run linux/arm64 binaries (debootstrap --arch=arm64, arm64 containers).
#
#   bash .ci/binfmt.sh           # idempotent; needs root
#
# Mounts binfmt_misc when it is not mounted and registers Debian's qemu-aarch64
# (package qemu-user-static) with the F ("fix binary") flag: the kernel opens
# the interpreter once, at registration, so it also works inside chroots and
# containers whose file systems do not hold it. An existing registration
# without F is replaced. Prints nothing on stdout; exit 4 when something the
# machine lacks is needed (the message says what to install).
set -euo pipefail

NAME=qemu-aarch64
CONF=/usr/lib/binfmt.d/$NAME.conf
BINFMT=/proc/sys/fs/binfmt_misc

log() { printf 'binfmt.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 4; }

[ "$(uname -m)" = aarch64 ] && { log "this machine is arm64 already; nothing to do"; exit 0; }
[ "$(id -u)" = 0 ] || die "needs root (it mounts binfmt_misc and registers an interpreter)"
[ -f "$CONF" ] || die "$CONF not found: install Debian's qemu-user-static and binfmt-support \
(apt-get install -y qemu-user-static binfmt-support)"

if [ ! -e "$BINFMT/register" ]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null \
        || die "cannot mount binfmt_misc at $BINFMT (run: mount -t binfmt_misc binfmt_misc $BINFMT; \
in a container, start it with --privileged)"
fi
[ "$(cat "$BINFMT/status")" = enabled ] || echo 1 >"$BINFMT/status"

# The line of $CONF is the kernel's register format :name:type:offset:magic:mask:interp:flags.
line="$(grep -v '^[[:space:]]*#' "$CONF" | grep -m1 ":$NAME:")" || die "$CONF holds no $NAME entry"
interp="$(printf '%s' "$line" | cut -d: -f7)"
[ -x "$interp" ] || die "$interp (named by $CONF) is missing: reinstall qemu-user-static"
flags="$(printf '%s' "$line" | cut -d: -f8)"
case "$flags" in *F*) ;; *) line="${line}F" ;; esac

if [ -e "$BINFMT/$NAME" ]; then
    if grep -qx enabled "$BINFMT/$NAME" && grep -q '^flags:.*F' "$BINFMT/$NAME" \
        && grep -qx "interpreter $interp" "$BINFMT/$NAME"; then
        log "$NAME already registered with the F flag ($interp)"
        exit 0
    fi
    log "replacing the registration of $NAME (it lacks the F flag or names another interpreter)"
    echo -1 >"$BINFMT/$NAME"
fi
printf '%s' "$line" >"$BINFMT/register"
log "registered $NAME with flags $(sed -n 's/^flags: //p' "$BINFMT/$NAME") ($interp)"
