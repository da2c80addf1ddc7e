#!/usr/bin/env python3
"""Turns `cargo test --test interop` output into the pass table.

Usage:
    cargo test -p smtp-tests --test interop 2>&1 | tests/interop/pass-table.py
    tests/interop/pass-table.py < saved-output.txt

Test names read `server::case::adapter` (corpus cases:
`server::corpus::message::adapter`; tokio-only pool cases:
`tokio_pool::case`). Prints a Markdown table, one row per server and case,
one column per adapter, and a summary line. Exits 1 if any test failed.
"""
import re
import sys
from collections import OrderedDict

LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored.*)$")
MARK = {"ok": "pass", "FAILED": "**FAIL**"}

rows = OrderedDict()
counts = {"pass": 0, "fail": 0, "ignored": 0}
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
    case = "::".join(parts[1:])
    mark = MARK.get(status, "ignored")
    counts["pass" if mark == "pass" else "fail" if mark != "ignored" else "ignored"] += 1
    rows.setdefault((server, case), {})[adapter] = mark

print("| server | case | blocking | tokio |")
print("|---|---|---|---|")
for (server, case), marks in sorted(rows.items()):
    print(f"| {server} | {case} | {marks.get('blocking', '—')} | {marks.get('tokio', '—')} |")
print()
print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['ignored']} ignored "
      f"({len(rows)} server × case rows)")
sys.exit(1 if counts["fail"] else 0)
