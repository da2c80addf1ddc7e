#!/usr/bin/env bash
# Our server as the sink for Postfix's load client: smtp-source against
# Postfix's smtp-sink, our blocking sink (a thread per connection) and our
# tokio sink (one thread, a task per connection), in alternation, one
# table. The examples are smtp-blocking's `sink_server` and smtp-tokio's
# `tokio_sink_server`: the core's `Server` with an accept-all handler.
#
#   tests/bench/server.sh            # 5 rounds per case
#   ROUNDS=3 NICE=-10 tests/bench/server.sh
#
# Rates are messages / wall-clock seconds of smtp-source's whole run (the
# same for every sink); each figure is the median of ROUNDS rounds; the
# ratio is against smtp-sink in the same run. Every sink's count is
# checked (smtp-sink -c; ours print theirs). "CPU/msg" is the sink's user+sys
# time per message. Loopback only; every run is bounded (timeout, and our
# sinks stop after --count messages or 120 s).
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS="${ROUNDS:-5}"
PORT="${PORT:-25725}"
TICKS="$(getconf CLK_TCK)"

ensure_tools smtp-sink smtp-source
log "building the sinks (release)"
(cd "$ROOT" && cargo build --release -q -p smtp-blocking --example sink_server \
    && cargo build --release -q -p smtp-tokio --example tokio_sink_server)

# LABEL|N|SESSIONS|SIZE|smtp-source flags
CASES=(
    "1 conn, 1 KiB|20000|1|1024|-d"
    "4 conns, 1 KiB|40000|4|1024|-d"
    "1 conn, 100 KiB|2000|1|102400|-d"
)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# run_ours BIN N SESSIONS SIZE FLAGS: prints "rate cpu_us_per_msg".
run_ours() {
    local bin="$1" n="$2" s="$3" size="$4" flags="$5" out="$STATE/ours.out" pid t0 t1
    "${SINK_PRIO[@]}" "$BIN/$bin" --listen "127.0.0.1:$PORT" --count "$n" --seconds 120 >"$out" 2>/dev/null &
    pid=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    timeout 120 "${CLIENT_PRIO[@]}" smtp-source $flags -m "$n" -s "$s" -l "$size" "127.0.0.1:$PORT"
    t1=$(date +%s.%N)
    wait "$pid" || true
    local got cpu
    got=$(grep -o '[0-9]* messages' "$out" | cut -d' ' -f1)
    cpu=$(grep -o '[0-9.]* us CPU/msg' "$out" | cut -d' ' -f1)
    [ "$got" = "$n" ] || { log "$bin received $got of $n"; echo "FAIL FAIL"; return; }
    echo "$(echo "$n / ($t1 - $t0)" | bc -l) $cpu"
}

run_sink() {
    local n="$1" s="$2" size="$3" flags="$4" t0 t1 before after got
    start_sink $((PORT + 1))
    before=$(awk '{print $14 + $15}' "/proc/$SINK_PID/stat")
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    timeout 120 "${CLIENT_PRIO[@]}" smtp-source $flags -m "$n" -s "$s" -l "$size" "127.0.0.1:$((PORT + 1))"
    t1=$(date +%s.%N)
    sleep 0.3
    after=$(awk '{print $14 + $15}' "/proc/$SINK_PID/stat")
    got=$(sink_count)
    kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
    [ "$got" = "$n" ] || { log "smtp-sink counted $got of $n"; echo "FAIL FAIL"; return; }
    echo "$(echo "$n / ($t1 - $t0)" | bc -l) $(echo "($after - $before) * 1000000 / $TICKS / $n" | bc -l)"
}

printf '%-18s | %-22s | %10s | %7s | %9s\n' case sink "msg/s" ratio "CPU/msg"
printf -- '-------------------+------------------------+------------+---------+----------\n'
for case in "${CASES[@]}"; do
    IFS='|' read -r label n s size flags <<<"$case"
    : >"$STATE/sink" ; : >"$STATE/blocking" ; : >"$STATE/tokio"
    for _ in $(seq "$ROUNDS"); do
        run_sink "$n" "$s" "$size" "$flags" >>"$STATE/sink"
        run_ours sink_server "$n" "$s" "$size" "$flags" >>"$STATE/blocking"
        run_ours tokio_sink_server "$n" "$s" "$size" "$flags" >>"$STATE/tokio"
    done
    base=$(cut -d' ' -f1 "$STATE/sink" | median)
    for who in sink blocking tokio; do
        name=$([ "$who" = sink ] && echo "Postfix smtp-sink" || echo "ours ($who)")
        if grep -q FAIL "$STATE/$who"; then
            printf '%-18s | %-22s | %10s | %7s | %9s\n' "$label" "$name" FAIL - -
            continue
        fi
        rate=$(cut -d' ' -f1 "$STATE/$who" | median)
        cpu=$(cut -d' ' -f2 "$STATE/$who" | median)
        printf '%-18s | %-22s | %10.0f | %6.2fx | %6.1f us\n' "$label" "$name" "$rate" \
            "$(echo "$rate / $base" | bc -l)" "$cpu"
    done
done
