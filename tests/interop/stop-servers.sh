#!/usr/bin/env bash
# Stop the interop servers started by start-servers.sh STATE_DIR.
# Only the PIDs recorded in STATE_DIR/*.pid are signalled (after checking that
# the PID still runs the command we started on the recorded port), and the
# private Postfix instance is stopped with "postfix -c STATE_DIR/postfix/conf stop".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
[ -d "$1" ] || { echo "stop-servers: $1: no such directory (nothing to stop)" >&2; exit 0; }
STATE="$(cd "$1" && pwd)"

log() { printf '[stop-servers] %s\n' "$*" >&2; }

# ours PID PORT: true when PID is alive and its command line mentions PORT
# or this STATE_DIR (Dovecot's names only its STATE_DIR/dovecot/dovecot.conf,
# OpenSMTPD's its smtpd.conf there, Haraka's its config dir there)
ours() {
    local pid="$1" port="$2" cmdline
    alive "$pid" || return 1
    cmdline="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
    case " $cmdline " in
        *" $port "*|*":$port "*|*" $STATE/"*) return 0 ;;
        *) return 1 ;;
    esac
}

# alive PID: running and not a zombie (an exited server whose new parent has
# not reaped it yet still answers kill -0)
alive() {
    local st
    st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

status=0
pids=()
for pidfile in "$STATE"/*.pid; do
    [ -f "$pidfile" ] || continue
    name="$(basename "$pidfile" .pid)"
    [ "$name" = postfix ] && continue   # handled below with "postfix stop"
    pid="$(tr -dc '0-9' < "$pidfile")"
    port="$(tr -dc '0-9' < "$STATE/$name.port" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ -n "$port" ] && ours "$pid" "$port"; then
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid:$name")
    elif [ -n "$pid" ] && alive "$pid"; then
        log "$name: pid $pid is alive but is not our server on port $port; not touching it"
    fi
    rm -f "$pidfile" "$STATE/$name.port"
done

# wait up to 5 s, then SIGKILL the stragglers (same PIDs only)
for _ in $(seq 1 50); do
    any_alive=0
    for e in "${pids[@]+"${pids[@]}"}"; do
        if alive "${e%%:*}"; then any_alive=1; fi
    done
    [ "$any_alive" -eq 0 ] && break
    sleep 0.1
done
for e in "${pids[@]+"${pids[@]}"}"; do
    if alive "${e%%:*}"; then
        log "${e#*:}: pid ${e%%:*} ignored SIGTERM; sending SIGKILL"
        kill -KILL "${e%%:*}" 2>/dev/null || true
    fi
done
[ "${#pids[@]}" -gt 0 ] && log "stopped ${#pids[@]} process(es)"

# private Postfix instance
if [ -f "$STATE/postfix/conf/main.cf" ]; then
    mpid=""
    [ -f "$STATE/postfix/queue/pid/master.pid" ] && mpid="$(tr -dc '0-9' < "$STATE/postfix/queue/pid/master.pid")"
    "$HERE/postfix_instance.sh" stop "$STATE" || status=1
    if [ -n "$mpid" ]; then
        for _ in $(seq 1 100); do
            alive "$mpid" || break
            sleep 0.1
        done
        if alive "$mpid"; then
            exe="$(readlink "/proc/$mpid/exe" 2>/dev/null || true)"
            case "$exe" in
                */postfix/sbin/master|*/postfix/master)
                    log "postfix master $mpid still running after 'postfix stop'; sending SIGTERM"
                    kill -TERM "$mpid" 2>/dev/null || true ;;
            esac
        fi
    fi
    rm -f "$STATE/postfix.port" "$STATE/postfix.pid"
    log "postfix instance ($STATE/postfix/conf) stopped"
fi
exit "$status"
