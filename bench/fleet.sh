#!/usr/bin/env bash
# Fleet-scale rule evaluation at steady state: the real Prometheus, the generated rules, a fake
# fleet of N sidecars, and the history every rule's windows read, already on disk. Reports, never
# asserts durations; a bench, not a test (CI does not run it).
#
#   bench/fleet.sh        # ~1.5 h on 2 cores with the defaults plus the release build;
#                         # results in bench/out/fleet/fleet-results.md
#
# 1. templates: one node per family of chainwatch-sim (COINjecture in REFACTORED_PRIMARY with
#    fallbacks, so both engines are verified; Dilithion; Proof-of-Proof; BitCell), each with its
#    real chainwatch-exporter sidecar; after FLEET_CAPTURE_SECONDS each sidecar's /metrics is the
#    template of its family: every series name and label a sidecar of that family exports.
# 2. per run SET@N (FLEET_RUNS): `chainwatch-fleet serve` serves N nodes (families, 4 regions and
#    2 networks spread evenly) at /nodes/<node>/metrics, one file_sd target per node; values are
#    a function of time (counters grow, heights follow block times, gauges move, histograms fill;
#    error counters tick on some testnet nodes only, so gates say "proceed" on mainnet and not on
#    testnet). Prometheus starts scraping it every 15 s with no rules.
#    `chainwatch-fleet plan` reads the rule set and says, per series, the longest lookback any
#    rule reads it over (through recording rules: a record read over 1w needs 1w of its inputs);
#    `chainwatch-fleet history` writes that history as OpenMetrics, 18 h window by window, for
#    `promtool tsdb create-blocks-from openmetrics`; the blocks go into the running Prometheus.
#    Then the anchor: FLEET_ANCHOR seconds of Prometheus scraping the fleet without rules. Then
#    the recording rules whose output is read over a window are backfilled with `promtool tsdb
#    create-blocks-from rules` (layer by layer) up to now, compactions settle, the rules are
#    loaded (POST /-/reload) and measured for FLEET_MEASURE seconds (at least twice the longest
#    group interval): per group the duration of each evaluation, evaluation failures, missed
#    iterations, and Prometheus's CPU seconds. Then the gate rules of FLEET_VERDICTS (the
#    baseline) and of the measured set are evaluated on the same data at one instant a minute
#    back (every scrape stamped before it is in), and the verdicts compared per gate, chain and
#    network.
# 3. bench/out/fleet/fleet-results.md: per run the rule evaluation cost per 15 s cycle and per
#    node, the anchor, failures and missed iterations, the load average; per group; and the
#    projection to 10k nodes from the smallest and largest N of each rule set.
#
# Rule sets: `current` is prometheus/rules/ of the work tree; `baseline` is prometheus/rules/ at
# FLEET_BASELINE_REF (b185f7a: the rules before rollups and scoped gates); any other name is
# taken as a directory of rule files.
#
# Environment (defaults): FLEET_RUNS ("baseline@20 baseline@100 current@100 current@1000"),
# FLEET_BASELINE_REF (b185f7a), FLEET_VERDICTS (baseline: after measuring another set, its gate
# rules are evaluated on the same data and their verdicts compared; empty: skip), FLEET_MEASURE (600), FLEET_ANCHOR (180), FLEET_SETTLE (150: seconds
# without compaction before a measurement), FLEET_CAPTURE_SECONDS (60), FLEET_WORKDIR
# (${TMPDIR:-/tmp}; up to ~3 GB per 18 h window at 1000 nodes, removed as it goes),
# FLEET_PPROF_SECONDS (empty: none) takes Prometheus's CPU profile for that many seconds in the
# middle of each measurement (bench/out/fleet/cpu-SET-N.pprof, and with Go installed its
# `go tool pprof -top` as cpu-SET-N.top.txt and .cum.txt),
# FLEET_KEEP_WORKDIR=1 keeps the work directory, FLEET_APPEND=1 keeps the results of earlier runs
# (bench/out/fleet/run-*.json) and reports them with this run's, FLEET_PROFILE (release; `dev` for a quick try of
# the script itself), BENCH_OUT (bench/out).
#
# Exit status: 2 on a setup failure (missing tool, build, a process that does not start, promtool
# refusing the history), 0 otherwise. Costs are reported, never asserted.
set -Eeuo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
OUT=${BENCH_OUT:-$BENCH/out}
RES=$OUT/fleet
RUNS=${FLEET_RUNS:-"baseline@20 baseline@100 current@100 current@1000"}
BASELINE_REF=${FLEET_BASELINE_REF:-b185f7a}
MEASURE=${FLEET_MEASURE:-600}
ANCHOR=${FLEET_ANCHOR:-180}
SETTLE=${FLEET_SETTLE:-150}
CAPTURE_SECONDS=${FLEET_CAPTURE_SECONDS:-60}
VERDICTS=${FLEET_VERDICTS-baseline}
PPROF_SECONDS=${FLEET_PPROF_SECONDS:-}
TOOL=(python3 "$BENCH/fleet_tool.py")
T_START=$SECONDS

step() { printf '\n== [%4ds] %s   (load %s)\n' $((SECONDS - T_START)) "$*" "$(cut -d' ' -f1-3 /proc/loadavg)"; }
die() { printf 'fleet.sh: %s\n' "$*" >&2; exit 2; }
trap 'printf "fleet.sh: command failed (line %s)\n" "$LINENO" >&2; exit 2' ERR

# Every process this script starts is recorded here and stopped at exit, whatever the exit.
PIDS=()
WORK=""
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ -n "$WORK" ] && [ "${FLEET_KEEP_WORKDIR:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stop_pid() {
  local p=$1 q=() x
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  for x in "${PIDS[@]}"; do [ "$x" = "$p" ] || q+=("$x"); done
  PIDS=("${q[@]}")
}

# ------------------------------------------------------------------ 2. runs
rules_dir() { # SET DEST → fills DEST with the set's rule files
  local set=$1 dest=$2 f
  mkdir -p "$dest"
  case $set in
    current) cp "$ROOT"/prometheus/rules/*.yml "$ROOT"/prometheus/rules/global/*.yml "$dest/" ;;
    baseline)
      for f in $(git -C "$ROOT" ls-tree -r --name-only "$BASELINE_REF" prometheus/rules/); do
        git -C "$ROOT" show "$BASELINE_REF:$f" >"$dest/$(basename "$f")"
      done ;;
    *) [ -d "$set" ] || die "rule set $set: not current, baseline or a directory"; cp "$set"/*.yml "$dest/" ;;
  esac
  promtool check rules "$dest"/*.yml >/dev/null || die "rule set $set does not pass promtool check rules"
}

run_one() {
  local set=$1 n=$2
  local name; name=$(basename "$set")
  local w=$WORK/run-$name-$n
  step "2. $name, $n nodes"
  mkdir -p "$w/data" "$w/blocks"
  rules_dir "$set" "$w/rules"
  "$FLEET" plan --rules "$w/rules" --evaluation-interval 15s --out "$w/plan" >/dev/null
  local t0=$(( $(date +%s) / 15 * 15 ))
  local origin=$((t0 - 40 * 86400))
  "$FLEET" serve --templates "$TEMPLATES" --nodes "$n" --origin "$origin" --sd "$w/targets.json" >"$w/fleet.json" 2>"$w/fleet.err" &
  local fleet_pid=$!
  PIDS+=("$fleet_pid")
  for _ in $(seq 100); do [ -s "$w/fleet.json" ] && break; sleep 0.1; done
  [ -s "$w/fleet.json" ] || { cat "$w/fleet.err" >&2; die "chainwatch-fleet serve did not start"; }
  local port; port=$("${TOOL[@]}" freeport)
  local prom=http://127.0.0.1:$port
  cat >"$w/prometheus.yml" <<EOF
global: {scrape_interval: 15s, evaluation_interval: 15s}
scrape_configs:
  - job_name: chainwatch
    file_sd_configs: [{files: ["$w/targets.json"]}]
EOF
  cp "$w/prometheus.yml" "$w/prometheus-norules.yml"
  { cat "$w/prometheus-norules.yml"; echo "rule_files: [\"$w/rules/*.yml\"]"; } >"$w/prometheus-rules.yml"
  # Retention past the 4w windows; blocks of at most 18h, what the backfill writes, so the
  # history is not compacted again while measuring.
  prometheus --config.file="$w/prometheus.yml" --storage.tsdb.path="$w/data" \
    --storage.tsdb.retention.time=60d --storage.tsdb.max-block-duration=18h \
    --web.listen-address="127.0.0.1:$port" --web.enable-lifecycle --log.level=warn >"$w/prometheus.log" 2>&1 &
  local prom_pid=$!
  PIDS+=("$prom_pid")
  "${TOOL[@]}" wait --url "$prom/-/ready" --timeout 60 || { cat "$w/prometheus.log" >&2; die "prometheus did not start"; }

  step "   history (plan: $(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(len(p["raw"]), "series names,", len(p["records"]), "records, longest", max(list(p["raw"].values())+[0])//3600, "h")' "$w/plan/plan.json"))"
  local total=0 from to cnt
  while read -r from to; do
    "$FLEET" history --templates "$TEMPLATES" --nodes "$n" --origin "$origin" --plan "$w/plan/plan.json" \
      --end "$t0" --from "$from" --to "$to" >"$w/chunk.om" 2>"$w/chunk.err"
    cnt=$(awk '{print $1}' "$w/chunk.err")
    if [ "$cnt" -gt 0 ]; then
      promtool tsdb create-blocks-from openmetrics --max-block-duration=18h --quiet "$w/chunk.om" "$w/blocks" >"$w/promtool.log" 2>&1 \
        || { tail -5 "$w/promtool.log" >&2; die "promtool refused the history of [$from, $to)"; }
      total=$((total + cnt))
    fi
    rm -f "$w/chunk.om"
  done < <("$FLEET" windows --plan "$w/plan/plan.json" --end "$t0" --block 18h)
  echo "   $total samples backfilled"
  local since; since=$("${TOOL[@]}" reloads --prom "$prom")
  mv "$w"/blocks/01* "$w/data/" 2>/dev/null || true
  echo "   $("${TOOL[@]}" reloaded --prom "$prom" --since "$since") blocks loaded"
  "${TOOL[@]}" settle --prom "$prom" --quiet "$SETTLE" >/dev/null

  step "   anchor: ${ANCHOR}s scraping $n nodes, no rules"
  "${TOOL[@]}" measure --prom "$prom" --seconds "$ANCHOR" >"$w/anchor.json"

  local entry layer layers every hist
  # The plan's layers in backfill order (a rule after the rules it reads), each with its group's
  # interval and the history its records need.
  mapfile -t layers < <(python3 -c '
import json, sys
for l in json.load(open(sys.argv[1]))["layers"]:
    print(l["file"], l["interval"], l["history"])' "$w/plan/plan.json")
  for entry in "${layers[@]}"; do
    read -r layer every hist <<<"$entry"
    layer=$w/plan/$layer
    local end=$(( $(date +%s) / 15 * 15 - 15 ))
    step "   backfill $(basename "$layer") ($(grep -c 'record:' "$layer") recording rules, $((hist / 3600)) h, every ${every}s)"
    mkdir -p "$w/rblocks"
    promtool tsdb create-blocks-from rules --start=$((t0 - hist)) --end="$end" --url="$prom" \
      --output-dir="$w/rblocks" --eval-interval="${every}s" --max-block-duration=18h --quiet "$layer" >"$w/rules-backfill.log" 2>&1 \
      || { tail -5 "$w/rules-backfill.log" >&2; die "promtool could not backfill $(basename "$layer")"; }
    since=$("${TOOL[@]}" reloads --prom "$prom")
    mv "$w"/rblocks/01* "$w/data/" 2>/dev/null || true
    echo "   $("${TOOL[@]}" reloaded --prom "$prom" --since "$since") blocks loaded"
  done
  "${TOOL[@]}" settle --prom "$prom" --quiet "$SETTLE" >/dev/null

  "${TOOL[@]}" check --prom "$prom" --plan "$w/plan/plan.json" >"$w/history-check.json"
  python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
worst = min(c.items(), key=lambda kv: kv[1]["min_samples"] / max(1, kv[1]["expected"]))
print("   history present: at least %.0f%% of every window (fewest: %s, %d of %d samples)" % (
    100 * min(1, worst[1]["min_samples"] / max(1, worst[1]["expected"])), worst[0], worst[1]["min_samples"], worst[1]["expected"]))' "$w/history-check.json"
  local longest; longest=$(python3 -c 'import json,sys; print(max(list(json.load(open(sys.argv[1]))["intervals"].values())+[15]))' "$w/plan/plan.json")
  local secs=$(( MEASURE > 2 * longest + 60 ? MEASURE : 2 * longest + 60 ))
  step "   rules loaded: measuring ${secs}s"
  cp "$w/prometheus-rules.yml" "$w/prometheus.yml"
  curl -fsS -X POST "$prom/-/reload" >/dev/null
  local pprof_pid=""
  if [ -n "$PPROF_SECONDS" ]; then
    # Prometheus's own CPU profile over the second half of the measurement: where the rules'
    # CPU goes (evaluation, appending what they record, garbage collection).
    local pprof_at=$(( secs - PPROF_SECONDS > 0 ? (secs - PPROF_SECONDS) / 2 : 0 ))
    (sleep "$pprof_at"; curl -fsS -o "$RES/cpu-$name-$n.pprof" "$prom/debug/pprof/profile?seconds=$PPROF_SECONDS") &
    pprof_pid=$!
    PIDS+=("$pprof_pid")
  fi
  local loaded_at; loaded_at=$(date +%s)
  "${TOOL[@]}" measure --prom "$prom" --seconds "$secs" >"$w/rules.json"
  if [ -n "$pprof_pid" ]; then
    wait "$pprof_pid" || echo "   no CPU profile (curl failed)"
    if [ -s "$RES/cpu-$name-$n.pprof" ] && command -v go >/dev/null 2>&1; then
      go tool pprof -top -nodecount=60 "$RES/cpu-$name-$n.pprof" >"$RES/cpu-$name-$n.top.txt" 2>/dev/null || true
      go tool pprof -top -cum -nodecount=60 "$RES/cpu-$name-$n.pprof" >"$RES/cpu-$name-$n.cum.txt" 2>/dev/null || true
    fi
  fi

  echo '[]' >"$w/verdicts.json"
  if [ -n "$VERDICTS" ] && [ "$set" != "$VERDICTS" ]; then
    step "   verdicts of $VERDICTS's gates on the same data"
    rules_dir "$VERDICTS" "$w/old-rules"
    "$FLEET" gates --rules "$w/old-rules" >"$w/old-gates.json"
    "$FLEET" gates --rules "$w/rules" >"$w/new-gates.json"
    "${TOOL[@]}" verdicts --prom "$prom" --old "$w/old-gates.json" --new "$w/new-gates.json" \
      --since $((loaded_at + 120)) >"$w/verdicts.json"
  fi
  python3 - "$RES/run-$name-$n.json" "$name" "$n" "$total" "$w/anchor.json" "$w/rules.json" "$w/plan/plan.json" "$w/history-check.json" "$w/verdicts.json" "$VERDICTS" <<'EOF'
import json, sys
out, name, n, total, anchor, rules, plan, check, verdicts, against = sys.argv[1:]
json.dump({"set": name, "nodes": int(n), "history_samples": int(total),
           "anchor": json.load(open(anchor)), "rules": json.load(open(rules)),
           "plan": json.load(open(plan)), "history_check": json.load(open(check)),
           "verdicts": json.load(open(verdicts)), "verdicts_against": against}, open(out, "w"), indent=1)
EOF
  stop_pid "$prom_pid"
  stop_pid "$fleet_pid"
  [ "${FLEET_KEEP_WORKDIR:-0}" = 1 ] || rm -rf "$w"
}

# The whole run is one function, read before anything runs: editing this file during a run
# (a bench takes an hour) cannot change what the run does.
main() {
  # ------------------------------------------------------------------ tools
  step "tools"
  need=()
  command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  if ((${#need[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "installing: ${need[*]}"
    $SUDO apt-get update
    $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
  fi
  command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust: https://rustup.rs)"
  mkdir -p "$RES"
  [ "${FLEET_APPEND:-0}" = 1 ] || rm -f "$RES"/run-*.json
  [ -z "${FLEET_WORKDIR:-}" ] || mkdir -p "$FLEET_WORKDIR"
  WORK=$(mktemp -d "${FLEET_WORKDIR:-${TMPDIR:-/tmp}}/chainwatch-fleet.XXXXXX")
  echo "work dir: $WORK"

  # ------------------------------------------------------------------ build
  PROFILE=${FLEET_PROFILE:-release}
  step "cargo build --profile $PROFILE -p chainwatch-exporter -p chainwatch-sim -p chainwatch-bench-fleet"
  (cd "$ROOT" && cargo build --profile "$PROFILE" -p chainwatch-exporter -p chainwatch-sim -p chainwatch-bench-fleet) || die "build failed"
  [ "$PROFILE" = dev ] && PROFILE=debug
  TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' || echo "$ROOT/target")
  EXPORTER=$TARGET_DIR/$PROFILE/chainwatch-exporter
  SIM=$TARGET_DIR/$PROFILE/chainwatch-sim
  FLEET=$TARGET_DIR/$PROFILE/chainwatch-fleet
  for b in "$EXPORTER" "$SIM" "$FLEET"; do [ -x "$b" ] || die "no binary at $b"; done

  # ------------------------------------------------------------------ 1. templates
  step "1. templates: one sidecar per family for ${CAPTURE_SECONDS}s"
  CAP=$WORK/capture
  TEMPLATES=$RES/templates
  mkdir -p "$CAP/cfg" "$TEMPLATES"
  cat >"$CAP/fleet.yaml" <<'EOF'
version: 1
network: testnet
block_interval: 1s
line_interval: 250ms
sidecar: {poll_interval: 1s, file_poll_interval: 100ms}
nodes:
  - {name: coinjecture, family: coinjecture, region: eu-central, consensus_mode: rust}
  - {name: dilithion, family: dilithion, region: eu-central}
  - {name: pop, family: pop, region: eu-central, validators: 4}
  - {name: bitcell, family: bitcell, region: eu-central, miners: 5}
EOF
  "$SIM" --fleet "$CAP/fleet.yaml" --dir "$CAP/nodes" --emit-config "$CAP/cfg" >"$CAP/sim.json" 2>"$CAP/sim.err" &
  SIM_PID=$!
  PIDS+=("$SIM_PID")
  for _ in $(seq 100); do [ -s "$CAP/sim.json" ] && break; sleep 0.1; done
  [ -s "$CAP/sim.json" ] || { cat "$CAP/sim.err" >&2; die "chainwatch-sim did not start"; }
  CONTROL=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["control_url"])' "$CAP/sim.json")
  CAP_PIDS=()
  for fam in coinjecture dilithion pop bitcell; do
    port=$("${TOOL[@]}" freeport)
    "$EXPORTER" --config "$CAP/cfg/$fam.yaml" --web.listen-address "127.0.0.1:$port" --log.level warn >"$CAP/$fam.log" 2>&1 &
    PIDS+=("$!")
    CAP_PIDS+=("$!")
    echo "$fam $port" >>"$CAP/ports"
    "${TOOL[@]}" wait --url "http://127.0.0.1:$port/metrics" --timeout 30 || { cat "$CAP/$fam.log" >&2; die "sidecar of $fam did not start"; }
  done
  # REFACTORED_PRIMARY falling back now and then: Rust and legacy verifications on one node.
  curl -fsS -X POST "$CONTROL/scenario" -d '{"scenario": "fallbacks", "node": "coinjecture", "on": true, "rate": 0.2}' >/dev/null
  sleep "$CAPTURE_SECONDS"
  while read -r fam port; do
    curl -fsS "http://127.0.0.1:$port/metrics" >"$TEMPLATES/$fam.prom"
  done <"$CAP/ports"
  for p in "${CAP_PIDS[@]}"; do stop_pid "$p"; done
  stop_pid "$SIM_PID"
  "$FLEET" count --templates "$TEMPLATES" | tee "$RES/series-per-node.txt"

  PROM_VERSION=$(prometheus --version 2>&1 | awk 'NR==1{print $1, $3}')
  CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)
  python3 - "$RES/meta.json" "$PROM_VERSION" "$CPU" "$(nproc)" "$RES/series-per-node.txt" <<'EOF'
import json, sys
out, prom, cpu, cores, spn = sys.argv[1:]
per = [l.split() for l in open(spn) if l.strip()]
desc = ", ".join(f"{f} {n}" for f, n in per)
avg = sum(int(n) for _, n in per) / len(per)
json.dump({"prometheus": prom, "cpu": cpu, "cores": cores,
           "series_per_node": f"series per node: {desc}; {avg:.1f} on average"}, open(out, "w"))
EOF

  for r in $RUNS; do
    run_one "${r%@*}" "${r##*@}"
  done

  # ------------------------------------------------------------------ 3. report
  step "3. report"
  "${TOOL[@]}" report --dir "$RES" | tee "$RES/fleet-results.md"
  echo
  echo "results: $RES/fleet-results.md"
}

main "$@"
exit $?
