#!/usr/bin/env python3
"""Turns `cargo test --test interop` output into the pass table.

Usage:
    cargo test -p smtp-tests --test interop 2>&1 | tests/interop/pass-table.py
    tests/interop/pass-table.py [SERVER ...] < saved-output.txt

Test names read `server::case::adapter` (corpus cases:
`server::corpus::message::adapter`; tokio-only pool cases:
`tokio_pool::case`). Prints a Markdown table, one row per server and case,
one column per adapter, then one summary row per server and a summary line.
With SERVER arguments (module names such as `opensmtpd haraka`) only those
servers are shown and counted. Exits 1 if any counted test failed.

Every server module of tests/tests/interop.rs appears (aiosmtpd,
nodemailer*, postfix, exim, dovecot_*, opensmtpd, haraka, sink*, faults,
tokio_pool); a server in SERVERS that ran no test is reported and makes the
exit status 1, so a missing server cannot pass unnoticed.
"""
import re
import sys
from collections import OrderedDict

LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored.*)$")
MARK = {"ok": "pass", "FAILED": "**FAIL**"}

only = sys.argv[1:]
rows = OrderedDict()
counts = {"pass": 0, "fail": 0, "ignored": 0}
per_server = {}
for raw in sys.stdin:
    m = LINE.match(raw.strip())
    if not m:
        continue
    name, status = m.groups()
    parts = name.split("::")
    if parts[-1] in ("blocking", "tokio"):
        adapter = parts[-1]
        parts = parts[:-1]
    else:
        adapter = "tokio"  # tokio_pool::* run on tokio only
    server = parts[0]
    if only and server not in only:
        continue
    case = "::".join(parts[1:])
    mark = MARK.get(status, "ignored")
    kind = "pass" if mark == "pass" else "fail" if mark != "ignored" else "ignored"
    counts[kind] += 1
    per_server.setdefault(server, {"pass": 0, "fail": 0, "ignored": 0})[kind] += 1
    rows.setdefault((server, case), {})[adapter] = mark

print("| server | case | blocking | tokio |")
print("|---|---|---|---|")
for (server, case), marks in sorted(rows.items()):
    print(f"| {server} | {case} | {marks.get('blocking', '—')} | {marks.get('tokio', '—')} |")
print()
print("| server | passed | failed | ignored |")
print("|---|---|---|---|")
for server in sorted(per_server):
    c = per_server[server]
    print(f"| {server} | {c['pass']} | {c['fail']} | {c['ignored']} |")
missing = [s for s in only if s not in per_server]
for server in missing:
    print(f"| {server} | **no test ran** | | |")
print()
print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['ignored']} ignored "
      f"({len(rows)} server × case rows)")
sys.exit(1 if counts["fail"] or missing else 0)
