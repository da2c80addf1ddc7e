#!/usr/bin/env bash
# The memory of idle smtp-tokio sessions: tokio-load --idle N opens N
# sessions at once (connect, greeting, EHLO) against the discard sink of
# tests/examples (one thread per connection, so it takes thousands), holds
# them, and prints the growth of its resident set divided by N; then QUITs
# them all. Target: at most 20 KiB per session at N = 10,000.
#
#   tests/bench/idle.sh           # N=10000, a few seconds
#   N=1000 tests/bench/idle.sh
#
# Needs about N + 100 file descriptors in each of the two processes (the
# script raises the soft limit to the hard one). Loopback only; the run is
# bounded by a timeout; the sink is stopped by its PID.
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

N="${N:-10000}"
PORT="${PORT:-25628}"
ADDR="127.0.0.1:$PORT"

ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt "$((N + 100))" ]; then
    log "ulimit -n is $(ulimit -n): too low for $N sessions"
    exit 1
fi
log "building tokio-load and discard_sink (release)"
(cd "$ROOT" && cargo build --release -q -p smtp-tokio --example tokio-load \
    && cargo build --release -q -p smtp-tests --example discard_sink)
start_discard_sink "$PORT"
"${PRIO[@]}" timeout 120 "$BIN/tokio-load" --server "$ADDR" --idle "$N" --max-seconds 60
