# Shared by compare.sh, memory.sh and window.sh (source it; not a script of
# its own).
# Provides: log, ensure_tools, build_tools, start_sink, start_discard_sink,
# stop_sink, sink_count,
# sink_cpu_ticks, and an EXIT trap that stops the sink by its PID and removes
# the state directory. Loopback only.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples"
STATE="$(mktemp -d /tmp/smtp-bench.XXXXXX)"
SINK_LOG="$STATE/sink.log"
SINK_PID=""
PATH="$PATH:/usr/sbin"
# NICE=-10 (as root) runs the sink and the clients ahead of other work on a
# shared machine, which steadies the figures; default 0 (no change).
NICE="${NICE:-0}"
PRIO=(nice -n "$NICE")
# PIN=1 (the default, with two cores or more) runs the sink on the first
# core and the client on the second, as the performance issue's figures
# were taken: neither takes the other's core, and every client's wake-ups
# cross cores alike. PIN=0 leaves placement to the scheduler.
PIN="${PIN:-1}"
SINK_PRIO=("${PRIO[@]}")
CLIENT_PRIO=("${PRIO[@]}")
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SINK_PRIO+=(taskset -c 0)
    CLIENT_PRIO+=(taskset -c 1)
fi

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }

cleanup() {
    if [ -n "$SINK_PID" ] && kill -0 "$SINK_PID" 2>/dev/null; then
        kill "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
    rm -rf "$STATE"
}
trap cleanup EXIT

# ensure_tools CMD...: installs the Debian packages that provide the
# commands (smtp-sink/smtp-source: postfix, with "No configuration" so no
# system mail service starts; strace; /usr/bin/time: time).
ensure_tools() {
    local need=() cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null && continue
        case "$cmd" in
            smtp-sink | smtp-source) need+=(postfix) ;;
            /usr/bin/time) need+=(time) ;;
            *) need+=("$cmd") ;;
        esac
    done
    [ "${#need[@]}" -eq 0 ] && return
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
    log "installing ${need[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" \
        || { apt-get update && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${need[@]}"; }
}

build_tools() {
    log "building the load tools (release)"
    (cd "$ROOT" && cargo build --release -q -p smtp-blocking --example load \
        && cargo build --release -q -p smtp-tokio --example tokio-load \
        && cargo build --release -q -p smtp-sansio --example event_loop)
}

# start_sink PORT: Postfix's smtp-sink on 127.0.0.1:PORT with counters (-c),
# up to 2000 connections at once (-m) and a backlog of 2048.
start_sink() {
    local port="$1" user=()
    [ "$(id -u)" -eq 0 ] && user=(-u nobody)
    "${SINK_PRIO[@]}" smtp-sink "${user[@]}" -c -m 2000 "127.0.0.1:$port" 2048 >"$SINK_LOG" 2>&1 &
    SINK_PID=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    log "smtp-sink did not start"
    cat "$SINK_LOG" >&2
    return 1
}

# The sink's message counter: the last "mesg=N" it printed ('\r'-separated).
sink_count() {
    tr '\r' '\n' <"$SINK_LOG" | grep -o 'mesg=[0-9]*' | tail -n1 | cut -d= -f2 || true
}

# wait_sink_count TARGET: waits (up to 2.5 s) until the counter reaches
# TARGET, then prints the counter. The sink counts a message when it has
# read its final "."; it may lag the client's exit slightly.
wait_sink_count() {
    local c
    for _ in $(seq 50); do
        c="$(sink_count)"
        [ "${c:-0}" -ge "$1" ] && break
        sleep 0.05
    done
    echo "${c:-0}"
}

# CPU time (user + system, in clock ticks) the sink has used so far.
sink_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SINK_PID/stat"; }

# start_discard_sink PORT [--no-chunking]: the discard sink on
# 127.0.0.1:PORT with its smtp-sink-style counter (-c), bounded to an hour;
# SINK_PID and SINK_LOG as for start_sink, so sink_count and sink_cpu_ticks
# work on it.
start_discard_sink() {
    local port="$1"
    shift
    "${SINK_PRIO[@]}" "$BIN/discard_sink" "127.0.0.1:$port" -c --seconds 3600 "$@" >"$SINK_LOG" 2>&1 &
    SINK_PID=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    log "discard_sink did not start"
    cat "$SINK_LOG" >&2
    return 1
}

# stop_sink: stops the running sink (by its PID) before another starts.
stop_sink() {
    if [ -n "$SINK_PID" ] && kill -0 "$SINK_PID" 2>/dev/null; then
        kill "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
    SINK_PID=""
    : >"$SINK_LOG"
}
