#!/usr/bin/env python3
"""Helpers of bench/load.sh (see bench/README.md, "Load and fault suite").

Subcommands (each prints or writes JSON; load.sh strings them together):

  freeport                       a free TCP port on 127.0.0.1
  prepare  --dir D               create D/node.log holding one unique first line
  wait     --port P --kind K     wait until /metrics answers (and, for chainwatch, a file is followed)
  write    --dir D --rate R ...  append ping/noise lines to D/node.log at R lines/s with rename
                                 rotation (plus late writes to the renamed file) and copytruncate,
                                 until --stop-file appears; --burst-bytes B writes B bytes as fast
                                 as possible instead, sampling the target's RSS and counters
  counts   --port P --kind K     the counters of one scrape
  settle   --port P --kind K     wait until the target has read every written line (or stalls)
  markers  --file F --port P     line -> /metrics latency, one unique marker at a time
  cpu      --pid N[,N..]         CPU seconds and wake-ups of processes over --seconds
  wrk      --in FILE             parse `wrk --latency` output
  report   --dir D               the results table (Markdown) from the JSON files of one run

Only the Python standard library is used.
"""
import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import socket
import statistics
import sys
import threading
import time

LOG = "node.log"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ scraping


class Scraper:
    """Keep-alive HTTP client for one target's /metrics."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def get(self, path="/metrics"):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise OSError(f"HTTP {r.status}")
                return body
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


def _sum(body, name, label_filter=None):
    pat = re.compile(rb"^" + re.escape(name.encode()) + rb"(\{[^}]*\})? (\S+)$", re.M)
    total, seen = 0.0, False
    for m in pat.finditer(body):
        labels = (m.group(1) or b"").decode()
        if label_filter and label_filter not in labels:
            continue
        total += float(m.group(2))
        seen = True
    return total if seen else None


def counts(body, kind):
    """The counters load.sh compares with what was written."""
    c = {}
    if kind == "chainwatch":
        c["lines"] = _sum(body, "chainwatch_source_lines_read_total")
        c["dropped"] = _sum(body, "chainwatch_series_dropped_total")
        c["rotations"] = _sum(body, "chainwatch_file_rotations_total")
        c["truncations"] = _sum(body, "chainwatch_file_truncations_total")
        c["files_followed"] = _sum(body, "chainwatch_files_followed")
        c["read_errors"] = _sum(body, "chainwatch_source_errors_total")
    else:
        c["lines"] = _sum(body, "mtail_lines_total")
    c["ping"] = _sum(body, "chainwatch_rule_matches_total", 'rule="loadbench/ping"') or 0.0
    c["marker"] = _sum(body, "chainwatch_rule_matches_total", 'rule="loadbench/marker"') or 0.0
    c["series"] = len(re.findall(rb"^chain_peer_ping_seconds\{", body, re.M))
    c["body_bytes"] = len(body)
    for k, v in list(c.items()):
        if isinstance(v, float) and v.is_integer():
            c[k] = int(v)
    return c


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


# ------------------------------------------------------------------ the writer


class LogWriter:
    """Appends lines to DIR/node.log from a pool of pre-formatted chunks.

    Every file starts with a unique line (the follower identifies files by their first line).
    Counts every line it writes, and the ping lines among them.
    """

    def __init__(self, d, peers, match_every, chunk_lines, keep, seed):
        self.dir, self.path = d, os.path.join(d, LOG)
        self.keep = keep
        self.rotate_every = None
        self.lines = 0
        self.pings = 0
        self.rotations = 0
        self.copytruncates = 0
        self.late_lines = 0
        self.file_lines = 0
        self.files = 1
        rnd = random.Random(seed)
        pings_per_chunk = len([i for i in range(chunk_lines) if i % match_every == 0])
        n_chunks = max(16, math.ceil(peers / max(pings_per_chunk, 1)))
        self.pool = []
        peer = 0
        for c in range(n_chunks):
            out, pings = [], 0
            for i in range(chunk_lines):
                ts = f"2025-11-22T00:{c % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z node-1"
                if i % match_every == 0:
                    rtt = rnd.randrange(1, 5000) / 10
                    out.append(f"{ts} INFO net: ping peer=p{peer % peers:05d} rtt={rtt}ms\n")
                    peer += 1
                    pings += 1
                else:
                    out.append(f"{ts} DEBUG mempool: accepted tx {rnd.getrandbits(64):016x} fee={rnd.randrange(1, 999)}\n")
            self.pool.append((("".join(out)).encode(), chunk_lines, pings))
        self.chunk_bytes = sum(len(p[0]) for p in self.pool) / len(self.pool)
        self.next = 0
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self.fd).st_size == 0:
            self.header()

    def header(self, fd=None):
        line = f"2025-11-22T00:00:00.000Z node-1 INFO bench: log file {self.files} opened after {self.lines} lines t={time.time_ns()} pid={os.getpid()}\n"
        os.write(self.fd if fd is None else fd, line.encode())
        self.lines += 1
        self.file_lines = 1

    def chunk(self, fd=None):
        data, n, p = self.pool[self.next]
        self.next = (self.next + 1) % len(self.pool)
        os.write(self.fd if fd is None else fd, data)
        self.lines += n
        self.pings += p
        self.file_lines += n
        return len(data)

    def shift(self):
        last = f"{self.path}.{self.keep}"
        if os.path.exists(last):
            os.unlink(last)
        for j in range(self.keep - 1, 0, -1):
            src = f"{self.path}.{j}"
            if os.path.exists(src):
                os.rename(src, f"{self.path}.{j + 1}")

    def rotate_rename(self, late_chunks=1):
        """logrotate `create`: rename, a few late writes land on the old file, then reopen."""
        self.shift()
        os.rename(self.path, self.path + ".1")
        before = self.lines
        for _ in range(late_chunks):
            self.chunk()
        self.late_lines += self.lines - before
        os.close(self.fd)
        self.files += 1
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        self.header()
        self.rotations += 1

    def rotate_copytruncate(self):
        """logrotate `copytruncate`: copy, then truncate in place; the writer keeps its fd."""
        self.shift()
        shutil.copyfile(self.path, self.path + ".1")
        os.ftruncate(self.fd, 0)
        self.files += 1
        self.header()
        self.copytruncates += 1

    def stats(self):
        return {
            "lines": self.lines,
            "ping": self.pings,
            "rotations": self.rotations,
            "copytruncates": self.copytruncates,
            "late_lines": self.late_lines,
            "files": self.files,
            "chunk_lines": self.pool[0][1],
            "rotate_every": self.rotate_every,
            "bytes_per_line": round(self.chunk_bytes / self.pool[0][1], 1),
        }


def cmd_write(a):
    w = LogWriter(a.dir, a.peers, a.match_every, a.chunk_lines, a.keep, a.seed)
    w.rotate_every = a.rotate_every if not a.burst_bytes else None
    start_lines = w.lines
    t0 = time.monotonic()
    res = {}
    if a.burst_bytes:
        res = burst(w, a)
    else:
        rot = 0
        while True:
            now = time.monotonic()
            due = a.rate * (now - t0)
            while w.lines - start_lines + w.pool[w.next][1] <= due:
                w.chunk()
                if w.file_lines >= a.rotate_every:
                    rot += 1
                    if a.copytruncate_every and rot % a.copytruncate_every == 0:
                        w.rotate_copytruncate()
                    else:
                        w.rotate_rename()
            if (a.stop_file and os.path.exists(a.stop_file)) or now - t0 >= a.max_seconds:
                break
            time.sleep(0.002)
        secs = time.monotonic() - t0
        res = {"seconds": round(secs, 3), "rate_target": a.rate, "rate": round((w.lines - start_lines) / secs)}
    os.close(w.fd)
    res.update(w.stats())  # lines: what this run wrote (a prepared file's first line predates the target)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: v for k, v in res.items() if k != "samples"}))


def burst(w, a):
    """Write --burst-bytes as fast as possible; sample the target's RSS and counters meanwhile."""
    s = Scraper(a.port)
    done = threading.Event()
    wstate = {}

    def writer():
        t = time.monotonic()
        written = 0
        while written < a.burst_bytes:
            written += w.chunk()
        wstate["seconds"] = time.monotonic() - t
        wstate["bytes"] = written
        done.set()

    samples = []
    t0 = time.monotonic()
    th = threading.Thread(target=writer)
    th.start()
    last_change, last_lines = time.monotonic(), -1
    next_t = t0
    state = "timeout"
    while True:
        next_t += a.interval
        time.sleep(max(0.0, next_t - time.monotonic()))
        now = time.monotonic()
        st = proc_status(a.pid)
        try:
            c = counts(s.get(), a.kind)
        except OSError as e:
            c = {"lines": None, "error": str(e)}
        samples.append({"t": round(now - t0, 2), "rss_kib": st.get("VmRSS"), "lines": c.get("lines"),
                        "written": w.lines})
        if c.get("lines") != last_lines:
            last_lines, last_change = c.get("lines"), now
        if done.is_set():
            if last_lines is not None and last_lines >= w.lines and now - last_change >= 1.0:
                state = "caught-up"
                break
            if now - last_change >= a.stall:
                state = "stalled"
                break
        if now - t0 > a.timeout:
            break
    th.join()
    end = time.monotonic()
    final = counts(s.get(), a.kind)
    st = proc_status(a.pid)
    caught = next((x["t"] for x in samples if x["lines"] is not None and x["lines"] >= w.lines), None)
    rss = [x["rss_kib"] for x in samples if x["rss_kib"]]
    # Early vs late: past the first WARMUP seconds (series created, first scrapes encoded), the
    # median of the first fifth of the samples against the median of the last fifth.
    steady = [x["rss_kib"] for x in samples if x["rss_kib"] and x["t"] >= a.warmup] or rss
    k = max(1, len(steady) // 5)
    return {
        "bytes": wstate.get("bytes"),
        "write_seconds": round(wstate.get("seconds", 0), 3),
        "catchup_seconds": caught,
        "state": state,
        "target": final,
        "rss_first_kib": rss[0] if rss else None,
        "rss_early_kib": int(statistics.median(steady[:k])) if steady else None,
        "rss_late_kib": int(statistics.median(steady[-k:])) if steady else None,
        "warmup_seconds": a.warmup,
        "rss_last_kib": rss[-1] if rss else None,
        "rss_max_kib": max(rss) if rss else None,
        "hwm_kib": st.get("VmHWM"),
        "samples": samples,
        "seconds": round(end - t0, 2),
    }


# ------------------------------------------------------------------ other subcommands


def cmd_freeport(_a):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_prepare(a):
    os.makedirs(a.dir, exist_ok=True)
    with open(os.path.join(a.dir, LOG), "w") as f:
        f.write(f"2025-11-22T00:00:00.000Z node-1 INFO bench: log created t={time.time_ns()} dir={a.dir}\n")


def cmd_wait(a):
    s = Scraper(a.port, timeout=2)
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.timeout:
        if a.pid and not os.path.exists(f"/proc/{a.pid}"):
            sys.exit(f"process {a.pid} exited")
        try:
            s.get()
            if a.kind == "chainwatch":
                h = json.loads(s.get("/health"))
                if all(src.get("ready") and src.get("files", 0) >= a.files for src in h["sources"].values()):
                    return
            else:
                time.sleep(a.settle)  # mtail finds its log on its next glob poll (250 ms)
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    sys.exit(f"127.0.0.1:{a.port} not ready after {a.timeout}s")


def cmd_counts(a):
    c = counts(Scraper(a.port).get(), a.kind)
    c["t"] = time.time()
    print(json.dumps(c))


def cmd_wait_series(a):
    s = Scraper(a.port)
    t0 = time.monotonic()
    c = {}
    while time.monotonic() - t0 < a.timeout:
        c = counts(s.get(), a.kind)
        if c["series"] >= a.series:
            break
        time.sleep(0.2)
    c["t"] = time.time()
    print(json.dumps(c))


def cmd_settle(a):
    w = json.load(open(a.written))
    s = Scraper(a.port)
    t0 = time.monotonic()
    last, last_change = None, t0
    state = "timeout"
    reached = None
    while True:
        now = time.monotonic()
        c = counts(s.get(), a.kind)
        if c["lines"] != last:
            last, last_change = c["lines"], now
        if reached is None and c["lines"] is not None and c["lines"] >= w["lines"]:
            reached = now - t0
        if reached is not None and now - last_change >= a.stable:
            state = "caught-up"
            break
        if now - last_change >= a.stall:
            state = "stalled"
            break
        if now - t0 >= a.timeout:
            break
        time.sleep(0.1)
    c["settle_state"] = state
    c["settle_seconds"] = round(reached if reached is not None else time.monotonic() - t0, 2)
    c.update({k: v for k, v in proc_status(a.pid).items()} if a.pid else {})
    with open(a.out, "w") as f:
        json.dump(c, f, indent=1)
    print(json.dumps(c))


def cmd_markers(a):
    s = Scraper(a.port)
    fd = os.open(a.file, os.O_WRONLY | os.O_APPEND)
    pat = re.compile(rb"^chain_block_height(?:\{[^}]*\})? (\S+)$", re.M)
    rnd = random.Random(a.seed)
    lat, missed, polls, scrape_t = [], 0, 0, []
    for i in range(a.count):
        v = a.base + i
        line = f"2025-11-22T00:00:00.000Z node-1 INFO chain: MARKER height={v}\n".encode()
        t0 = time.perf_counter()
        os.write(fd, line)
        while True:
            ts = time.perf_counter()
            body = s.get()
            scrape_t.append(time.perf_counter() - ts)
            polls += 1
            m = pat.search(body)
            now = time.perf_counter()
            if m and float(m.group(1)) == v:
                lat.append(now - t0)
                break
            if now - t0 > a.timeout:
                missed += 1
                break
        time.sleep(rnd.uniform(0.01, 0.05))
    os.close(fd)
    lat.sort()
    ms = lambda x: round(x * 1000, 2)
    q = lambda p: ms(lat[min(len(lat) - 1, int(math.ceil(p * len(lat))) - 1)]) if lat else None
    res = {"count": a.count, "seen": len(lat), "missed": missed, "p50_ms": q(0.50), "p90_ms": q(0.90),
           "p99_ms": q(0.99), "max_ms": ms(lat[-1]) if lat else None, "polls": polls,
           "scrape_median_ms": ms(statistics.median(scrape_t)) if scrape_t else None}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))


def _ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rpartition(")")[2].split()
    # rest[0] is field 3 (state): utime is field 14, stime field 15.
    return int(rest[11]) + int(rest[12])


def _switches(pid):
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def cmd_cpu(a):
    pids = [int(p) for p in a.pid.split(",")]
    names = a.names.split(",")
    before = {p: (_ticks(p), _switches(p)) for p in pids}
    t0 = time.monotonic()
    time.sleep(a.seconds)
    secs = time.monotonic() - t0
    res = {}
    for p, n in zip(pids, names):
        t, sw = _ticks(p), _switches(p)
        cpu = (t - before[p][0]) / CLK_TCK
        res[n] = {"seconds": round(secs, 2), "cpu_seconds": round(cpu, 3),
                  "percent_of_core": round(100 * cpu / secs, 3),
                  "wakeups_per_s": round((sw - before[p][1]) / secs, 1),
                  "tick_resolution_percent": round(100 / CLK_TCK / secs, 3)}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    for n, v in res.items():
        print(f"{n}: {v['cpu_seconds']} CPU s in {v['seconds']} s = {v['percent_of_core']} % of a core, "
              f"{v['wakeups_per_s']} wake-ups/s")


def cmd_wrk(a):
    if a.print_ticks:
        print(_ticks(a.pid))
        return
    text = open(a.input).read()

    def dur(s):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m.group(2)]

    res = {}
    for p in ("50", "75", "90", "99"):
        m = re.search(r"^\s+" + p + r"%\s+(\S+)", text, re.M)
        res[f"p{p}_ms"] = dur(m.group(1)) if m else None
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    res["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", text)
    res["requests"] = int(m.group(1)) if m else None
    res["read"] = m.group(3) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", text)
    res["socket_errors"] = m.group(1).strip() if m else "none"
    res["cmd"] = a.cmd_text
    if a.pid:
        res.update(proc_status(a.pid))
        if a.ticks is not None and res.get("requests"):
            # The target's CPU time (user+sys) over the run, per request.
            res["cpu_ms_per_request"] = round((_ticks(a.pid) - a.ticks) / CLK_TCK * 1000 / res["requests"], 3)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))


# ------------------------------------------------------------------ report


def mib(kib):
    return f"{kib / 1024:.1f} MiB" if kib is not None else "–"


def fmt_int(n):
    return f"{n:,}" if isinstance(n, (int, float)) and n is not None else "–"


def loss(written, c):
    """(lost, double) lines and matches, from what was written and what the target counted."""
    out = {}
    for key in ("lines", "ping"):
        got = c.get(key)
        if got is None:
            out[key] = None
        else:
            out[key] = got - written[key]
    return out


def loss_text(d, state=None):
    parts = []
    for key, label in (("lines", "lines"), ("ping", "ping matches")):
        v = d.get(key)
        if v is None:
            parts.append(f"{label}: no count")
        elif v == 0:
            parts.append(f"0 {label} lost")
        elif v < 0:
            parts.append(f"**{-v:,} {label} lost**")
        else:
            parts.append(f"**{v:,} {label} counted twice**")
    s = ", ".join(parts)
    if state and state != "caught-up":
        s += f" ({state})"
    return s


def cmd_report(a):
    d = a.dir
    j = lambda n: json.load(open(os.path.join(d, n))) if os.path.exists(os.path.join(d, n)) else None
    meta = j("meta.json") or {}
    bad = []
    md = []
    md.append("## chainwatch load and fault suite\n")
    md.append(f"Run {meta.get('date')} by bench/load.sh. CPU: {meta.get('cpu')}, {meta.get('cores')} cores. "
              f"Versions: {meta.get('versions')}.")
    md.append(f"Load average (1/5/15 min): {meta.get('load_start')} at the start, {meta.get('load_end')} at the end "
              f"— other work may be running on this machine; latencies and rates carry its noise.")
    md.append(f"Settings: {meta.get('settings')}.\n")

    # 0. scrape latency
    kinds = [k for k in ("chainwatch", "mtail") if j(f"scrape-{k}-idle-plain.json")]
    if kinds:
        sc = {(k, ph, gz): j(f"scrape-{k}-{ph}-{gz}.json")
              for k in kinds for ph in ("idle", "ingest") for gz in ("plain", "gzip")}
        ser = {k: j(f"scrape-{k}-series.json") or {} for k in kinds}
        wr = {k: j(f"scrape-{k}-ingest-written.json") or {} for k in kinds}
        la = {k: j(f"scrape-{k}-load.json") or {} for k in kinds}
        md.append("### 0. Scrape latency: one scraper back to back (`wrk -t1 -c1 --latency`), idle and under ingest\n")
        md.append("| | " + " | ".join(f"{k} p50 / p99" for k in kinds)
                  + (" | mtail ÷ chainwatch, p50 / p99" if len(kinds) == 2 else "")
                  + " | " + " | ".join(f"{k} scrapes/s, bytes per scrape" for k in kinds) + " |")
        md.append("|---|" + "---:|" * (2 * len(kinds) + (1 if len(kinds) == 2 else 0)))

        def per_scrape(r):
            m = re.match(r"([\d.]+)([KMG]?B)$", r.get("read") or "")
            if not m or not r.get("requests"):
                return "–"
            b = float(m.group(1)) * {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}[m.group(2)]
            return f"{b / r['requests'] / 1024:.0f} KiB"

        for ph, gz, label in (("idle", "plain", "idle, uncompressed"), ("idle", "gzip", "idle, gzip"),
                              ("ingest", "plain", "under ingest, uncompressed"), ("ingest", "gzip", "under ingest, gzip")):
            cells = []
            for k in kinds:
                r = sc[(k, ph, gz)]
                cells.append(f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms" if r and r["p99_ms"] else "–")
            if len(kinds) == 2:
                a_, b_ = sc[("chainwatch", ph, gz)], sc[("mtail", ph, gz)]
                try:
                    cells.append(f"{b_['p50_ms'] / a_['p50_ms']:.1f}x / {b_['p99_ms'] / a_['p99_ms']:.1f}x")
                except (TypeError, ZeroDivisionError, KeyError):
                    cells.append("–")
            for k in kinds:
                r = sc[(k, ph, gz)]
                cells.append(f"{r['rps']:.0f}, {per_scrape(r)}" if r and r.get("rps") else "–")
            md.append(f"| {label} | " + " | ".join(cells) + " |")
        md.append("")
        cpu = []
        for k in kinds:
            for gz in ("plain", "gzip"):
                r = sc[(k, "idle", gz)]
                if r and r.get("cpu_ms_per_request") is not None:
                    cpu.append(f"{k} {'gzip' if gz == 'gzip' else 'uncompressed'} {r['cpu_ms_per_request']} ms")
        if cpu:
            md.append("CPU time (user+sys) of the target per idle scrape, from /proc/PID/stat over the wrk run "
                      "(steadier than latency on a shared machine): " + ", ".join(cpu) + ".\n")
        for k in kinds:
            md.append(f"- {k}: {ser[k].get('series', '–')} series of chain_peer_ping_seconds, "
                      f"{(ser[k].get('body_bytes') or 0) / 1024:.0f} KiB uncompressed; writer during the ingest runs: "
                      f"{fmt_int(wr[k].get('rate'))} lines/s (target {fmt_int(wr[k].get('rate_target'))}); "
                      f"1-min load average before the idle runs {la[k].get('idle', '–')}, after the ingest runs "
                      f"{la[k].get('ingest', '–')}.")
        cwi = [sc[("chainwatch", "idle", g)] for g in ("plain", "gzip")]
        cwl = [sc[("chainwatch", "ingest", g)] for g in ("plain", "gzip")]
        if all(r and r["p99_ms"] for r in cwi + cwl):
            i99, l99 = max(r["p99_ms"] for r in cwi), max(r["p99_ms"] for r in cwl)
            md.append(f"\nTargets: chainwatch p99 ≤ 10 ms idle: {i99:.2f} ms → **{'met' if i99 <= 10 else 'NOT met'}**; "
                      f"≤ 25 ms under ingest: {l99:.2f} ms → **{'met' if l99 <= 25 else 'NOT met'}** (worse of "
                      "uncompressed and gzip).")
        cost = os.path.join(d, "scrape-cost.md")
        if os.path.exists(cost):
            md.append("\nWhere a chainwatch scrape's time goes (`exporter/examples/scrape_cost.rs`: the same "
                      "registry, each step alone, in one process, no HTTP):\n")
            md.append(open(cost).read())
        md.append("")

    # 1. wrk under ingest
    if not j("load-chainwatch-written.json"):
        return report_rest(a, d, j, meta, bad, md)
    md.append("### 1. Scrapes under ingest (wrk against /metrics while a writer appends to a rotating file)\n")
    cols = [(t, n) for t, n in (("chainwatch", "chainwatch"), ("mtail", "mtail, same run"),
                                ("mtail-nowrk", "mtail, lower rate, no wrk"))
            if j(f"load-{t}-written.json")]
    tools = [t for t, _ in cols]
    md.append("| | " + " | ".join(n for _, n in cols) + " |")
    md.append("|---|" + "---:|" * len(cols))
    W = {t: j(f"load-{t}-written.json") for t in tools}
    S = {t: j(f"load-{t}-settle.json") for t in tools}
    K = {t: j(f"load-{t}-wrk.json") for t in tools}
    X = {t: j(f"load-{t}-wrkmax.json") for t in tools}
    B = {t: j(f"load-{t}-series.json") for t in tools}
    E = {t: j(f"load-{t}-series-end.json") for t in tools}
    L = {t: loss(W[t], S[t]) if W[t] and S[t] else {} for t in tools}

    def row(label, f):
        cells = []
        for t in tools:
            try:
                cells.append(f(t))
            except (KeyError, TypeError, AttributeError, ZeroDivisionError):
                cells.append("–")
        md.append(f"| {label} | " + " | ".join(cells) + " |")

    cw = lambda t: t == "chainwatch"
    row("lines written (writer rate, seconds)",
        lambda t: f"{fmt_int(W[t]['lines'])} ({fmt_int(W[t]['rate'])}/s, {W[t]['seconds']:.0f} s)")
    row("rotations: rename (+ late lines written to the renamed file) / copytruncate",
        lambda t: f"every {fmt_int(W[t]['rotate_every'])} lines: {W[t]['rotations']} (+{fmt_int(W[t]['late_lines'])}) / {W[t]['copytruncates']}")
    row("series of chain_peer_ping_seconds at wrk start → end",
        lambda t: f"{fmt_int(B[t]['series'])} → {fmt_int(E[t]['series'])}")
    row("/metrics body", lambda t: f"{E[t]['body_bytes'] / 1024:.0f} KiB")
    row("wrk", lambda t: K[t]["cmd"] if K[t] else "none: rotation only")
    row("**scrape latency p50 / p99**", lambda t: f"{K[t]['p50_ms']:.2f} ms / {K[t]['p99_ms']:.2f} ms")
    row("scrapes/s", lambda t: f"{K[t]['rps']:.1f}")
    row("lines read per second while wrk ran (writer: see first row)",
        lambda t: fmt_int(round((E[t]["lines"] - B[t]["lines"]) / (E[t]["t"] - B[t]["t"]))) if K[t] else "–")
    row("non-2xx, socket errors", lambda t: f"{K[t]['non_2xx']}, {K[t]['socket_errors']}")
    row("lines read / ping matches (ping lines written)",
        lambda t: f"{fmt_int(S[t]['lines'])} / {fmt_int(S[t]['ping'])} ({fmt_int(W[t]['ping'])})")
    row("all read after the writer stopped", lambda t: f"{S[t]['settle_seconds']} s ({S[t]['settle_state']})")
    row("**lines lost / counted twice**", lambda t: loss_text(L[t], S[t]["settle_state"]))
    row("rename/delete events / truncations seen (all files)",
        lambda t: f"{S[t]['rotations']} / {S[t]['truncations']}" if cw(t) else "no such counter")
    row("samples dropped at the series cap", lambda t: fmt_int(S[t]["dropped"]) if cw(t) else "no cap")
    row("**peak RSS (VmHWM)** at the end of the ingest", lambda t: mib(S[t].get("VmHWM")))
    row("then, ingest over: wrk at the sidecar's scrape limit", lambda t: X[t]["cmd"] if X[t] else "–")
    row("… scrape latency p50 / p99, scrapes/s",
        lambda t: f"{X[t]['p50_ms']:.2f} ms / {X[t]['p99_ms']:.2f} ms, {X[t]['rps']:.1f}/s")
    row("… non-2xx (chainwatch: 503 past --web.max-requests)", lambda t: fmt_int(X[t]["non_2xx"]))
    row("… RSS after / VmHWM", lambda t: f"{mib(X[t].get('VmRSS'))} / {mib(X[t].get('VmHWM'))}")
    md.append("")
    md.append("Lines lost = lines written − the target's line counter (chainwatch_source_lines_read_total, "
              "mtail_lines_total) once it has read everything (`caught-up`) or made no progress for 6 s "
              "(`stalled`); likewise for the ping rule's matches. The marker lines of section 2 are checked "
              "the same way.\n")
    if any(t.startswith("mtail") for t in tools):
        md.append("mtail follows `node.log` by name, its documented use; lines it has not read when that file "
                  "is renamed away or truncated are never counted. With wrk scraping it, its ingest falls far "
                  "behind the writer (row \"lines read per second while wrk ran\"), so the rotations find it "
                  "behind; without wrk, at a rate it keeps up with, what it loses is the unread tail at each "
                  "copytruncate (`LOAD_COPYTRUNCATE_EVERY=0`, rename rotations only, loses nothing). chainwatch "
                  "reads that tail from the copy.\n")
    if "chainwatch" in tools:
        l = L["chainwatch"]
        if l.get("lines") != 0 or l.get("ping") != 0:
            bad.append(f"load: chainwatch {loss_text(l, S['chainwatch']['settle_state'])}")

    return report_rest(a, d, j, meta, bad, md)


def report_rest(a, d, j, meta, bad, md):
    """Sections 2 to 4 and the verdict (each only when it ran)."""
    # 2. markers
    if not j("markers-cw-inotify.json"):
        return finish_report(a, bad, md)
    md.append("### 2. Log line → visible in /metrics\n")
    md.append("One unique `MARKER height=N` line appended, /metrics polled back to back until the value shows; "
              "a pause of 10–50 ms (random) between markers.\n")
    md.append("| target | markers | seen | p50 | p90 | p99 | max | one scrape (median) |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, label in (("cw-inotify", "chainwatch, inotify (default)"),
                        ("cw-poll", "chainwatch, `inotify: false`, poll_interval " + meta.get("poll_interval", "250ms")),
                        ("mtail", "mtail (polls, --poll_interval 250ms)")):
        m = j(f"markers-{name}.json")
        if not m:
            continue
        md.append(f"| {label} | {m['count']} | {m['seen']} | {m['p50_ms']} ms | {m['p90_ms']} ms | {m['p99_ms']} ms "
                  f"| {m['max_ms']} ms | {m['scrape_median_ms']} ms |")
        if name.startswith("cw") and m["missed"]:
            bad.append(f"markers {name}: {m['missed']} of {m['count']} markers never showed")
    m = j("markers-cw-inotify.json")
    if m and m["p99_ms"] is not None:
        md.append(f"\nTarget p99 under 100 ms with inotify: {m['p99_ms']} ms → **{'met' if m['p99_ms'] < 100 else 'NOT met'}**.")
    for name in ("cw-inotify", "cw-poll"):
        c = j(f"markers-{name}-counts.json")
        m = j(f"markers-{name}.json")
        if c and m:
            if c["lines"] != m["count"] or c["marker"] != m["count"]:
                bad.append(f"markers {name}: {m['count']} marker lines written, lines read {c['lines']}, marker matches {c['marker']}")
    md.append("")

    # 3. idle
    cpu = j("idle-cpu.json")
    if cpu:
        md.append("### 3. Idle: following files, no writes\n")
        md.append("| target | seconds | CPU seconds (user+sys) | % of one core | wake-ups/s (context switches, all threads) |")
        md.append("|---|---:|---:|---:|---:|")
        labels = {"cw-inotify": "chainwatch, inotify (default)", "cw-poll": "chainwatch, `inotify: false`",
                  "mtail": "mtail", "cw-load": "chainwatch of section 1 (10k series, 6 files)"}
        for n, v in cpu.items():
            md.append(f"| {labels.get(n, n)} | {v['seconds']} | {v['cpu_seconds']} | {v['percent_of_core']} % "
                      f"| {v['wakeups_per_s']} |")
        first = next(iter(cpu.values()))
        md.append(f"\nCPU time from /proc/PID/stat utime+stime, in ticks of 1/{CLK_TCK} s "
                  f"(resolution {first['tick_resolution_percent']} % of a core over this window).\n")

    # 4. burst
    bursts = [(n, j(f)) for n, f in (("chainwatch", "burst.json"), ("mtail", "burst-mtail.json")) if j(f)]
    if bursts:
        md.append("### 4. Burst: ~1 GiB appended as fast as possible to the followed file\n")
        md.append("| | " + " | ".join(n for n, _ in bursts) + " |")
        md.append("|---|" + "---:|" * len(bursts))

        def brow(label, f):
            cells = []
            for _, b in bursts:
                try:
                    cells.append(f(b))
                except (KeyError, TypeError, AttributeError, ZeroDivisionError):
                    cells.append("–")
            md.append(f"| {label} | " + " | ".join(cells) + " |")

        flat = lambda b: b["rss_late_kib"] <= b["rss_early_kib"] * 1.10 + 2048
        brow("written", lambda b: f"{b['bytes'] / 2**20:,.0f} MiB, {fmt_int(b['lines'])} lines in {b['write_seconds']} s")
        brow("all of it read after (from the burst's start, to the sample)",
             lambda b: f"{b['catchup_seconds']} s ({b['state']})" if b["catchup_seconds"] else f"not within {b['seconds']} s ({b['state']})")
        brow("**sustained**", lambda b: f"{fmt_int(round(b['lines'] / b['catchup_seconds']))} lines/s, "
                                        f"{b['bytes'] / 2**20 / b['catchup_seconds']:.0f} MiB/s")
        brow("**lines lost / counted twice**", lambda b: loss_text(loss(b, b["target"]), b["state"]))
        brow(f"RSS first sample / early / late / last sample (early, late: median of the first, last fifth of "
             f"the samples after the first {bursts[0][1]['warmup_seconds']:g} s)",
             lambda b: f"{mib(b['rss_first_kib'])} / {mib(b['rss_early_kib'])} / {mib(b['rss_late_kib'])} / {mib(b['rss_last_kib'])}")
        brow(f"RSS max of the samples (every {meta.get('burst_interval', '0.5')} s); VmHWM",
             lambda b: f"{mib(b['rss_max_kib'])} ({len(b['samples'])} samples); {mib(b['hwm_kib'])}")
        brow("**RSS flat** (late ≤ early × 1.1 + 2 MiB)", lambda b: "**yes**" if flat(b) else "**NO**")
        md.append("")
        for n, b in bursts:
            lost = loss(b, b["target"])
            if n == "chainwatch" and (lost.get("lines") != 0 or lost.get("ping") != 0):
                bad.append(f"burst: chainwatch {loss_text(lost, b['state'])}")
        if len(bursts) == 1:
            md.append("mtail was left out of the burst (`LOAD_MTAIL_BURST=0` or `LOAD_MTAIL=0`).\n")
        for n, b in bursts:
            md.append(f"<details><summary>{n}: RSS samples (s: MiB, lines read)</summary>\n")
            md.append(", ".join(f"{x['t']}: {x['rss_kib'] / 1024:.1f}" + (f" ({x['lines']:,})" if x['lines'] is not None else "")
                                for x in b["samples"] if x["rss_kib"]))
            md.append("\n</details>\n")

    return finish_report(a, bad, md)


def finish_report(a, bad, md):
    md.append("### Verdict\n")
    if bad:
        md.append("**FAIL** (lines lost or counted twice by chainwatch):\n")
        md += [f"- {x}" for x in bad]
    else:
        md.append("chainwatch lost no line and counted none twice in any phase.")
    text = "\n".join(md) + "\n"
    with open(a.md, "w") as f:
        f.write(text)
    print(text)
    sys.exit(3 if bad else 0)  # 3: lines lost or counted twice (1 is Python's own error exit)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeport")
    p = sub.add_parser("prepare")
    p.add_argument("--dir", required=True)
    p = sub.add_parser("wait")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--kind", default="chainwatch")
    p.add_argument("--pid", type=int)
    p.add_argument("--files", type=int, default=1)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=20)
    p = sub.add_parser("write")
    p.add_argument("--dir", required=True)
    p.add_argument("--rate", type=float, default=200000)
    p.add_argument("--stop-file")
    p.add_argument("--max-seconds", type=float, default=120)
    p.add_argument("--rotate-every", type=int, default=400000)
    p.add_argument("--copytruncate-every", type=int, default=4)
    p.add_argument("--keep", type=int, default=5)
    p.add_argument("--peers", type=int, default=10000)
    p.add_argument("--match-every", type=int, default=2)
    p.add_argument("--chunk-lines", type=int, default=1000)
    p.add_argument("--seed", type=int, default=20251122)
    p.add_argument("--burst-bytes", type=int, default=0)
    p.add_argument("--port", type=int)
    p.add_argument("--pid", type=int)
    p.add_argument("--kind", default="chainwatch")
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--stall", type=float, default=10)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--out", required=True)
    p = sub.add_parser("counts")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--kind", default="chainwatch")
    p = sub.add_parser("wait-series")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--kind", default="chainwatch")
    p.add_argument("--series", type=int, required=True)
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("settle")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--kind", default="chainwatch")
    p.add_argument("--pid", type=int)
    p.add_argument("--written", required=True)
    p.add_argument("--stable", type=float, default=1.0)
    p.add_argument("--stall", type=float, default=6.0)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--out", required=True)
    p = sub.add_parser("markers")
    p.add_argument("--file", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--base", type=int, default=100000)
    p.add_argument("--timeout", type=float, default=5)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", required=True)
    p = sub.add_parser("cpu")
    p.add_argument("--pid", required=True)
    p.add_argument("--names", required=True)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--out", required=True)
    p = sub.add_parser("wrk")
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--cmd", dest="cmd_text", default="wrk")
    p.add_argument("--pid", type=int)
    p.add_argument("--ticks", type=int, help="the target's CPU ticks before the run (see --pid)")
    p.add_argument("--print-ticks", action="store_true", help="print the CPU ticks of --pid and exit")
    p.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--dir", required=True)
    p.add_argument("--md", required=True)
    a = ap.parse_args()
    {"freeport": cmd_freeport, "prepare": cmd_prepare, "wait": cmd_wait, "write": cmd_write,
     "counts": cmd_counts, "wait-series": cmd_wait_series, "settle": cmd_settle, "markers": cmd_markers,
     "cpu": cmd_cpu, "wrk": cmd_wrk, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
