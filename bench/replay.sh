#!/usr/bin/env bash
# Replay benchmark: chainwatch-exporter replay vs mtail --one_shot vs rg -c, on a deterministic
# 1M-line journal-style corpus. See bench/README.md.
#
#   bench/replay.sh                 # everything; results in bench/out/replay-results.md
#
# Environment: BENCH_LINES (1000000), BENCH_SEED (20251121), BENCH_RUNS (10: hyperfine runs of
# chainwatch and rg, after 1 warm-up), BENCH_MTAIL_RUNS (2), BENCH_BIG_FACTOR (4: the big corpus
# is the corpus this many times over), BENCH_OUT (bench/out), BENCH_KEEP_BIG=1 keeps the big
# corpus on disk, BENCH_MTAIL_PROG (bench/replay.mtail) swaps the mtail program.
#
# Exit status: 1 if chainwatch and mtail report different counts or gauge values (the diff is
# printed), 2 on a setup failure (missing tool, build or run error), 0 otherwise. Speed and
# memory targets are reported as verdicts, never asserted.
set -Eeuo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
OUT=${BENCH_OUT:-$BENCH/out}
N=${BENCH_LINES:-1000000}
SEED=${BENCH_SEED:-20251121}
RUNS=${BENCH_RUNS:-10}
MTAIL_RUNS=${BENCH_MTAIL_RUNS:-2}
BIG_FACTOR=${BENCH_BIG_FACTOR:-4}
PROFILES=(coinjecture-network coinjecture-consensus)
MTAIL_PROG=${BENCH_MTAIL_PROG:-$BENCH/replay.mtail}
T0=$SECONDS

step() { printf '\n== [%3ds] %s\n' $((SECONDS - T0)) "$*"; }
die() { printf 'replay.sh: %s\n' "$*" >&2; exit 2; }
# Any failing command is a setup failure (exit 2); exit 1 is kept for "counts differ".
trap 'printf "replay.sh: command failed (line %s)\n" "$LINENO" >&2; exit 2' ERR

# Human-friendly size for file names: 1000000 -> 1M.
label() { local n=$1; if (( n % 1000000 == 0 )); then echo "$((n / 1000000))M"; elif (( n % 1000 == 0 )); then echo "$((n / 1000))k"; else echo "$n"; fi; }
# Quote one argument for hyperfine's command parser (POSIX shell words).
shq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }
cmdline() { local out="" a; for a in "$@"; do out+="$(shq "$a") "; done; printf '%s' "${out% }"; }

# ------------------------------------------------------------------ tools
step "tools"
need=()
command -v mtail >/dev/null 2>&1 || need+=(mtail)
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
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

# ------------------------------------------------------------------ build
step "cargo build --release -p chainwatch-exporter"
(cd "$ROOT" && cargo build --release -p chainwatch-exporter) || die "build failed"
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' || echo "$ROOT/target")
BIN=$TARGET_DIR/release/chainwatch-exporter
[ -x "$BIN" ] || die "no binary at $BIN"
CW_ARGS=(replay)
for p in "${PROFILES[@]}"; do CW_ARGS+=(--profile "$p"); done

VERSIONS="chainwatch-exporter $("$BIN" --version | awk '{print $2}') ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo 'no git rev')), $(mtail --version 2>&1 | awk 'NR==1{print $1, $3}'), $(rg --version | awk 'NR==1'), $(hyperfine --version), $(python3 --version)"
CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)
echo "$VERSIONS"
echo "CPU: $CPU, $(nproc) cores"

# ------------------------------------------------------------------ corpus
L=$(label "$N")
CORPUS=$OUT/corpus-$L.log
EXPECTED=$OUT/corpus-$L.expected.json
step "corpus: $N lines, seed $SEED -> $CORPUS"
python3 "$BENCH/gen_corpus.py" --lines "$N" --seed "$SEED" --out "$CORPUS" --expected "$EXPECTED"
BYTES=$(stat -c %s "$CORPUS")
SHA=$(sha256sum "$CORPUS" | cut -c1-16)
echo "$BYTES bytes, sha256 $SHA…"

# ------------------------------------------------------------------ rg inputs from the profiles
step "rg patterns and literal prefilters from the profiles (checks replay.mtail for drift)"
PAT=$OUT/patterns
rm -rf "$PAT"; mkdir -p "$PAT"
PROFILE_FILES=()
for p in "${PROFILES[@]}"; do
  "$BIN" profiles "$p" >"$PAT/$p.yaml"
  PROFILE_FILES+=(--profile "$PAT/$p.yaml")
done
python3 "$BENCH/patterns.py" "${PROFILE_FILES[@]}" --mtail "$MTAIL_PROG" --prefilters "$BENCH/prefilters.txt" --out "$PAT" 2>&1 | tee "$PAT/warnings.txt"
RG_RE=(rg -c --no-unicode)
while IFS= read -r p; do RG_RE+=(-e "$p"); done <"$PAT/rg-patterns.txt"
RG_RE+=("$CORPUS")
RG_LIT=(rg -c -F)
while IFS= read -r p; do RG_LIT+=(-e "$p"); done <"$PAT/rg-literals.txt"
RG_LIT+=("$CORPUS")
N_RE=$(wc -l <"$PAT/rg-patterns.txt")
N_LIT=$(wc -l <"$PAT/rg-literals.txt")
N_RULES=$(ls "$PAT"/rules/*.name | wc -l)

# ------------------------------------------------------------------ correctness runs (+ peak RSS)
step "chainwatch replay (correctness run, /usr/bin/time -v)"
/usr/bin/time -v -o "$OUT/chainwatch-$L.time" "$BIN" "${CW_ARGS[@]}" "$CORPUS" >"$OUT/chainwatch-$L.prom"
grep -E "Elapsed|Maximum resident" "$OUT/chainwatch-$L.time" | sed 's/^\s*/  /'

MTAIL_CMD=(mtail --one_shot --one_shot_format=prometheus --progs "$MTAIL_PROG" --logs "$CORPUS" --logtostderr --address 127.0.0.1 --port 0)
# mtail takes ~40 s per 1M lines, so its timed runs double as its correctness run: each run writes
# the metrics, its log and its /usr/bin/time -v report, and the last run's are the ones compared.
# (No warm-up run: the corpus is already in the page cache, written and read just above.)
MTAIL_SH="$(cmdline /usr/bin/time -v -o "$OUT/mtail-$L.time" "${MTAIL_CMD[@]}") >$(shq "$OUT/mtail-$L.prom") 2>$(shq "$OUT/mtail-$L.stderr")"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
step "hyperfine: mtail --one_shot ($MTAIL_RUNS runs; the last one's output is compared, its /usr/bin/time -v gives peak RSS)"
hyperfine --style basic --runs "$MTAIL_RUNS" --export-json "$OUT/hyperfine-mtail-$L.json" -n mtail "$MTAIL_SH" \
  || die "mtail failed, see $OUT/mtail-$L.stderr"
grep -E "Elapsed|Maximum resident" "$OUT/mtail-$L.time" | sed 's/^\s*/  /'
MTAIL_ERRS=$(grep -c "Runtime error" "$OUT/mtail-$L.stderr" || true)
[ "$MTAIL_ERRS" -eq 0 ] || echo "WARNING: mtail logged $MTAIL_ERRS runtime errors (lines it gave up on), see $OUT/mtail-$L.stderr" | tee -a "$PAT/warnings.txt"

step "compare chainwatch vs mtail"
COUNTS_OK=yes
python3 "$BENCH/compare.py" --chainwatch "$OUT/chainwatch-$L.prom" --mtail "$OUT/mtail-$L.prom" --expected "$EXPECTED" --md "$OUT/compare-$L.md" || COUNTS_OK=no

step "rg scan limits: counts and prefilter soundness"
/usr/bin/time -v -o "$OUT/rg-re-$L.time" "${RG_RE[@]}" >"$OUT/rg-re-$L.count" || true
/usr/bin/time -v -o "$OUT/rg-lit-$L.time" "${RG_LIT[@]}" >"$OUT/rg-lit-$L.count" || true
RE_COUNT=$(cat "$OUT/rg-re-$L.count"); LIT_COUNT=$(cat "$OUT/rg-lit-$L.count")
echo "  rg -c (rule regexes): $RE_COUNT lines; rg -c -F (prefilter literals): $LIT_COUNT lines; corpus lines meant to match a rule: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["matching_lines"])' "$EXPECTED")"
UNSOUND=0
SOUND_MD="Prefilter soundness (lines a rule's regex matches that hold none of its literals, per rule; must be 0):"
for f in "$PAT"/rules/*.pat; do
  b=${f%.pat}
  bad=$(rg --no-unicode -N -f "$f" "$CORPUS" | rg -c -v -F -f "$b.lits" || true)
  bad=${bad:-0}
  [ "$bad" -eq 0 ] || { UNSOUND=1; echo "WARNING: $(cat "$b.name"): $bad matching lines hold none of its literals in prefilters.txt" | tee -a "$PAT/warnings.txt"; }
done
if [ $UNSOUND -eq 0 ]; then SOUND_MD+=" 0 for all $N_RULES rules."; echo "  all $N_RULES rules: 0 (every line a rule matches holds one of its literals)"; else SOUND_MD+=" **violated, see the script output**."; fi

# ------------------------------------------------------------------ timings
step "hyperfine: chainwatch, rg -c, rg -c -F (warm-up 1, $RUNS runs)"
hyperfine -N --style basic --output=pipe --warmup 1 --runs "$RUNS" --export-json "$OUT/hyperfine-fast-$L.json" \
  -n chainwatch "$(cmdline "$BIN" "${CW_ARGS[@]}" "$CORPUS")" \
  -n "rg -c --no-unicode ($N_RE rule regexes)" "$(cmdline "${RG_RE[@]}")" \
  -n "rg -c -F ($N_LIT prefilter literals)" "$(cmdline "${RG_LIT[@]}")"

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ big corpus: RSS must not grow
BIG_N=$((N * BIG_FACTOR))
BL=$(label "$BIG_N")
BIG=$OUT/corpus-$BL.log
step "big corpus: $BIG_N lines (the corpus $BIG_FACTOR times over) -> chainwatch peak RSS"
: >"$BIG"
for _ in $(seq "$BIG_FACTOR"); do cat "$CORPUS" >>"$BIG"; done
/usr/bin/time -v -o "$OUT/chainwatch-$BL.time" "$BIN" "${CW_ARGS[@]}" "$BIG" >"$OUT/chainwatch-$BL.prom"
grep -E "Elapsed|Maximum resident" "$OUT/chainwatch-$BL.time" | sed 's/^\s*/  /'
BIG_CHECK=$(python3 - "$OUT/chainwatch-$L.prom" "$OUT/chainwatch-$BL.prom" "$BIG_FACTOR" <<'EOF'
import re, sys
def rules(p):
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'^chainwatch_rule_matches_total\{[^}]*rule="([^"]+)"[^}]*\} (\S+)$', open(p).read(), re.M)}
a, b, k = rules(sys.argv[1]), rules(sys.argv[2]), int(sys.argv[3])
bad = [r for r in a if b.get(r) != k * a[r]]
print(f"Its per-rule match counts are exactly {k}x the 1M run's." if not bad else f"Per-rule counts NOT {k}x the 1M run's for: {', '.join(bad)}.")
EOF
)
echo "  $BIG_CHECK"
[ "${BENCH_KEEP_BIG:-0}" = 1 ] || rm -f "$BIG"

# ------------------------------------------------------------------ report
step "results"
HEADER="## chainwatch replay benchmark

Run $(date -u +%Y-%m-%dT%H:%M:%SZ) by bench/replay.sh. CPU: $CPU, $(nproc) cores.
Versions: $VERSIONS.
chainwatch: \`replay --profile ${PROFILES[0]} --profile ${PROFILES[1]}\` ($N_RULES rules). mtail: $(basename "$MTAIL_PROG"), the same $N_RULES rules.
Corpus: bench/gen_corpus.py --lines $N --seed $SEED (sha256 $SHA…)."
WARN_MD=$(grep '^WARNING' "$PAT/warnings.txt" | sed 's/^/- /' || true)
[ -z "$WARN_MD" ] || HEADER+=$'\n\n**Warnings of this run:**\n'"$WARN_MD"
SCAN="Scan limits: \`rg -c --no-unicode\` with the $N_RE distinct rule regexes counted $RE_COUNT matching lines; \`rg -c -F\` with the $N_LIT distinct literal prefilters (bench/prefilters.txt) counted $LIT_COUNT lines (a superset: lines holding a literal). $SOUND_MD"
python3 "$BENCH/report.py" \
  --hyperfine "$OUT/hyperfine-fast-$L.json" --hyperfine "$OUT/hyperfine-mtail-$L.json" \
  --lines "$N" --bytes "$BYTES" \
  --rss "chainwatch=$OUT/chainwatch-$L.time" --rss "mtail=$OUT/mtail-$L.time" \
  --rss "rg -c --no-unicode ($N_RE rule regexes)=$OUT/rg-re-$L.time" --rss "rg -c -F ($N_LIT prefilter literals)=$OUT/rg-lit-$L.time" \
  --big-time "$OUT/chainwatch-$BL.time" --big-lines "$BIG_N" --big-check "$BIG_CHECK" \
  --counts "$OUT/compare-$L.md" --counts-ok "$COUNTS_OK" --scan "$SCAN" --header "$HEADER" \
  --load "$LOAD_BEFORE before the timed runs, $LOAD_AFTER after" --md "$OUT/replay-results.md"
echo
echo "written: $OUT/replay-results.md  (total $((SECONDS - T0)) s)"
if [ "$COUNTS_OK" != yes ]; then
  echo "FAIL: chainwatch and mtail disagree (diff above, tables in $OUT/compare-$L.md)" >&2
  exit 1
fi
