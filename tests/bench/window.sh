#!/usr/bin/env bash
# The window across messages (Config::max_messages_in_flight, the load
# tools' --window K) at 1, 8 and 32, with DATA and with BDAT, against
# Postfix's smtp-source in the same run, on one connection x 1 KiB.
#
#   tests/bench/window.sh              # 3 rounds per sink, about 4 minutes
#   ROUNDS=1 N=5000 tests/bench/window.sh   # quicker, noisier
#
# - DATA rows run against the discard sink of tests/examples with
#   --no-chunking, BDAT rows against the same sink offering CHUNKING
#   (Postfix's smtp-sink has no CHUNKING, and a byte at a time it would be
#   the bottleneck). smtp-source (always DATA) runs against each sink in
#   the same rounds, so every ratio is within one run.
# - The windowed rows send with `--batch 100 --window K` (send_batch keeps
#   up to K messages in flight); "send" is plain Client::send, one message
#   at a time.
# - "floor std" / "floor tokio" replay plain send's exchange (one write and
#   one read per round trip) from precomputed bytes with no SMTP library:
#   what the kernel, the round trips and the runtime cost on this machine,
#   the most any client's plain send could reach.
# - msgs/s: messages / wall-clock seconds of the whole process; "client
#   µs/msg": the client's user + system CPU per message (/usr/bin/time, the
#   same for every client, 10 ms ticks); "sink CPU": the share of the run's
#   wall time the sink process spent on the CPU (from /proc: near 100% per
#   busy sink thread, the sink is the bottleneck). Each figure is the median
#   of ROUNDS rounds, the clients alternating within a round; every run is
#   checked against the sink's counter.
# - Then strace -f -c counts syscalls per message of the blocking load tool
#   (send and --batch 100) against both sinks.
#
# Loopback only; every run is bounded (timeout and --max-seconds); the sink
# is stopped by its PID.
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS="${ROUNDS:-3}"
N="${N:-50000}"
SIZE="${SIZE:-1024}"
BATCH="${BATCH:-100}"
PORT="${PORT:-25627}"
RUN_TIMEOUT="${RUN_TIMEOUT:-120}"
TICKS="$(getconf CLK_TCK)"
ADDR="127.0.0.1:$PORT"

ensure_tools smtp-source strace /usr/bin/time
log "building the load tools and discard_sink (release)"
(cd "$ROOT" && cargo build --release -q -p smtp-blocking --example load \
    && cargo build --release -q -p smtp-tokio --example tokio-load \
    && cargo build --release -q -p smtp-tests --example discard_sink --example floor)

L="$BIN/load --server $ADDR -n $N -c 1 --size $SIZE --max-seconds $RUN_TIMEOUT"
T="$BIN/tokio-load --server $ADDR -n $N -c 1 --size $SIZE --max-seconds $RUN_TIMEOUT"
# The floor: the same exchange as plain send from precomputed bytes, no
# SMTP library (tests/examples/floor.rs); @MODE@ is the section's (data or
# bdat).
F="$BIN/floor --server $ADDR -n $N --size $SIZE --mode @MODE@"
# NAME|COMMAND
TOOLS=(
    "smtp-source|smtp-source -d -m $N -s 1 -l $SIZE $ADDR"
    "blocking send|$L"
    "blocking w=1|$L --batch $BATCH --window 1"
    "blocking w=8|$L --batch $BATCH --window 8"
    "blocking w=32|$L --batch $BATCH --window 32"
    "tokio send|$T"
    "tokio w=1|$T --batch $BATCH --window 1"
    "tokio w=8|$T --batch $BATCH --window 8"
    "tokio w=32|$T --batch $BATCH --window 32"
    "floor std|$F --io std"
    "floor tokio|$F --io tokio"
)

# run COMMAND: prints "RATE SINK_CPU_PERCENT CLIENT_US_PER_MSG", or "FAIL".
run() {
    local cmd="$1" before after t0 t1 cpu0 cpu1 status=0 user sys
    before="$(sink_count)"
    cpu0="$(sink_cpu_ticks)"
    t0="$(date +%s.%N)"
    # shellcheck disable=SC2086
    "${CLIENT_PRIO[@]}" timeout "$RUN_TIMEOUT" /usr/bin/time -f '%U %S' -o "$STATE/time.txt" \
        $cmd >"$STATE/out.txt" 2>"$STATE/err.txt" || status=$?
    t1="$(date +%s.%N)"
    after="$(wait_sink_count "$((${before:-0} + N))")"
    cpu1="$(sink_cpu_ticks)"
    if [ "$status" -ne 0 ] || [ "$((after - ${before:-0}))" -ne "$N" ]; then
        log "$cmd: exit $status, sink got $((after - ${before:-0}))/$N"
        tail -n 3 "$STATE/err.txt" >&2 || true
        echo FAIL
        return
    fi
    read -r user sys <"$STATE/time.txt"
    awk -v n="$N" -v a="$t0" -v b="$t1" -v cpu="$((cpu1 - cpu0))" -v hz="$TICKS" \
        -v u="$user" -v s="$sys" \
        'BEGIN { printf "%.0f %.0f %.1f\n", n / (b - a), 100 * cpu / hz / (b - a), 1e6 * (u + s) / n }'
}

median() {
    tr ' ' '\n' | grep -v '^$' | sort -g \
        | awk '{ v[NR] = $1 } END { if (NR == 0) print "FAIL"; else print v[int((NR + 1) / 2)] }'
}

TABLE="$STATE/table.txt"
printf '%-6s %-15s %9s %10s %14s %9s  %s\n' \
    "mode" "client" "msgs/s" "vs source" "client µs/msg" "sink CPU" "runs (msgs/s)" >"$TABLE"

# section LABEL SINK_ARGS...: every client against one sink, ROUNDS rounds.
section() {
    local label="$1" line name cmd round rate cpu us base m
    shift
    start_discard_sink "$PORT" "$@"
    declare -A rates=() cpus=() uss=()
    for round in $(seq "$ROUNDS"); do
        for line in "${TOOLS[@]}"; do
            name="${line%%|*}"
            cmd="${line#*|}"
            cmd="${cmd//@MODE@/${label,,}}"
            log "$label: $name (round $round/$ROUNDS)"
            read -r rate cpu us <<<"$(run "$cmd")"
            if [ "$rate" != FAIL ]; then
                rates[$name]="${rates[$name]:-} $rate"
                cpus[$name]="${cpus[$name]:-} $cpu"
                uss[$name]="${uss[$name]:-} $us"
            fi
        done
    done
    stop_sink
    base="$(echo "${rates[smtp-source]:-}" | median)"
    for line in "${TOOLS[@]}"; do
        name="${line%%|*}"
        m="$(echo "${rates[$name]:-}" | median)"
        cpu="$(echo "${cpus[$name]:-}" | median)"
        us="$(echo "${uss[$name]:-}" | median)"
        ratio="-"
        if [ "$m" != FAIL ] && [ "$base" != FAIL ]; then
            ratio="$(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')"
        fi
        [ "$cpu" != FAIL ] && cpu="$cpu%"
        printf '%-6s %-15s %9s %10s %14s %9s  %s\n' \
            "$label" "$name" "$m" "$ratio" "$us" "$cpu" "${rates[$name]:- FAIL}" >>"$TABLE"
    done
}

section DATA --no-chunking
section BDAT

# -------------------------------------------------------- syscalls ----
SYS_N=2000
SYS="$STATE/syscalls.txt"
calls() {
    awk -v s="$1" '$NF == s && $4 ~ /^[0-9]+$/ { print $4; exit }' "$STATE/strace.txt"
}
# traced LABEL LOAD_ARGS...: syscalls per message of one traced run.
traced() {
    local label="$1" lines
    shift
    : >"$STATE/strace.txt"
    "${PRIO[@]}" timeout "$RUN_TIMEOUT" strace -f -c -o "$STATE/strace.txt" \
        "$BIN/load" --server "$ADDR" -n "$SYS_N" -c 1 --size "$SIZE" \
        --max-seconds "$RUN_TIMEOUT" "$@" >"$STATE/out.txt" 2>&1 \
        || log "the traced run $label failed"
    # The tool's own stdout lines (one write each) are subtracted.
    lines="$(wc -l <"$STATE/out.txt")"
    awk -v l="$label" -v n="$SYS_N" -v s="$(calls sendto)" -v w="$(calls write)" \
        -v lines="$lines" -v r="$(calls recvfrom)" -v rd="$(calls read)" \
        -v o="$(calls setsockopt)" 'BEGIN {
        printf "%-22s %8.2f %8.2f %10.2f %11.2f\n", l, (s + w - lines) / n, r / n, (rd + 0) / n, o / n
    }' >>"$SYS"
}
printf '%-22s %8s %8s %10s %11s\n' "run" "writes" "recvfrom" "read" "setsockopt" >"$SYS"
start_discard_sink "$PORT" --no-chunking
traced "DATA send"
traced "DATA --batch 100" --batch 100
stop_sink
start_discard_sink "$PORT"
traced "BDAT send"
traced "BDAT --batch 100" --batch 100
stop_sink

echo
echo "== 1 conn x $SIZE B, $N messages per run: median of $ROUNDS alternating rounds =="
cat "$TABLE"
echo
echo "== syscalls per message: blocking load tool, strace -f -c, $SYS_N messages =="
echo "(writes: sendto + write, less the tool's own stdout lines; read includes /proc reads)"
cat "$SYS"
