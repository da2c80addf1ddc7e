#!/usr/bin/env bash
# Peak memory of our clients, measured with /usr/bin/time -v against a
# Postfix smtp-sink on loopback:
#
# - a 1 GiB message, generated on the fly by the load tool (never held in
#   memory), against a 100-byte one: the growth in peak RSS is what the
#   streaming path costs (target: at most 4 MiB);
# - the mio event loop with 1000 concurrent sessions against 1 session:
#   the difference divided by 999 is the cost of one session.
#
#   tests/bench/memory.sh     # about 15 s
#
# Loopback only; the sink is stopped by its PID on exit.
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

PORT="${PORT:-25626}"
GIB=$((1024 * 1024 * 1024))

ensure_tools smtp-sink /usr/bin/time
build_tools
start_sink "$PORT"
ADDR="127.0.0.1:$PORT"

# One line per client: NAME|COMMAND for one message of {SIZE} bytes. To add
# a client (smtp-tokio's load tool), add one line.
STREAMERS=(
    "blocking|$BIN/load --server $ADDR -n 1 -c 1 --size {SIZE} --max-seconds 300"
)

# peak_kib CMD...: runs the command, checks it succeeded, prints its peak RSS.
peak_kib() {
    /usr/bin/time -v -o "$STATE/time.txt" "$@" >"$STATE/out.txt" 2>"$STATE/err.txt" || {
        log "failed: $*"
        tail -n 5 "$STATE/err.txt" >&2
        exit 1
    }
    awk -F': ' '/Maximum resident set size/ { print $2 }' "$STATE/time.txt"
}

printf '%-34s %12s %12s %12s\n' "run" "small KiB" "large KiB" "growth KiB"
for line in "${STREAMERS[@]}"; do
    name="${line%%|*}"
    cmd="${line#*|}"
    before="$(sink_count)"
    # shellcheck disable=SC2086
    small="$(peak_kib ${cmd//\{SIZE\}/100})"
    t0="$(date +%s.%N)"
    # shellcheck disable=SC2086
    large="$(peak_kib ${cmd//\{SIZE\}/$GIB})"
    t1="$(date +%s.%N)"
    got="$(wait_sink_count "$((${before:-0} + 2))")"
    [ "$((got - ${before:-0}))" -eq 2 ] || { log "$name: the sink got $((got - ${before:-0}))/2 messages"; exit 1; }
    printf '%-34s %12s %12s %12s   (%s: 1 GiB in %.1f s; target growth <= 4096)\n' \
        "$name: 100 B vs 1 GiB message" "$small" "$large" "$((large - small))" "$name" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
done

before="$(sink_count)"
one="$(peak_kib "$BIN/event_loop" --server "$ADDR" --sessions 1 -n 1000 --size 1024)"
many="$(peak_kib "$BIN/event_loop" --server "$ADDR" --sessions 1000 -n 1000 --size 1024)"
got="$(wait_sink_count "$((${before:-0} + 2000))")"
[ "$((got - ${before:-0}))" -eq 2000 ] || { log "event_loop: the sink got $((got - ${before:-0}))/2000"; exit 1; }
printf '%-34s %12s %12s %12s   (%.1f KiB per session)\n' \
    "event_loop: 1 vs 1000 sessions" "$one" "$many" "$((many - one))" \
    "$(awk -v a="$one" -v b="$many" 'BEGIN { print (b - a) / 999 }')"
