#!/usr/bin/env bash
# Start every interop SMTP server on 127.0.0.1 and write STATE_DIR/env.
#
#   tests/interop/start-servers.sh STATE_DIR
#   set -a; . STATE_DIR/env; set +a
#   ...run tests...
#   tests/interop/stop-servers.sh STATE_DIR
#
# Needs tests/interop/install.sh to have run.  Must run as root (the private
# Postfix instance and smtp-sink -u need it).  STATE_DIR is created if missing;
# it and its parents must be searchable by other users (postfix, nobody), so
# e.g. a mktemp -d directory is made 0755 here.
#
# Optional environment: SMTP_USER, SMTP_PASSWORD, SMTP_SIZE_LIMIT (bytes),
# INTEROP_SERVERS (space separated subset of: aiosmtpd nodemailer
# nodemailer_tls nodemailer_lmtp nodemailer_idle sink sink_lmtp sink_faults postfix
# exim dovecot opensmtpd haraka; default all).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
mkdir -p "$1"
STATE="$(cd "$1" && pwd)"
chmod 755 "$STATE"

SMTP_USER="${SMTP_USER:-interop-user}"
SMTP_PASSWORD="${SMTP_PASSWORD:-interop-Pa55word}"
SMTP_SIZE_LIMIT="${SMTP_SIZE_LIMIT:-10485760}"
SERVERS="${INTEROP_SERVERS:-aiosmtpd nodemailer nodemailer_tls nodemailer_lmtp nodemailer_idle sink sink_lmtp sink_faults postfix exim dovecot opensmtpd haraka}"
PY="$HERE/venv/bin/python"
LOGS="$STATE/logs"

T_START=$(date +%s%N)
log() {
    local ms=$(( ($(date +%s%N) - T_START) / 1000000 ))
    printf '[start-servers +%d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&2
}
want() { case " $SERVERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }
case "$SMTP_USER$SMTP_PASSWORD" in
    *[!A-Za-z0-9._@+-]*) log "SMTP_USER/SMTP_PASSWORD: use only [A-Za-z0-9._@+-]"; exit 1 ;;
esac
if want aiosmtpd; then [ -x "$PY" ] || { log "missing $PY: run $HERE/install.sh"; exit 1; }; fi
if want nodemailer || want nodemailer_tls || want nodemailer_lmtp; then
    [ -d "$HERE/node_modules/smtp-server" ] || { log "missing node_modules/smtp-server: run $HERE/install.sh"; exit 1; }
fi
for b in smtp-sink postfix openssl saslpasswd2; do
    command -v "$b" >/dev/null || { log "missing $b: run $HERE/install.sh"; exit 1; }
done
if want exim; then [ -x "$HERE/pkgs/exim4/usr/sbin/exim4" ] || { log "missing pkgs/exim4: run $HERE/install.sh"; exit 1; }; fi
if want dovecot; then command -v dovecot >/dev/null || { log "missing dovecot: run $HERE/install.sh"; exit 1; }; fi
if want haraka; then [ -f "$HERE/node_modules/Haraka/bin/haraka" ] || { log "missing node_modules/Haraka: run $HERE/install.sh"; exit 1; }; fi
if want opensmtpd; then [ -x "$HERE/pkgs/opensmtpd/usr/sbin/smtpd" ] || { log "missing pkgs/opensmtpd: run $HERE/install.sh"; exit 1; }; fi


# postfix daemons and "nobody" (smtp-sink, Postfix delivery) must reach STATE_DIR
d="$STATE"
while [ "$d" != "/" ]; do
    if [ $(( 0$(stat -c '%a' "$d") & 01 )) -eq 0 ]; then
        log "$d is not searchable by other users (needed by postfix/nobody): chmod o+x it or use another STATE_DIR"
        exit 1
    fi
    d="$(dirname "$d")"
done

# A previous run in the same STATE_DIR is stopped first (only its own PIDs).
if compgen -G "$STATE/*.pid" >/dev/null || [ -f "$STATE/postfix/conf/main.cf" ]; then
    log "stopping servers of a previous run in $STATE"
    "$HERE/stop-servers.sh" "$STATE"
fi
rm -rf "$LOGS" "$STATE/spool" "$STATE/tls"
mkdir -p "$LOGS" "$STATE/spool" "$STATE/tls"

failed=1
cleanup_on_error() {
    if [ "$failed" -eq 1 ]; then
        log "start failed; stopping what was started (logs in $LOGS)"
        for f in "$LOGS"/*.log; do
            [ -f "$f" ] || continue
            printf -- '--- %s ---\n' "$f" >&2
            tail -n 20 "$f" >&2 || true
        done
        "$HERE/stop-servers.sh" "$STATE" || true
    fi
}
trap cleanup_on_error EXIT

# ------------------------------------------------------------------ TLS --
# Throw-away CA + leaf for localhost / 127.0.0.1 / ::1 (leaf: CA:FALSE,
# serverAuth).  Regenerated on every start.
TLS="$STATE/tls"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
    -keyout "$TLS/ca.key" -out "$TLS/ca.pem" -subj "/CN=SMTP interop throw-away CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>"$LOGS/openssl.log"
openssl req -new -newkey rsa:2048 -nodes -sha256 \
    -keyout "$TLS/server.key" -out "$TLS/server.csr" -subj "/CN=localhost" 2>>"$LOGS/openssl.log"
cat > "$TLS/leaf.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
openssl x509 -req -sha256 -days 30 -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
    -CAcreateserial -out "$TLS/server.pem" -extfile "$TLS/leaf.ext" 2>>"$LOGS/openssl.log"
openssl verify -CAfile "$TLS/ca.pem" "$TLS/server.pem" >>"$LOGS/openssl.log"
chmod 644 "$TLS/ca.pem" "$TLS/server.pem"
chmod 600 "$TLS/ca.key" "$TLS/server.key"
cp "$TLS/ca.pem" "$STATE/ca.pem"
CERT="$TLS/server.pem"
KEY="$TLS/server.key"

# ---------------------------------------------------------------- ports --
# Reserve N distinct free 127.0.0.1 ports (sockets are held until all are
# chosen, then released; the window until the servers bind is tiny).
NPORTS=32
SYSPY="$(command -v python3 || echo /usr/bin/python3)"
mapfile -t PORTS < <("$SYSPY" - "$NPORTS" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
)
[ "${#PORTS[@]}" -eq "$NPORTS" ] || { log "could not allocate ports"; exit 1; }
next_port_idx=0
next_port() { PORT="${PORTS[$next_port_idx]}"; next_port_idx=$((next_port_idx + 1)); }

# --------------------------------------------------------------- helpers --
# wait_banner PORT [SECONDS]: wait until 127.0.0.1:PORT greets with "220".
wait_banner() {
    local port="$1" secs="${2:-30}" deadline line
    deadline=$(( $(date +%s) + secs ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        line="$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && IFS= read -r l <&3 && printf '%s' \"\$l\" && printf 'QUIT\r\n' >&3" 2>/dev/null || true)"
        case "$line" in
            220*) printf '%s\n' "${line%$'\r'}"; return 0 ;;
        esac
        sleep 0.1
    done
    return 1
}

# alive PID: running and not a zombie
alive() {
    local st
    st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# start_bg NAME PORT CMD...: start CMD in its own session, record NAME.pid
# and NAME.port, wait for its banner.
start_bg() {
    local name="$1" port="$2"; shift 2
    setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
    local pid=$!
    echo "$pid" > "$STATE/$name.pid"
    echo "$port" > "$STATE/$name.port"
    local banner
    if ! banner="$(wait_banner "$port" 30)"; then
        log "$name (pid $pid) did not greet on 127.0.0.1:$port"
        return 1
    fi
    # the recorded PID must be the server itself (setsid does not fork here
    # because a background job of a non-interactive shell is no group leader)
    alive "$pid" || { log "$name (pid $pid) is not running"; return 1; }
    # the command line names the port or this STATE_DIR (stop-servers.sh checks the same)
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -e "$port" -e "$STATE/" || { log "$name: pid $pid is not the server"; return 1; }
    log "$name pid $pid on 127.0.0.1:$port: $banner"
}

ENV_LINES=()
envline() { ENV_LINES+=("$1=$2"); }
envcomment() { ENV_LINES+=("# $*"); }

t0=$(date +%s%N)

envline SMTP_CA "$STATE/ca.pem"
envline SMTP_CERT "$CERT"
envline SMTP_KEY "$KEY"
envline SMTP_USER "$SMTP_USER"
envline SMTP_PASSWORD "$SMTP_PASSWORD"
envline SMTP_SIZE_LIMIT "$SMTP_SIZE_LIMIT"
envline SMTP_STATE_DIR "$STATE"

# ------------------------------------------------------------- aiosmtpd --
if want aiosmtpd; then
    next_port; p=$PORT
    sp="$STATE/spool/aiosmtpd"; mkdir -p "$sp"
    start_bg aiosmtpd "$p" "$PY" "$HERE/aiosmtpd_server.py" --port "$p" --cert "$CERT" --key "$KEY" \
        --spool "$sp" --user "$SMTP_USER" --password "$SMTP_PASSWORD" --size-limit "$SMTP_SIZE_LIMIT"
    envcomment "aiosmtpd $("$PY" -c 'import aiosmtpd; print(aiosmtpd.__version__)'): STARTTLS required, AUTH PLAIN/LOGIN required (after TLS), SMTPUTF8, SIZE; rcpt reject* -> 550 5.1.1"
    envline SMTP_AIOSMTPD "127.0.0.1:$p"
    envline SMTP_AIOSMTPD_SPOOL "$sp"
fi

# ----------------------------------------------------------- nodemailer --
NODE_VER="$(cd "$HERE" && node -p 'require("smtp-server/package.json").version' 2>/dev/null || echo '?')"
if want nodemailer; then
    next_port; p=$PORT
    sp="$STATE/spool/nodemailer"; mkdir -p "$sp"
    start_bg nodemailer "$p" node "$HERE/nodemailer_server.js" --port "$p" --cert "$CERT" --key "$KEY" \
        --spool "$sp" --user "$SMTP_USER" --password "$SMTP_PASSWORD" --size "$SMTP_SIZE_LIMIT"
    envcomment "nodemailer smtp-server $NODE_VER: STARTTLS offered, AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 (optional; 538 before TLS), DSN, SMTPUTF8, REQUIRETLS after TLS; rcpt reject* -> 550 5.1.1"
    envline SMTP_NODEMAILER "127.0.0.1:$p"
    envline SMTP_NODEMAILER_SPOOL "$sp"
fi
if want nodemailer_tls; then
    next_port; p=$PORT
    sp="$STATE/spool/nodemailer_tls"; mkdir -p "$sp"
    # implicit TLS: wait for the TCP port, then check the banner through TLS
    setsid node "$HERE/nodemailer_server.js" --implicit-tls --port "$p" --cert "$CERT" --key "$KEY" \
        --spool "$sp" --user "$SMTP_USER" --password "$SMTP_PASSWORD" --size "$SMTP_SIZE_LIMIT" \
        </dev/null >"$LOGS/nodemailer_tls.log" 2>&1 &
    pid=$!; echo "$pid" > "$STATE/nodemailer_tls.pid"; echo "$p" > "$STATE/nodemailer_tls.port"
    ok=0
    for _ in $(seq 1 300); do
        if grep -q '^READY' "$LOGS/nodemailer_tls.log" 2>/dev/null; then
            b="$(timeout 5 "$SYSPY" - "$p" "$STATE/ca.pem" <<'EOF' 2>/dev/null || true
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        line = s.makefile("rb").readline().decode()
        s.sendall(b"QUIT\r\n")
        print(line.rstrip("\r\n"))
EOF
)"
            case "$b" in 220*) ok=1; log "nodemailer_tls pid $pid on 127.0.0.1:$p (implicit TLS): ${b%$'\r'}"; break ;; esac
        fi
        alive "$pid" || break
        sleep 0.1
    done
    [ "$ok" -eq 1 ] || { log "nodemailer_tls did not come up"; exit 1; }
    envcomment "nodemailer smtp-server $NODE_VER with implicit TLS (SMTPS): same features as SMTP_NODEMAILER"
    envline SMTP_NODEMAILER_TLS "127.0.0.1:$p"
    envline SMTP_NODEMAILER_TLS_SPOOL "$sp"
fi
if want nodemailer_lmtp; then
    next_port; p=$PORT
    sp="$STATE/spool/nodemailer_lmtp"; mkdir -p "$sp"
    start_bg nodemailer_lmtp "$p" node "$HERE/nodemailer_server.js" --lmtp --port "$p" --cert "$CERT" --key "$KEY" \
        --spool "$sp" --user "$SMTP_USER" --password "$SMTP_PASSWORD" --size "$SMTP_SIZE_LIMIT"
    envcomment "nodemailer smtp-server $NODE_VER in LMTP mode (LHLO): rcpt reject* -> 550 at RCPT, datafail* -> 550 in its per-recipient DATA reply"
    envline SMTP_NODEMAILER_LMTP "127.0.0.1:$p"
    envline SMTP_NODEMAILER_LMTP_SPOOL "$sp"
fi

if want nodemailer_idle; then
    next_port; p=$PORT
    sp="$STATE/spool/nodemailer_idle"; mkdir -p "$sp"
    start_bg nodemailer_idle "$p" node "$HERE/nodemailer_server.js" --socket-timeout 1000 --port "$p" --cert "$CERT" --key "$KEY" \
        --spool "$sp" --user "$SMTP_USER" --password "$SMTP_PASSWORD" --size "$SMTP_SIZE_LIMIT"
    envcomment "nodemailer smtp-server $NODE_VER like SMTP_NODEMAILER, but a connection idle for 1 s gets '421 Timeout - closing connection' and is closed (for pool reconnection tests)"
    envline SMTP_NODEMAILER_IDLE "127.0.0.1:$p"
    envline SMTP_NODEMAILER_IDLE_SPOOL "$sp"
fi

# ------------------------------------------------------------- smtp-sink --
# smtp-sink drops privileges to "nobody" (-u nobody is mandatory as root), so
# its dump directory must be writable by nobody.
if want sink; then
    next_port; p=$PORT
    sp="$STATE/spool/sink"; mkdir -p "$sp"; chown nobody "$sp"
    start_bg sink "$p" smtp-sink -u nobody -h sink.localhost -d "$sp/%Y%m%d%H%M%S." "127.0.0.1:$p" 1000
    envcomment "Postfix smtp-sink: no TLS; AUTH PLAIN LOGIN advertised but every AUTH gets '250 2.0.0 Ok'; no CHUNKING; dumps to SPOOL (see README)"
    envline SMTP_SINK "127.0.0.1:$p"
    envline SMTP_SINK_SPOOL "$sp"
fi
if want sink_lmtp; then
    next_port; p=$PORT
    sp="$STATE/spool/sink_lmtp"; mkdir -p "$sp"; chown nobody "$sp"
    start_bg sink_lmtp "$p" smtp-sink -u nobody -L -h sink-lmtp.localhost -d "$sp/%Y%m%d%H%M%S." "127.0.0.1:$p" 1000
    envcomment "smtp-sink -L (LMTP: LHLO, one '250 2.2.0 Ok' per recipient after DATA; EHLO/HELO -> 500)"
    envline SMTP_SINK_LMTP "127.0.0.1:$p"
    envline SMTP_SINK_LMTP_SPOOL "$sp"
fi
if want sink_faults; then
    # name|options|description.  smtp-sink faults are per command: EVERY
    # instance of the named command fails.  -f/-r imply -p (no PIPELINING in
    # EHLO).  -B/-b replace smtp-sink's default "500 5.3.0 Error: command
    # failed" / "450 4.3.0 Error: command failed" texts by realistic replies.
    FAULTS=(
        "SMTP_SINK_FAULTS|-f RCPT -B '550 5.1.1 Recipient address rejected (smtp-sink -f RCPT)'|every RCPT -> 550 5.1.1 (so no transaction can succeed)"
        "SMTP_SINK_RCPT_4XX|-r RCPT -b '450 4.2.1 Mailbox temporarily unavailable (smtp-sink -r RCPT)'|every RCPT -> 450 4.2.1"
        "SMTP_SINK_MAIL_5XX|-f MAIL -B '550 5.7.1 Sender rejected (smtp-sink -f MAIL)'|every MAIL -> 550 5.7.1"
        "SMTP_SINK_DATA_5XX|-f DATA -B '554 5.5.1 DATA rejected (smtp-sink -f DATA)'|DATA command -> 554 5.5.1 (no 354)"
        "SMTP_SINK_DOT_5XX|-f . -B '554 5.6.0 Message rejected (smtp-sink -f .)'|354, then the final '.' -> 554 5.6.0"
        "SMTP_SINK_DOT_4XX|-r . -b '451 4.3.0 Message deferred (smtp-sink -r .)'|354, then the final '.' -> 451 4.3.0"
        "SMTP_SINK_MAIL_421|-Q MAIL|MAIL -> '421 4.0.0 Server closing connection' and the server closes the connection"
        "SMTP_SINK_DOT_DROP|-q .|354, then the connection is closed without any reply after the final '.'"
        "SMTP_SINK_EHLO_5XX|-f EHLO -B '500 5.5.1 Error: command not recognized (smtp-sink -f EHLO)'|EHLO -> 500 5.5.1 (HELO works)"
        "SMTP_SINK_SLOW|-w 30|30 s delay before the 354 reply to DATA (for client timeouts)"
        "SMTP_SINK_IDLE|-t 1|a connection idle for 1 s is closed without a reply (for pool reconnection tests)"
    )
    for entry in "${FAULTS[@]}"; do
        IFS='|' read -r var opts desc <<<"$entry"
        opt_args=(); eval "opt_args=($opts)"
        next_port; p=$PORT
        name="sink_fault_$(printf '%s' "${var#SMTP_SINK_}" | tr 'A-Z' 'a-z')"
        start_bg "$name" "$p" smtp-sink -u nobody -h "$(printf '%s' "$name" | tr '_' '-').localhost" "${opt_args[@]}" "127.0.0.1:$p" 1000
        envcomment "smtp-sink $opts: $desc"
        envline "$var" "127.0.0.1:$p"
        envline "${var}_OPTS" "'$(printf '%s' "$opts" | tr "'" '"')'"
    done
fi

# --------------------------------------------------------------- postfix --
if want postfix; then
    next_port; p=$PORT
    "$HERE/postfix_instance.sh" setup "$STATE" "$p" "$CERT" "$KEY" "$SMTP_USER" "$SMTP_PASSWORD" "$SMTP_SIZE_LIMIT" \
        >"$LOGS/postfix-setup.log" 2>&1 || { cat "$LOGS/postfix-setup.log" >&2; exit 1; }
    "$HERE/postfix_instance.sh" start "$STATE" >"$LOGS/postfix-start.log" 2>&1 || { cat "$LOGS/postfix-start.log" >&2; exit 1; }
    echo "$p" > "$STATE/postfix.port"
    if ! banner="$(wait_banner "$p" 30)"; then
        log "postfix did not greet on 127.0.0.1:$p (see $STATE/postfix/maillog)"; exit 1
    fi
    mpid="$(tr -d ' \n' < "$STATE/postfix/queue/pid/master.pid")"
    # stop-servers.sh stops it with "postfix -c $STATE/postfix/conf stop"
    # (SIGTERM to this master PID only as a last resort).
    echo "$mpid" > "$STATE/postfix.pid"
    log "postfix master pid $mpid on 127.0.0.1:$p: $banner"
    envcomment "Postfix $(postconf -c "$STATE/postfix/conf" -h mail_version) smtpd: STARTTLS, AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 after TLS (Cyrus sasldb), CHUNKING, SMTPUTF8, DSN; rcpt reject* -> 550 5.1.1; delivered via pipe to SPOOL (asynchronously)"
    envline SMTP_POSTFIX "127.0.0.1:$p"
    envline SMTP_POSTFIX_SPOOL "$STATE/postfix/spool"
    envline SMTP_POSTFIX_CONF "$STATE/postfix/conf"
fi

# ------------------------------------------------------------------ exim --
if want exim; then
    next_port; p=$PORT
    "$HERE/exim_instance.sh" setup "$STATE" "$p" "$CERT" "$KEY" "$SMTP_USER" "$SMTP_PASSWORD" "$SMTP_SIZE_LIMIT" \
        >"$LOGS/exim-setup.log" 2>&1 || { cat "$LOGS/exim-setup.log" >&2; exit 1; }
    E="$STATE/exim"
    start_bg exim "$p" "$HERE/privns.sh" "$E/etc/passwd=/etc/passwd" "$E/etc/group=/etc/group" -- \
        "$HERE/pkgs/exim4/usr/sbin/exim4" -C "$E/exim.conf" -bdf -q10s -oX "$p"
    envcomment "Exim $(cat "$HERE/pkgs/exim4/.version" 2>/dev/null) (exim4-daemon-light, private -C config): STARTTLS, AUTH PLAIN LOGIN CRAM-MD5 after TLS, CHUNKING, PIPELINING, SMTPUTF8, DSN, SIZE; rcpt reject* -> 550 5.1.1; delivered via pipe to SPOOL (asynchronously)"
    envline SMTP_EXIM "127.0.0.1:$p"
    envline SMTP_EXIM_SPOOL "$E/out"
fi

# ------------------------------------------------------------- opensmtpd --
if want opensmtpd; then
    next_port; p=$PORT
    "$HERE/opensmtpd_instance.sh" setup "$STATE" "$p" "$CERT" "$KEY" "$SMTP_USER" "$SMTP_PASSWORD" "$SMTP_SIZE_LIMIT" \
        >"$LOGS/opensmtpd-setup.log" 2>&1 || { cat "$LOGS/opensmtpd-setup.log" >&2; exit 1; }
    mapfile -t osd_mounts < <("$HERE/opensmtpd_instance.sh" mounts "$STATE")
    start_bg opensmtpd "$p" "$HERE/privns.sh" "${osd_mounts[@]}" -- \
        "$HERE/pkgs/opensmtpd/usr/sbin/smtpd" -d -f "$STATE/opensmtpd/smtpd.conf"
    envcomment "OpenSMTPD $(cat "$HERE/pkgs/opensmtpd/.version" 2>/dev/null) (Debian opensmtpd from backports, extracted; private smtpd.conf): STARTTLS, AUTH PLAIN LOGIN after TLS (required), SIZE, DSN; no PIPELINING, no CHUNKING, no SMTPUTF8; rcpt reject* -> 550 Invalid recipient; one delivery per recipient via mda to SPOOL (asynchronously)"
    envline SMTP_OPENSMTPD "127.0.0.1:$p"
    envline SMTP_OPENSMTPD_SPOOL "$STATE/opensmtpd/out"
fi

# ---------------------------------------------------------------- haraka --
if want haraka; then
    next_port; p=$PORT
    "$HERE/haraka_instance.sh" setup "$STATE" "$p" "$CERT" "$KEY" "$SMTP_USER" "$SMTP_PASSWORD" "$SMTP_SIZE_LIMIT" \
        >"$LOGS/haraka-setup.log" 2>&1 || { cat "$LOGS/haraka-setup.log" >&2; exit 1; }
    start_bg haraka "$p" node "$HERE/node_modules/Haraka/bin/haraka" -c "$STATE/haraka"
    envcomment "Haraka $(cd "$HERE" && node -p 'require("Haraka/package.json").version' 2>/dev/null) (npm, private config dir): STARTTLS, AUTH PLAIN LOGIN CRAM-MD5 (auth_flat_file; offered before TLS on loopback), PIPELINING, SMTPUTF8, SIZE; rcpt reject* -> 550 5.1.1; queue plugin writes SPOOL"
    envline SMTP_HARAKA "127.0.0.1:$p"
    envline SMTP_HARAKA_SPOOL "$STATE/haraka/spool"
fi

# --------------------------------------------------------------- dovecot --
if want dovecot; then
    # The submission service relays to its own nodemailer smtp-server.
    next_port; rp=$PORT
    sp="$STATE/spool/dovecot_relay"; mkdir -p "$sp"
    start_bg dovecot_relay "$rp" node "$HERE/nodemailer_server.js" --port "$rp" --cert "$CERT" --key "$KEY" \
        --spool "$sp" --user "$SMTP_USER" --password "$SMTP_PASSWORD" --size "$SMTP_SIZE_LIMIT" --name relay.localhost
    next_port; lp=$PORT
    next_port; subp=$PORT
    "$HERE/dovecot_instance.sh" setup "$STATE" "$lp" "$subp" "$rp" "$CERT" "$KEY" "$SMTP_USER" "$SMTP_PASSWORD" "$SMTP_SIZE_LIMIT" \
        >"$LOGS/dovecot-setup.log" 2>&1 || { cat "$LOGS/dovecot-setup.log" >&2; exit 1; }
    start_bg dovecot "$subp" dovecot -c "$STATE/dovecot/dovecot.conf" -F
    banner="$(wait_banner "$lp" 30)" || { log "dovecot LMTP did not greet on 127.0.0.1:$lp"; exit 1; }
    log "dovecot LMTP on 127.0.0.1:$lp: $banner"
    DV="$(dovecot --version | cut -d' ' -f1)"
    envcomment "Dovecot $DV submission: STARTTLS, AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 (TLS required), CHUNKING, SIZE; relays to a nodemailer smtp-server (its SPOOL; Dovecot adds a Received header)"
    envline SMTP_DOVECOT_SUBMISSION "127.0.0.1:$subp"
    envline SMTP_DOVECOT_SUBMISSION_SPOOL "$sp"
    envcomment "Dovecot $DV LMTP: rcpt reject* -> 550 5.1.1 at RCPT, overquota* -> 552 5.2.2 in its reply after DATA; one maildir per recipient below SPOOL"
    envline SMTP_DOVECOT_LMTP "127.0.0.1:$lp"
    envline SMTP_DOVECOT_LMTP_SPOOL "$STATE/dovecot/mail"
fi

t1=$(date +%s%N)
{
    echo "# Generated by tests/interop/start-servers.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# Use:  set -a; . $STATE/env; set +a"
    printf '%s\n' "${ENV_LINES[@]}"
} > "$STATE/env.tmp"
mv "$STATE/env.tmp" "$STATE/env"
failed=0
ms=$(( (t1 - t0) / 1000000 ))
log "all servers up in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s; env: $STATE/env"
