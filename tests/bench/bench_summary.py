#!/usr/bin/env python3
"""Summarises criterion's text output as one table of ratios per group.

    cargo bench -p smtp-sansio --bench reply --bench commands --bench body \
        --bench session -- --noplot 2>&1 | tee /tmp/bench.txt
    tests/bench/bench_summary.py /tmp/bench.txt

For every group that has a `baseline_*` entry, each entry's throughput is
shown as a percentage of the baseline's, measured in the same run; the
`mirror_memchr*` / `mirror_position` pair gives what memchr buys.
"""

import re
import sys

UNITS = {
    "B/s": 1, "KiB/s": 1024, "MiB/s": 1024**2, "GiB/s": 1024**3,
    "elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9,
}
ID = re.compile(r"^([A-Za-z0-9_]+(?:/[A-Za-z0-9_.]+)+)")
THRPT = re.compile(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]")


def parse(lines):
    """Yields (id, throughput in units/s) for each measured benchmark."""
    current = None
    for line in lines:
        if line.startswith("Benchmarking "):
            continue
        m = ID.match(line)
        if m:
            current = m.group(1)
        t = THRPT.search(line)
        if t and current and t.group(2) in UNITS:
            yield current, float(t.group(1)) * UNITS[t.group(2)], t.group(2)
            current = None  # the "change:" thrpt line that may follow is not a figure


def human(value, unit):
    if unit.endswith("elem/s"):
        return f"{value / 1e6:8.2f} Melem/s"
    return f"{value / 1024**2:8.0f} MiB/s"


def main():
    text = open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines()
    groups = {}
    for bench_id, value, unit in parse(text):
        group, _, name = bench_id.rpartition("/")
        groups.setdefault(group, {})[name] = (value, unit)
    for group, entries in groups.items():
        baseline = next((v for n, v in entries.items() if n.startswith("baseline")), None)
        print(group)
        for name, (value, unit) in entries.items():
            ratio = f"{100 * value / baseline[0]:6.1f}% of baseline" if baseline else ""
            print(f"  {name:28s} {human(value, unit)}  {ratio}")
        mc = next((v for n, v in entries.items() if n.startswith("mirror_memchr")), None)
        pos = entries.get("mirror_position")
        if mc and pos:
            print(f"  {'memchr speed-up (mirrors)':28s} {mc[0] / pos[0]:8.2f}x")


if __name__ == "__main__":
    main()
