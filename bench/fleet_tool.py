#!/usr/bin/env python3
"""Helpers of bench/fleet.sh (see bench/README.md, "Fleet-scale rule evaluation").

Subcommands (JSON or Markdown on stdout; fleet.sh strings them together):

  freeport                         a free TCP port on 127.0.0.1
  wait     --url U [--timeout S]   wait until U answers 200
  reloads  --prom U                how many times Prometheus has reloaded its blocks
  reloaded --prom U --since N      wait for two reloads after N (it rescans its data directory
                                   every minute): blocks moved in before are loaded
  settle   --prom U --quiet S      wait until no compaction ran for S seconds
  measure  --prom U --seconds S    sample Prometheus's own rule metrics every 15 s for S seconds:
                                   per group the duration of every evaluation seen, and the deltas
                                   of CPU seconds, evaluation failures and missed iterations
  check    --prom U --plan P       per series name of the plan, the fewest samples any series of it
                                   has over its history, against what that history should hold
  verdicts --prom U --old F --new G [--lag S] [--since T [--step D]]
                                   evaluate the gate rules of two rule sets (F, G: `chainwatch-fleet
                                   gates` output) at one instant S seconds ago (60) and compare the
                                   verdicts per gate, chain and network; with --since, also at every
                                   D seconds (15) from T to that instant (range queries)
  report   --dir D                 the results (Markdown) from the run-*.json files of one run

Only the Python standard library is used.
"""
import argparse
import json
import math
import os
import re
import socket
import statistics
import sys
import time
import urllib.parse
import urllib.request

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)", re.M)
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def scrape(prom):
    """Prometheus's own /metrics as {name: [(labels, value)]}."""
    out = {}
    for m in SAMPLE.finditer(get(prom + "/metrics")):
        labels = dict(LABEL.findall(m.group(2) or ""))
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        out.setdefault(m.group(1), []).append((labels, v))
    return out


def one(s, name):
    return sum(v for _, v in s.get(name, []))


def by_group(s, name):
    return {l.get("rule_group", ""): v for l, v in s.get(name, [])}


def cmd_freeport(_a):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def cmd_wait(a):
    deadline = time.time() + a.timeout
    while True:
        try:
            get(a.url, timeout=5)
            return
        except OSError as e:
            if time.time() > deadline:
                sys.exit(f"fleet_tool: {a.url} did not answer within {a.timeout}s: {e}")
            time.sleep(0.5)


def cmd_reloads(a):
    print(int(one(scrape(a.prom), "prometheus_tsdb_reloads_total")))


def cmd_reloaded(a):
    """Blocks moved into the data directory are loaded at the next reload (every minute): wait
    for two reloads after `--since` and check none failed."""
    deadline = time.time() + a.timeout
    f0 = one(scrape(a.prom), "prometheus_tsdb_reloads_failures_total")
    while True:
        s = scrape(a.prom)
        if one(s, "prometheus_tsdb_reloads_failures_total") > f0:
            sys.exit("fleet_tool: Prometheus failed to reload its blocks (see its log)")
        if one(s, "prometheus_tsdb_reloads_total") >= a.since + 2:
            print(int(one(s, "prometheus_tsdb_blocks_loaded")))
            return
        if time.time() > deadline:
            sys.exit(f"fleet_tool: Prometheus did not reload its blocks within {a.timeout}s")
        time.sleep(5)


def compactions(s):
    return sum(
        one(s, n)
        for n in (
            "prometheus_tsdb_compactions_total",
            "prometheus_tsdb_vertical_compactions_total",
            "prometheus_tsdb_compactions_failed_total",
            "prometheus_tsdb_blocks_loaded",
        )
    )


def cmd_settle(a):
    """Compaction is checked every minute: no compaction and no change of the loaded blocks for
    a.quiet seconds means it is done (`compactions_triggered` counts every check, so it is not
    a sign of work)."""
    deadline = time.time() + a.timeout
    last, since = None, time.time()
    while True:
        c = compactions(scrape(a.prom))
        if c != last:
            last, since = c, time.time()
        elif time.time() - since >= a.quiet:
            print(json.dumps({"compactions": c}))
            return
        if time.time() > deadline:
            print(json.dumps({"compactions": c, "timeout": True}))
            return
        time.sleep(5)


def cmd_measure(a):
    t0 = time.time()
    s0 = scrape(a.prom)
    seen = {}  # group -> last iterations count
    durations = {}  # group -> [seconds of each evaluation observed]
    base_iter = by_group(s0, "prometheus_rule_group_iterations_total")
    loads = []
    while True:
        s = scrape(a.prom)
        iters = by_group(s, "prometheus_rule_group_iterations_total")
        last = by_group(s, "prometheus_rule_group_last_duration_seconds")
        for g, n in iters.items():
            # A new evaluation happened since the last sample (and since the measure began).
            if n != seen.get(g, base_iter.get(g)):
                seen[g] = n
                durations.setdefault(g, []).append(last.get(g, 0.0))
        loads.append(os.getloadavg()[0])
        if time.time() - t0 >= a.seconds:
            break
        time.sleep(max(0.0, 15 - (time.time() - t0) % 15))
    t1 = time.time()
    s1 = s

    def delta(name):
        return one(s1, name) - one(s0, name)

    def delta_g(name):
        b, e = by_group(s0, name), by_group(s1, name)
        return {g: e[g] - b.get(g, 0.0) for g in e}

    # Once, after the measurement (the answers cost Prometheus CPU): each rule's last
    # evaluation time, and the alerts firing, which cost more to evaluate than quiet ones.
    rule_times = []
    for g in json.loads(get(a.prom + "/api/v1/rules", timeout=120))["data"]["groups"]:
        for r in g["rules"]:
            rule_times.append({"group": g["name"], "interval": g["interval"], "rule": r["name"],
                               "type": r["type"], "seconds": r.get("evaluationTime", 0.0),
                               "active": len(r.get("alerts", []))})
    rule_times.sort(key=lambda r: -r["seconds"] * CYCLE / r["interval"])
    firing = {}
    for x in query(a.prom, 'count by (alertname, network) (ALERTS{alertstate="firing"})'):
        m = x["metric"]
        firing[f"{m.get('alertname')}/{m.get('network', '')}"] = float(x["value"][1])
    interval = by_group(s1, "prometheus_rule_group_interval_seconds")
    rules = by_group(s1, "prometheus_rule_group_rules")
    failures = delta_g("prometheus_rule_evaluation_failures_total")
    missed = delta_g("prometheus_rule_group_iterations_missed_total")
    groups = {}
    for g in sorted(set(interval) | set(durations)):
        d = durations.get(g, [])
        groups[g] = {
            "interval": interval.get(g),
            "rules": rules.get(g),
            "evaluations": len(d),
            "mean_seconds": statistics.mean(d) if d else None,
            "max_seconds": max(d) if d else None,
            "failures": failures.get(g, 0.0),
            "missed": missed.get(g, 0.0),
        }
    print(
        json.dumps(
            {
                "seconds": t1 - t0,
                "cpu_seconds": delta("process_cpu_seconds_total"),
                "head_series": one(s1, "prometheus_tsdb_head_series"),
                "blocks": one(s1, "prometheus_tsdb_blocks_loaded"),
                "compactions": compactions(s1) - compactions(s0),
                "load": {"min": min(loads), "mean": statistics.mean(loads), "max": max(loads)},
                "uptime": open("/proc/loadavg").read().split()[:3],
                "groups": groups,
                "rules": rule_times,
                "firing": dict(sorted(firing.items())),
            },
            indent=1,
        )
    )


def query(prom, expr):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    r = json.loads(get(url, timeout=600))
    return r["data"]["result"]


def cmd_check(a):
    """The history is there: min over series of count_over_time(name[history - margin])."""
    with open(a.plan) as fh:
        plan = json.load(fh)
    wanted = [(n, h, 15) for n, h in plan["raw"].items()]
    wanted += [(n, r["history"], r.get("interval") or 15) for n, r in plan["records"].items()]
    out = {}
    for name, history, step in sorted(wanted):
        window = max(step, history - a.margin)
        res = query(a.prom, f"min(count_over_time({name}[{window}s]))")
        got = float(res[0]["value"][1]) if res else 0.0
        out[name] = {"window": window, "min_samples": got, "expected": window // step}
    print(json.dumps(out, indent=1))


def key(metric, by=("chain", "network")):
    return tuple(metric.get(k, "") for k in by)


def query_at(prom, expr, at):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": at})
    return json.loads(get(url, timeout=600))["data"]["result"]


def query_range(prom, expr, start, end, step):
    url = prom + "/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": expr, "start": start, "end": end, "step": step})
    return json.loads(get(url, timeout=1200))["data"]["result"]


def by_key(result):
    return {key(r["metric"]): float(r["value"][1]) for r in result}


def cmd_verdicts(a):
    """Old and new gate expressions as instant queries at one past instant.

    The instant is `--lag` seconds before now, so every scrape stamped before it has been appended
    (a 1000-node scrape round takes seconds): both expressions see the same samples. Comparing the
    recorded gate series instead would compare an answer given when part of a round was still
    being appended, one evaluation interval earlier, with the old expression now.
    """
    with open(a.old) as fh:
        old = json.load(fh)
    with open(a.new) as fh:
        new_rules = {(g["record"], g["gate"]): g["expr"] for g in json.load(fh)}
    at = math.floor(time.time()) - a.lag
    out = []
    for g in old:
        expr = new_rules.get((g["record"], g["gate"]))
        if expr is None:
            out.append({"gate": g["gate"], "record": g["record"], "missing": True})
            continue
        now = by_key(query_at(a.prom, expr, at))
        before = by_key(query_at(a.prom, g["expr"], at))
        # What the gate rule itself recorded at its last evaluation, against its own expression
        # evaluated afterwards at that evaluation's time: differences there are samples the rule
        # could not see yet, not a difference between the rule sets.
        sel = '%s{gate="%s"}' % (g["record"], g["gate"])
        recorded_differ = []
        stamps = query(a.prom, "timestamp(%s)" % sel)
        if stamps:
            ts = float(stamps[0]["value"][1])
            rec = by_key(query_at(a.prom, sel, ts))
            own = by_key(query_at(a.prom, expr, ts))
            recorded_differ = sorted("/".join(k) for k in rec if k in own and own[k] != rec[k])
        # The same comparison at every evaluation step since the rules settled: a verdict that
        # matches at one instant could still flip at another.
        steps, step_differ = 0, []
        if a.since is not None and a.since < at:
            rng = lambda e: {key(r["metric"]): dict(r["values"]) for r in
                             query_range(a.prom, e, a.since, at, a.step)}
            new_r, old_r = rng(expr), rng(g["expr"])
            for k, vals in sorted(new_r.items()):
                for ts, v in sorted(vals.items()):
                    if k in old_r and ts in old_r[k]:
                        steps += 1
                        if old_r[k][ts] != v:
                            step_differ.append(f"{'/'.join(k)}@{ts:.0f}")
        same = sorted("/".join(k) for k in now if k in before and before[k] == now[k])
        differ = sorted("/".join(k) for k in now if k in before and before[k] != now[k])
        only_new = sorted("/".join(k) for k in now if k not in before)
        only_old = sorted("/".join(k) for k in before if k not in now)
        out.append({
            "gate": g["gate"], "record": g["record"], "time": at,
            "same": same, "differ": differ, "only_new": only_new, "only_old": only_old,
            "recorded_differ": recorded_differ,
            "steps": steps, "step_differ": step_differ,
            "values": {"/".join(k): v for k, v in sorted(now.items())},
        })
    print(json.dumps(out, indent=1))


# ------------------------------------------------------------------ report

CYCLE = 15.0


def per_cycle(g):
    """A group's evaluation seconds per 15 s cycle (a 5m group costs its duration / 20)."""
    if g["mean_seconds"] is None or not g["interval"]:
        return 0.0
    return g["mean_seconds"] * CYCLE / g["interval"]


def summarize(run):
    m, anchor = run["rules"], run["anchor"]
    cpu_rules = m["cpu_seconds"] / m["seconds"] * CYCLE
    cpu_anchor = anchor["cpu_seconds"] / anchor["seconds"] * CYCLE
    groups = m["groups"]
    eval_cycle = sum(per_cycle(g) for g in groups.values())
    check = run.get("history_check", {})
    ratios = [c["min_samples"] / c["expected"] for c in check.values() if c["expected"]]
    return {
        "history_min": min(ratios) if ratios else None,
        "set": run["set"],
        "nodes": run["nodes"],
        "series": run.get("series"),
        "history_samples": run.get("history_samples"),
        "cpu_cycle_rules": cpu_rules,
        "cpu_cycle_anchor": cpu_anchor,
        "rule_cpu_cycle": cpu_rules - cpu_anchor,
        "eval_cycle": eval_cycle,
        "failures": sum(g["failures"] for g in groups.values()),
        "missed": sum(g["missed"] for g in groups.values()),
        "unevaluated": sorted(n for n, g in groups.items() if not g["evaluations"]),
        "load": m["load"]["mean"],
        "load_anchor": anchor["load"]["mean"],
        "groups": groups,
        "rules": m.get("rules", []),
        "firing": m.get("firing"),
        "verdicts": run.get("verdicts"),
        "verdicts_against": run.get("verdicts_against"),
    }


def fmt_s(x):
    if x is None:
        return "–"
    if abs(x) >= 10:
        return f"{x:.1f} s"
    if abs(x) >= 1:
        return f"{x:.2f} s"
    return f"{x * 1000:.1f} ms"


def cmd_report(a):
    runs = []
    for f in sorted(os.listdir(a.dir)):
        if f.startswith("run-") and f.endswith(".json"):
            with open(os.path.join(a.dir, f)) as fh:
                runs.append(summarize(json.load(fh)))
    runs.sort(key=lambda r: (r["set"], r["nodes"]))
    with open(os.path.join(a.dir, "meta.json")) as fh:
        meta = json.load(fh)
    out = []
    w = out.append
    w("# Fleet-scale rule evaluation (bench/fleet.sh)\n")
    w(f"{meta['prometheus']}; scrape and evaluation interval 15 s; {meta['cpu']}, {meta['cores']} cores shared "
      f"with other work (load averages below). Every series of every node is served by the fake fleet from "
      f"captured sidecar templates ({meta['series_per_node']}); history backfilled with `promtool tsdb "
      f"create-blocks-from openmetrics` for each series' longest lookback, recording rules read over windows "
      f"backfilled with `create-blocks-from rules`.\n")
    w("Per 15 s cycle: *eval* is the sum over groups of `prometheus_rule_group_last_duration_seconds` "
      "(a group with a longer `interval` counts its share); *CPU* is Prometheus's `process_cpu_seconds_total` "
      "with the rules loaded minus the same Prometheus scraping the same fleet without rules (the anchor, "
      "measured in the same run).\n")
    w("*History* is the fewest samples any series holds over its planned window (history minus 15 "
      "minutes of margin), as a share of what the window holds at its scrape or evaluation interval.\n")
    w("| rules | nodes | history samples | history | eval / cycle | CPU / cycle with rules | anchor (no rules) | rule CPU / cycle | rule CPU / node / cycle | failures | missed | load (rules / anchor) |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        hist = "–" if r["history_min"] is None else f"{min(r['history_min'], 1.0):.0%}"
        w(f"| {r['set']} | {r['nodes']} | {r['history_samples'] or 0:,} | {hist} | {fmt_s(r['eval_cycle'])} | "
          f"{fmt_s(r['cpu_cycle_rules'])} | {fmt_s(r['cpu_cycle_anchor'])} | **{fmt_s(r['rule_cpu_cycle'])}** | "
          f"{fmt_s(r['rule_cpu_cycle'] / r['nodes'])} | {r['failures']:.0f} | {r['missed']:.0f} | "
          f"{r['load']:.1f} / {r['load_anchor']:.1f} |")
    w("")
    sets = sorted({r["set"] for r in runs})
    for s in sets:
        rs = [r for r in runs if r["set"] == s]
        if len(rs) < 2:
            continue
        a_, b_ = rs[0], rs[-1]
        for key, what in (("eval_cycle", "eval"), ("rule_cpu_cycle", "rule CPU")):
            x0, x1 = a_[key], b_[key]
            if x0 > 0 and x1 > 0:
                k = math.log(x1 / x0) / math.log(b_["nodes"] / a_["nodes"])
                p10k = x1 * (10000 / b_["nodes"]) ** k
                lin = x1 / b_["nodes"] * 10000
                w(f"- **{s}**, {what}: {a_['nodes']} → {b_['nodes']} nodes: {fmt_s(x0)} → {fmt_s(x1)} per cycle, "
                  f"exponent {k:.2f}; at 10k nodes {fmt_s(lin)} per cycle if linear, {fmt_s(p10k)} with that exponent.")
    w("")
    for r in runs:
        v = r.get("verdicts")
        if not v:
            continue
        w(f"### {r['set']}, {r['nodes']} nodes: gate verdicts against {r['verdicts_against']} on the same data\n")
        w(f"Each gate rule of {r['verdicts_against']} and of {r['set']} evaluated (instant queries) at one instant a minute "
          "before the comparison, when every scrape stamped before it is in. "
          "*Same*/*differ*: chain/network series present in both; *dropped*: series the old rule published for other chains; "
          "*recorded ≠ own*: series where what the gate rule recorded at its last evaluation differs from its own expression "
          "evaluated afterwards at that time (samples appended after the rule ran); *steps*: both compared at every 15 s "
          "from two minutes after the rules were loaded to that instant, steps compared (differing).\n")
        w("| gate | record | verdicts (chain/network = value) | same | differ | only new | dropped (other chains) | recorded ≠ own | steps |")
        w("|---|---|---|---:|---:|---:|---:|---:|---:|")
        lst = lambda xs: f"{len(xs)}{' (' + ', '.join(xs) + ')' if xs else ''}"
        for x in v:
            if x.get("missing"):
                w(f"| {x['gate']} | {x['record'].split(':')[1]} | **missing** | | | | | | |")
                continue
            vals = ", ".join(f"{k} = {val:g}" for k, val in x["values"].items())
            w(f"| {x['gate']} | {x['record'].split(':')[1]} | {vals} | {len(x['same'])} | "
              f"{lst(x['differ'])} | {len(x['only_new'])} | {len(x['only_old'])} | {lst(x.get('recorded_differ', []))} | "
              f"{x.get('steps', 0)} ({lst(x.get('step_differ', []))}) |")
        w("")
    for r in runs:
        if r["rules"]:
            w(f"### {r['set']}, {r['nodes']} nodes: the costliest rules\n")
            w("Each rule's `evaluationTime` at the end of the measurement (one evaluation, so a sample, not a mean), "
              "per 15 s cycle; *active*: alerts pending or firing.\n")
            w("| rule | group | type | evaluation | per 15 s cycle | active |")
            w("|---|---|---|---:|---:|---:|")
            for x in r["rules"][:20]:
                w(f"| {x['rule']} | {x['group']} | {x['type']} | {fmt_s(x['seconds'])} | "
                  f"{fmt_s(x['seconds'] * CYCLE / x['interval'])} | {x['active']} |")
            w("")
        if r["firing"] is not None:
            total = sum(r["firing"].values())
            w(f"Alerts firing at the end of the measurement: {total:.0f}" +
              (" (" + ", ".join(f"{k} {v:.0f}" for k, v in r["firing"].items()) + ")" if total else "") + ".\n")
        w(f"### {r['set']}, {r['nodes']} nodes: groups by evaluation cost per cycle\n")
        if r["unevaluated"]:
            w(f"Not evaluated during the measurement: {', '.join(r['unevaluated'])}.\n")
        w("| group | interval | rules | evaluations seen | mean | max | per 15 s cycle | per node per cycle | failures | missed |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, g in sorted(r["groups"].items(), key=lambda kv: -per_cycle(kv[1])):
            short = name.split(";")[-1]
            w(f"| {short} | {g['interval']:.0f} s | {g['rules'] or 0:.0f} | {g['evaluations']} | {fmt_s(g['mean_seconds'])} | "
              f"{fmt_s(g['max_seconds'])} | {fmt_s(per_cycle(g))} | {fmt_s(per_cycle(g) / r['nodes'])} | "
              f"{g['failures']:.0f} | {g['missed']:.0f} |")
        w("")
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser(prog="fleet_tool.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeport")
    s = sub.add_parser("wait")
    s.add_argument("--url", required=True)
    s.add_argument("--timeout", type=float, default=60)
    s = sub.add_parser("reloads")
    s.add_argument("--prom", required=True)
    s = sub.add_parser("reloaded")
    s.add_argument("--prom", required=True)
    s.add_argument("--since", type=int, required=True)
    s.add_argument("--timeout", type=float, default=600)
    s = sub.add_parser("settle")
    s.add_argument("--prom", required=True)
    s.add_argument("--quiet", type=float, default=150)
    s.add_argument("--timeout", type=float, default=3600)
    s = sub.add_parser("measure")
    s.add_argument("--prom", required=True)
    s.add_argument("--seconds", type=float, required=True)
    s = sub.add_parser("check")
    s.add_argument("--prom", required=True)
    s.add_argument("--plan", required=True)
    s.add_argument("--margin", type=int, default=900)
    s = sub.add_parser("verdicts")
    s.add_argument("--prom", required=True)
    s.add_argument("--old", required=True)
    s.add_argument("--new", required=True)
    s.add_argument("--lag", type=int, default=60)
    s.add_argument("--since", type=int, help="also compare at every --step seconds from this time")
    s.add_argument("--step", type=int, default=15)
    s = sub.add_parser("report")
    s.add_argument("--dir", required=True)
    a = p.parse_args()
    {
        "freeport": cmd_freeport,
        "wait": cmd_wait,
        "reloads": cmd_reloads,
        "reloaded": cmd_reloaded,
        "settle": cmd_settle,
        "measure": cmd_measure,
        "check": cmd_check,
        "verdicts": cmd_verdicts,
        "report": cmd_report,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
