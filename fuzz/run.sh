#!/usr/bin/env bash
# Builds the cargo-fuzz targets and runs each for SECONDS (default 600), one after the other.
# Fails (exit 1) if any target crashes, leaks, times out or runs out of memory; the reproducer is
# left in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]       # all targets when none is named
#
# Toolchain: cargo-fuzz puts nightly-only flags in RUSTFLAGS (-Zsanitizer=address). A stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1, which this script sets; AddressSanitizer's
# runtime ships with stable's x86_64-unknown-linux-gnu standard library, so neither `+nightly` nor
# `-Zbuild-std` is needed (`cargo fuzz build`/`run` use --build-std only with --careful).
# Checked with cargo-fuzz 0.13.2 and rustc 1.95.0 (stable). `--sanitizer none` also works and
# fuzzes faster (ASan matters only for the unsafe code in dependencies).
#
# Corpora: seeds/<target>/ holds the committed seed inputs (regenerate with make_seeds.py).
# Each run writes new inputs to corpus/<target>/ (gitignored), which starts as a copy of the
# seeds and keeps growing across runs; seeds/<target>/ is passed read-only.
#
# Runs are niced and single-process (-jobs=1 -workers=1, RSS limit 2 GiB): other work on a
# 2-core machine goes on. Logs: logs/<target>.log (libFuzzer's output); one line per target and
# run in logs/history.tsv (runs, coverage, corpus size).
set -euo pipefail

SECONDS_PER_TARGET="${1:-600}"
shift || true
ALL_TARGETS=(profile_loader line_engine json_mapping prom_text journal_decode thresholds_loader web_config sidecar_config)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
# The same build flags for `build` and `run`: a difference would make `run` rebuild.
# 16 codegen units: a much shorter build on two cores for a small loss of speed.
BUILD_FLAGS=(--codegen-units 16)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# chainwatch-rulegen is an optional dependency (feature `rulegen`), needed by thresholds_loader
# only: the other targets still build while rulegen does not compile.
features_of() {
    case "$1" in
        thresholds_loader) echo "--features=rulegen" ;;
    esac
}

FUZZ_DIR=$(pwd)
mkdir -p logs
# One line per target of this invocation; logs/history.tsv keeps every run's lines.
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
header='target\tseconds\texit\truns\tcov\tft\tcorpus_files\tcorpus_bytes\tfinished'
[ -f logs/history.tsv ] || printf "$header\n" > logs/history.tsv
failed=()
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" "$(date -u +%FT%TZ)" | tee -a "$summary" >> logs/history.tsv
}
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    cp -n "seeds/$t"/* "corpus/$t"/ 2>/dev/null || true
    echo "== $t: ${SECONDS_PER_TARGET}s" >&2
    # shellcheck disable=SC2046  # no feature or exactly one word
    if ! nice -n 19 cargo fuzz build "${BUILD_FLAGS[@]}" $(features_of "$t") "$t"; then
        echo "!! $t does not build" >&2
        record "$t" "$SECONDS_PER_TARGET" "build-failed" "" "" "" "" ""
        failed+=("$t")
        continue
    fi
    # With -jobs, libFuzzer runs the job in a child whose output goes to ./fuzz-0.log: each
    # target runs in its own directory, so that two invocations for different targets can run
    # side by side.
    work="logs/$t.d"
    rm -rf "$work"
    mkdir -p "$work"
    rc=0
    # shellcheck disable=SC2046
    (cd "$work" && nice -n 19 cargo fuzz run --fuzz-dir "$FUZZ_DIR" "${BUILD_FLAGS[@]}" $(features_of "$t") "$t" \
        "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -jobs=1 -workers=1 -rss_limit_mb=2048 \
        -timeout=30 -print_final_stats=1) >"logs/$t.run.log" 2>&1 || rc=$?
    if [ -f "$work/fuzz-0.log" ]; then mv "$work/fuzz-0.log" "logs/$t.log"; else cp "logs/$t.run.log" "logs/$t.log"; fi
    rm -rf "$work"
    # The last status line: "#RUNS DONE cov: N ft: N corp: N/SIZE ..." (or the last pulse).
    last=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -1 || true)
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "logs/$t.log" | grep -oE '[0-9]+$' | tail -1 || true)
    [ -n "$runs" ] || runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    files=$(find "corpus/$t" -type f | wc -l)
    bytes=$(du -sb "corpus/$t" | cut -f1)
    record "$t" "$SECONDS_PER_TARGET" "$rc" "$runs" "$cov" "$ft" "$files" "$bytes"
    if [ "$rc" -ne 0 ]; then
        echo "!! $t failed (exit $rc); see fuzz/logs/$t.log and fuzz/artifacts/$t/" >&2
        failed+=("$t")
    fi
done
{ printf "$header\n"; cat "$summary"; } | column -t -s $'\t' >&2
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
