#!/usr/bin/env python3
"""Writes the seed corpus: fuzz/seeds/<target>/<name>.

Real replies from real servers (Postfix, Gmail, Exchange Online as seen in
the field), the RFC 5321 Appendix D, RFC 2920 and RFC 4954 examples, and the
hazards the core defends against. Each seed starts with the header its
target expects (see fuzz/src/*.rs). Run from anywhere; it rewrites the
files, so a diff shows what changed.
"""
import base64
import os

ROOT = os.path.dirname(os.path.abspath(__file__))


def crlf(*lines):
    return "".join(l + "\r\n" for l in lines).encode()


POSTFIX_GREETING = "220 mx.example.com ESMTP Postfix (Debian/GNU)"
POSTFIX_EHLO = [
    "250-mx.example.com",
    "250-PIPELINING",
    "250-SIZE 10240000",
    "250-VRFY",
    "250-ETRN",
    "250-STARTTLS",
    "250-AUTH PLAIN LOGIN",
    "250-AUTH=PLAIN LOGIN",
    "250-ENHANCEDSTATUSCODES",
    "250-8BITMIME",
    "250-DSN",
    "250-SMTPUTF8",
    "250 CHUNKING",
]
GMAIL_GREETING = "220 smtp.gmail.com ESMTP d9443c01a7336-21f0a5e0c0asm1234567pjb.1 - gsmtp"
GMAIL_EHLO = [
    "250-smtp.gmail.com at your service, [203.0.113.5]",
    "250-SIZE 35882577",
    "250-8BITMIME",
    "250-STARTTLS",
    "250-ENHANCEDSTATUSCODES",
    "250-PIPELINING",
    "250-CHUNKING",
    "250 SMTPUTF8",
]
GMAIL_EHLO_TLS = [
    "250-smtp.gmail.com at your service, [203.0.113.5]",
    "250-SIZE 35882577",
    "250-8BITMIME",
    "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
    "250-ENHANCEDSTATUSCODES",
    "250-PIPELINING",
    "250-CHUNKING",
    "250 SMTPUTF8",
]
EXCHANGE_HOST = "BN8NAM12FT004.mail.protection.outlook.com"
EXCHANGE_GREETING = (
    f"220 {EXCHANGE_HOST} Microsoft ESMTP MAIL Service ready at "
    "Sat, 28 Nov 2026 18:00:00 +0000 08DD0A1B2C3D4E5F"
)
EXCHANGE_EHLO = [
    f"250-{EXCHANGE_HOST} Hello [203.0.113.5]",
    "250-SIZE 157286400",
    "250-PIPELINING",
    "250-DSN",
    "250-ENHANCEDSTATUSCODES",
    "250-STARTTLS",
    "250-8BITMIME",
    "250-BINARYMIME",
    "250-CHUNKING",
    "250 SMTPUTF8",
]
EXCHANGE_EHLO_TLS = [
    f"250-{EXCHANGE_HOST} Hello [203.0.113.5]",
    "250-SIZE 157286400",
    "250-PIPELINING",
    "250-DSN",
    "250-ENHANCEDSTATUSCODES",
    "250-AUTH LOGIN XOAUTH2",
    "250-8BITMIME",
    "250-BINARYMIME",
    "250-CHUNKING",
    "250 SMTPUTF8",
]
RFC5321_D1 = [
    "220 foo.com Simple Mail Transfer Service Ready",
    "250-foo.com greets bar.com",
    "250-8BITMIME",
    "250-SIZE",
    "250-DSN",
    "250 HELP",
    "250 OK",
    "250 OK",
    "550 No such user here",
    "250 OK",
    "354 Start mail input; end with <CRLF>.<CRLF>",
    "250 OK",
    "221 foo.com Service closing transmission channel",
]
RFC2920 = [
    "220 innosoft.com SMTP service ready",
    "250-innosoft.com",
    "250 PIPELINING",
    "250 Sender <walter@cnri.reston.va.us> OK",
    "250 Recipient <dfrank@cnri.reston.va.us> OK",
    "250 Recipient <jdoe@cnri.reston.va.us> OK",
    '354 Enter mail, end with line containing only "."',
    "250 Message accepted for delivery",
]
XOAUTH2_ERROR = base64.b64encode(
    b'{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}'
).decode()
CRAM_CHALLENGE = base64.b64encode(b"<1896.697170952@postoffice.reston.mci.net>").decode()

seeds = {t: {} for t in ["reply", "ehlo", "client_session", "dot_stuff", "commands", "auth",
                         "server_command", "server_session"]}

# ---- reply: [limits, chunk sizes x4] + server bytes -------------------------
def reply_seed(name, data, limits=0x00, sizes=(0, 0, 0, 0)):
    seeds["reply"][name] = bytes([limits, *sizes]) + data


reply_seed("rfc5321_d1", crlf(*RFC5321_D1))
reply_seed("rfc5321_d1_split", crlf(*RFC5321_D1), 0x80, (7, 1, 30, 3))
reply_seed("postfix_ehlo", crlf(POSTFIX_GREETING, *POSTFIX_EHLO), 0x80, (13, 0, 0, 0))
reply_seed("gmail_ehlo", crlf(GMAIL_GREETING, *GMAIL_EHLO, *GMAIL_EHLO_TLS), 0x80, (1, 1, 1, 1))
reply_seed("exchange_ehlo", crlf(EXCHANGE_GREETING, *EXCHANGE_EHLO), 0x00, (64, 2, 5, 0))
reply_seed("rfc2920", crlf(*RFC2920))
reply_seed(
    "rfc4954_auth",
    crlf(
        "334 ",
        "334 VXNlcm5hbWU6",
        "334 UGFzc3dvcmQ6",
        "235 2.7.0 Authentication successful",
        "535 5.7.8 Authentication credentials invalid",
        "454 4.7.0 Temporary authentication failure",
        "538 5.7.11 Encryption required for requested authentication mechanism",
        "534 5.7.9 Authentication mechanism is too weak",
        "432 4.7.12 A password transition is needed",
        "334 " + CRAM_CHALLENGE,
        "334 " + XOAUTH2_ERROR,
    ),
    0x80,
)
reply_seed(
    "postfix_errors",
    crlf(
        "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table",
        "421 4.7.0 mx.example.com Error: too many connections from 203.0.113.5",
        "451 4.3.0 Error: queue file write error",
        "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org",
        "452 4.5.3 Error: too many recipients",
        "503 5.5.1 Error: nested MAIL command",
        "500 5.5.2 Error: bad syntax",
    ),
    0x80,
    (3, 9, 27, 81),
)
reply_seed(
    "gmail_errors",
    crlf(
        "550-5.7.26 This mail has been blocked because the sender is unauthenticated.",
        "550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.",
        "550-5.7.26 ",
        "550 5.7.26  https://support.google.com/mail/answer/81126 - gsmtp",
        "421-4.7.0 Try again later, closing connection. (EHLO)",
        "421 4.7.0  https://support.google.com/mail/?p=ReverseDnsError - gsmtp",
    ),
    0x80,
)
reply_seed("bare_lf_and_codes", b"250-a\n250\r\n354\n220-x\r\n220-\r\n220 y\r\n")
reply_seed("utf8_and_latin1", "250 caf\u00e9 \u2603\r\n".encode() + b"250 caf\xe9\r\n")
# Issue 14 item 4: terminal escapes and Unicode controls in server text.
reply_seed("terminal_escapes", crlf("250-title \x1b]0;pwned\x07", "250-clear \x1b[2J \x7f",
                                    "250 nel \u0085 csi \u009b31m rlo \u202egpj.exe \u2028"))
reply_seed("small_limits", crlf(*POSTFIX_EHLO), 0x5f, (5, 0, 0, 0))
reply_seed("small_limits_long_line", b"250 " + b"x" * 200 + b"\r\n", 0x48, (1, 2, 3, 4))
reply_seed("errors", b"250-a\r\n251 b\r\n", 0x00)
reply_seed("nul", b"250 a\x00b\r\n")
reply_seed("bare_cr", b"250 a\rb\r\n")
reply_seed("bad_code", b"099 x\r\n600 x\r\n2x0 x\r\n")
reply_seed("many_lines", crlf(*(["250-x"] * 140 + ["250 y"])))

# ---- ehlo: the reply's lines (text after the code) --------------------------
def ehlo_seed(name, lines):
    seeds["ehlo"][name] = "\r\n".join(l[4:] for l in lines).encode()


ehlo_seed("postfix", POSTFIX_EHLO)
ehlo_seed("gmail", GMAIL_EHLO)
ehlo_seed("gmail_tls", GMAIL_EHLO_TLS)
ehlo_seed("exchange", EXCHANGE_EHLO)
ehlo_seed("exchange_tls", EXCHANGE_EHLO_TLS)
ehlo_seed("rfc5321_d1", RFC5321_D1[1:6])
ehlo_seed(
    "oddities",
    [
        "250-mx",
        "250-auth=LOGIN PLAIN",
        "250-AUTH PLAIN login CRAM-MD5",
        "250-size",
        "250--BAD",
        "250-",
        "250-X_Y 1",
        "250-SIZE 0",
        "250-DELIVERBY 240",
        "250-MT-PRIORITY MIXER",
        "250-REQUIRETLS",
        "250-AUTH\tPLAIN",
        "250 SIZE 99999999999999999999999",
    ],
)
# Issue 14 item 5: more AUTH names than the 64 read, split over lines, with
# duplicates and both forms.
seeds["ehlo"]["many_mechanisms"] = ("mx.example.com\r\n" + "\r\n".join(
    ("AUTH=" if i % 3 == 0 else "AUTH ") + " ".join(f"M{i:02}X{j}" for j in range(12)) + " PLAIN"
    for i in range(8)) + "\r\nPIPELINING").encode()
seeds["ehlo"]["lf_only"] = b"mx.example.com hi\nPIPELINING\nAUTH=\nAUTH= PLAIN\n8bitmime\nSMTPUTF8 "
seeds["ehlo"]["unicode"] = "m\u00fc.example gr\u00fc\u00df\u00e9\r\nAUTH \u00c4UTH PLAIN\u00a0LOGIN\r\nSIZE \u0661\u0662".encode()

# ---- client_session: 12-byte header + server bytes --------------------------
# fuzz/src/session.rs documents every bit; in short:
#   session  h[0]  0x01 no PIPELINING use, 0x02 LMTP, 0x04 implicit TLS,
#                  0x08 prefer_chunking off, 0x10 small limits, 0x20 transcript,
#                  0x40 AlreadyTls, 0x80 rogue driver (plaintext in the TLS pause)
#   auth     h[1]  bits 0-5 PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER SCRAM-SHA-256,
#                  0x40 PLAIN/LOGIN without TLS, 0x80 server name localhost
#   setup    h[2]  bits 0-1 hello (0 hello, 1 ensure_hello, 2 none, 3 establish),
#                  bits 2-3 tls_policy (1 required, 2 disabled), 0x10 starttls,
#                  0x20 eager user, 0x40 VRFY/NOOP/RSET, 0x80 no QUIT
#   send     h[3]  bits 0-2 messages for `send`, bits 3-4 recipients - 1,
#                  0x20 require_all, 0x40 DSN/SIZE/MT-PRIORITY, 0x80 BINARYMIME
#   body     h[4]  bits 0-2 body, bits 3-5 cut, bits 6-7 window (chunk/window/messages)
#   steps    h[5]  bits 0-1 step-by-step transactions, bits 2-3 body (0 data,
#                  1 start_bdat, 2 raw bdat, 3 each in turn), 0x10 abandon,
#                  0x20 NOOP inside, 0x40 before the messages, 0x80 no wait for the end
#   sizes    h[6..10] chunk sizes of the server's bytes (all 0: line by line)
#   clock    h[10] bits 0-3 silence before each server chunk, bits 4-5 timeouts
#                  (1 all 30 s, 2 all Duration::MAX, 3 all zero), 0x40 restless
#                  driver, 0x80 the TLS handshake fails
#   durations h[11] bits 0-3 each write, bits 4-7 the TLS handshake
# Delay codes: 0 0, 1 1ms, 2 1s, 3 10s, 4 29s, 5 31s, 6 1min, 7 1:59, 8 2:01,
# 9 2:59, 10 3:01, 11 4:59, 12 5:01, 13 9:59, 14 10:01, 15 1h.
# In the server's bytes, 0xFE d is the driver's: a silence of delay d & 15
# plus d >> 4 minutes, 0xFF the connection fails, 0xFD the driver abandons.
D_10S, D_29S, D_31S, D_2M01, D_3M01, D_4M59, D_5M01, D_10M01 = 3, 4, 5, 8, 10, 11, 12, 14


def silence(code, minutes=0):
    return b"\xfe" + bytes([code | (minutes << 4)])


FAIL = b"\xfe\xff"
ABANDON = b"\xfe\xfd"


def session_seed(name, lines=(), raw=None, session=0, auth=0, setup=0, send=0, body=0,
                 steps=0, sizes=(0, 0, 0, 0), clock=0, durations=0):
    h = bytes([session, auth, setup, send, body, steps, *sizes, clock, durations])
    assert len(h) == 12
    if raw is None:
        raw = b"".join(l if isinstance(l, bytes) else (l + "\r\n").encode() for l in lines)
    seeds["client_session"][name] = h + raw


OK_TXN = ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as 4ZxY1k2abc"]
NO_CHUNKING = 0x08
QUIT = "221 2.0.0 Bye"

# One message by DATA (Postfix offers CHUNKING, so prefer_chunking is off).
session_seed("postfix_data", [POSTFIX_GREETING, *POSTFIX_EHLO, *OK_TXN, QUIT],
             session=NO_CHUNKING, send=1)
session_seed("postfix_data_bytewise", [POSTFIX_GREETING, *POSTFIX_EHLO, *OK_TXN, QUIT],
             session=NO_CHUNKING | 0x20, send=1, body=0x0b, sizes=(1, 1, 1, 1))
session_seed("postfix_small_chunks", [POSTFIX_GREETING, *POSTFIX_EHLO, *OK_TXN, QUIT],
             session=NO_CHUNKING, send=1, body=0x2c, sizes=(3, 5, 7, 2))
# STARTTLS, PLAIN refused, LOGIN, then a message by BDAT (`send`) and one by
# DATA step by step.
session_seed(
    "gmail_starttls_auth_bdat_data",
    [
        GMAIL_GREETING,
        *GMAIL_EHLO,
        "220 2.0.0 Ready to start TLS",
        *GMAIL_EHLO_TLS,
        "535-5.7.8 Username and Password not accepted. For more information, go to",
        "535 5.7.8  https://support.google.com/mail/?p=BadCredentials d9443c01a7336 - gsmtp",
        "334 VXNlcm5hbWU6",
        "334 UGFzc3dvcmQ6",
        "235 2.7.0 Accepted",
        "250 2.1.0 OK d9443c01a7336 - gsmtp",
        "250 2.1.5 OK d9443c01a7336 - gsmtp",
        "250 2.1.5 OK d9443c01a7336 - gsmtp",
        "250 2.0.0 OK  1764352800 d9443c01a7336 - gsmtp",
        "250 2.1.0 OK d9443c01a7336 - gsmtp",
        "250 2.1.5 OK d9443c01a7336 - gsmtp",
        "250 2.1.5 OK d9443c01a7336 - gsmtp",
        "354  Go ahead d9443c01a7336 - gsmtp",
        "250 2.0.0 OK  1764352801 d9443c01a7336 - gsmtp",
        "221 2.0.0 closing connection d9443c01a7336 - gsmtp",
    ],
    session=0x20, auth=0x03, setup=0x10, send=0x09, steps=0x01,
)
session_seed(
    "exchange_starttls_xoauth2",
    [
        EXCHANGE_GREETING,
        *EXCHANGE_EHLO,
        "220 2.0.0 SMTP server ready",
        *EXCHANGE_EHLO_TLS,
        "334 " + XOAUTH2_ERROR,
        "535 5.7.3 Authentication unsuccessful [BN8NAM12FT004.namprd12.prod.outlook.com]",
        "250 2.1.0 Sender OK",
        "250 2.1.5 Recipient OK",
        "354 Start mail input; end with <CRLF>.<CRLF>",
        f"250 2.0.0 OK <0a1b2c3d@{EXCHANGE_HOST}> [Hostname=BN8NAM12FT004]",
        "221 2.0.0 Service closing transmission channel",
    ],
    session=0x20, auth=0x18, setup=0x10, body=0x0f, steps=0x01,
)
# Raw BDAT chunks of a BINARYMIME body, pipelined.
session_seed(
    "exchange_bdat_binarymime",
    [
        EXCHANGE_GREETING,
        *EXCHANGE_EHLO,
        "250 2.1.0 Sender OK",
        "250 2.1.5 Recipient OK",
        "250 2.0.0 BDAT ok",
        "250 2.0.0 BDAT ok",
        "250 2.0.0 OK queued",
        "221 2.0.0 Service closing transmission channel",
    ],
    send=0x80, body=0x21, steps=0x09,
)
# A BINARYMIME message by `send`, cut into 5-byte chunks, one in flight.
session_seed(
    "exchange_send_binarymime_chunks",
    [
        EXCHANGE_GREETING,
        *EXCHANGE_EHLO,
        "250 2.1.0 Sender OK",
        "250 2.1.5 Recipient OK",
        "250 2.0.0 BDAT ok",
        "250 2.0.0 BDAT ok",
        "250 2.0.0 BDAT ok",
        "250 2.0.0 BDAT ok",
        "250 2.0.0 OK queued",
        "221 2.0.0 Service closing transmission channel",
    ],
    send=0x81, body=0x40 | 0x08,
)
session_seed("rfc5321_d1", RFC5321_D1, send=0x11)
session_seed(
    "rfc2920_pipelining_extras",
    [
        *RFC2920,
        "252 Cannot VRFY user, but will accept message and attempt delivery",
        "250 OK",
        "250 OK",
        "221 innosoft.com closing",
    ],
    setup=0x40, send=0x09, body=0x03,
)
session_seed(
    "rfc2920_all_recipients_refused",
    [
        "220 mx.example ESMTP",
        "250-mx.example",
        "250 PIPELINING",
        "250 ok",
        "550 5.1.1 no such user",
        "354 go ahead",
        "554 5.5.1 Error: no valid recipients",
        "221 bye",
    ],
    send=1,
)
session_seed(
    "helo_fallback",
    [
        "220 old.example SMTP",
        "502 5.5.2 Error: command not recognized",
        "250 old.example",
        "250 ok",
        "250 ok",
        "354 go",
        "250 ok",
        "221 bye",
    ],
    send=1, body=0x06,
)
session_seed(
    "lmtp",
    [
        "220 lmtp.example LMTP server ready",
        "250-lmtp.example",
        "250-PIPELINING",
        "250-ENHANCEDSTATUSCODES",
        "250 8BITMIME",
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "354 Start mail input",
        "250 2.0.0 <rcpt0@example.com> delivered",
        "452 4.2.2 <rcpt1@example.com> mailbox full",
        "221 2.0.0 Bye",
    ],
    session=0x02, send=0x09, body=0x01,
)
# LMTP, raw BDAT step by step: one delivery reply per accepted recipient.
session_seed(
    "lmtp_bdat",
    [
        "220 lmtp.example LMTP server ready",
        "250-lmtp.example",
        "250-PIPELINING",
        "250 CHUNKING",
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "250 chunk",
        "250 2.0.0 delivered",
        "250 2.0.0 delivered",
        "221 2.0.0 Bye",
    ],
    session=0x02, send=0x08, body=0x1e, steps=0x09,
)
session_seed(
    "lmtp_send_bdat",
    [
        "220 lmtp.example LMTP server ready",
        "250-lmtp.example",
        "250-PIPELINING",
        "250 CHUNKING",
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "250 2.0.0 <rcpt0@example.com> delivered",
        "452 4.2.2 <rcpt1@example.com> mailbox full",
        "221 2.0.0 Bye",
    ],
    session=0x02, send=0x09,
)
session_seed(
    "starttls_injection",
    raw=b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go ahead\r\n250 AUTH EVIL\r\n",
    setup=0x10, sizes=(8, 22, 29, 0),
)
session_seed(
    "starttls_rogue_driver",
    ["220 mx", "250-mx", "250 STARTTLS", "220 go ahead", "250-mx", "250 AUTH PLAIN"],
    session=0x80, setup=0x10,
)
session_seed(
    "cram_md5_localhost",
    ["220 mx", "250-mx", "250 AUTH CRAM-MD5", "334 " + CRAM_CHALLENGE, "235 2.7.0 ok", "221 bye"],
    session=0x20, auth=0x84,
)
session_seed(
    "plain_localhost_then_login",
    [
        "220 mx",
        "250-mx",
        "250 AUTH PLAIN LOGIN",
        "535 5.7.8 Authentication credentials invalid",
        "334 VXNlcm5hbWU6",
        "334 UGFzc3dvcmQ6",
        "235 2.7.0 Authentication successful",
        "221 bye",
    ],
    session=0x20, auth=0x83,
)
session_seed(
    "auth_cancel_and_too_many",
    [
        "220 mx",
        "250-mx",
        "250 AUTH PLAIN LOGIN CRAM-MD5",
        "334 !!!not base64!!!",
        "501 5.0.0 cancelled",
        "334 ",
        "334 ",
        "334 ",
        "334 ",
        "501 cancelled",
        "221 bye",
    ],
    session=0x30, auth=0x86,
)
session_seed(
    "oauthbearer_error",
    [
        "220 mx",
        "250-mx",
        "250 AUTH OAUTHBEARER XOAUTH2",
        "334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=",
        "535 5.7.8 nope",
        "221 bye",
    ],
    session=0x24, auth=0x10,
)
session_seed(
    "implicit_tls_plain_dsn",
    [
        "220 mx.example.com ESMTP",
        "250-mx.example.com",
        "250-PIPELINING",
        "250-DSN",
        "250-SIZE 1000000",
        "250-MT-PRIORITY MIXER",
        "250 AUTH PLAIN",
        "235 2.7.0 ok",
        "250 2.1.0 ok",
        "250 2.1.5 ok",
        "250 2.1.5 ok",
        "354 go",
        "250 2.0.0 queued",
        "221 bye",
    ],
    session=0x24, auth=0x01, send=0x49,
)
session_seed(
    "already_tls_plain",
    ["220 mx.example.com ESMTP", "250-mx.example.com", "250 AUTH PLAIN", "235 2.7.0 ok", "221 bye"],
    session=0x40, auth=0x01,
)
session_seed(
    "smtputf8_four_recipients",
    [
        "220 mx",
        "250-mx",
        "250-PIPELINING",
        "250-8BITMIME",
        "250 SMTPUTF8",
        "250 ok",
        "250 ok",
        "550 no",
        "250 ok",
        "250 ok",
        "354 go",
        "250 queued",
        "221 bye",
    ],
    send=0x19, body=0x05,
)
# Without PIPELINING: two messages by DATA, then raw BDAT chunks (the body,
# two empty chunks) step by step, each command on its own.
session_seed(
    "no_pipelining_three_txns",
    [
        POSTFIX_GREETING,
        *POSTFIX_EHLO,
        "250 ok", "250 ok", "354 go", "250 queued",
        "250 ok", "250 ok", "354 go", "250 queued",
        "250 ok", "250 ok", "250 chunk", "250 chunk", "250 queued",
        QUIT,
    ],
    session=0x01 | NO_CHUNKING, send=0x02, body=0x35, steps=0x09,
)
session_seed(
    "lazy_hello_421",
    ["220 mx", "250-mx", "250 PIPELINING", "421 4.3.2 Service shutting down"],
    setup=0x02, send=1,
)
session_seed(
    "small_limits",
    ["220 mx", "250-mx", "250-" + "X" * 200, "250 PIPELINING"],
    session=0x10, setup=0x02, send=1,
)
session_seed(
    "transient_failures",
    [
        POSTFIX_GREETING,
        *POSTFIX_EHLO,
        "451 4.3.0 try later",
        "503 5.5.1 Error: need MAIL command",
        "503 5.5.1 Error: need MAIL command",
        "503 5.5.1 Error: need RCPT command",
        "250 ok",
        "250 ok",
        "250 ok",
        "452 4.5.3 too many recipients",
        "554 5.7.1 rejected",
        "252 2.0.0 maybe",
        "250 ok",
        "250 ok",
        "221 bye",
    ],
    setup=0x40, send=0x0a, body=0x02,
)
# MAIL, NOOP, RCPT, RCPT, DATA step by step, one recipient refused.
session_seed(
    "by_hand_noop_refused_rcpt",
    [
        POSTFIX_GREETING,
        *POSTFIX_EHLO,
        "250 2.1.0 Ok",
        "250 2.0.0 Ok",
        "250 2.1.5 Ok",
        "550 5.1.1 <rcpt1@example.com>: Recipient address rejected",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 Ok: queued",
        "221 2.0.0 Bye",
    ],
    send=0x08, steps=0x21,
)
session_seed(
    "require_all_refused",
    [
        POSTFIX_GREETING,
        *POSTFIX_EHLO,
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "550 5.1.1 <rcpt1@example.com>: Recipient address rejected",
        "221 2.0.0 Bye",
    ],
    session=NO_CHUNKING, send=0x29,
)
session_seed(
    "bdat_abandoned_then_ensure_hello",
    [
        POSTFIX_GREETING,
        *POSTFIX_EHLO,
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.0.0 chunk",
        "250 2.0.0 Ok",
        "221 2.0.0 Bye",
    ],
    setup=0x01, body=0x2d, steps=0x19,
)
# Three messages by DATA: each next envelope rides with the previous dot.
session_seed(
    "eager_next_envelope",
    [
        POSTFIX_GREETING,
        *POSTFIX_EHLO,
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 Ok: queued as 1",
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 Ok: queued as 2",
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 Ok: queued as 3",
        "221 2.0.0 Bye",
    ],
    session=NO_CHUNKING, send=0x03,
)
# Four messages by BDAT: with PIPELINING and CHUNKING, all of them in one
# write before any reply (the window across messages), each next one after
# an RSET (no recipient is known to be accepted yet, and a server may keep
# a transaction open after a refused BDAT LAST).
session_seed(
    "window_bdat_pipelined",
    [POSTFIX_GREETING, *POSTFIX_EHLO]
    + ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: queued", "250 2.0.0 Ok"] * 3
    + ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: queued"]
    + [QUIT],
    send=0x04, body=0x10,
)
# Two messages in 5-byte chunks, one chunk and one message in flight.
session_seed(
    "window_small_chunks",
    [POSTFIX_GREETING, *POSTFIX_EHLO]
    + ["250 2.1.0 Ok", "250 2.1.5 Ok"] + ["250 2.0.0 chunk"] * 5 + ["250 2.0.0 Ok: queued"]
    + ["250 2.1.0 Ok", "250 2.1.5 Ok"] + ["250 2.0.0 chunk"] * 4 + ["250 2.0.0 Ok: queued"]
    + [QUIT],
    send=0x02, body=0x47,
)
# Step by step: DATA, then start_bdat with 3-byte chunks, then raw chunks.
session_seed(
    "step_bodies",
    [POSTFIX_GREETING, *POSTFIX_EHLO]
    + ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 go", "250 2.0.0 queued"]
    + ["250 2.1.0 Ok", "250 2.1.5 Ok"] + ["250 2.0.0 chunk"] * 7 + ["250 2.0.0 queued"]
    + ["250 2.1.0 Ok", "250 2.1.5 Ok"] + ["250 2.0.0 chunk"] * 2 + ["250 2.0.0 queued"]
    + [QUIT],
    body=0x80 | 0x20 | 0x04, steps=0x0f,
)
# establish: EHLO, STARTTLS, EHLO, AUTH PLAIN; then one message by BDAT.
session_seed(
    "establish_starttls_auth",
    [
        GMAIL_GREETING,
        *GMAIL_EHLO,
        "220 2.0.0 Ready to start TLS",
        *GMAIL_EHLO_TLS,
        "235 2.7.0 Accepted",
        "250 2.1.0 OK",
        "250 2.1.5 OK",
        "250 2.0.0 OK  1764352800 - gsmtp",
        "221 2.0.0 closing connection",
    ],
    auth=0x01, setup=0x03, send=0x01,
)
session_seed(
    "establish_tls_required_missing",
    ["220 mx", "250-mx", "250 PIPELINING", "221 bye"],
    setup=0x03 | 0x04,
)
# SCRAM-SHA-256 with the harness's credentials and nonce (fuzz/src/session.rs).
def scram_exchange(user, password, client_nonce, server_nonce, salt, iterations):
    import hashlib
    import hmac
    first_bare = f"n={user},r={client_nonce}"
    server_first = f"r={client_nonce}{server_nonce},s={base64.b64encode(salt).decode()},i={iterations}"
    without_proof = f"c=biws,r={client_nonce}{server_nonce}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    server_final = "v=" + base64.b64encode(signature).decode()
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    return b64(server_first), b64(server_final)


SCRAM_FIRST, SCRAM_FINAL = scram_exchange(
    "user@example.com", "pw-s3cr3t-9f8e", "fuzz-nonce-4kq2LmZ0pR7s", "srv-9Xq",
    b"salt-for-fuzzing", 4096,
)
session_seed(
    "scram_sha256",
    [
        "220 mx.example.com ESMTP",
        "250-mx.example.com",
        "250 AUTH SCRAM-SHA-256 PLAIN",
        "334 " + SCRAM_FIRST,
        "334 " + SCRAM_FINAL,
        "235 2.7.0 Authentication successful",
        "221 bye",
    ],
    session=0x20, auth=0x20,
)

# Time: the server's silences and a slow clock.
session_seed("time_greeting_timeout", [silence(D_5M01), "220 mx"])
session_seed(
    "time_trickled_reply",
    [POSTFIX_GREETING, *POSTFIX_EHLO, b"25", silence(D_2M01), b"0 2.1", silence(D_2M01),
     b".0 O", silence(D_2M01), "k"],
    session=NO_CHUNKING, send=1,
)
session_seed(
    "time_early_silences",
    [silence(D_4M59), POSTFIX_GREETING, *POSTFIX_EHLO, silence(D_4M59), OK_TXN[0],
     silence(D_4M59), OK_TXN[1], OK_TXN[2], silence(D_4M59, 5), OK_TXN[3], QUIT],
    session=NO_CHUNKING | 0x01, send=1,
)
session_seed(
    "time_trickle_restless",
    [POSTFIX_GREETING, *POSTFIX_EHLO, *OK_TXN, QUIT],
    session=NO_CHUNKING, send=1, clock=0x40 | D_10S, durations=0x22,
)
session_seed(
    "time_slow_write",
    [POSTFIX_GREETING, *POSTFIX_EHLO, *OK_TXN, QUIT],
    send=1, durations=D_3M01,
)
session_seed(
    "time_tls_handshake_timeout",
    [GMAIL_GREETING, *GMAIL_EHLO, "220 2.0.0 Ready to start TLS", *GMAIL_EHLO_TLS],
    setup=0x10, durations=D_31S << 4,
)
session_seed(
    "time_data_termination",
    [POSTFIX_GREETING, *POSTFIX_EHLO, *OK_TXN[:3], silence(D_10M01), OK_TXN[3], QUIT],
    session=NO_CHUNKING, send=1,
)
session_seed("time_zero_timeouts", ["220 mx", "250 mx"], clock=0x30)
session_seed(
    "time_uniform_30s",
    [POSTFIX_GREETING, silence(D_29S), *POSTFIX_EHLO, *OK_TXN, silence(D_29S), QUIT],
    session=NO_CHUNKING, send=1, clock=0x10 | 0x40, durations=D_29S << 4,
)
session_seed(
    "tls_handshake_fails",
    [GMAIL_GREETING, *GMAIL_EHLO, "220 2.0.0 Ready to start TLS", *GMAIL_EHLO_TLS],
    setup=0x10, clock=0x80,
)
session_seed(
    "connection_fails",
    [POSTFIX_GREETING, *POSTFIX_EHLO, OK_TXN[0], FAIL, OK_TXN[1]],
    session=NO_CHUNKING, send=1,
)
session_seed(
    "driver_abandons",
    [POSTFIX_GREETING, *POSTFIX_EHLO, OK_TXN[0], ABANDON, OK_TXN[1]],
    session=NO_CHUNKING, send=1,
)

# Regressions: minimal inputs of the core bugs client_session found.
session_seed(
    "regress_starttls_250",
    ["220 mx", "250-mx", "250 STARTTLS", "250 ok"],
    setup=0x10,
)
session_seed(
    "regress_lmtp_data_without_recipients",
    ["220 mx", "250-mx", "250 PIPELINING", "250 ok", "550 no", "354 go"],
    session=0x02, send=1,
)
# An eager user: DATA, then start_bdat with one 5-byte chunk in flight
# before the 354 (known bug BodyReplacedBy354: the harness's user waits for
# the 354 unless SMTP_FUZZ_STRICT=1, which walks into the bug).
session_seed(
    "regress_body_replaced_by_354",
    ["220 mx", "250-mx", "250 CHUNKING", "250 ok", "250 ok", "354 go", "250 queued",
     "250 ok", "250 ok", "250 chunk", "250 queued"],
    setup=0x20 | 0x80, body=0x40, steps=0x0e,
)
# The 220 to establish's STARTTLS in the same read as the EHLO reply, then a
# slow write of the STARTTLS line (known bug EarlyReplyToUnsentCommand:
# under SMTP_FUZZ_STRICT=1 the harness fails at that write).
session_seed(
    "regress_early_220_to_establish_starttls",
    raw=b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go ahead\r\n",
    setup=0x03, sizes=(8, 0, 0, 0), clock=0x40, durations=9,
)
session_seed(
    "regress_auth_250",
    ["220 mx", "250-mx", "250 AUTH PLAIN", "250 ok", "221 bye"],
    auth=0x81,
)

# ---- dot_stuff: [chunk sizes x4] + body --------------------------------------
def body_seed(name, body, sizes=(0, 0, 0, 0)):
    seeds["dot_stuff"][name] = bytes(sizes) + body


body_seed("rfc5321_d1", b"Blah blah blah...\r\n...etc. etc. etc.\r\n")
body_seed("lone_dot", b".\r\n", (1, 1, 1, 1))
body_seed("smuggling_lf", b"a\n.\nMAIL FROM:<evil@example.com>\n", (2, 0, 0, 0))
body_seed("smuggling_cr", b"a\r.\rMAIL FROM:<evil@example.com>\r", (1, 3, 0, 0))
body_seed("smuggling_mixed", b"a\r\n.\nb\n.\r\nc\r.\r\n", (5, 1, 2, 0))
body_seed("cr_at_chunk_end", b"line\r\n.x\r\r\n..\r", (5, 1, 0, 0))
body_seed("no_final_newline", b"Subject: t\r\n\r\nbody\n.\n\n.\r\nend.", (7, 3, 0, 0))
body_seed("empty", b"")
body_seed("dots", b"..\n...\r\n.\r.\n.", (1, 2, 3, 4))
body_seed("binary", bytes(range(256)), (17, 33, 0, 0))

# ---- commands: [flags] + fields split by 0xFF ---------------------------------
def cmd_seed(name, flags, *fields):
    seeds["commands"][name] = bytes([flags]) + b"\xff".join(
        f.encode() if isinstance(f, str) else f for f in fields
    )


cmd_seed("plain", 0x00, "client.example", "a@example.com", "b@example.com", "X-TAG", "v",
         "postmaster", "QQ314159", "b+tag@example.com")
cmd_seed("dsn_all", 0x9c | 0x40, "[192.0.2.1]", "first.last@example.com", "\"odd local\"@example.com",
         "ENVID", "x+y", "Postmaster", "id+1=x", "j\u00f6rg+x@example.com")
cmd_seed("no_extensions", 0x01, "my_host.local.", "<>", "user@[IPv6:2001:db8::1]", "SIZE", "100",
         "a@b", "env", "c@d")
cmd_seed("crlf_injection", 0x00, "x\r\nMAIL FROM:<evil@x>", "a@b\r\nRCPT TO:<evil@x>",
         "b@c\nDATA", "X\r\n", "v\r\nQUIT", "user\r\nRSET", "e\r\nx", "o@p\r\n")
cmd_seed("nul_and_controls", 0x00, "a\x00b", "a\x00@b", "b@c\x7f", "K\x00", "v\x01",
         "v\x00", "e\x1b", "o@p\x0b")
cmd_seed("utf8", 0x04, "b\u00fccher.example", "j\u00f6rg@b\u00fccher.example",
         "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a", "X-\u00dc", "\u00fc", "\u7528\u6237", "\u00e9", "\u00e9@x")
cmd_seed("quoted", 0x00, "mx", "\"esc\\\"aped\"@example.com", "\"a\\\r\"@x", "A", "",
         "\"x y\"@z", "a b", "\"q\"@r")
cmd_seed("long", 0x00, "a" * 300, "b" * 250 + "@x.y", "c@" + "d" * 260, "E" * 600, "f" * 600,
         "g" * 300, "h" * 120, "i@" + "j." * 130)
cmd_seed("bad_forms", 0x00, "bad domain", "Alice <a@b>", ".a@b", "a.@b", "x=y", "a b",
         "", "a@[]")
# Issue 14: a quoted local part carrying '>' (item 2); the Unicode line and
# format controls in every argument (item 3).
cmd_seed("quoted_angle", 0x80, "mx", "\"x> NOTIFY=NEVER\"@example.com",
         "\"x> NOTIFY=NEVER ORCPT=rfc822;x@evil\"@example.com", "X-TAG", "v", "\"a>b\"@c",
         "id", "\"<o>\"@p")
# Issue 14 item 6: parameters that make MAIL and RCPT longer than 512 octets
# plus their allowances (a long X- value, an ENVID that triples in xtext, a
# long ORCPT), and ones that just fit.
cmd_seed("long_params", 0x98, "mx", "a@b", "c@d", "X-LONG", "v" * 470, "postmaster",
         "+" * 100, "+" * 60 + "@" + "e" * 180 + ".example")
cmd_seed("long_params_over", 0x88, "mx", "a" * 60 + "@b.example", "c@d", "X-LONG", "v" * 600,
         "postmaster", "+ " * 50, "o@p")
cmd_seed("unicode_controls", 0x04, "b\u00fc\u0085cher.example", "j\u00f6rg\u2028@example.com",
         "a\u202e@example.com", "X-TAG", "v\u2066x", "postmaster\u0085RSET", "id",
         "o\u009b@p")

# ---- auth: [mechanism, flags] + user, secret, host, challenges ---------------
def auth_seed(name, m, flags, *fields):
    seeds["auth"][name] = bytes([m, flags]) + b"\xff".join(
        f.encode() if isinstance(f, str) else f for f in fields
    )


# RFC 7677 §3: the host field is the client nonce.
auth_seed("scram_sha256_rfc7677", 6, 0x04, "user", "pencil", "rOprNGfwEbeRWgbNEkqO",
          "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
          "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
auth_seed("scram_sha256_forged", 6, 0x04, "user", "pencil", "rOprNGfwEbeRWgbNEkqO",
          "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
          "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
auth_seed("plain_rfc4616", 0, 0x05, "tim", "tanstaaftanstaaf", "localhost")
auth_seed("login", 1, 0x04, "user", "password", "localhost", "Username:", "Password:")
auth_seed("login_raw_prompts", 1, 0x0c, "user", "password", "localhost", "VXNlcm5hbWU6", "UGFzc3dvcmQ6")
auth_seed("cram_md5_rfc2195", 2, 0x04, "tim", "tanstaaftanstaaf", "localhost",
          "<1896.697170952@postoffice.reston.mci.net>")
auth_seed("xoauth2_error", 3, 0x01, "me@example.com", "ya29.a0AfH6SMB", "smtp.gmail.com",
          '{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}')
auth_seed("oauthbearer_rfc7628", 4, 0x05, "a,b=c", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
          "server.example.com", '{"status":"invalid_token","scope":"example_scope"}')
auth_seed("invalid_base64", 1, 0x08, "u", "p", "localhost", "!!!not base64!!!")
auth_seed("too_many_rounds", 1, 0x14, "u", "p", "localhost", "a", "b", "c", "d", "e")
auth_seed("custom", 5, 0x04, "X-CUSTOM", "initial", "localhost", "chal1", "!refuse")
auth_seed("custom_injection", 5, 0x04, "PLAIN\r\nRSET", "x", "localhost", "c")
auth_seed("wrong_host", 0, 0x01, "u", "p", "other.example", "")
# Issue 14 item 1: bearer tokens to a remote host without TLS are refused.
auth_seed("xoauth2_remote_no_tls", 3, 0x04, "me@example.com", "ya29.token", "smtp.example.com")
auth_seed("oauthbearer_remote_insecure_opt_out", 4, 0x06, "me", "token", "smtp.example.com")
# Regression: LOGIN's challenge counter overflowed at the 256th challenge.
seeds["auth"]["regress_login_256_challenges"] = bytes([1, 0]) + b"\xff" * 258


# ---- server_command: client lines (split on LF) -----------------------------
def server_seed(name, *lines):
    seeds["server_command"][name] = b"".join(
        (l.encode() if isinstance(l, str) else l) + b"\r\n" for l in lines
    )


# RFC 5321 Appendix D.1, as the client sends it.
server_seed("rfc5321_d1", "EHLO bar.com", "MAIL FROM:<Smith@bar.com>", "RCPT TO:<Jones@foo.com>",
            "RCPT TO:<Green@foo.com>", "RCPT TO:<Brown@foo.com>", "DATA", "QUIT")
# What Postfix, Gmail and Thunderbird-style clients send, every extension.
server_seed("esmtp_all", "EHLO [192.0.2.1]", "STARTTLS", "ehlo client.example",
            "AUTH PLAIN AHVzZXIAcGFzcw==", "AUTH LOGIN", "AUTH EXTERNAL =",
            "MAIL FROM:<a@example.com> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS "
            "ENVID=QQ+2B314 REQUIRETLS MT-PRIORITY=-3 BY=120;RT AUTH=<>",
            "RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;b+2Bx@example.com",
            "RCPT TO:<j\u00f6rg@b\u00fccher.example> NOTIFY=NEVER ORCPT=utf-8;j\\x{F6}rg@b\\x{FC}cher.example",
            "BDAT 1000", "BDAT 0 LAST", "RSET", "NOOP", "HELP", "VRFY Smith", "EXPN staff", "QUIT")
# The liberal forms: case, a space after the colon, source routes, Postmaster.
server_seed("liberal", "mail from: <a@b.example>", "Rcpt To:<@hosta.int,@jkl.org:userc@d.bar.org>",
            "RCPT TO:<postmaster>", "MAIL FROM:<>  SIZE=5   X-UNKNOWN=v", "DATA ", "QUIT\t",
            "bdat 12 last", "LHLO lmtp.example", "HELO my_host")
# Injection and smuggling: bare CR/LF, NUL, brackets in quotes, C1 and bidi.
server_seed("hostile", b"MAIL FROM:<a@b>\rRCPT TO:<evil@x>", b"RCPT TO:<\"x>\"@y> NOTIFY=NEVER",
            b"RCPT TO:<a@b\x00>", b"EHLO \xff\xfe", b"NOOP \x1b]0;pwned\x07",
            "RCPT TO:<gro\u202emoc@x>".encode(), "VRFY a\u0085b".encode(), b"MAIL FROM:<<>>",
            b"RCPT TO:<a@b> ORCPT=utf-8;\\x{110000}@b", b"RCPT TO:<a@b> ORCPT=utf-8;\\x{D800}@b")
# Numbers at and past their limits.
server_seed("numbers", "MAIL FROM:<a@b> SIZE=99999999999999999999999",
            "MAIL FROM:<a@b> SIZE=18446744073709551615", "BDAT 18446744073709551616",
            "BDAT 18446744073709551615 LAST", "MAIL FROM:<a@b> BY=999999999;N", "MAIL FROM:<a@b> BY=0;R",
            "MAIL FROM:<a@b> BY=-1000000000;N", "MAIL FROM:<a@b> MT-PRIORITY=+9", "MAIL FROM:<a@b> MT-PRIORITY=10",
            "BDAT +5", "BDAT 5 LAST x")
# Bad parameters: duplicates, wrong values, malformed keywords.
server_seed("bad_params", "MAIL FROM:<a@b> SIZE=1 size=2", "MAIL FROM:<a@b> BODY=9BIT",
            "MAIL FROM:<a@b> SMTPUTF8=yes", "MAIL FROM:<a@b> ENVID=+zz", "MAIL FROM:<a@b> ENVID=a+0Ab",
            "MAIL FROM:<a@b> RET=ALL", "MAIL FROM:<a@b> -X", "MAIL FROM:<a@b> X=a=b",
            "RCPT TO:<c@d> NOTIFY=NEVER,SUCCESS", "RCPT TO:<c@d> NOTIFY=SUCCESS,,DELAY",
            "RCPT TO:<c@d> ORCPT=x400;a ORCPT=x400;b", "RCPT TO:<c@d> ORCPT=nosemicolon")
# Missing or extra arguments.
server_seed("arguments", "EHLO", "HELO a b", "MAIL", "MAIL FROM:", "MAIL FROM:a@b", "MAIL FROM:<a@b",
            "MAIL FROM:<a@b>x", "RCPT TO:<>", "DATA now", "STARTTLS x", "AUTH", "AUTH PL@IN",
            "AUTH PLAIN a b", "AUTH PLAIN ==", "VRFY", "BDAT", "FOO", "MAILFROM:<a@b>", "")
# Long: a path over 254 octets, a domain over 255, many parameters.
server_seed("long", "RCPT TO:<" + "a" * 250 + "@example.com>", "EHLO " + "a" * 256,
            "MAIL FROM:<a@b>" + " X-P=v" * 200, "AUTH " + "A" * 21, "VRFY " + "v" * 257,
            "RCPT TO:<" + "\"\\" * 300)


# ---- server_session: 7-byte header + decisions + 0xFF + client bytes ---------
# fuzz/src/server_session.rs documents every bit; in short:
#   session  h[0]  0x01 LMTP, 0x02 STARTTLS, 0x04 auth_without_tls, 0x08 CHUNKING off,
#                  0x10 bare CR/LF normalised, 0x20 implicit TLS, 0x40 nonce (CRAM-MD5),
#                  0x80 PIPELINING and ENHANCEDSTATUSCODES off
#   policy   h[1]  bits 0-2 PLAIN LOGIN CRAM-MD5, 0x08 require_auth, 0x10 require_tls,
#                  0x20 DSN, 0x40 unknown params, 0x80 REQUIRETLS on, SMTPUTF8 off
#   limits   h[2]  bits 0-2 line 64+64k, bits 3-5 recipients k%5+1, bits 6-7 errors 2/3/5/20
#   size     h[3]  bits 0-2 message 0/1/16/64/256/1024/5000/35 MiB, bits 3-4 timeouts
#                  (1 all 30 s, 2 all zero, 3 all MAX), bits 5-6 idle 2/5/20/100, 0x80 1 AUTH failure
#   chunks   h[4], h[5] sizes of the client's chunks (0: the rest of the segment)
#   tls      h[6]  bits 0-1 handshake: 0 at once, 1 after delay h[6] >> 4, 2 fails, 3 pause
# Decisions, one per request event: bits 0-2 the answer (0/1 accept, 2 accept_with,
# 3 temporary, 4 permanent, 5 coded 354, 6 multi-line with controls, 7 coded 250),
# 0x08 through a Handler, bits 4-5 LMTP (0 respond_each, 1 respond, 2 one too many
# first, 3 one too few first), 0x40 deferred to the next step, 0x80 wrong calls too.
# In the client's bytes 0xFE d is the driver's: d < 0x80 time passes (delay d & 15
# plus d >> 4 minutes), 0x8k a slow write, 0xFA early timeout, 0xFB EOF,
# 0xFC shutdown, 0xFD the connection fails, 0xFE a literal 0xFE.
ROOMY = 0xE7  # 512-octet lines, 5 recipients, 20 errors
DEFAULT_SIZE = 0x67  # 35 MiB, RFC 5321 timeouts, 100 idle commands


def srv_seed(name, script, session=0, policy=0, limits=ROOMY, size=DEFAULT_SIZE, chunks=(0, 0),
             tls=0, decisions=b""):
    body = b"".join(s.encode() if isinstance(s, str) else s for s in script)
    seeds["server_session"][name] = (
        bytes([session, policy, limits, size, *chunks, tls]) + bytes(decisions) + b"\xff" + body
    )


def later(code, minutes=0):
    return bytes([0xFE, code | (minutes << 4)])


PLAIN_ALICE = base64.b64encode(b"\0alice\0secret").decode()
D1_CLIENT = crlf("EHLO bar.com", "MAIL FROM:<Smith@bar.com>", "RCPT TO:<Jones@foo.com>",
                 "RCPT TO:<Green@foo.com>", "RCPT TO:<Brown@foo.com>", "DATA",
                 "Subject: hi", "", "..a leading dot", "Blah blah blah...", ".", "QUIT")
# RFC 5321 Appendix D.1, Green refused, the message queued.
srv_seed("rfc5321_d1", [D1_CLIENT], decisions=[0, 0, 0, 4, 0, 2])
# The same a byte at a time and in 7-byte pieces, answers deferred and through a Handler.
srv_seed("rfc5321_d1_bytewise", [D1_CLIENT], chunks=(1, 7),
         decisions=[0x40, 0x08, 0x48, 0x0c, 0x80, 0xc2])
# LMTP: one reply per recipient; respond_each with one too many first, then
# one too few through a Handler, then one respond for all.
LMTP_TXN = ["MAIL FROM:<a@b.example>", "RCPT TO:<one@d.example>", "RCPT TO:<two@d.example>",
            "RCPT TO:<three@d.example>", "DATA", "hello", "."]
srv_seed("lmtp_respond_each", [crlf("LHLO c.example", *LMTP_TXN, *LMTP_TXN, *LMTP_TXN, "QUIT")],
         session=0x01, decisions=[0, 0, 0, 3, 0, 0x20, 0, 0, 0, 0, 0x38, 0, 0, 4, 0, 0x13])
# STARTTLS, then AUTH PLAIN (refused before TLS, required for MAIL) and a message.
srv_seed("starttls_auth_plain", [crlf("EHLO c.example", f"AUTH PLAIN {PLAIN_ALICE}",
                                      "MAIL FROM:<a@b.example>", "STARTTLS"), later(0),
                                 crlf("EHLO c.example", "AUTH PLAIN", PLAIN_ALICE,
                                      "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>",
                                      "DATA", "x", ".", "QUIT")],
         session=0x02, policy=0x09, tls=0x41)
# Every mechanism in plaintext (allowed): LOGIN refused, CRAM-MD5, PLAIN cancelled, garbage.
srv_seed("auth_plaintext", [crlf("EHLO c.example", "AUTH LOGIN", "YWxpY2U=", "c2VjcmV0",
                                 "AUTH CRAM-MD5",
                                 base64.b64encode(b"tim b913a602c7eda7a495b4e6e7334d3890").decode(),
                                 "AUTH PLAIN", "*", "AUTH PLAIN !!", "AUTH X-UNKNOWN", "QUIT")],
         session=0x44, policy=0x07, decisions=[0, 4, 3])
# BDAT: a BINARYMIME message in chunks, a refused chunk without recipients, RSET
# mid-message, then a slow write and EOF in the middle of a chunk.
srv_seed("bdat_chunks", [b"EHLO c.example\r\nBDAT 4\r\nQUIT"
                         b"MAIL FROM:<a@b.example> BODY=BINARYMIME\r\nRCPT TO:<c@d.example>\r\n"
                         b"BDAT 5\r\n\x00\r\n.\nBDAT 3 LAST\r\nabcMAIL FROM:<a@b.example>\r\n"
                         b"RCPT TO:<c@d.example>\r\nBDAT 2\r\nhiRSET\r\nDATA\r\n"
                         b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 10\r\n",
                         bytes([0xFE, 0x8d]), b"part", bytes([0xFE, 0xFB]), b"QUIT\r\n"],
         chunks=(3, 0))
# SMTP smuggling: a bare-LF dot, refused; then normalised into the message.
SMUGGLE = crlf("EHLO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA") + \
    b"x\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@d>\r\nDATA\r\nevil\r\n.\r\n" + \
    b"bare\rcr\r\n.\r\nQUIT\r\n"
srv_seed("smuggling_refused", [SMUGGLE])
srv_seed("smuggling_normalized", [SMUGGLE], session=0x18)
# Small limits: 64-octet lines, one recipient, 16-octet messages, 3 errors.
srv_seed("small_limits", [crlf("EHLO c.example", "NOOP " + "x" * 100, "MAIL FROM:<a@b.example>",
                               "RCPT TO:<c@d.example>", "RCPT TO:<e@d.example>", "DATA",
                               "0123456789abcdefghij", ".", "MAIL FROM:<a@b.example>",
                               "RCPT TO:<c@d.example>", "DATA", "short", ".", "FOO", "BAR")],
         limits=0x40, size=0x62)
# A command dribbled a byte a minute never moves the deadline: 421 at 5 min.
srv_seed("time_dribbled_command", [b"N", later(6), b"O", later(6), b"O", later(6), b"P",
                                   later(6), later(6), b"\r\n"], chunks=(1, 0))
# Regression: an answer the application took 10 minutes for left the client a
# deadline already past (timed out at once); its clock starts with the reply.
srv_seed("regress_deferred_answer_deadline", [b"EHLO c.example\r\n", later(14), later(0),
                                  b"MAIL FROM:<a@b.example>\r\n", later(14), later(11),
                                  b"QUIT\r\n"], decisions=[0x40])
# STARTTLS: a plaintext injection in the TLS pause (16- and 10-byte chunks, so
# STARTTLS arrives alone) closes the session.
srv_seed("starttls_pause_injection", [crlf("EHLO c.example", "STARTTLS"),
                                      b"MAIL FROM:<evil@x>\r\n"], session=0x02, tls=0x03,
         chunks=(16, 10))


def main():
    for target, files in seeds.items():
        d = os.path.join(ROOT, target)
        os.makedirs(d, exist_ok=True)
        # Stale seeds go; hand-kept reproducers (regress_* that this script
        # does not write: fuzzer finds minimised by hand) stay.
        for old in os.listdir(d):
            if old not in files and not old.startswith("regress_"):
                os.remove(os.path.join(d, old))
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(files)} seeds")


if __name__ == "__main__":
    main()
