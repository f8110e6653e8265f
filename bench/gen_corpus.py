#!/usr/bin/env python3
"""Deterministic journal-style corpus for bench/replay.sh.

    gen_corpus.py --lines 1000000 --seed 20251121 --out corpus.log --expected corpus.expected.json

Every line is `MMM DD HH:MM:SS node-1 UNIT[PID]: MESSAGE` (journalctl's short format). About a
quarter of the lines are meant to match rules of the coinjecture-network and coinjecture-consensus
profiles; the rest is noise (nginx and API access logs, unrelated INFO lines, sshd, systemd, cron,
kernel), a small share of which holds a literal some rule looks for ("Block ", "CID", "Fail", ...)
without being a line that rule should match ("near misses": they reach the regexes, not the metrics).

Each template carries the rules its lines are *meant* to match. The per-rule sum of that intent
is written to --expected; replay.sh compares it with what chainwatch and mtail actually matched,
so a profile regex that misses a documented line (or hits noise) shows up as a difference from
the intent, not only as a difference between the two tools.

Only random.Random(seed).random() is used, so the corpus is byte-identical across Python 3
versions for a given seed and line count.
"""

import argparse
import datetime
import json
import random
import sys

NET = "coinjecture-network/"
CON = "coinjecture-consensus/"
# One log_error rule runs: the two profiles carry the same rule, and merged profiles run it once.
ERR = (NET + "log_error",)
EQ = (NET + "equilibrium_lambda", NET + "equilibrium_eta", NET + "equilibrium_ratio")

API = "coinjecture-api[812]"
NODE = "coinjecture-node[900]"
NGINX = "nginx[1190]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20251121)
    ap.add_argument("--out", required=True)
    ap.add_argument("--expected", required=True, help="JSON file for the intended per-rule matches")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    R = rng.random

    def pick(seq):
        return seq[int(R() * len(seq))]

    def ri(lo, hi):  # inclusive
        return lo + int(R() * (hi - lo + 1))

    # ---------------------------------------------------------------- value pools (fixed size)
    M = 4096
    b32 = "abcdefghijklmnopqrstuvwxyz234567"
    cids = ["bafy2bzace" + "".join(pick(b32) for _ in range(20)) for _ in range(M)]
    ips = [f"{pick([10, 172, 192, 203, 198])}.{ri(0, 255)}.{ri(0, 255)}.{ri(1, 254)}" for _ in range(M)]
    ports = [str(ri(1024, 65535)) for _ in range(M)]
    lam = [0.7071 + (R() - 0.5) * 0.02 for _ in range(M)]
    eta = [0.7071 + (R() - 0.5) * 0.02 for _ in range(M)]
    eqv = [(f"{l:.4f}", f"{e:.4f}", f"{l / e:.4f}") for l, e in zip(lam, eta)]
    peers = [str(ri(3, 40)) for _ in range(M)]
    queued = [str(ri(0, 25)) for _ in range(M)]
    prop_ms = [str(ri(40, 4000)) for _ in range(M)]
    rust_ms = [f"{0.4 + R() * 7.6:.2f}" for _ in range(M)]
    legacy_ms = [f"{4 + R() * 60:.2f}" for _ in range(M)]
    addrs = ["BEANS" + "".join(pick("0123456789abcdef") for _ in range(16)) for _ in range(M)]
    users = ["admin", "test", "oracle", "ubuntu", "git", "postgres", "user", "pi"]
    uas = [
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Prometheus/2.48.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
        "Go-http-client/1.1",
        "kube-probe/1.28",
    ]
    api_errors = [
        "ERROR IPFS gateway returned 502 for {cid}",
        "ERROR Database connection lost: server closed the connection unexpectedly",
        "ERROR Unhandled exception in /v1/data/block/latest: KeyError 'hash'",
    ]

    # ---------------------------------------------------------------- mutable per-run state
    st = {"h": 152300, "cb": 0, "cf": 0, "json": 0, "mode": 0}

    def k():  # random pool index
        return int(R() * M)

    # ---------------------------------------------------------------- matching templates
    def eq_emoji():
        l, e, r = eqv[k()]
        return API, f"INFO ⚖️  Equilibrium: λ={l} η={e} ratio={r}"

    def eq_plain():
        l, e, r = eqv[k()]
        return API, f"INFO ⚖  Equilibrium lambda={l} eta={e} ratio={r}"

    def eq_slash():
        l, e, r = eqv[k()]
        return API, f"INFO ⚖️  Equilibrium: λ={l} η={e} λ/η={r}"

    def broadcast():
        return API, f"INFO 📡 Broadcasting CID {cids[k()]} to {peers[k()]} peers"

    def bc_fail():
        return API, f"WARNING Failed to broadcast CID {cids[k()]}: timeout after 5000ms"

    def gossip_fail():
        return API, f"WARNING gossip of CID {cids[k()]} failed: no peers reachable"

    def propagated():
        return API, f"INFO CID {cids[k()]} propagated in {prop_ms[k()]}ms"

    def net_count():
        return API, f"INFO 📊 Network: {peers[k()]} peers, {queued[k()]} queued"

    def net_kv():
        return API, f"INFO 📊 Network: peers={peers[k()]} queued={queued[k()]}"

    def net_stale():
        return API, f"INFO 📊 Network: peers={peers[k()]} queued={queued[k()]} stale peers: {ri(0, 5)}"

    def conn_fail():
        if R() < 0.7:
            return API, f"WARNING Failed to connect to peer {ips[k()]}:8000: timeout"
        return API, f"WARNING Connection to {ips[k()]}:8000 refused"

    def json_state(sec_iso):
        st["json"] += 1
        if st["json"] % 9000 == 0:  # the API process restarts: its running totals start over
            st["cb"], st["cf"] = 0, 0
        st["cb"] += ri(0, 6)
        if R() < 0.03:
            st["cf"] += 1
        l, e, r = eqv[k()]
        return API, (
            f'{{"timestamp": "{sec_iso}", "node_id": "node-1", "lambda_state": {l}, "eta_state": {e}, '
            f'"ratio": {r}, "peers_active": {peers[k()]}, "cids_queued": {queued[k()]}, '
            f'"cids_broadcast": {st["cb"]}, "cids_failed": {st["cf"]}}}'
        )

    def api_error():
        return API, pick(api_errors).format(cid=cids[k()])

    def verified():
        st["h"] += 1
        x = R()
        if x < 0.70:
            return NODE, f"INFO Block {st['h']} verified in {rust_ms[k()]}ms (rust)"
        if x < 0.98:
            return NODE, f"INFO Block {st['h']} verified in {legacy_ms[k()]}ms (legacy)"
        if x < 0.99:
            return NODE, f"INFO Block {st['h']} verified in {rust_ms[k()]}ms (REFACTORED_PRIMARY)"
        return NODE, f"INFO Block {st['h']} verified in {legacy_ms[k()]}ms (legacy_only)"

    def fallback():
        return NODE, f"WARNING Falling back to legacy consensus for block {st['h'] + 1}"

    def divergence():
        return NODE, f"CRITICAL 🚨 CONSENSUS DIVERGENCE DETECTED! Block: {st['h']}"

    def rust_failed():
        return NODE, f"ERROR Rust verification failed: InvalidMerkleRoot (block {st['h'] + 1})"

    modes = [
        "INFO Consensus initialized in shadow mode",
        "INFO Consensus mode changed to REFACTORED_PRIMARY",
        "INFO Consensus mode set to: legacy_only",
        "INFO Consensus mode: ConsensusMode.REFACTORED_ONLY",
        "INFO Consensus mode changed to shadow",
    ]

    def mode():
        st["mode"] += 1
        return NODE, modes[st["mode"] % len(modes)]

    # ---------------------------------------------------------------- near misses (noise)
    def nm_block():
        return NODE, f"INFO Block {st['h']} received from peer {ips[k()]}:5000"

    def nm_sshfail():
        return f"sshd[{ports[k()]}]", f"Failed password for invalid user {pick(users)} from {ips[k()]} port {ports[k()]} ssh2"

    def nm_pin():
        return API, f"INFO Pinned CID {cids[k()]} locally"

    def nm_cons():
        return NODE, "INFO Consensus engine ready (wrapper v2.1)"

    def nm_queue():
        return API, f"INFO Retry queue drained, {queued[k()]} jobs requeued"

    def nm_json(sec_iso):
        l, _, _ = eqv[k()]
        return API, f'{{"timestamp": "{sec_iso}", "event": "equilibrium_probe", "lambda_state": {l}, "source": "monitor"}}'

    # ---------------------------------------------------------------- plain noise
    methods = ["GET"] * 9 + ["POST"]
    statuses = ["200"] * 14 + ["304", "404", "502"]

    def path():
        x = R()
        if x < 0.25:
            return "/v1/data/block/latest"
        if x < 0.45:
            return f"/v1/data/block/{st['h'] - ri(0, 50)}"
        if x < 0.55:
            return "/v1/network/peers"
        if x < 0.65:
            return "/v1/equilibrium"
        if x < 0.75:
            return "/metrics"
        if x < 0.85:
            return f"/v1/ipfs/{cids[k()]}"
        if x < 0.95:
            return f"/v1/rewards/{addrs[k()]}"
        return "/health"

    def nginx(sec_clf):
        return NGINX, (
            f'{ips[k()]} - - [{sec_clf}] "{pick(methods)} {path()} HTTP/1.1" {pick(statuses)} '
            f'{ri(120, 24000)} "-" "{pick(uas)}"'
        )

    def uvicorn():
        return API, f'INFO:     {ips[k()]}:{ports[k()]} - "{pick(methods)} {path()} HTTP/1.1" {pick(statuses)}'

    def api_info():
        x = R()
        if x < 0.3:
            return API, f"INFO 💾 Stored block {st['h']} ({ri(0, 400)} txs, {ri(1, 900)} KB)"
        if x < 0.5:
            return API, f"INFO 🔄 Syncing headers {st['h'] - ri(0, 9)}/{st['h']}"
        if x < 0.7:
            return API, f"DEBUG Cache hit ratio 0.{ri(50, 99)}"
        if x < 0.9:
            return API, f"INFO Handled GET /metrics in {ri(1, 30)}ms"
        return API, f"INFO ✅ Health check OK (uptime {ri(100, 999999)}s)"

    def node_info():
        x = R()
        if x < 0.35:
            return NODE, f"INFO ⛏️  Mining block {st['h'] + 1} at difficulty {ri(3, 9)}"
        if x < 0.65:
            return NODE, f"INFO Peer {ips[k()]}:5000 connected"
        if x < 0.85:
            return NODE, f"DEBUG Mempool size: {ri(0, 500)}"
        return NODE, f"INFO Reward {R() * 10:.4f} BEANS credited to {addrs[k()]}"

    def system():
        x = R()
        if x < 0.2:
            return "systemd[1]", f"Started Session {ri(1, 9999)} of User ubuntu."
        if x < 0.35:
            return "systemd[1]", f"coinjecture-api.service: Consumed {R() * 100:.3f}s CPU time."
        if x < 0.5:
            return f"sshd[{ports[k()]}]", f"Accepted publickey for ubuntu from {ips[k()]} port {ports[k()]} ssh2: ED25519 SHA256:q1w2e3r4t5y6u7i8o9p0"
        if x < 0.65:
            return f"sshd[{ports[k()]}]", f"Connection closed by {ips[k()]} port {ports[k()]} [preauth]"
        if x < 0.8:
            return f"CRON[{ports[k()]}]", "(root) CMD (/usr/local/bin/backup.sh >/dev/null 2>&1)"
        return "kernel", (
            f"[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC={ips[k()]} DST=10.0.0.5 LEN=40 TOS=0x00 "
            f"PREC=0x00 TTL=241 ID={ri(1, 65535)} PROTO=TCP SPT={ports[k()]} DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0"
        )

    # (name, weight in % of lines, intended rules, function, needs: None | "iso" | "clf")
    T = [
        ("eq_emoji", 4.7, EQ, eq_emoji, None),
        ("eq_plain", 1.5, EQ, eq_plain, None),
        ("eq_lambda_over_eta", 0.5, EQ, eq_slash, None),
        ("cid_broadcast", 4.5, (NET + "cid_broadcast",), broadcast, None),
        ("cid_broadcast_failed", 0.3, (NET + "cid_broadcast_failed",), bc_fail, None),
        ("cid_gossip_failed", 0.2, (NET + "cid_broadcast_failed",), gossip_fail, None),
        ("cid_propagated", 2.0, (NET + "cid_propagation",), propagated, None),
        ("network_count", 2.0, (NET + "network_peers", NET + "broadcast_queue_count"), net_count, None),
        ("network_kv", 1.0, (NET + "network_peers", NET + "broadcast_queue"), net_kv, None),
        ("network_kv_stale", 0.5, (NET + "network_peers", NET + "broadcast_queue", NET + "stale_peers"), net_stale, None),
        ("connection_failed", 0.3, (NET + "connection_failed",), conn_fail, None),
        ("json_state", 2.0, (NET + "json_state",), json_state, "iso"),
        ("api_error", 0.3, ERR, api_error, None),
        ("verified", 4.5, (CON + "verified",), verified, None),
        ("fallback", 0.3, (CON + "fallback",), fallback, None),
        ("divergence", 0.05, (CON + "divergence",) + ERR, divergence, None),
        ("rust_failed", 0.2, (CON + "rust_failed",) + ERR, rust_failed, None),
        ("mode", 0.02, (CON + "mode",), mode, None),
        # near misses: hold a prefilter literal, meant to match nothing
        ("nm_block_received", 1.0, (), nm_block, None),
        ("nm_ssh_failed_password", 0.5, (), nm_sshfail, None),
        ("nm_cid_pinned", 0.4, (), nm_pin, None),
        ("nm_consensus_ready", 0.2, (), nm_cons, None),
        ("nm_requeued", 0.2, (), nm_queue, None),
        ("nm_json_without_eta", 0.2, (), nm_json, "iso"),
        # noise
        ("nginx_access", 30.0, (), nginx, "clf"),
        ("api_access", 15.0, (), uvicorn, None),
        ("api_info", 10.0, (), api_info, None),
        ("node_info", 8.0, (), node_info, None),
        ("system", 9.6, (), system, None),
    ]

    n = a.lines
    which = rng.choices(range(len(T)), weights=[t[1] for t in T], k=n)
    per_sec = 8  # lines per second of log time
    t0 = datetime.datetime(2025, 11, 21, 10, 0, 0, tzinfo=datetime.timezone.utc)
    secs = n // per_sec + 1
    short, iso, clf = [], [], []
    for s in range(secs):
        t = t0 + datetime.timedelta(seconds=s)
        short.append(t.strftime("%b %d %H:%M:%S"))
        iso.append(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
        clf.append(t.strftime("%d/%b/%Y:%H:%M:%S +0000"))

    counts = [0] * len(T)
    fns = [(t[3], t[4]) for t in T]
    with open(a.out, "w", encoding="utf-8", newline="\n") as f:
        buf = []
        for i, w in enumerate(which):
            fn, need = fns[w]
            s = i // per_sec
            if need is None:
                unit, msg = fn()
            elif need == "iso":
                unit, msg = fn(iso[s])
            else:
                unit, msg = fn(clf[s])
            counts[w] += 1
            buf.append(f"{short[s]} node-1 {unit}: {msg}")
            if len(buf) >= 65536:
                buf.append("")
                f.write("\n".join(buf))
                buf = []
        if buf:
            buf.append("")
            f.write("\n".join(buf))

    rules = {}
    matching_lines = 0
    for (name, _, intended, _, _), c in zip(T, counts):
        for r in intended:
            rules[r] = rules.get(r, 0) + c
        if intended:
            matching_lines += c
    exp = {
        "lines": n,
        "seed": a.seed,
        "matching_lines": matching_lines,
        "templates": {t[0]: c for t, c in zip(T, counts)},
        "rule_matches": dict(sorted(rules.items())),
    }
    with open(a.expected, "w") as f:
        json.dump(exp, f, indent=1)
        f.write("\n")
    print(f"wrote {n} lines to {a.out} ({matching_lines} = {100 * matching_lines / n:.1f}% meant to match a rule)", file=sys.stderr)


if __name__ == "__main__":
    main()
