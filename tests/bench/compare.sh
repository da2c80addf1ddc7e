#!/usr/bin/env bash
# Compares our clients with Postfix's own C load client, smtp-source, against
# one Postfix smtp-sink on loopback, in alternation, and prints one table.
#
#   tests/bench/compare.sh            # 3 rounds per case, about 2 minutes
#   ROUNDS=1 tests/bench/compare.sh   # quicker, noisier
#
# Cases: 1 connection x 1 KiB, 1 connection x 100 KiB, 4 connections x 1 KiB,
# and 1000 concurrent sessions x 1 KiB (the mio event loop's own case).
# Every run's messages are checked against the sink's counter (smtp-sink -c).
# Rates are messages / wall-clock seconds of the whole process, measured the
# same way for every tool; ratios are against smtp-source in the same round
# set (this machine is shared and noisy: read ratios, not absolute numbers).
# Then `strace -c -f` counts write syscalls per transaction of the blocking
# load tool with PIPELINING.
#
# Everything runs on 127.0.0.1 only; every run is bounded (timeout, and the
# tools' own --max-seconds); the sink is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-25625}"
RUN_TIMEOUT="${RUN_TIMEOUT:-120}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples"
STATE="$(mktemp -d /tmp/smtp-bench.XXXXXX)"
SINK_LOG="$STATE/sink.log"
SINK_PID=""

log() { printf '[compare] %s\n' "$*" >&2; }

cleanup() {
    if [ -n "$SINK_PID" ] && kill -0 "$SINK_PID" 2>/dev/null; then
        kill "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
    rm -rf "$STATE"
}
trap cleanup EXIT

# ------------------------------------------------------------ tools ----
need_apt=()
command -v smtp-sink >/dev/null && command -v smtp-source >/dev/null || need_apt+=(postfix)
command -v strace >/dev/null || need_apt+=(strace)
if [ "${#need_apt[@]}" -gt 0 ]; then
    log "installing ${need_apt[*]}"
    # "No configuration": binaries only, no system mail service starts.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}" \
        || { apt-get update && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y --no-install-recommends "${need_apt[@]}"; }
fi
PATH="$PATH:/usr/sbin"

log "building the load tools (release)"
cargo build --release -q -p smtp-blocking --example load
cargo build --release -q -p smtp-proto --example event_loop

# ------------------------------------------------------------- sink ----
# -c: counters on stdout; -m: up to 2000 connections at once (the event
# loop opens 1000); backlog 2048. As root smtp-sink needs -u.
SINK_USER=()
[ "$(id -u)" -eq 0 ] && SINK_USER=(-u nobody)
smtp-sink "${SINK_USER[@]}" -c -m 2000 "127.0.0.1:$PORT" 2048 >"$SINK_LOG" 2>&1 &
SINK_PID=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
kill -0 "$SINK_PID" || { log "smtp-sink did not start"; cat "$SINK_LOG"; exit 1; }

# The sink's message counter: the last "mesg=N" it printed ('\r'-separated).
# Our probe connection above counts as a session, not a message.
sink_count() { tr '\r' '\n' <"$SINK_LOG" | grep -o 'mesg=[0-9]*' | tail -n1 | cut -d= -f2 || true; }

# ------------------------------------------------------------ tools ----
# One line per client: NAME|COMMAND. {N} messages, {C} connections,
# {SIZE} bytes, {ADDR} the sink. To add a client, add one line.
TOOLS=(
    "smtp-source|smtp-source -d -m {N} -s {C} -l {SIZE} {ADDR}"
    "blocking|$BIN/load --server {ADDR} -n {N} -c {C} --size {SIZE} --max-seconds $RUN_TIMEOUT"
    "blocking-nopipe|$BIN/load --server {ADDR} -n {N} -c {C} --size {SIZE} --no-pipelining --max-seconds $RUN_TIMEOUT"
    "event_loop|$BIN/event_loop --server {ADDR} --sessions {C} -n {N} --size {SIZE} --max-seconds $RUN_TIMEOUT"
    # "tokio|$BIN/load_tokio --server {ADDR} -n {N} -c {C} --size {SIZE} --max-seconds $RUN_TIMEOUT"
)

# Cases: LABEL|N|C|SIZE|TOOLS (a space-separated subset, or "all").
CASES=(
    "1 conn, 1 KiB|5000|1|1024|all"
    "1 conn, 100 KiB|1000|1|102400|all"
    "4 conns, 1 KiB|20000|4|1024|all"
    "1000 sessions, 1 KiB|20000|1000|1024|smtp-source event_loop"
)

# run NAME N C SIZE: prints "RATE" (messages/s) or "FAIL"; checks the sink.
run() {
    local name="$1" n="$2" c="$3" size="$4" cmd="" line before after t0 t1 status
    for line in "${TOOLS[@]}"; do
        [ "${line%%|*}" = "$name" ] && cmd="${line#*|}"
    done
    cmd="${cmd//\{N\}/$n}"
    cmd="${cmd//\{C\}/$c}"
    cmd="${cmd//\{SIZE\}/$size}"
    cmd="${cmd//\{ADDR\}/127.0.0.1:$PORT}"
    before="$(sink_count)"
    t0="$(date +%s.%N)"
    status=0
    # shellcheck disable=SC2086
    timeout "$RUN_TIMEOUT" $cmd >"$STATE/out.txt" 2>"$STATE/err.txt" || status=$?
    t1="$(date +%s.%N)"
    # The sink counts a message when it has read its final "."; give it a
    # moment to catch up with the client's last QUIT.
    for _ in $(seq 50); do
        after="$(sink_count)"
        [ "$((${after:-0} - ${before:-0}))" -ge "$n" ] && break
        sleep 0.05
    done
    if [ "$status" -ne 0 ] || [ "$((${after:-0} - ${before:-0}))" -ne "$n" ]; then
        log "$name n=$n c=$c size=$size: exit $status, sink got $((${after:-0} - ${before:-0}))/$n"
        tail -n 3 "$STATE/err.txt" >&2 || true
        echo FAIL
        return
    fi
    awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / (b - a) }'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "FAIL"; else print v[int((NR + 1) / 2)] }'; }

TABLE="$STATE/table.txt"
printf '%-22s %-16s %10s %10s  %s\n' "case" "client" "msgs/s" "vs source" "runs (msgs/s)" >"$TABLE"
for case in "${CASES[@]}"; do
    IFS='|' read -r label n c size subset <<<"$case"
    names=()
    for line in "${TOOLS[@]}"; do
        name="${line%%|*}"
        if [ "$subset" = all ] || [[ " $subset " == *" $name "* ]]; then
            names+=("$name")
        fi
    done
    declare -A rates=()
    for round in $(seq "$ROUNDS"); do
        for name in "${names[@]}"; do
            log "$label: $name (round $round/$ROUNDS)"
            r="$(run "$name" "$n" "$c" "$size")"
            [ "$r" = FAIL ] && r=""
            rates[$name]="${rates[$name]:-} $r"
        done
    done
    base="$(echo "${rates[smtp-source]:-}" | median)"
    for name in "${names[@]}"; do
        m="$(echo "${rates[$name]}" | median)"
        ratio="-"
        if [ "$m" != FAIL ] && [ "$base" != FAIL ]; then
            ratio="$(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')"
        fi
        printf '%-22s %-16s %10s %10s  %s\n' "$label" "$name" "$m" "$ratio" "${rates[$name]# }" >>"$TABLE"
    done
    unset rates
done

# -------------------------------------------------------- syscalls ----
# Write syscalls per transaction of the blocking tool with PIPELINING,
# 1 connection x 1 KiB. The tool's own stdout lines (one write each) are
# subtracted.
SYS_N=2000
log "strace -c -f: blocking load tool, $SYS_N messages"
strace -f -c -o "$STATE/strace.txt" \
    "$BIN/load" --server "127.0.0.1:$PORT" -n "$SYS_N" -c 1 --size 1024 >"$STATE/out.txt" 2>&1 \
    || log "the traced run failed"
touch "$STATE/strace.txt"
stdout_lines="$(wc -l <"$STATE/out.txt")"
count_calls() { awk -v s="$1" '$NF == s { print ($4 ~ /^[0-9]+$/) ? $4 : 0 }' "$STATE/strace.txt" | head -n1; }
writes=0
for s in write sendto writev sendmsg; do
    v="$(count_calls "$s")"
    writes=$((writes + ${v:-0}))
done
writes=$((writes - stdout_lines))
reads=0
for s in read recvfrom readv recvmsg; do
    v="$(count_calls "$s")"
    reads=$((reads + ${v:-0}))
done
setsockopt="$(count_calls setsockopt)"

echo
echo "== messages/s (median of $ROUNDS alternating rounds; sink counter checked after every run) =="
cat "$TABLE"
echo
echo "== syscalls per transaction: blocking load tool, PIPELINING, 1 conn x 1 KiB, $SYS_N messages =="
awk -v w="$writes" -v r="$reads" -v o="${setsockopt:-0}" -v n="$SYS_N" 'BEGIN {
    printf "writes %.2f   reads %.2f   setsockopt %.2f   (target: at most 2 writes)\n", w / n, r / n, o / n
}'
echo
echo "strace -c -f summary (top 8):"
head -n 10 "$STATE/strace.txt" | tail -n 8
