#!/usr/bin/env bash
# Start or stop a private Docker engine for CI and the docker-marked tests.
#
#   eval "$(bash .ci/dockerd.sh start)"   # prints `export DOCKER_HOST=...`
#   bash .ci/dockerd.sh stop
#
# `start` is a no-op (apart from printing the export line) when an engine
# already answers on $DOCKER_HOST or on the default socket. Otherwise it starts
# dockerd as root with the settings this sandbox allows: vfs storage (no
# overlayfs inside a container), no iptables, no default bridge (containers run
# with --network none anyway). Its data-root is persistent, so the offline base
# image built by docker/make-base.sh is reused by later runs on the same machine.
#
# Only stdout carries the export lines; progress goes to stderr.
set -euo pipefail

STATE_DIR="${BENCHMARK_REGEN_DOCKER_STATE:-/var/lib/benchmark-regen-docker}"
RUN_DIR="${BENCHMARK_REGEN_DOCKER_RUN:-/run/benchmark-regen-docker}"
SOCK="$RUN_DIR/docker.sock"
PIDFILE="$RUN_DIR/dockerd.pid"
LOG="$RUN_DIR/dockerd.log"
TIMEOUT="${BENCHMARK_REGEN_DOCKER_TIMEOUT:-60}"

log() { printf 'dockerd.sh: %s\n' "$*" >&2; }

answers() {  # answers HOST: does an engine answer there?
    DOCKER_HOST="$1" timeout 10 docker info >/dev/null 2>&1
}

start() {
    local candidate
    for candidate in "${DOCKER_HOST:-}" "unix:///var/run/docker.sock" "unix://$SOCK"; do
        [ -n "$candidate" ] || continue
        if answers "$candidate"; then
            log "an engine already answers at $candidate; not starting another"
            printf 'export DOCKER_HOST=%q\n' "$candidate"
            return 0
        fi
    done
    if [ "$(id -u)" != 0 ]; then
        log "no engine answers and starting dockerd needs root"
        return 1
    fi
    command -v dockerd >/dev/null || { log "dockerd not installed (apt-get install -y docker.io)"; return 1; }
    mkdir -p "$STATE_DIR/data" "$RUN_DIR/exec"
    # A stale pidfile from a killed run makes dockerd refuse to start.
    if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        rm -f "$PIDFILE" "$SOCK"
    fi
    log "starting dockerd (data-root $STATE_DIR/data, log $LOG)"
    # setsid: the engine outlives this script and is not killed with its shell.
    setsid dockerd \
        --storage-driver=vfs \
        --iptables=false \
        --ip-masq=false \
        --bridge=none \
        --data-root="$STATE_DIR/data" \
        --exec-root="$RUN_DIR/exec" \
        --pidfile="$PIDFILE" \
        -H "unix://$SOCK" \
        >"$LOG" 2>&1 </dev/null &
    local waited=0
    until answers "unix://$SOCK"; do
        if [ "$waited" -ge "$TIMEOUT" ]; then
            log "dockerd did not answer within ${TIMEOUT}s; last log lines:"
            tail -n 20 "$LOG" >&2 || true
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "dockerd answers at unix://$SOCK after ${waited}s"
    printf 'export DOCKER_HOST=%q\n' "unix://$SOCK"
}

stop() {
    # Stop only the engine this script started (by its pidfile), never others.
    if [ ! -f "$PIDFILE" ]; then
        log "no dockerd started by this script is running"
        return 0
    fi
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        local waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 30 ]; do
            sleep 1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "dockerd did not stop in 30s; sending KILL"
            kill -KILL "$pid" || true
        fi
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
