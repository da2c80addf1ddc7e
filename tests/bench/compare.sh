#!/usr/bin/env bash
# Compares our clients with Postfix's own C load client, smtp-source, against
# one Postfix smtp-sink on loopback, in alternation, and prints one table.
#
#   tests/bench/compare.sh            # 5 rounds per case, about 2 minutes
#   ROUNDS=1 tests/bench/compare.sh   # quicker, noisier
#   NICE=-10 tests/bench/compare.sh   # as root: ahead of other work (steadier)
#
# Cases: 1 connection x 1 KiB, 1 connection x 100 KiB, 4 connections x 1 KiB,
# and 1000 concurrent sessions x 1 KiB (the mio event loop's own case).
# smtp-source runs as `smtp-source -d -m N -s C -l SIZE` (-d: keep each
# connection for the next message instead of reconnecting, as our tools do).
#
# - Every run's messages are checked against the sink's counter (smtp-sink
#   -c); a run that lost a message is reported as FAIL.
# - Rates are messages / wall-clock seconds of the whole process, measured
#   the same way for every client; each figure is the median of ROUNDS
#   rounds, the clients alternating within a round. Ratios are against
#   smtp-source in the same run: this machine is shared and noisy, so read
#   ratios, not absolute numbers.
# - "sink CPU" is the share of the run's wall time the single-threaded sink
#   spent on the CPU: near 100% the sink is the bottleneck and no client can
#   go much faster.
# - Then `strace -c -f` counts syscalls per transaction of the blocking load
#   tool with PIPELINING (target: at most 2 writes).
#
# Loopback only; every run is bounded (timeout and the tools' own
# --max-seconds); the sink is stopped by its PID on exit.
#
# The window across messages (1, 8 and 32 in flight, DATA and BDAT, against
# the CHUNKING-capable discard sink): tests/bench/window.sh. Idle smtp-tokio
# sessions' memory: tests/bench/idle.sh.
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS="${ROUNDS:-5}"
PORT="${PORT:-25625}"
RUN_TIMEOUT="${RUN_TIMEOUT:-120}"
TICKS="$(getconf CLK_TCK)"

ensure_tools smtp-sink smtp-source strace
build_tools
start_sink "$PORT"
ADDR="127.0.0.1:$PORT"

# One line per client: NAME|COMMAND, with {N} messages, {C} connections,
# {SIZE} bytes. To add a client (smtp-tokio's load tool), add one line.
TOOLS=(
    "smtp-source|smtp-source -d -m {N} -s {C} -l {SIZE} $ADDR"
    "blocking|$BIN/load --server $ADDR -n {N} -c {C} --size {SIZE} --max-seconds $RUN_TIMEOUT"
    "blocking-nopipe|$BIN/load --server $ADDR -n {N} -c {C} --size {SIZE} --no-pipelining --max-seconds $RUN_TIMEOUT"
    "blocking-batch|$BIN/load --server $ADDR -n {N} -c {C} --size {SIZE} --batch 32 --max-seconds $RUN_TIMEOUT"
    "tokio|$BIN/tokio-load --server $ADDR -n {N} -c {C} --size {SIZE} --max-seconds $RUN_TIMEOUT"
    "tokio-nopipe|$BIN/tokio-load --server $ADDR -n {N} -c {C} --size {SIZE} --no-pipelining --max-seconds $RUN_TIMEOUT"
    "tokio-batch|$BIN/tokio-load --server $ADDR -n {N} -c {C} --size {SIZE} --batch 32 --max-seconds $RUN_TIMEOUT"
    "event_loop|$BIN/event_loop --server $ADDR --sessions {C} -n {N} --size {SIZE} --max-seconds $RUN_TIMEOUT"
)

# LABEL|N|C|SIZE|CLIENTS ("all", or the names of the clients to run).
CASES=(
    "1 conn, 1 KiB|5000|1|1024|all"
    "1 conn, 100 KiB|1000|1|102400|all"
    "4 conns, 1 KiB|20000|4|1024|all"
    "1000 sessions, 1 KiB|20000|1000|1024|smtp-source event_loop"
)

# run NAME N C SIZE: prints "RATE SINK_CPU_PERCENT", or "FAIL".
run() {
    local name="$1" n="$2" c="$3" size="$4" cmd="" line before after t0 t1 cpu0 cpu1 status=0
    for line in "${TOOLS[@]}"; do
        [ "${line%%|*}" = "$name" ] && cmd="${line#*|}"
    done
    cmd="${cmd//\{N\}/$n}"
    cmd="${cmd//\{C\}/$c}"
    cmd="${cmd//\{SIZE\}/$size}"
    before="$(sink_count)"
    cpu0="$(sink_cpu_ticks)"
    t0="$(date +%s.%N)"
    # shellcheck disable=SC2086
    "${CLIENT_PRIO[@]}" timeout "$RUN_TIMEOUT" $cmd >"$STATE/out.txt" 2>"$STATE/err.txt" || status=$?
    t1="$(date +%s.%N)"
    after="$(wait_sink_count "$((${before:-0} + n))")"
    cpu1="$(sink_cpu_ticks)"
    if [ "$status" -ne 0 ] || [ "$((after - ${before:-0}))" -ne "$n" ]; then
        log "$name n=$n c=$c size=$size: exit $status, sink got $((after - ${before:-0}))/$n"
        tail -n 3 "$STATE/err.txt" >&2 || true
        echo FAIL
        return
    fi
    awk -v n="$n" -v a="$t0" -v b="$t1" -v cpu="$((cpu1 - cpu0))" -v hz="$TICKS" \
        'BEGIN { printf "%.0f %.0f\n", n / (b - a), 100 * cpu / hz / (b - a) }'
}

median() {
    tr ' ' '\n' | grep -v '^$' | sort -n \
        | awk '{ v[NR] = $1 } END { if (NR == 0) print "FAIL"; else print v[int((NR + 1) / 2)] }'
}

TABLE="$STATE/table.txt"
printf '%-22s %-16s %9s %10s %9s  %s\n' \
    "case" "client" "msgs/s" "vs source" "sink CPU" "runs (msgs/s)" >"$TABLE"
for case in "${CASES[@]}"; do
    IFS='|' read -r label n c size subset <<<"$case"
    names=()
    for line in "${TOOLS[@]}"; do
        name="${line%%|*}"
        if [ "$subset" = all ] || [[ " $subset " == *" $name "* ]]; then
            names+=("$name")
        fi
    done
    declare -A rates=() cpus=()
    for round in $(seq "$ROUNDS"); do
        for name in "${names[@]}"; do
            log "$label: $name (round $round/$ROUNDS)"
            read -r rate cpu <<<"$(run "$name" "$n" "$c" "$size")"
            if [ "$rate" != FAIL ]; then
                rates[$name]="${rates[$name]:-} $rate"
                cpus[$name]="${cpus[$name]:-} $cpu"
            fi
        done
    done
    base="$(echo "${rates[smtp-source]:-}" | median)"
    for name in "${names[@]}"; do
        m="$(echo "${rates[$name]:-}" | median)"
        cpu="$(echo "${cpus[$name]:-}" | median)"
        ratio="-"
        if [ "$m" != FAIL ] && [ "$base" != FAIL ]; then
            ratio="$(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')"
        fi
        [ "$cpu" != FAIL ] && cpu="$cpu%"
        printf '%-22s %-16s %9s %10s %9s  %s\n' \
            "$label" "$name" "$m" "$ratio" "$cpu" "${rates[$name]:- FAIL}" >>"$TABLE"
    done
    unset rates cpus
done

# -------------------------------------------------------- syscalls ----
# The tool's own stdout lines (one write each) are subtracted.
SYS_N=2000
log "strace -c -f: blocking load tool, $SYS_N messages"
"${PRIO[@]}" strace -f -c -o "$STATE/strace.txt" \
    "$BIN/load" --server "$ADDR" -n "$SYS_N" -c 1 --size 1024 >"$STATE/out.txt" 2>&1 \
    || log "the traced run failed"
touch "$STATE/strace.txt"
stdout_lines="$(wc -l <"$STATE/out.txt")"
calls() {
    local total=0 s v
    for s in "$@"; do
        v="$(awk -v s="$s" '$NF == s && $4 ~ /^[0-9]+$/ { print $4; exit }' "$STATE/strace.txt")"
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
writes=$(($(calls write sendto writev sendmsg) - stdout_lines))
reads="$(calls read recvfrom readv recvmsg)"
setsockopt="$(calls setsockopt)"

echo
echo "== messages/s: median of $ROUNDS alternating rounds, sink counter checked after every run =="
cat "$TABLE"
echo
echo "== syscalls per transaction: blocking load tool, PIPELINING, 1 conn x 1 KiB, $SYS_N messages =="
awk -v w="$writes" -v r="$reads" -v o="$setsockopt" -v n="$SYS_N" 'BEGIN {
    printf "writes %.2f   reads %.2f   setsockopt %.2f   (target: at most 2 writes)\n", w / n, r / n, o / n
}'
echo "strace -c -f, top entries:"
sed -n '3,10p' "$STATE/strace.txt"
