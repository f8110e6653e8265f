#!/usr/bin/env python3
"""Derive the rg scan-limit inputs from the profiles, and check replay.mtail against them.

    patterns.py --profile net.yaml --profile cons.yaml --mtail replay.mtail \
                --prefilters prefilters.txt --out DIR

The profile YAML is what the benchmarked binary embeds (`chainwatch-exporter profiles NAME`).
Writes to DIR:
  rg-patterns.txt   one regex per line for `rg --no-unicode -c -e ... -e ...`: every rule's regex
                    with named groups made anonymous (`(?P<v>` -> `(?:`) and non-ASCII characters
                    written as their UTF-8 byte escapes (`λ` -> `\\xCE\\xBB`), because rg refuses
                    non-ASCII literals under --no-unicode; that is exactly how chainwatch compiles
                    (Unicode classes off, byte semantics). The JSON rule has no regex: it gets
                    replay.mtail's regex for it. Identical patterns (log_error is in both
                    profiles) are given once.
  rg-literals.txt   the union of the rules' literal prefilters (prefilters.txt), one per line,
                    for `rg -c -F -e ... -e ...`.
  rules/NN.{name,pat,lits}  per rule, for the soundness check in replay.sh.
Prints a warning for every drift: a profile regex that replay.mtail does not carry verbatim, a
rule without a prefilters.txt entry, a non-ASCII character inside a character class (the byte
escaping above would change its meaning). Exit status is 0 unless an input cannot be read.
"""

import argparse
import os
import re
import sys

try:
    import yaml  # PyYAML, if present
except ImportError:  # pragma: no cover
    yaml = None


def load_rules(path):
    """[(qualified name, regex or None, unless or None)] in file order."""
    text = open(path, encoding="utf-8").read()
    if yaml is not None:
        doc = yaml.safe_load(text)
        pname = doc["name"]
        return [(f"{pname}/{r['name']}", r.get("regex"), r.get("unless")) for r in doc.get("rules", [])]
    # Minimal reader for the profile layout: `name:` at top level, `- name:` / `regex: '...'` /
    # `unless: '...'`.
    pname, rules = None, []
    for line in text.splitlines():
        m = re.match(r"^name:\s*(\S+)", line)
        if m:
            pname = m.group(1)
        m = re.match(r"^\s*-\s+name:\s*(\S+)\s*$", line)
        if m and line.startswith("  - "):
            rules.append([m.group(1), None, None])
        for k, key in ((1, "regex"), (2, "unless")):
            m = re.match(r"^\s+" + key + r":\s*'(.*)'\s*$", line)
            if m and rules and rules[-1][k] is None:
                rules[-1][k] = m.group(1).replace("''", "'")
    return [(f"{pname}/{n}", r, u) for n, r, u in rules]


def mtail_regexes(path):
    """{rule: (regex, unless or None)} and rule order of the mtail program's blocks: a
    `# rule: profile/name` comment marks the next top-level pattern block (`/re/ {` at column 0);
    a rule with `unless:` is `/unless/ {` + `} else {` + the rule's block indented by two."""
    blocks, order, pending, unless, expect_else = {}, [], None, None, False
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^# rule:\s*(\S+)\s*$", line)
        if m:
            pending, unless, expect_else = m.group(1), None, False
            continue
        if not pending:
            continue
        if expect_else:
            expect_else = False
            if re.match(r"^\}\s*else\s*\{\s*$", line):
                continue
            # Not an `unless` after all: that first block was the rule's own.
            blocks[pending] = (unless, None)
            order.append(pending)
            pending = None
            continue
        m = re.match(r"^/(.*)/ \{\s*$", line)
        if m and unless is None:
            unless = m.group(1).replace("\\/", "/")
            expect_else = True
            continue
        m = re.match(r"^  /(.*)/ \{\s*$", line)
        if m and unless is not None:
            blocks[pending] = (m.group(1).replace("\\/", "/"), unless)
            order.append(pending)
            pending = None
    return blocks, order


def anonymize(pat):
    return re.sub(r"\(\?P?<[A-Za-z_][A-Za-z0-9_]*>", "(?:", pat)


def byte_escape(pat):
    """Non-ASCII characters as \\xHH UTF-8 bytes; warns about ones inside a class."""
    out, depth, esc, warn = [], 0, False, False
    for c in pat:
        if esc:
            esc = False
        elif c == "\\":
            esc = True
        elif c == "[":
            depth += 1
        elif c == "]" and depth:
            depth -= 1
        if ord(c) < 128:
            out.append(c)
        else:
            warn = warn or depth > 0
            out.append("".join(f"\\x{b:02X}" for b in c.encode("utf-8")))
    return "".join(out), warn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", action="append", required=True)
    ap.add_argument("--mtail", required=True)
    ap.add_argument("--prefilters", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    rules = []
    for p in a.profile:
        rules += load_rules(p)
    mt, mt_order = mtail_regexes(a.mtail)
    names = [n for n, _, _ in rules]
    warnings = []
    for n in names:
        if n not in mt:
            warnings.append(f"{n}: the profile has this rule, replay.mtail does not (its matches cannot be compared)")
    for n in mt_order:
        if n not in names:
            warnings.append(f"{n}: replay.mtail has this rule, the profiles do not")
    common = [n for n in names if n in mt]
    if common != [n for n in mt_order if n in names]:
        warnings.append("replay.mtail's blocks are not in the profiles' rule order (last-writer gauges may differ)")

    pre = {}
    for line in open(a.prefilters, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        name, *lits = line.split("\t")
        pre[name.strip()] = [l for l in lits if l != ""]

    os.makedirs(os.path.join(a.out, "rules"), exist_ok=True)
    pats, lits_all = [], []
    for i, (name, regex, unless) in enumerate(rules):
        mre, munless = mt.get(name, (None, None))
        if name in mt and munless != unless:
            warnings.append(f"{name}: profile unless {unless!r} != replay.mtail's {munless!r}")
        if regex is not None:
            if mre is not None and mre != regex:
                warnings.append(f"{name}: profile regex {regex!r} != replay.mtail's {mre!r}")
            src = regex
        else:
            if mre is None:
                warnings.append(f"{name}: JSON rule without a replay.mtail block")
                continue
            src = mre
        pat, bad = byte_escape(anonymize(src))
        if bad:
            warnings.append(f"{name}: non-ASCII character inside a character class; rg pattern is not equivalent")
        if pat not in pats:
            pats.append(pat)
        lits = pre.get(name)
        if not lits:
            warnings.append(f"{name}: no literal prefilter in prefilters.txt")
            lits = []
        for l in lits:
            if l not in lits_all:
                lits_all.append(l)
        base = os.path.join(a.out, "rules", f"{i:02d}")
        open(base + ".name", "w").write(name + "\n")
        open(base + ".pat", "w").write(pat + "\n")
        open(base + ".lits", "w").write("".join(l + "\n" for l in lits))
    for name in pre:
        if name not in {n for n, _, _ in rules}:
            warnings.append(f"prefilters.txt names {name}, which no profile has")

    with open(os.path.join(a.out, "rg-patterns.txt"), "w") as f:
        f.write("".join(p + "\n" for p in pats))
    with open(os.path.join(a.out, "rg-literals.txt"), "w") as f:
        f.write("".join(l + "\n" for l in lits_all))
    print(f"{len(rules)} rules: {len(pats)} distinct rg patterns, {len(lits_all)} distinct prefilter literals", file=sys.stderr)
    for w in warnings:
        print(f"WARNING: {w}", file=sys.stderr)


if __name__ == "__main__":
    main()
