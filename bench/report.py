#!/usr/bin/env python3
"""Turn the measurements of replay.sh into the results table and the verdicts.

Reads hyperfine's --export-json files, /usr/bin/time -v outputs and the comparison from
compare.py; prints Markdown to stdout and writes it to --md. Targets are reported, never asserted:
the exit status is always 0.
"""

import argparse
import json
import os
import re

MIB = 1024 * 1024


def rss_kib(path):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read())
    return int(m.group(1)) if m else None


def wall_s(path):
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", open(path).read())
    if not m:
        return None
    h, mnt, s = m.groups()
    return int(h or 0) * 3600 + int(mnt) * 60 + float(s)


def si(x):
    for unit, f in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= f:
            return f"{x / f:.2f} {unit}"
    return f"{x:.0f}"


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hyperfine", action="append", required=True, help="hyperfine JSON (repeatable)")
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--bytes", type=int, required=True)
    ap.add_argument("--rss", action="append", default=[], help="NAME=time-v-file: peak RSS of that tool (1M corpus)")
    ap.add_argument("--big-time", help="/usr/bin/time -v of chainwatch on the big corpus")
    ap.add_argument("--big-lines", type=int)
    ap.add_argument("--big-check", default="", help="one line: result of the big-corpus rule-count check")
    ap.add_argument("--counts", help="compare.py Markdown output")
    ap.add_argument("--counts-ok", choices=["yes", "no"], required=True)
    ap.add_argument("--scan", default="", help="extra Markdown about the rg scan limits (counts, soundness)")
    ap.add_argument("--header", default="", help="Markdown put before the table")
    ap.add_argument("--load", default="", help="load averages observed during the run, as text")
    ap.add_argument("--md", required=True)
    a = ap.parse_args()

    res = []
    for path in a.hyperfine:
        res += json.load(open(path))["results"]
    by = {r["command"]: r for r in res}
    cw = by["chainwatch"]
    rss = {}
    for item in a.rss:
        name, path = item.split("=", 1)
        rss[name] = rss_kib(path)

    L = []
    if a.header:
        L.append(a.header)
        L.append("")
    L.append(f"Corpus: {a.lines:,} lines, {a.bytes / 1e6:.1f} MB. Wall-clock seconds from hyperfine (file in page cache, output piped).")
    if a.load:
        loads = [float(x) for x in re.findall(r"\d+\.\d+", a.load)]
        busy = loads and max(loads) > (os.cpu_count() or 1)
        L.append(
            f"Load average (1/5/15 min) {a.load}, {os.cpu_count()} cores"
            + (": other processes competed for the cores, so wall-clock times carry their noise; the CPU column and the CPU-time ratios in the verdicts are less sensitive to it." if busy else ".")
        )
    L.append("")
    L.append("| tool | seconds (mean ± σ) | median s | runs | CPU s (user+sys) | lines/s | MB/s | ratio vs chainwatch (time) | peak RSS |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in res:
        name = r["command"]
        mean, sd = r["mean"], r.get("stddev") or 0.0
        cpu = (r.get("user") or 0.0) + (r.get("system") or 0.0)
        L.append(
            f"| {name} | {mean:.3f} ± {sd:.3f} | {r['median']:.3f} | {len(r['times'])} | {cpu:.3f} | {si(a.lines / mean)} | "
            f"{a.bytes / 1e6 / mean:.1f} | {mean / cw['mean']:.2f}x | {mib(rss.get(name))} |"
        )
    L.append("")
    L.append("ratio vs chainwatch = the tool's mean seconds / chainwatch's mean seconds (above 1: slower than chainwatch). "
             "lines/s and MB/s from the mean. Peak RSS from one /usr/bin/time -v run of each tool; rg memory-maps the file, "
             "so its RSS counts the mapped file pages (about the corpus size), not heap.")
    L.append("")

    big_kib = rss_kib(a.big_time) if a.big_time else None
    big_s = wall_s(a.big_time) if a.big_time else None
    if a.big_time:
        L.append(
            f"chainwatch on the {a.big_lines:,}-line corpus (one run under /usr/bin/time -v): {big_s:.2f} s, "
            f"{si(a.big_lines / big_s)} lines/s, peak RSS {mib(big_kib)} (1M lines: {mib(rss.get('chainwatch'))}). {a.big_check}"
        )
        L.append("")

    def cpu(x):
        return (x.get("user") or 0.0) + (x.get("system") or 0.0)

    def verdict(ok):
        return "**met**" if ok else "**NOT met**"

    L.append("### Verdicts (targets are reported, not asserted)")
    L.append("")
    mt = by.get("mtail")
    if mt:
        speedup = mt["mean"] / cw["mean"]
        L.append(
            f"- chainwatch ≥ 15x mtail's lines/s: chainwatch {si(a.lines / cw['mean'])} lines/s vs mtail {si(a.lines / mt['mean'])} lines/s "
            f"= **{speedup:.1f}x** → {verdict(speedup >= 15)} (by CPU time: {cpu(mt) / cpu(cw):.1f}x)"
        )
    for name in [r["command"] for r in res if r["command"].startswith("rg")]:
        rg = by[name]
        ratio = cw["mean"] / rg["mean"]
        rel = "chainwatch is faster" if ratio < 1 else f"chainwatch takes {ratio:.2f}x rg's time"
        L.append(
            f"- chainwatch within 3x of `{name}`: {cw['mean']:.3f} s vs {rg['mean']:.3f} s, {rel} → {verdict(ratio <= 3)} "
            f"(by CPU time: {cpu(cw) / cpu(rg):.2f}x rg's)"
        )
    small_kib = rss.get("chainwatch")
    if small_kib is not None:
        L.append(f"- chainwatch peak RSS ≤ 32 MiB at {a.lines:,} lines: {mib(small_kib)} → {verdict(small_kib <= 32 * 1024)}")
    if big_kib is not None:
        L.append(f"- chainwatch peak RSS ≤ 32 MiB at {a.big_lines:,} lines: {mib(big_kib)} → {verdict(big_kib <= 32 * 1024)}")
    L.append(f"- counts: chainwatch and mtail report the same values for every compared series → {'**yes**' if a.counts_ok == 'yes' else '**NO** (script exits 1)'}")
    L.append("")
    if a.scan:
        L.append(a.scan)
        L.append("")
    if a.counts:
        L.append("### Counts: chainwatch vs mtail (and the corpus generator's intent)")
        L.append("")
        L.append(open(a.counts).read().rstrip())
        L.append("")
    text = "\n".join(L)
    print(text)
    with open(a.md, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
