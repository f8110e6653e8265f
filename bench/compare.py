#!/usr/bin/env python3
"""Compare chainwatch's and mtail's Prometheus output for the same corpus.

    compare.py --chainwatch cw.prom --mtail mtail.prom --expected corpus.expected.json --md out.md

Compared: every series of every metric family the mtail program exports (counters, gauges, the
consensus-mode state series, histogram _count, _sum and _bucket series), after dropping the labels
only one side has (chainwatch's `chain` and `source`, mtail's `prog`); a series one side lacks
counts as 0. chainwatch_rule_matches_total{rule} is compared per rule. Values must be equal,
except _sum series, which may differ by a relative 1e-9 (both sides add the same products in
the same order, so in practice they are identical too).

Also shown, never fatal: the per-rule match counts the corpus generator intended, so a profile
regex that misses a documented line form, or matches noise, shows up even when both tools agree.

Exit status 1 when chainwatch and mtail differ anywhere, else 0.
"""

import argparse
import json
import math
import re
import sys

DROP = {"chain", "source", "prog"}
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(path):
    series = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels, value = rest.rsplit("}", 1)
            lab = tuple(sorted((k, v) for k, v in LABEL.findall(labels) if k not in DROP))
        else:
            name, value = line.split(None, 1)
            lab = ()
        value = value.split()[0]
        series[(name, lab)] = float(value)
    return series


def family(name):
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


def fmt_labels(lab):
    return "{" + ",".join(f'{k}="{v}"' for k, v in lab) + "}" if lab else ""


def fmt(v):
    if v is None:
        return "-"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chainwatch", required=True)
    ap.add_argument("--mtail", required=True)
    ap.add_argument("--expected")
    ap.add_argument("--md", help="write the tables as Markdown here")
    a = ap.parse_args()

    cw, mt = parse(a.chainwatch), parse(a.mtail)
    families = {family(n) for n, _ in mt}
    keys = sorted(k for k in set(cw) | set(mt) if family(k[0]) in families)
    exp = json.load(open(a.expected)) if a.expected else None

    diffs, rows, buckets = [], [], [0, 0]
    for k in keys:
        name, lab = k
        c, m = cw.get(k, 0.0), mt.get(k, 0.0)
        if name.endswith("_sum"):
            same = math.isclose(c, m, rel_tol=1e-9, abs_tol=1e-12)
        else:
            same = c == m
        if not same:
            diffs.append((name + fmt_labels(lab), c, m))
        if name.endswith("_bucket"):
            buckets[0] += 1
            buckets[1] += 0 if same else 1
            continue
        if name == "chainwatch_rule_matches_total":
            continue
        rows.append((name + fmt_labels(lab), c, m, same))

    rule_rows = []
    rules = sorted({dict(lab).get("rule") for (n, lab) in keys if n == "chainwatch_rule_matches_total"} | set((exp or {}).get("rule_matches", {})))
    for r in rules:
        k = ("chainwatch_rule_matches_total", (("rule", r),))
        c, m = cw.get(k, 0.0), mt.get(k, 0.0)
        e = (exp or {}).get("rule_matches", {}).get(r, 0) if exp else None
        if c != m:
            status = "DIFF chainwatch != mtail"
        elif e is not None and c != e:
            status = f"both {'miss' if c < e else 'exceed'} intent by {abs(int(e - c))}"
        else:
            status = "ok"
        rule_rows.append((r, e, c, m, status))

    out = []
    out.append("| rule | intended | chainwatch | mtail | status |")
    out.append("|---|---:|---:|---:|---|")
    for r, e, c, m, s in rule_rows:
        out.append(f"| {r} | {fmt(e)} | {fmt(c)} | {fmt(m)} | {s} |")
    out.append("")
    out.append("| series | chainwatch | mtail | equal |")
    out.append("|---|---:|---:|---|")
    for s, c, m, same in rows:
        out.append(f"| `{s}` | {fmt(c)} | {fmt(m)} | {'yes' if same else '**NO**'} |")
    out.append(f"| histogram `_bucket` series ({buckets[0]}) | | | {'yes' if not buckets[1] else f'**{buckets[1]} differ**'} |")
    notes = []
    for r, e, c, m, s in rule_rows:
        if s.startswith("both"):
            notes.append(f"{r}: chainwatch and mtail agree ({fmt(c)}) but the corpus meant {fmt(e)} lines for it — see README (profile regex vs intent).")
    if notes:
        out.append("")
        out += [f"- {n}" for n in notes]
    out.append("")
    verdict = (
        f"COUNTS MATCH: {len(keys)} series compared ({len(rule_rows)} rules), chainwatch == mtail"
        if not diffs
        else f"COUNTS DIFFER: {len(diffs)} of {len(keys)} series"
    )
    out.append(verdict)
    text = "\n".join(out)
    print(text)
    if diffs:
        print("\n--- diff (series: chainwatch vs mtail)", file=sys.stderr)
        for s, c, m in diffs:
            print(f"-{s} {fmt(c)}\n+{s} {fmt(m)}", file=sys.stderr)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text + "\n")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
