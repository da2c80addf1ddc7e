#!/usr/bin/env python3
"""aiosmtpd-based SMTP server for the interop tests.

Listens on 127.0.0.1 only.  STARTTLS is required before anything but
EHLO/NOOP/QUIT (even HELO gets 530), AUTH (PLAIN, LOGIN) is required before
MAIL and is only offered after STARTTLS.  SMTPUTF8 and SIZE are advertised.

Every accepted message is written to the spool directory as

    <n>.json   envelope (mail_from, rcpt_tos, mail_options, rcpt_options, ...)
    <n>.eml    the message bytes exactly as received (dot-unstuffed, the
               terminating "." line removed, nothing else changed)

Both files are written to a temporary name and renamed into place; the .json
is renamed first, so once <n>.eml exists the matching <n>.json exists too.

Recipients whose local part starts with "reject" are refused with
"550 5.1.1 ..." so that tests can exercise per-recipient failures.

Prints "READY <port>" on stdout once the socket is listening.
"""

import argparse
import asyncio
import itertools
import json
import os
import signal
import ssl
import sys
import tempfile

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--size-limit", type=int, default=10 * 1024 * 1024)
    p.add_argument("--hostname", default="aiosmtpd.localhost")
    return p.parse_args()


class Spool:
    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        os.makedirs(self.dir, exist_ok=True)
        existing = [int(n.split(".")[0]) for n in os.listdir(self.dir)
                    if n.endswith(".eml") and n.split(".")[0].isdigit()]
        self.counter = itertools.count(max(existing, default=0) + 1)

    def _atomic_write(self, name, data):
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.rename(tmp, os.path.join(self.dir, name))
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def store(self, raw, meta):
        n = next(self.counter)
        meta = dict(meta, id=n)
        self._atomic_write(f"{n}.json", (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode())
        self._atomic_write(f"{n}.eml", raw)
        return n


def _s(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "surrogateescape")
    return v


class Handler:
    def __init__(self, spool):
        self.spool = spool

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.rsplit("@", 1)[0] if "@" in address else address
        if local.lower().startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected (test rule: local part starts with 'reject')"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        # aiosmtpd keeps one flat rcpt_options list; remember them per recipient too.
        if not hasattr(envelope, "interop_rcpt_params"):
            envelope.interop_rcpt_params = []
        envelope.interop_rcpt_params.append({"address": address, "options": list(rcpt_options)})
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        auth_login = None
        if session.auth_data is not None and isinstance(session.auth_data, LoginPassword):
            auth_login = _s(session.auth_data.login)
        meta = {
            "server": "aiosmtpd",
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "rcpt_params": getattr(envelope, "interop_rcpt_params", []),
            "smtp_utf8": bool(envelope.smtp_utf8),
            "helo": session.host_name,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "auth_login": auth_login,
            "peer": list(session.peer) if session.peer else None,
            "size": len(raw),
        }
        n = self.spool.store(bytes(raw), meta)
        return f"250 2.0.0 OK queued as {n}"


def make_authenticator(user, password):
    user_b = user.encode()
    pw_b = password.encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.login == user_b and auth_data.password == pw_b:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Authentication credentials invalid")

    return authenticator


async def main():
    args = parse_args()
    spool = Spool(args.spool)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    handler = Handler(spool)
    authenticator = make_authenticator(args.user, args.password)
    loop = asyncio.get_running_loop()

    def factory():
        return SMTP(
            handler,
            hostname=args.hostname,
            data_size_limit=args.size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticator,
            loop=loop,
        )

    server = await loop.create_server(factory, host=args.host, port=args.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {args.port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
