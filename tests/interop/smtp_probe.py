#!/usr/bin/env python3
"""Tiny scripted SMTP/LMTP client used by smoke-test.sh (standard library only).

    smtp_probe.py HOST:PORT [--tls] [--ca FILE] STEP...

Prints every server reply line prefixed with "S: " and every sent line with
"C: ".  Each STEP is sent after backslash escapes (\\r \\n \\xNN) are decoded;
a CRLF is appended unless the step already contains one.  Afterwards one
reply (all its continuation lines) is read.  Special steps:

    STARTTLS          send STARTTLS, read the reply, upgrade to TLS when 220
    READ:N            read N more replies without sending anything
    RAW:N:DATA        send DATA exactly (escapes decoded, no CRLF added), read N replies
    AUTHPLAIN:U:P     AUTH PLAIN with base64("\\0U\\0P")
    XOAUTH2:U:TOKEN   AUTH XOAUTH2 with the SASL XOAUTH2 initial response
    SLEEP:SECONDS

--tls connects with TLS from the first byte (implicit TLS).  Certificates
are verified against --ca (default: system store) for host name "localhost".
"""
import base64
import socket
import ssl
import sys
import time


def decode(step):
    return step.encode("utf-8").decode("unicode_escape").encode("latin-1")


class Conn:
    def __init__(self, host, port, ca, implicit_tls):
        self.ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        self.sock = socket.create_connection((host, port), timeout=15)
        if implicit_tls:
            self.sock = self.ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""

    def readline(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("connection closed by server")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self):
        lines = []
        while True:
            line = self.readline()
            print("S: " + line.decode("utf-8", "replace").rstrip("\r\n"), flush=True)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    def send(self, data):
        shown = data.decode("utf-8", "replace")
        if len(shown) > 200:
            shown = shown[:200] + "...(%d bytes)" % len(data)
        for l in shown.rstrip("\r\n").split("\r\n"):
            print("C: " + l, flush=True)
        self.sock.sendall(data)


def main(argv):
    target = argv[0]
    host, port = target.rsplit(":", 1)
    ca = None
    implicit = False
    steps = []
    i = 1
    while i < len(argv):
        if argv[i] == "--tls":
            implicit = True
        elif argv[i] == "--ca":
            i += 1
            ca = argv[i]
        else:
            steps.append(argv[i])
        i += 1
    c = Conn(host, int(port), ca, implicit)
    try:
        c.reply()  # banner
        for step in steps:
            if step == "STARTTLS":
                c.send(b"STARTTLS\r\n")
                r = c.reply()
                if r[-1].startswith(b"220"):
                    c.sock = c.ctx.wrap_socket(c.sock, server_hostname="localhost")
                    c.buf = b""
                    print("=== TLS %s" % c.sock.version(), flush=True)
            elif step.startswith("READ:"):
                for _ in range(int(step[5:])):
                    c.reply()
            elif step.startswith("RAW:"):
                _, n, data = step.split(":", 2)
                c.send(decode(data))
                for _ in range(int(n)):
                    c.reply()
            elif step.startswith("AUTHPLAIN:"):
                _, u, p = step.split(":", 2)
                tok = base64.b64encode(b"\0" + u.encode() + b"\0" + p.encode()).decode()
                c.send(("AUTH PLAIN %s\r\n" % tok).encode())
                c.reply()
            elif step.startswith("XOAUTH2:"):
                _, u, t = step.split(":", 2)
                tok = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (u, t)).encode()).decode()
                c.send(("AUTH XOAUTH2 %s\r\n" % tok).encode())
                r = c.reply()
                if r[-1].startswith(b"334"):
                    c.send(b"\r\n")
                    c.reply()
            elif step.startswith("SLEEP:"):
                time.sleep(float(step[6:]))
            else:
                data = decode(step)
                if b"\r\n" not in data:
                    data += b"\r\n"
                c.send(data)
                c.reply()
    except (EOFError, ConnectionError, socket.timeout, ssl.SSLError) as e:
        print("=== %s: %s" % (type(e).__name__, e), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
