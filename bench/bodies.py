#!/usr/bin/env python3
"""Hostile API bodies at the default caps, fed to the real sidecar; peak RSS per case.

For each case a fresh `chainwatch-exporter` polls a local HTTP server (this script) that first
answers a good body, then the hostile one, then the good one again. Per case it reports the
resident set before (after the good polls), the peak (VmHWM of the process, which only the hostile
body can have raised above the good polls' level), and after (VmRSS once the good body was polled
again), what the sidecar counted (error kind, chainwatch_source_up) and whether the last good values
were still served while the hostile body was. Anchors, in the same run: the body size itself (peak
/ body), and for each JSON body the peak RSS of `python3 -c json.load` (CPython's C parser) on it,
measured by GNU time (`/usr/bin/time`, Debian's `time`; left out without it).
(`promtool check metrics` would be the Prometheus anchor, but it lints: minutes on 269k series.)

Usage: bench/bodies.py --bin target/release/chainwatch-exporter [--out bench/out] [--cases a,b]
Each case says what the sidecar must make of it: a good answer (source_up 1, no error, the good
values still served: the hostile part is valid but large), or an error of one kind (source_up 0,
that kind counted, the last good values still served).
Exit status: 0; 1 when a case did not have its expected outcome (a last good value lost, the
wrong error kind, source_up wrong, /metrics not answering); 2 on a setup failure. Peak RSS
against the 64 MiB target is reported as a verdict, never an exit status.
"""

import argparse
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CAP = 4 * 1024 * 1024  # max_body_bytes default
TARGET_MIB = 64

GOOD_PROM = (
    "# TYPE bitcell_chain_height gauge\nbitcell_chain_height 812\nbitcell_sync_progress 97.5\n"
    "bitcell_peer_count 5\nbitcell_dht_peer_count 40\nbitcell_txs_processed_total 1000\n"
    "bitcell_pending_txs 12\nbitcell_proofs_generated_total 30\nbitcell_proofs_verified_total 29\n"
    "bitcell_active_miners 4\nbitcell_banned_miners 1\nbitcell_bytes_sent_total 5e6\n"
    "bitcell_bytes_received_total 7e6\n"
)
GOOD_STATUS = json.dumps({
    "rounds_completed": 8640, "proofs_processed": 43200, "pending_proofs": 12,
    "active_validators": 3, "total_validators": 4, "network_health": "HEALTHY", "view_changes": 3,
    "validators": [{"id": "node_1", "stake": 10000, "rounds": 120, "accuracy": 0.99, "rewards": 42.5},
                   {"id": "node_2", "stake": 9000, "rounds": 118, "accuracy": 0.97, "rewards": 40}],
})
GOOD_PEERS = [{"addr": "188.166.255.63:8444", "pingtime": 0.182},
              {"addr": "134.122.4.164:8444", "pingtime": 0.091}]


def fill(head, unit, tail, size=CAP - 64):
    """head + unit(0) + unit(1) + ... + tail, at most `size` bytes."""
    out = [head]
    n = len(head) + len(tail)
    i = 0
    while True:
        u = unit(i)
        if n + len(u) > size:
            break
        out.append(u)
        n += len(u)
        i += 1
    out.append(tail)
    return "".join(out).encode()


def joined(head, unit, sep, tail, size=CAP - 64):
    body = fill(head, lambda i: (sep if i else "") + unit(i), tail, size)
    return body


def deep(size=CAP - 64):
    half = (size - 2) // 2
    return ("[" * half + "]" * half).encode()


# name -> (profile, source type, hostile body (None: 100 MiB streamed) or getpeerinfo result,
#          series that must keep its good value, the error kind expected (None: a good answer))
def cases():
    keep_peer = ("chain_peer_ping_seconds", {"peer": "134.122.4.164:8444"}, 0.091)
    rpc = lambda result, kind: ("dilithion", "jsonrpc", result, keep_peer, kind)
    prom = lambda body, kind: ("bitcell", "prometheus", body, ("chain_dht_peers", {}, 40.0), kind)
    keep_validator = ("chain_pop_validator_stake", {"validator": "node_2"}, 9000.0)
    pop = lambda body, kind: ("pop-validator", "http_json", body, keep_validator, kind)
    # A good status document with `extra` members after its own.
    status = lambda extra: GOOD_STATUS[:-1] + "," + extra
    return {
        # Prometheus text. Good answers with a hostile part: the 269k tiny distinct
        # series (not mapped, then of a mapped name, summed), one 4 MiB label value, one sample
        # with 391k labels.
        "prom_tiny_series": prom(fill(GOOD_PROM, lambda i: f'a{{i="{i}"}} 1\n', ""), None),
        "prom_tiny_mapped": prom(fill(GOOD_PROM, lambda i: f'bitcell_peer_count{{i="{i}"}} 1\n', ""), None),
        "prom_long_label": prom((GOOD_PROM + 'bitcell_peer_count{x="' + "A" * (CAP - 1024) + '"} 1\n').encode(), None),
        "prom_many_labels": prom(fill(GOOD_PROM + "bitcell_peer_count{", lambda i: f'l{i}="",', "} 1\n"), None),
        # Answers that cannot be read (wholly or partly).
        "prom_nan_inf": prom(GOOD_PROM.replace(" 40\n", " NaN\n").replace(" 4\n", " +Inf\n").encode(), "decode"),
        "prom_garbage": prom(fill("", lambda i: "{{\"\\ }} =\n" if i % 2 else "\x00\x01 } {\n", ""), "decode"),
        # JSON: the 524k tiny objects where the mapping does not look, then where it does
        # (an `each`) as objects, empty objects and numbers: past the values a document may keep.
        "json_tiny_objects": pop(joined(status('"junk":['), lambda i: '{"a":1}', ",", "]}"), None),
        "json_each_objects": pop(joined('{"validators":[', lambda i: f'{{"id":"v{i}","stake":1}}', ",", "]}"), "too_large"),
        "json_each_empty": pop(joined('{"validators":[', lambda i: "{}", ",", "]}"), "too_large"),
        "json_each_numbers": pop(joined('{"validators":[', lambda i: "0", ",", "]}"), "too_large"),
        "json_deep": pop(deep(), "decode"),
        "json_long_string": pop(('{"network_health":"' + "x" * (CAP - 64) + '"}').encode(), "decode"),
        "json_long_label": pop(('{"validators":[{"id":"' + "x" * (CAP - 64) + '","stake":1}]}').encode(), "decode"),
        "json_wrong_types": pop(b'{"rounds_completed":"lots","validators":7,"stake":null}', "decode"),
        "json_wrong_root": pop(b'"not an object"', "decode"),
        # JSON-RPC: getpeerinfo answers.
        "rpc_peers_tiny": rpc(joined("[", lambda i: f'{{"addr":"{i}","pingtime":0.1}}', ",", "]"), "too_large"),
        "rpc_wrong_type": rpc(b'"not a list"', "decode"),
        # Past the cap: a 100 MiB body, streamed by the server.
        "too_large": pop(None, "too_large"),
    }


class Server:
    """Answers the good body until told otherwise; /hostile, /good switch it."""

    def __init__(self):
        self.mode = "good"
        self.hostile = b""
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, body, ctype="application/json"):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

            def huge(self):
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = b"7" * 65536
                try:
                    for _ in range(1600):
                        self.wfile.write(chunk)
                except OSError:
                    pass

            def do_GET(self):
                if srv.mode == "good":
                    if self.path == "/metrics":
                        self.send(GOOD_PROM.encode(), "text/plain")
                    else:
                        self.send(GOOD_STATUS.encode())
                elif srv.hostile is None:
                    self.huge()
                else:
                    self.send(srv.hostile, "text/plain" if self.path == "/metrics" else "application/json")

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                req = json.loads(self.rfile.read(n) or b"{}")
                method = req.get("method")
                if method == "getpeerinfo":
                    if srv.mode == "good":
                        result = json.dumps(GOOD_PEERS).encode()
                    elif srv.hostile is None:
                        return self.huge()
                    else:
                        result = srv.hostile
                else:
                    result = b"1234" if method == "getblockcount" else b"3"
                self.send(b'{"result":' + result + b',"error":null,"id":"chainwatch"}')

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def value(m, name, want):
    for labels, v in m.get(name, []):
        if all(labels.get(k) == x for k, x in want.items()):
            return v
    return None


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def polls(m):
    return value(m, "chainwatch_source_poll_duration_seconds_count", {"source": "api"}) or 0


def wait_polls(port, n, timeout=90):
    start = polls(scrape(port))
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = scrape(port)
        if polls(m) >= start + n:
            return m
        time.sleep(0.2)
    raise RuntimeError(f"fewer than {n} polls in {timeout}s")


TIME = "/usr/bin/time"


def peak_of(cmd, stdin_path):
    """Peak RSS (KiB) of `cmd` reading `stdin_path`, by GNU time (its child is forked from time,
    not from this process, whose pages a forked child would count at first); None without it."""
    if not os.access(TIME, os.X_OK):
        return None
    with open(stdin_path, "rb") as f:
        r = subprocess.run([TIME, "-f", "%M", *cmd], stdin=f, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    return int(r.stderr.strip().splitlines()[-1])


def run_case(binary, name, case, srv, work):
    profile, kind, hostile, (series, labels, good), _ = case
    port = free_port()
    cfg = os.path.join(work, f"{name}.yaml")
    with open(cfg, "w") as f:
        f.write(f"version: 1\nprofiles: [{profile}]\nlabels: {{node: bench}}\nsources:\n"
                f"  - name: api\n    type: {kind}\n    url: http://127.0.0.1:{srv.port}\n"
                f"    interval: 2s\n    timeout: 2s\n")
    srv.mode, srv.hostile = "good", hostile
    log = open(os.path.join(work, f"{name}.log"), "w")
    p = subprocess.Popen([binary, "--config", cfg, "--web.listen-address", f"127.0.0.1:{port}"],
                         stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while True:
            try:
                m = scrape(port)
                if value(m, series, labels) == good:
                    break
            except OSError:
                pass
            if time.time() > deadline or p.poll() is not None:
                raise RuntimeError(f"{name}: sidecar did not serve the good values")
            time.sleep(0.1)
        wait_polls(port, 3)
        before = status_kb(p.pid, "VmRSS")
        hwm_good = status_kb(p.pid, "VmHWM")
        errors_before = {l.get("kind"): v for l, v in scrape(port).get("chainwatch_source_errors_total", [])
                         if l.get("source") == "api"}
        srv.mode = "hostile"
        m = wait_polls(port, 3)
        peak = status_kb(p.pid, "VmHWM")
        kept = value(m, series, labels) == good
        up = value(m, "chainwatch_source_up", {"source": "api"})
        kinds = sorted(l["kind"] for l, v in m.get("chainwatch_source_errors_total", [])
                       if l.get("source") == "api" and v > errors_before.get(l.get("kind"), 0))
        srv.mode = "good"
        wait_polls(port, 4)
        after = status_kb(p.pid, "VmRSS")
        return {"case": name, "body": len(hostile) if hostile is not None else 100 << 20,
                "before": before, "hwm_good": hwm_good, "peak": peak, "after": after,
                "kept": kept, "up": up, "kinds": ",".join(kinds) or "-"}
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def growth_per_body(r):
    """(peak - before) / body: what the answer cost, in bodies."""
    body = min(r["body"], CAP)
    return f"{(r['peak'] - r['before']) / 1024 / (body / 1048576):.1f}x" if body >= 1 << 20 else "-"


def mib(kb):
    return f"{kb / 1024:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--cases", default="")
    a = ap.parse_args()
    all_cases = cases()
    names = [n for n in a.cases.split(",") if n] or list(all_cases)
    srv = Server()
    rows = []
    broken = []
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            case = all_cases[name]
            r = run_case(a.bin, name, case, srv, work)
            hostile = case[2]
            anchor = "-"
            if hostile is not None and len(hostile) > 1024:
                path = os.path.join(work, name + ".body")
                with open(path, "wb") as f:
                    f.write(hostile)
                if case[1] != "prometheus":
                    kb = peak_of([sys.executable, "-c", "import json,sys\ntry: json.load(sys.stdin.buffer)\nexcept RecursionError: pass"], path)
                    anchor = "-" if kb is None else "python json.load " + mib(kb)
                os.unlink(path)
            r["anchor"] = anchor
            rows.append(r)
            expect = case[4]
            r["expect"] = expect or "a good answer"
            if expect is None:
                ok = r["kept"] and r["up"] == 1 and r["kinds"] == "-"
            else:
                ok = r["kept"] and r["up"] == 0 and r["kinds"] == expect
            if not ok:
                broken.append(name)
            print(f"{name}: peak {mib(r['peak'])} MiB, before {mib(r['before'])}, after {mib(r['after'])}, "
                  f"kinds {r['kinds']}, up {r['up']}, last good kept {r['kept']}", flush=True)
    lines = [
        f"Hostile bodies at the default caps (max_body_bytes {CAP} = 4 MiB); RSS in MiB of the whole sidecar process.",
        "",
        "| case | body MiB | expected | RSS before | peak RSS | RSS after | (peak − before) / body | error counted | source_up | last good kept | anchor peak (same body) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['body'] / 1048576:.2f} | {r['expect']} | {mib(r['before'])} | {mib(r['peak'])} | "
                     f"{mib(r['after'])} | {growth_per_body(r)} | {r['kinds']} | "
                     f"{r['up']:g} | {'yes' if r['kept'] else 'NO'} | {r['anchor']} |")
    worst = max(rows, key=lambda r: r["peak"])
    back = max(rows, key=lambda r: r["after"] - r["before"])
    lines += [
        "",
        f"Peak RSS ≤ {TARGET_MIB} MiB for every body ≤ 4 MiB: "
        f"{'met' if all(r['peak'] <= TARGET_MIB * 1024 for r in rows) else 'NOT met'} "
        f"(worst {mib(worst['peak'])} MiB, {worst['case']}).",
        f"Back to baseline: largest RSS after − before {(back['after'] - back['before']) / 1024:+.1f} MiB ({back['case']}).",
    ]
    if broken:
        lines.append(f"BROKEN (not the expected outcome: a last good value lost, the wrong error kind, or source_up wrong): {', '.join(broken)}")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "bodies-results.md"), "w") as f:
        f.write(text)
    return 1 if broken else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as e:
        print(f"bodies.py: {e}", file=sys.stderr)
        sys.exit(2)
