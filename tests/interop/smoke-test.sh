#!/usr/bin/env bash
# Smoke test of the interop servers started by start-servers.sh, using swaks
# and smtp_probe.py (stdlib Python).  Checks STARTTLS, certificate
# verification, AUTH (right and wrong password), byte-exact spooling, per-
# recipient rejection, LMTP, CHUNKING, SIZE and every smtp-sink fault mode.
#
#   tests/interop/smoke-test.sh STATE_DIR
#
# Prints one line per check and finally "N passed, N failed"; exits 1 on any
# failure.  Run it after start-servers.sh (it only talks to 127.0.0.1).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
STATE="$(cd "$1" && pwd)"
[ -f "$STATE/env" ] || { echo "no $STATE/env: run start-servers.sh first" >&2; exit 2; }
set -a
# shellcheck disable=SC1091
. "$STATE/env"
set +a

PYBIN="$(command -v python3 || echo /usr/bin/python3)"
PROBE=("$PYBIN" "$HERE/smtp_probe.py")
WORK="$(mktemp -d "${TMPDIR:-/tmp}/interop-smoke.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

pass=0
fail=0
ok()  { pass=$((pass + 1)); printf 'ok    %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf 'FAIL  %s\n' "$1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -n 25; return 0; }

# expect NAME REGEX CMD...: run CMD, pass when its output matches REGEX (grep -E)
expect() {
    local name="$1" re="$2"; shift 2
    local out
    out="$("$@" 2>&1 || true)"
    if printf '%s\n' "$out" | grep -Eq -- "$re"; then ok "$name"; else bad "$name (wanted /$re/)" "$out"; fi
}
# expect_not NAME REGEX CMD...: pass when the output does NOT match REGEX
expect_not() {
    local name="$1" re="$2"; shift 2
    local out
    out="$("$@" 2>&1 || true)"
    if printf '%s\n' "$out" | grep -Eq -- "$re"; then bad "$name (unwanted /$re/)" "$out"; else ok "$name"; fi
}

host() { printf '%s' "${1%:*}"; }
port() { printf '%s' "${1##*:}"; }
sw() { local t="$1"; shift; swaks --server "$(host "$t")" --port "$(port "$t")" --helo client.example --timeout 20 "$@"; }
swtls() { local t="$1"; shift; sw "$t" -tls --tls-verify --tls-ca-path "$SMTP_CA" "$@"; }

# wait_file PATH [SECONDS]
wait_file() {
    local f="$1" n=$(( ${2:-15} * 10 ))
    while [ "$n" -gt 0 ]; do [ -f "$f" ] && return 0; sleep 0.1; n=$((n - 1)); done
    return 1
}
next_id() { # next_id SPOOL: the <n> the next stored message will get
    local d="$1" max=0 f b
    for f in "$d"/*.json; do
        [ -f "$f" ] || continue
        b="$(basename "$f" .json)"; [ "$b" -gt "$max" ] && max="$b"
    done
    echo $((max + 1))
}

# A message with CRLF line ends, a leading-dot line, 8-bit UTF-8, a tab and a
# 1500-octet line (aiosmtpd refuses lines > 1001 octets: it gets a short one).
mkmsg() {
    local longlen="$1" out="$2"
    "$PYBIN" - "$longlen" "$out" <<'EOF'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
msg = (b"From: Sender <sender@example.org>\r\n"
       b"To: rcpt@example.com\r\n"
       b"Subject: interop exact bytes \xc3\xa9\r\n"
       b"Message-ID: <smoke@example.org>\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: 8bit\r\n"
       b"\r\n"
       b"line 1\r\n"
       b".leading dot\r\n"
       b"..two leading dots\r\n"
       b"\ttab line, UTF-8: \xe2\x82\xac \xf0\x9f\x93\xa7\r\n"
       + b"L" * n + b"\r\n"
       b"\r\n"
       b"last line\r\n")
open(out, "wb").write(msg)
EOF
}
mkmsg 1500 "$WORK/msg.eml"
mkmsg 900 "$WORK/msg-short.eml"

# send_exact TARGET MSGFILE AUTH(yes/no) TLS(starttls/implicit): sends the file
# byte for byte (smtplib dot-stuffs, adds nothing since it ends with CRLF)
send_exact() {
    "$PYBIN" - "$@" "$SMTP_CA" "$SMTP_USER" "$SMTP_PASSWORD" <<'EOF'
import smtplib, ssl, sys
target, path, auth, tls, ca, user, pw = sys.argv[1:8]
host, port = target.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
if tls == "implicit":
    s = smtplib.SMTP_SSL(host, int(port), local_hostname="client.example", context=ctx, timeout=20)
else:
    s = smtplib.SMTP(host, int(port), local_hostname="client.example", timeout=20)
    s.starttls(context=ctx)
s.ehlo()
if auth == "yes":
    s.login(user, pw)
refused = s.sendmail("sender@example.org", ["rcpt@example.com", "reject-me@example.com", "second@example.net"],
                     open(path, "rb").read())
print("refused:", sorted(refused))
s.quit()
EOF
}

# check_spool NAME SPOOL ID MSGFILE: <ID>.eml must equal MSGFILE byte for byte
check_spool() {
    local name="$1" sp="$2" id="$3" msg="$4"
    if ! wait_file "$sp/$id.eml" 20; then bad "$name: $sp/$id.eml did not appear"; return; fi
    if cmp -s "$sp/$id.eml" "$msg"; then ok "$name: $id.eml byte-identical to what was sent"
    else bad "$name: $id.eml differs from what was sent" "$(cmp "$sp/$id.eml" "$msg" 2>&1)"; fi
    if [ -f "$sp/$id.json" ] && grep -q 'second@example.net' "$sp/$id.json" && ! grep -q 'reject-me' "$sp/$id.json"; then
        ok "$name: $id.json lists the accepted recipients only"
    else
        bad "$name: $id.json envelope" "$(cat "$sp/$id.json" 2>&1)"
    fi
}

echo "# TLS certificate"
expect "leaf is not a CA, has SANs and serverAuth" 'CA:FALSE' openssl x509 -in "$SMTP_CERT" -noout -ext basicConstraints
expect "leaf SAN = localhost, 127.0.0.1, ::1" 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1' openssl x509 -in "$SMTP_CERT" -noout -ext subjectAltName
expect "leaf EKU serverAuth" 'TLS Web Server Authentication' openssl x509 -in "$SMTP_CERT" -noout -ext extendedKeyUsage

for srv in AIOSMTPD NODEMAILER POSTFIX; do
    v="SMTP_$srv"; [ -n "${!v:-}" ] || continue
    t="${!v}"
    echo "# $srv ($t)"
    expect "$srv: STARTTLS advertised before TLS" '^<-  250[- ]STARTTLS' sw "$t" --quit-after EHLO
    expect "$srv: STARTTLS cert verifies for localhost against SMTP_CA" 'Verify return code: 0 \(ok\)' \
        sh -c "openssl s_client -starttls smtp -connect '$t' -CAfile '$SMTP_CA' -verify_hostname localhost -verify_return_error </dev/null 2>&1"
    expect "$srv: STARTTLS cert verifies for IP 127.0.0.1" 'Verify return code: 0 \(ok\)' \
        sh -c "openssl s_client -starttls smtp -connect '$t' -CAfile '$SMTP_CA' -verify_ip 127.0.0.1 -verify_return_error </dev/null 2>&1"
    expect "$srv: AUTH advertised after STARTTLS" '^<~  250[- ]AUTH .*PLAIN' swtls "$t" --quit-after HELO
    mechs="PLAIN LOGIN"; [ "$srv" != AIOSMTPD ] && mechs="PLAIN LOGIN CRAM-MD5"
    for m in $mechs; do
        expect "$srv: AUTH $m right password -> 235" '^<~  235 ' swtls "$t" -a "$m" -au "$SMTP_USER" -ap "$SMTP_PASSWORD" --quit-after AUTH
        expect "$srv: AUTH $m wrong password -> 535" '^<~\* 535 ' swtls "$t" -a "$m" -au "$SMTP_USER" -ap wrong-password --quit-after AUTH
    done
    expect "$srv: RCPT reject* -> 550 5.1.1" '^<~\* 550 5.1.1 ' swtls "$t" -a PLAIN -au "$SMTP_USER" -ap "$SMTP_PASSWORD" -f sender@example.org -t reject-me@example.com --quit-after RCPT
    sp="$(eval echo "\${SMTP_${srv}_SPOOL}")"
    id="$(next_id "$sp")"
    msg="$WORK/msg.eml"; [ "$srv" = AIOSMTPD ] && msg="$WORK/msg-short.eml"
    expect "$srv: message over STARTTLS+AUTH accepted, reject-me refused" "refused: \['reject-me@example.com'\]" send_exact "$t" "$msg" yes starttls
    check_spool "$srv" "$sp" "$id" "$msg"
    expect "$srv: MAIL SIZE over the limit -> 552" '552' \
        "${PROBE[@]}" "$t" --ca "$SMTP_CA" 'EHLO c' STARTTLS 'EHLO c' "AUTHPLAIN:$SMTP_USER:$SMTP_PASSWORD" "MAIL FROM:<a@example.org> SIZE=$((SMTP_SIZE_LIMIT + 1))"
done

if [ -n "${SMTP_AIOSMTPD:-}" ]; then
    t="$SMTP_AIOSMTPD"
    expect "AIOSMTPD: MAIL before STARTTLS -> 530" '^S: 530 ' "${PROBE[@]}" "$t" 'EHLO c' 'MAIL FROM:<a@example.org>'
    expect "AIOSMTPD: AUTH not offered before STARTTLS" '^<-  250 HELP' sw "$t" --quit-after EHLO
    expect_not "AIOSMTPD: no AUTH in EHLO before STARTTLS" '^<-  250[- ]AUTH' sw "$t" --quit-after EHLO
    expect "AIOSMTPD: MAIL after STARTTLS without AUTH -> 530" '^S: 530 5.7.0 Authentication required' "${PROBE[@]}" "$t" --ca "$SMTP_CA" 'EHLO c' STARTTLS 'EHLO c' 'MAIL FROM:<a@example.org>'
    expect "AIOSMTPD: line > 1001 octets -> 500 Line too long" '500.*Line too long' send_exact "$t" "$WORK/msg.eml" yes starttls
fi

if [ -n "${SMTP_NODEMAILER:-}" ]; then
    t="$SMTP_NODEMAILER"
    expect "NODEMAILER: AUTH before STARTTLS -> 538" '^<\*\* 538 ' sw "$t" -a PLAIN -au "$SMTP_USER" -ap "$SMTP_PASSWORD" --quit-after AUTH
    expect "NODEMAILER: XOAUTH2 right token -> 235" '^S: 235 ' "${PROBE[@]}" "$t" --ca "$SMTP_CA" 'EHLO c' STARTTLS 'EHLO c' "XOAUTH2:$SMTP_USER:$SMTP_PASSWORD"
    expect "NODEMAILER: XOAUTH2 wrong token -> 334 {json}, then 535" '^S: 535 ' "${PROBE[@]}" "$t" --ca "$SMTP_CA" 'EHLO c' STARTTLS 'EHLO c' "XOAUTH2:$SMTP_USER:wrong"
    expect "NODEMAILER: REQUIRETLS advertised after STARTTLS" '^<~  250[- ]REQUIRETLS' swtls "$t" --quit-after HELO
    expect "NODEMAILER: DSN parameters accepted" '^S: 250 2.1.5 ' "${PROBE[@]}" "$t" --ca "$SMTP_CA" 'EHLO c' STARTTLS 'EHLO c' \
        'MAIL FROM:<a@example.org> RET=HDRS ENVID=abc123' 'RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.com'
fi
if [ -n "${SMTP_NODEMAILER_TLS:-}" ]; then
    t="$SMTP_NODEMAILER_TLS"; sp="$SMTP_NODEMAILER_TLS_SPOOL"; id="$(next_id "$sp")"
    expect "NODEMAILER_TLS: implicit TLS AUTH PLAIN -> 235" '^<~  235 ' sw "$t" --tls-on-connect --tls-verify --tls-ca-path "$SMTP_CA" -a PLAIN -au "$SMTP_USER" -ap "$SMTP_PASSWORD" --quit-after AUTH
    expect "NODEMAILER_TLS: message over implicit TLS" "refused: \['reject-me@example.com'\]" send_exact "$t" "$WORK/msg.eml" yes implicit
    check_spool "NODEMAILER_TLS" "$sp" "$id" "$WORK/msg.eml"
fi

if [ -n "${SMTP_POSTFIX:-}" ]; then
    t="$SMTP_POSTFIX"
    expect "POSTFIX: AUTH before STARTTLS -> 503 (not offered)" '^S: 503 5.5.1 Error: authentication not enabled' "${PROBE[@]}" "$t" 'EHLO c' 'AUTH PLAIN AGEAYg=='
    expect "POSTFIX: CHUNKING advertised" '^<~  250[- ]CHUNKING' swtls "$t" --quit-after HELO
    sp="$SMTP_POSTFIX_SPOOL"; id="$(next_id "$sp")"
    expect "POSTFIX: BDAT transfer accepted" '^S: 250 2.0.0 Ok: 22 bytes queued as' "${PROBE[@]}" "$t" --ca "$SMTP_CA" 'EHLO c' STARTTLS 'EHLO c' \
        "AUTHPLAIN:$SMTP_USER:$SMTP_PASSWORD" 'MAIL FROM:<a@example.org> BODY=8BITMIME' 'RCPT TO:<b@example.com>' \
        'RAW:1:BDAT 12\r\nSubject: x\r\n' 'RAW:1:BDAT 10 LAST\r\n\r\nbdat\r\n\r\n'
    printf 'Subject: x\r\n\r\nbdat\r\n\r\n' > "$WORK/bdat.eml"
    if wait_file "$sp/$id.eml" 20 && cmp -s "$sp/$id.eml" "$WORK/bdat.eml"; then
        ok "POSTFIX: BDAT message spooled"
    else bad "POSTFIX: BDAT message spooled" "$(od -c "$sp/$id.eml" 2>&1 | head)"; fi
    id="$(next_id "$sp")"
    expect "POSTFIX: SMTPUTF8 address accepted" '^S: 250 2.0.0 Ok: queued as' "${PROBE[@]}" "$t" --ca "$SMTP_CA" 'EHLO c' STARTTLS 'EHLO c' \
        "AUTHPLAIN:$SMTP_USER:$SMTP_PASSWORD" 'MAIL FROM:<s\xc3\xa9nder@example.org> SMTPUTF8' 'RCPT TO:<r\xc3\xabcpt@ex\xc3\xa4mple.com>' DATA 'RAW:1:Subject: u\r\n\r\nutf8\r\n.\r\n'
    if wait_file "$sp/$id.json" 20 && grep -q '"smtp_utf8" : true' "$sp/$id.json"; then ok "POSTFIX: SMTPUTF8 recorded (UTF8SMTPSA)"
    else bad "POSTFIX: SMTPUTF8 recorded" "$(cat "$sp/$id.json" 2>&1)"; fi
fi

echo "# LMTP"
if [ -n "${SMTP_SINK_LMTP:-}" ]; then
    expect "SINK_LMTP: swaks --protocol LMTP, 2 recipients -> 2 replies after DATA" '^<-  250 2.2.0 Ok' \
        sw "$SMTP_SINK_LMTP" --protocol LMTP -f a@example.org -t b@example.com,c@example.com
    out="$("${PROBE[@]}" "$SMTP_SINK_LMTP" 'LHLO c' 'MAIL FROM:<a@example.org>' 'RCPT TO:<b@example.com>' 'RCPT TO:<c@example.com>' DATA 'RAW:2:Subject: l\r\n\r\nlmtp\r\n.\r\n' QUIT 2>&1 || true)"
    if [ "$(printf '%s\n' "$out" | grep -c '^S: 250 2.2.0 Ok')" -eq 2 ]; then ok "SINK_LMTP: one 250 per recipient"; else bad "SINK_LMTP: one 250 per recipient" "$out"; fi
    expect "SINK_LMTP: EHLO refused in LMTP mode" '^S: 500 ' "${PROBE[@]}" "$SMTP_SINK_LMTP" 'EHLO c'
fi
if [ -n "${SMTP_NODEMAILER_LMTP:-}" ]; then
    expect "NODEMAILER_LMTP: swaks --protocol LMTP STARTTLS+AUTH" '^<~  250 2.6.0 OK: stored as' \
        swtls "$SMTP_NODEMAILER_LMTP" --protocol LMTP -a PLAIN -au "$SMTP_USER" -ap "$SMTP_PASSWORD" -f a@example.org -t b@example.com,c@example.com
    out="$("${PROBE[@]}" "$SMTP_NODEMAILER_LMTP" --ca "$SMTP_CA" 'LHLO c' 'MAIL FROM:<a@example.org>' 'RCPT TO:<b@example.com>' 'RCPT TO:<datafail@example.com>' 'RCPT TO:<reject@example.com>' DATA 'RAW:2:Subject: l\r\n\r\nlmtp\r\n.\r\n' QUIT 2>&1 || true)"
    if printf '%s\n' "$out" | grep -q '^S: 550 5.1.1 <reject@' && printf '%s\n' "$out" | grep -q '^S: 250 2.6.0 OK: stored as .* for <b@example.com>' \
        && printf '%s\n' "$out" | grep -q '^S: 550 5.1.1 <datafail@example.com>: delivery failed'; then
        ok "NODEMAILER_LMTP: per-recipient DATA replies (250 + 550)"
    else bad "NODEMAILER_LMTP: per-recipient DATA replies" "$out"; fi
fi

# OpenSMTPD and Haraka: STARTTLS, AUTH and the reject* rule (the Rust
# interop tests check their spools byte for byte).
for srv in OPENSMTPD HARAKA; do
    v="SMTP_$srv"; [ -n "${!v:-}" ] || continue
    t="${!v}"
    echo "# $srv ($t)"
    expect "$srv: STARTTLS advertised before TLS" '^<-  250[- ]STARTTLS' sw "$t" --quit-after EHLO
    expect "$srv: STARTTLS cert verifies for localhost against SMTP_CA" 'Verify return code: 0 \(ok\)' \
        sh -c "openssl s_client -starttls smtp -connect '$t' -CAfile '$SMTP_CA' -verify_hostname localhost -verify_return_error </dev/null 2>&1"
    mechs="PLAIN LOGIN"; [ "$srv" = HARAKA ] && mechs="PLAIN LOGIN CRAM-MD5"
    for m in $mechs; do
        expect "$srv: AUTH $m right password -> 235" '^<~  235 ' swtls "$t" -a "$m" -au "$SMTP_USER" -ap "$SMTP_PASSWORD" --quit-after AUTH
        expect "$srv: AUTH $m wrong password -> 535" '^<~\* 535 ' swtls "$t" -a "$m" -au "$SMTP_USER" -ap wrong-password --quit-after AUTH
    done
    rej='^<~\* 550 5.1.1 '; [ "$srv" = OPENSMTPD ] && rej='^<~\* 550 Invalid recipient: <reject-me@example.com>'
    expect "$srv: RCPT reject* -> 550" "$rej" swtls "$t" -a PLAIN -au "$SMTP_USER" -ap "$SMTP_PASSWORD" -f sender@example.org -t reject-me@example.com --quit-after RCPT
done
if [ -n "${SMTP_OPENSMTPD:-}" ]; then
    expect_not "OPENSMTPD: no AUTH in EHLO before STARTTLS" '^<-  250[- ]AUTH' sw "$SMTP_OPENSMTPD" --quit-after EHLO
    expect "OPENSMTPD: MAIL after STARTTLS without AUTH -> 530" '^S: 530 ' "${PROBE[@]}" "$SMTP_OPENSMTPD" --ca "$SMTP_CA" 'EHLO c' STARTTLS 'EHLO c' 'MAIL FROM:<a@example.org>'
fi
if [ -n "${SMTP_HARAKA:-}" ]; then
    expect "HARAKA: AUTH offered before STARTTLS on loopback" '^<-  250[- ]AUTH PLAIN LOGIN CRAM-MD5' sw "$SMTP_HARAKA" --quit-after EHLO
fi

echo "# smtp-sink"
if [ -n "${SMTP_SINK:-}" ]; then
    before="$(find "$SMTP_SINK_SPOOL" -type f | wc -l)"
    expect "SINK: plain SMTP message accepted" '^<-  250 2.0.0 Ok' sw "$SMTP_SINK" -f a@example.org -t b@example.com --body 'sink body'
    after="$(find "$SMTP_SINK_SPOOL" -type f | wc -l)"
    if [ "$after" -gt "$before" ] && grep -rqs 'X-Rcpt-Args: <b@example.com>' "$SMTP_SINK_SPOOL"; then ok "SINK: -d dump file written"; else bad "SINK: -d dump file written" "$(ls -la "$SMTP_SINK_SPOOL")"; fi
    expect "SINK: AUTH answered with 250 (not 235)" '^S: 250 2.0.0 Ok' "${PROBE[@]}" "$SMTP_SINK" 'EHLO c' 'AUTH PLAIN AGEAYg=='
    expect "SINK: no STARTTLS" '^S: 500 5.5.1 Error: unknown command' "${PROBE[@]}" "$SMTP_SINK" 'EHLO c' 'STARTTLS'
fi
if [ -n "${SMTP_SINK_FAULTS:-}" ]; then
    P=("${PROBE[@]}")
    expect "SINK_FAULTS (-f RCPT): RCPT -> 550 5.1.1" '^S: 550 5.1.1 ' "${P[@]}" "$SMTP_SINK_FAULTS" 'EHLO c' 'MAIL FROM:<a@example.org>' 'RCPT TO:<b@example.com>'
    expect "SINK_RCPT_4XX (-r RCPT): RCPT -> 450" '^S: 450 4.2.1 ' "${P[@]}" "$SMTP_SINK_RCPT_4XX" 'EHLO c' 'MAIL FROM:<a@example.org>' 'RCPT TO:<b@example.com>'
    expect "SINK_MAIL_5XX (-f MAIL): MAIL -> 550" '^S: 550 5.7.1 ' "${P[@]}" "$SMTP_SINK_MAIL_5XX" 'EHLO c' 'MAIL FROM:<a@example.org>'
    expect "SINK_DATA_5XX (-f DATA): DATA -> 554" '^S: 554 5.5.1 ' "${P[@]}" "$SMTP_SINK_DATA_5XX" 'EHLO c' 'MAIL FROM:<a@example.org>' 'RCPT TO:<b@example.com>' DATA
    expect "SINK_DOT_5XX (-f .): end of data -> 554" '^S: 554 5.6.0 ' "${P[@]}" "$SMTP_SINK_DOT_5XX" 'EHLO c' 'MAIL FROM:<a@example.org>' 'RCPT TO:<b@example.com>' DATA 'RAW:1:Subject: x\r\n\r\nx\r\n.\r\n'
    expect "SINK_DOT_4XX (-r .): end of data -> 451" '^S: 451 4.3.0 ' "${P[@]}" "$SMTP_SINK_DOT_4XX" 'EHLO c' 'MAIL FROM:<a@example.org>' 'RCPT TO:<b@example.com>' DATA 'RAW:1:Subject: x\r\n\r\nx\r\n.\r\n'
    expect "SINK_MAIL_421 (-Q MAIL): 421 then close" '^S: 421 .*|=== EOFError' "${P[@]}" "$SMTP_SINK_MAIL_421" 'EHLO c' 'MAIL FROM:<a@example.org>' 'NOOP'
    expect "SINK_DOT_DROP (-q .): no reply, connection closed" '=== EOFError' "${P[@]}" "$SMTP_SINK_DOT_DROP" 'EHLO c' 'MAIL FROM:<a@example.org>' 'RCPT TO:<b@example.com>' DATA 'RAW:1:Subject: x\r\n\r\nx\r\n.\r\n'
    expect "SINK_EHLO_5XX (-f EHLO): EHLO -> 500, HELO ok" '^S: 250 sink-fault-ehlo-5xx' "${P[@]}" "$SMTP_SINK_EHLO_5XX" 'EHLO c' 'HELO c'
    expect_not "SINK_SLOW (-w 30): no 354 within 2 s" '^S: 354' \
        timeout 2 "${P[@]}" "$SMTP_SINK_SLOW" 'EHLO c' 'MAIL FROM:<a@example.org>' 'RCPT TO:<b@example.com>' 'DATA'
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
