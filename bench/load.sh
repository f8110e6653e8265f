#!/usr/bin/env bash
# Load and fault suite: the chainwatch-exporter sidecar following a rotating log under load, side
# by side with mtail where that applies. Reports, never asserts durations.
#
#   bench/load.sh            # ~5 min on 2 cores plus the release build; results in bench/out/load-results.md
#
# 1. ingest + scrapes: a writer appends LOAD_RATE lines/s (half of them `ping peer=pNNNNN rtt=…ms`
#    lines over LOAD_PEERS distinct peers → that many series of chain_peer_ping_seconds{peer}) to
#    node.log, rotating it every LOAD_ROTATE_EVERY lines: by rename (`create`, with one chunk of
#    late writes landing on the renamed file) and every LOAD_COPYTRUNCATE_EVERY-th time by
#    copytruncate; LOAD_KEEP rotated files are kept. Meanwhile `wrk --latency` scrapes /metrics
#    for LOAD_WRK_SECONDS. Then the writer stops and the target's line and match counters are
#    compared with what was written once it has caught up. Same for mtail (same rate, rotation,
#    series count; mtail follows node.log by name, its documented use).
# 2. log line → visible in /metrics: LOAD_MARKERS unique marker lines, /metrics polled back to
#    back until each shows: chainwatch with inotify, chainwatch with `inotify: false`, mtail.
# 3. idle: CPU seconds and wake-ups of the marker targets and of the section 1 sidecar over
#    LOAD_IDLE_SECONDS with no writes.
# 4. burst: LOAD_BURST_BYTES of lines appended as fast as possible to a followed file; VmRSS
#    sampled every LOAD_BURST_INTERVAL s; lines/s until all is read; lines lost.
#
# Environment (defaults): LOAD_RATE (200000), LOAD_PEERS (10000), LOAD_MAX_SERIES (20000: the
# sidecar's max_series_per_metric), LOAD_ROTATE_EVERY (400000), LOAD_COPYTRUNCATE_EVERY (4),
# LOAD_KEEP (5), LOAD_WRK_SECONDS (20), LOAD_WRK_THREADS (1), LOAD_WRK_CONNECTIONS (4),
# LOAD_SETTLE_TIMEOUT (60: how long a target may take to catch up after the writer stops),
# LOAD_MARKERS (200), LOAD_POLL_INTERVAL (250ms: poll_interval of the `inotify: false` run),
# LOAD_IDLE_SECONDS (30), LOAD_BURST_BYTES (1073741824), LOAD_BURST_INTERVAL (0.5),
# LOAD_MTAIL (1; 0 skips mtail), LOAD_WORKDIR (a fresh mktemp -d; removed at the end unless
# LOAD_KEEP_WORKDIR=1), BENCH_OUT (bench/out).
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
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust: https://rustup.rs)"
mkdir -p "$OUT"
rm -rf "$JS"; mkdir -p "$JS"
WORK=${LOAD_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/chainwatch-load.XXXXXX")}
mkdir -p "$WORK"

# ------------------------------------------------------------------ build
step "cargo build --release -p chainwatch-exporter"
(cd "$ROOT" && cargo build --release -p chainwatch-exporter) || die "build failed"
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' || echo "$ROOT/target")
BIN=$TARGET_DIR/release/chainwatch-exporter
[ -x "$BIN" ] || die "no binary at $BIN"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)
VERSIONS="chainwatch-exporter $("$BIN" --version | awk '{print $2}') ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo 'no git rev')), $(mtail --version 2>&1 | awk 'NR==1{print $1, $3}'), $(wrk --version 2>&1 | awk 'NR==1{print $1, $2}'), $(python3 --version)"
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
# ------------------------------------------------------------------ 1. ingest + scrapes
load_run() {
  local tool=$1 dir=$WORK/load-$1 kind=$1 wpid
  "${TOOL[@]}" prepare --dir "$dir"
  if [ "$tool" = chainwatch ]; then start_cw load-chainwatch "$dir" true; else start_mtail load-mtail "$dir"; fi
  local tpid=$PID tport=$PORT
  rm -f "$WORK/stop-$tool"
  "${TOOL[@]}" write --dir "$dir" --rate "$RATE" --peers "$PEERS" --rotate-every "$ROTATE_EVERY" \
    --copytruncate-every "$COPYTRUNCATE_EVERY" --keep "$KEEP" --stop-file "$WORK/stop-$tool" \
    --max-seconds $((WRK_SECONDS + 60)) --out "$JS/load-$tool-written.json" >"$WORK/writer-$tool.out" &
  wpid=$!
  PIDS+=("$wpid")
  "${TOOL[@]}" wait-series --port "$tport" --kind "$kind" --series "$PEERS" --timeout 30 >"$JS/load-$tool-series.json"
  echo "  series before wrk: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["series"])' "$JS/load-$tool-series.json")"
  $WRK_CMD --timeout 10s "http://127.0.0.1:$tport/metrics" >"$JS/load-$tool-wrk.txt" 2>&1 || true
  "${TOOL[@]}" counts --port "$tport" --kind "$kind" >"$JS/load-$tool-series-end.json"
  touch "$WORK/stop-$tool"
  wait "$wpid" || die "writer failed: $(cat "$WORK/writer-$tool.out")"
  forget_pid "$wpid"
  echo "  writer: $(cat "$WORK/writer-$tool.out")"
  "${TOOL[@]}" wrk --in "$JS/load-$tool-wrk.txt" --cmd "\`$WRK_CMD\`" --out "$JS/load-$tool-wrk.json" | sed 's/^/  wrk: /'
  "${TOOL[@]}" settle --port "$tport" --kind "$kind" --pid "$tpid" --written "$JS/load-$tool-written.json" \
    --timeout "$SETTLE_TIMEOUT" --out "$JS/load-$tool-settle.json" | sed 's/^/  counted: /'
  LOAD_PID=$tpid
}

step "1. chainwatch: $RATE lines/s into a rotating node.log, $PEERS peers, $WRK_CMD on /metrics"
load_run chainwatch
CW_LOAD_PID=$LOAD_PID
if [ "$WITH_MTAIL" = 1 ]; then
  step "1. mtail: the same"
  load_run mtail
  stop_pid "$LOAD_PID"
  rm -rf "$WORK/load-mtail"
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
"${TOOL[@]}" cpu --pid "$IDLE_PIDS" --names "$IDLE_NAMES" --seconds "$IDLE_SECONDS" --out "$JS/idle-cpu.json" >/dev/null
python3 -c 'import json,sys; [print(f"  {k}: {v[\"cpu_seconds\"]} CPU s = {v[\"percent_of_core\"]} % of a core, {v[\"wakeups_per_s\"]} wake-ups/s") for k,v in json.load(open(sys.argv[1])).items()]' "$JS/idle-cpu.json"
for p in "$P_INO" "$P_POLL" "$CW_LOAD_PID" ${P_MT:+"$P_MT"}; do stop_pid "$p"; done
rm -rf "$WORK/load-chainwatch" "$WORK/cw-inotify" "$WORK/cw-poll" "$WORK/mtail-idle"

# ------------------------------------------------------------------ 4. burst
step "4. burst: $BURST_BYTES bytes as fast as possible into a followed file (chainwatch)"
"${TOOL[@]}" prepare --dir "$WORK/burst"
start_cw burst "$WORK/burst" true
"${TOOL[@]}" write --dir "$WORK/burst" --burst-bytes "$BURST_BYTES" --peers "$PEERS" --chunk-lines 10000 \
  --port "$PORT" --pid "$PID" --interval "$BURST_INTERVAL" --timeout 240 --out "$JS/burst.json" | sed 's/^/  /'
stop_pid "$PID"
rm -rf "$WORK/burst"

# ------------------------------------------------------------------ report
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average at end: $LOAD_END"
SETTINGS="LOAD_RATE=$RATE LOAD_PEERS=$PEERS LOAD_MAX_SERIES=$MAX_SERIES LOAD_ROTATE_EVERY=$ROTATE_EVERY LOAD_COPYTRUNCATE_EVERY=$COPYTRUNCATE_EVERY LOAD_KEEP=$KEEP LOAD_WRK_SECONDS=$WRK_SECONDS LOAD_WRK_THREADS=$WRK_THREADS LOAD_WRK_CONNECTIONS=$WRK_CONNECTIONS LOAD_MARKERS=$MARKERS LOAD_POLL_INTERVAL=$POLL_INTERVAL LOAD_IDLE_SECONDS=$IDLE_SECONDS LOAD_BURST_BYTES=$BURST_BYTES"
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
if [ "$RC" -eq 1 ]; then
  echo "FAIL: chainwatch lost lines or counted them twice (see the table)" >&2
  exit 1
elif [ "$RC" -ne 0 ]; then
  die "report failed"
fi
