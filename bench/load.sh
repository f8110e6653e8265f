#!/usr/bin/env bash
# Load and fault suite: the chainwatch-exporter sidecar following a rotating log under load, side
# by side with mtail where that applies. Reports, never asserts durations.
#
#   bench/load.sh            # ~5.5 min on 2 cores plus the release build; results in bench/out/load-results.md
#
# 1. ingest + scrapes: a writer appends LOAD_RATE lines/s (half of them `ping peer=pNNNNN rtt=…ms`
#    lines over LOAD_PEERS distinct peers → that many series of chain_peer_ping_seconds{peer}) to
#    node.log, rotating it every LOAD_ROTATE_EVERY lines: by rename (`create`, with one chunk of
#    late writes landing on the renamed file) and every LOAD_COPYTRUNCATE_EVERY-th time by
#    copytruncate; LOAD_KEEP rotated files are kept. Meanwhile `wrk --latency` scrapes /metrics
#    for LOAD_WRK_SECONDS. Then the writer stops and the target's line and match counters are
#    compared with what was written once it has caught up; then wrk runs once more at the
#    sidecar's scrape limit (LOAD_WRK_MAX_CONNECTIONS) for the memory that costs. The same for
#    mtail (follows node.log by name, its documented use); and mtail once more at
#    LOAD_MTAIL_RATE without wrk, rotating at the same cadence in time: its follower's handling
#    of the rotations alone, at a rate it keeps up with.
# 2. log line → visible in /metrics: LOAD_MARKERS unique marker lines, /metrics polled back to
#    back until each shows: chainwatch with inotify, chainwatch with `inotify: false`, mtail.
# 3. idle: CPU seconds and wake-ups of the marker targets and of the section 1 sidecar over
#    LOAD_IDLE_SECONDS with no writes.
# 4. burst: LOAD_BURST_BYTES of lines appended as fast as possible to a followed file; VmRSS
#    sampled every LOAD_BURST_INTERVAL s; lines/s until all is read; lines lost. Then mtail.
#
# Environment (defaults): LOAD_RATE (200000), LOAD_PEERS (10000), LOAD_MAX_SERIES (20000: the
# sidecar's max_series_per_metric), LOAD_ROTATE_EVERY (400000), LOAD_COPYTRUNCATE_EVERY (4),
# LOAD_KEEP (5), LOAD_WRK_SECONDS (20), LOAD_WRK_THREADS (1), LOAD_WRK_CONNECTIONS (4),
# LOAD_WRK_MAX_CONNECTIONS (40), LOAD_WRK_MAX_SECONDS (5), LOAD_MTAIL_RATE (20000),
# LOAD_SETTLE_TIMEOUT (60: how long a target may take to catch up after the writer stops),
# LOAD_MARKERS (200), LOAD_POLL_INTERVAL (250ms: poll_interval of the `inotify: false` run),
# LOAD_IDLE_SECONDS (30), LOAD_BURST_BYTES (1073741824), LOAD_BURST_INTERVAL (0.5),
# LOAD_MTAIL (1; 0 skips mtail), LOAD_MTAIL_BURST (1; 0 leaves mtail out of the burst, ~60 s
# less), LOAD_WORKDIR (${TMPDIR:-/tmp}: where the run's own fresh directory is made, ~1.1 GiB at
# the peak; removed at exit unless LOAD_KEEP_WORKDIR=1), BENCH_OUT (bench/out).
#
# Exit status: 1 if chainwatch lost a line or counted one twice in any section (the table says
# where), 2 on a setup failure (missing tool, build or start failure), 0 otherwise. Latency, CPU
# and memory figures are reported, never asserted.
set -Eeuo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
OUT=${BENCH_OUT:-$BENCH/out}
JS=$OUT/load
RATE=${LOAD_RATE:-200000}
PEERS=${LOAD_PEERS:-10000}
MAX_SERIES=${LOAD_MAX_SERIES:-20000}
ROTATE_EVERY=${LOAD_ROTATE_EVERY:-400000}
COPYTRUNCATE_EVERY=${LOAD_COPYTRUNCATE_EVERY:-4}
KEEP=${LOAD_KEEP:-5}
WRK_SECONDS=${LOAD_WRK_SECONDS:-20}
WRK_THREADS=${LOAD_WRK_THREADS:-1}
WRK_CONNECTIONS=${LOAD_WRK_CONNECTIONS:-4}
SETTLE_TIMEOUT=${LOAD_SETTLE_TIMEOUT:-60}
MARKERS=${LOAD_MARKERS:-200}
POLL_INTERVAL=${LOAD_POLL_INTERVAL:-250ms}
IDLE_SECONDS=${LOAD_IDLE_SECONDS:-30}
BURST_BYTES=${LOAD_BURST_BYTES:-1073741824}
BURST_INTERVAL=${LOAD_BURST_INTERVAL:-0.5}
WITH_MTAIL=${LOAD_MTAIL:-1}
MTAIL_RATE=${LOAD_MTAIL_RATE:-20000}
MTAIL_BURST=${LOAD_MTAIL_BURST:-1}
WRK_MAX_CONNECTIONS=${LOAD_WRK_MAX_CONNECTIONS:-40}
WRK_MAX_SECONDS=${LOAD_WRK_MAX_SECONDS:-5}
TOOL=(python3 "$BENCH/load_tool.py")
T0=$SECONDS

step() { printf '\n== [%3ds] %s\n' $((SECONDS - T0)) "$*"; }
die() { printf 'load.sh: %s\n' "$*" >&2; exit 2; }
trap 'printf "load.sh: command failed (line %s)\n" "$LINENO" >&2; exit 2' ERR

# Every process this script starts is recorded here and stopped at exit, whatever the exit.
PIDS=()
WORK=""
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ -n "$WORK" ] && [ "${LOAD_KEEP_WORKDIR:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
forget_pid() {
  local q=() x
  for x in "${PIDS[@]}"; do [ "$x" = "$1" ] || q+=("$x"); done
  PIDS=("${q[@]}")
}
stop_pid() {
  local p=$1
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  forget_pid "$p"
}

# ------------------------------------------------------------------ tools
step "tools"
need=()
command -v mtail >/dev/null 2>&1 || need+=(mtail)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ((${#need[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "installing: ${need[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need[@]}"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust: https://rustup.rs)"
mkdir -p "$OUT"
rm -rf "$JS"; mkdir -p "$JS"
# Always a fresh directory of our own (removed at exit), also under a given LOAD_WORKDIR.
[ -z "${LOAD_WORKDIR:-}" ] || mkdir -p "$LOAD_WORKDIR"
WORK=$(mktemp -d "${LOAD_WORKDIR:-${TMPDIR:-/tmp}}/chainwatch-load.XXXXXX")

# ------------------------------------------------------------------ build
step "cargo build --release -p chainwatch-exporter"
(cd "$ROOT" && cargo build --release -p chainwatch-exporter) || die "build failed"
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' || echo "$ROOT/target")
BIN=$TARGET_DIR/release/chainwatch-exporter
[ -x "$BIN" ] || die "no binary at $BIN"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)
VERSIONS="chainwatch-exporter $("$BIN" --version | awk '{print $2}') ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo 'no git rev')), $(mtail --version 2>&1 | awk 'NR==1{print $1, $3}'), $( (wrk --version 2>&1 || true) | awk 'NR==1{print $1, $2}'), $(python3 --version)"
echo "$VERSIONS"
echo "CPU: $CPU, $(nproc) cores"
echo "load average at start: $LOAD_START (other work may be running on this machine: figures carry its noise)"
echo "work dir: $WORK"

MPROGS=$WORK/mtail-progs
mkdir -p "$MPROGS"
cp "$BENCH/load.mtail" "$MPROGS/"

# start_cw NAME DIR INOTIFY → sets PID and PORT
start_cw() {
  local name=$1 dir=$2 inotify=$3
  PORT=$("${TOOL[@]}" freeport)
  cat >"$WORK/$name.yaml" <<EOF
version: 1
profiles: [$BENCH/load-profile.yaml]
labels: {node: bench-1}
max_series_per_metric: $MAX_SERIES
sources:
  - name: load
    type: file
    paths: ["$dir/node.log*"]
    inotify: $inotify
    poll_interval: $POLL_INTERVAL
EOF
  "$BIN" check-config --config "$WORK/$name.yaml" >/dev/null || die "config $WORK/$name.yaml refused"
  "$BIN" --config "$WORK/$name.yaml" --web.listen-address "127.0.0.1:$PORT" --log.level warn >"$WORK/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  "${TOOL[@]}" wait --port "$PORT" --pid "$PID" --kind chainwatch || { cat "$WORK/$name.log" >&2; die "$name did not start"; }
  echo "  $name: pid $PID, 127.0.0.1:$PORT, follows $dir/node.log* (inotify: $inotify)"
}

# start_mtail NAME DIR → sets PID and PORT
start_mtail() {
  local name=$1 dir=$2
  PORT=$("${TOOL[@]}" freeport)
  mtail --progs "$MPROGS" --logs "$dir/node.log" --address 127.0.0.1 --port "$PORT" --logtostderr >"$WORK/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  "${TOOL[@]}" wait --port "$PORT" --pid "$PID" --kind mtail || { cat "$WORK/$name.log" >&2; die "$name did not start"; }
  echo "  $name: pid $PID, 127.0.0.1:$PORT, follows $dir/node.log"
}

WRK_CMD="wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${WRK_SECONDS}s --latency"
WRK_MAX_CMD="wrk -t2 -c$WRK_MAX_CONNECTIONS -d${WRK_MAX_SECONDS}s --latency"
# ------------------------------------------------------------------ 1. ingest + scrapes
# load_run LABEL KIND RATE ROTATE_EVERY WRK(1|0) → sets LOAD_PID (the target, left running)
load_run() {
  local label=$1 kind=$2 rate=$3 rotate=$4 with_wrk=$5 dir=$WORK/load-$1 wpid
  "${TOOL[@]}" prepare --dir "$dir"
  if [ "$kind" = chainwatch ]; then start_cw "load-$label" "$dir" true; else start_mtail "load-$label" "$dir"; fi
  local tpid=$PID tport=$PORT
  rm -f "$WORK/stop-$label"
  "${TOOL[@]}" write --dir "$dir" --rate "$rate" --peers "$PEERS" --rotate-every "$rotate" \
    --copytruncate-every "$COPYTRUNCATE_EVERY" --keep "$KEEP" --stop-file "$WORK/stop-$label" \
    --max-seconds $((WRK_SECONDS + 60)) --out "$JS/load-$label-written.json" >"$WORK/writer-$label.out" &
  wpid=$!
  PIDS+=("$wpid")
  "${TOOL[@]}" wait-series --port "$tport" --kind "$kind" --series "$PEERS" --timeout 30 >"$JS/load-$label-series.json"
  echo "  series before wrk: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["series"])' "$JS/load-$label-series.json")"
  if [ "$with_wrk" = 1 ]; then
    $WRK_CMD --timeout 10s "http://127.0.0.1:$tport/metrics" >"$JS/load-$label-wrk.txt" 2>&1 || true
  else
    sleep "$WRK_SECONDS"
  fi
  "${TOOL[@]}" counts --port "$tport" --kind "$kind" >"$JS/load-$label-series-end.json"
  touch "$WORK/stop-$label"
  wait "$wpid" || die "writer failed: $(cat "$WORK/writer-$label.out")"
  forget_pid "$wpid"
  echo "  writer: $(cat "$WORK/writer-$label.out")"
  [ "$with_wrk" != 1 ] || "${TOOL[@]}" wrk --in "$JS/load-$label-wrk.txt" --cmd "\`$WRK_CMD\`" --out "$JS/load-$label-wrk.json" | sed 's/^/  wrk: /'
  "${TOOL[@]}" settle --port "$tport" --kind "$kind" --pid "$tpid" --written "$JS/load-$label-written.json" \
    --timeout "$SETTLE_TIMEOUT" --out "$JS/load-$label-settle.json" | sed 's/^/  counted: /'
  # Scrape memory at the sidecar's concurrency limit (--web.max-requests, 40 by default).
  [ "$with_wrk" = 1 ] || { LOAD_PID=$tpid; return 0; }
  $WRK_MAX_CMD --timeout 10s "http://127.0.0.1:$tport/metrics" >"$JS/load-$label-wrkmax.txt" 2>&1 || true
  "${TOOL[@]}" wrk --in "$JS/load-$label-wrkmax.txt" --cmd "\`$WRK_MAX_CMD\`" --pid "$tpid" --out "$JS/load-$label-wrkmax.json" | sed 's/^/  wrk at the limit: /'
  LOAD_PID=$tpid
}

step "1. chainwatch: $RATE lines/s into a rotating node.log, $PEERS peers, $WRK_CMD on /metrics"
load_run chainwatch chainwatch "$RATE" "$ROTATE_EVERY" 1
CW_LOAD_PID=$LOAD_PID
if [ "$WITH_MTAIL" = 1 ]; then
  step "1. mtail: the same"
  load_run mtail mtail "$RATE" "$ROTATE_EVERY" 1
  stop_pid "$LOAD_PID"
  rm -rf "$WORK/load-mtail"
  # The same rotations, at the same cadence in time (every ROTATE_EVERY/RATE seconds), at a rate
  # mtail keeps up with when nothing else competes: what its follower does with rotations alone.
  MT_ROTATE=$((ROTATE_EVERY * MTAIL_RATE / RATE))
  step "1. mtail at $MTAIL_RATE lines/s, no wrk (rotation every $MT_ROTATE lines: the same cadence in time)"
  load_run mtail-nowrk mtail "$MTAIL_RATE" "$MT_ROTATE" 0
  stop_pid "$LOAD_PID"
  rm -rf "$WORK/load-mtail-nowrk"
fi

# ------------------------------------------------------------------ 2. line → /metrics latency
step "2. log line → /metrics latency ($MARKERS markers each)"
for n in cw-inotify cw-poll mtail-idle; do "${TOOL[@]}" prepare --dir "$WORK/$n"; done
start_cw cw-inotify "$WORK/cw-inotify" true; P_INO=$PID; PORT_INO=$PORT
start_cw cw-poll "$WORK/cw-poll" false; P_POLL=$PID; PORT_POLL=$PORT
IDLE_PIDS="$P_INO,$P_POLL,$CW_LOAD_PID"
IDLE_NAMES="cw-inotify,cw-poll,cw-load"
if [ "$WITH_MTAIL" = 1 ]; then
  start_mtail mtail-idle "$WORK/mtail-idle"; P_MT=$PID; PORT_MT=$PORT
  IDLE_PIDS+=",$P_MT"; IDLE_NAMES+=",mtail"
fi
"${TOOL[@]}" markers --file "$WORK/cw-inotify/node.log" --port "$PORT_INO" --count "$MARKERS" --out "$JS/markers-cw-inotify.json" | sed 's/^/  chainwatch inotify: /'
"${TOOL[@]}" markers --file "$WORK/cw-poll/node.log" --port "$PORT_POLL" --count "$MARKERS" --out "$JS/markers-cw-poll.json" | sed 's/^/  chainwatch polling: /'
if [ "$WITH_MTAIL" = 1 ]; then
  "${TOOL[@]}" markers --file "$WORK/mtail-idle/node.log" --port "$PORT_MT" --count "$MARKERS" --out "$JS/markers-mtail.json" | sed 's/^/  mtail: /'
fi
"${TOOL[@]}" counts --port "$PORT_INO" >"$JS/markers-cw-inotify-counts.json"
"${TOOL[@]}" counts --port "$PORT_POLL" >"$JS/markers-cw-poll-counts.json"

# ------------------------------------------------------------------ 3. idle
step "3. idle: no writes for ${IDLE_SECONDS}s (the marker targets and the section 1 sidecar, at once)"
sleep 2
"${TOOL[@]}" cpu --pid "$IDLE_PIDS" --names "$IDLE_NAMES" --seconds "$IDLE_SECONDS" --out "$JS/idle-cpu.json" | sed 's/^/  /'
for p in "$P_INO" "$P_POLL" "$CW_LOAD_PID" ${P_MT:+"$P_MT"}; do stop_pid "$p"; done
rm -rf "$WORK/load-chainwatch" "$WORK/cw-inotify" "$WORK/cw-poll" "$WORK/mtail-idle"

# ------------------------------------------------------------------ 4. burst
step "4. burst: $BURST_BYTES bytes as fast as possible into a followed file: chainwatch"
"${TOOL[@]}" prepare --dir "$WORK/burst"
start_cw burst "$WORK/burst" true
"${TOOL[@]}" write --dir "$WORK/burst" --burst-bytes "$BURST_BYTES" --peers "$PEERS" --chunk-lines 10000 \
  --port "$PORT" --pid "$PID" --interval "$BURST_INTERVAL" --timeout 240 --out "$JS/burst.json" | sed 's/^/  /'
stop_pid "$PID"
rm -rf "$WORK/burst"
if [ "$WITH_MTAIL" = 1 ] && [ "$MTAIL_BURST" = 1 ]; then
  step "4. burst: the same for mtail"
  "${TOOL[@]}" prepare --dir "$WORK/burst-mtail"
  start_mtail burst-mtail "$WORK/burst-mtail"
  "${TOOL[@]}" write --dir "$WORK/burst-mtail" --burst-bytes "$BURST_BYTES" --peers "$PEERS" --chunk-lines 10000 \
    --port "$PORT" --pid "$PID" --kind mtail --interval "$BURST_INTERVAL" --timeout 300 --out "$JS/burst-mtail.json" | sed 's/^/  /'
  stop_pid "$PID"
  rm -rf "$WORK/burst-mtail"
fi

# ------------------------------------------------------------------ report
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average at end: $LOAD_END"
SETTINGS="LOAD_RATE=$RATE LOAD_PEERS=$PEERS LOAD_MAX_SERIES=$MAX_SERIES LOAD_ROTATE_EVERY=$ROTATE_EVERY LOAD_COPYTRUNCATE_EVERY=$COPYTRUNCATE_EVERY LOAD_KEEP=$KEEP LOAD_WRK_SECONDS=$WRK_SECONDS LOAD_WRK_THREADS=$WRK_THREADS LOAD_WRK_CONNECTIONS=$WRK_CONNECTIONS LOAD_WRK_MAX_CONNECTIONS=$WRK_MAX_CONNECTIONS LOAD_WRK_MAX_SECONDS=$WRK_MAX_SECONDS LOAD_MTAIL_RATE=$MTAIL_RATE LOAD_MARKERS=$MARKERS LOAD_POLL_INTERVAL=$POLL_INTERVAL LOAD_IDLE_SECONDS=$IDLE_SECONDS LOAD_BURST_BYTES=$BURST_BYTES LOAD_MTAIL=$WITH_MTAIL LOAD_MTAIL_BURST=$MTAIL_BURST"
python3 - "$JS/meta.json" <<EOF
import json, sys
json.dump({"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "cpu": """$CPU""", "cores": $(nproc),
           "versions": """$VERSIONS""", "load_start": "$LOAD_START", "load_end": "$LOAD_END",
           "settings": "\`$SETTINGS\`, total $((SECONDS - T0)) s", "poll_interval": "$POLL_INTERVAL",
           "burst_interval": "$BURST_INTERVAL"}, open(sys.argv[1], "w"), indent=1)
EOF
step "results"
RC=0
"${TOOL[@]}" report --dir "$JS" --md "$OUT/load-results.md" || RC=$?
echo "written: $OUT/load-results.md  (total $((SECONDS - T0)) s)"
if [ "$RC" -eq 3 ]; then
  echo "FAIL: chainwatch lost lines or counted them twice (see the table)" >&2
  exit 1
elif [ "$RC" -ne 0 ]; then
  die "report failed"
fi
