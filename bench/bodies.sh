#!/usr/bin/env bash
# Hostile API bodies at the default caps: peak RSS of the real sidecar per case.
#
#   bench/bodies.sh            # ~2 min plus the release build; results in bench/out/bodies-results.md
#
# Installs what is missing (`apt-get install -y python3 time`, only when one is absent), builds
# `cargo build --release -p chainwatch-exporter`, then runs bench/bodies.py (python3, stdlib
# only), which serves each hostile body from a local HTTP server to a fresh sidecar and samples
# /proc/PID/status (VmRSS before, VmHWM for the peak, VmRSS after). See bench/README.md.
#
# Environment: BODIES_CASES (comma-separated case names; default all), BENCH_OUT (bench/out).
# Exit status: 1 when a case did not have its expected outcome (a last good value lost, the wrong
# error kind, source_up wrong); 2 on a setup failure. Memory figures are reported, never asserted.
set -Eeuo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
OUT=${BENCH_OUT:-$BENCH/out}
die() { printf 'bodies.sh: %s\n' "$*" >&2; exit 2; }

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "installing: ${need[*]}"
  $SUDO apt-get update
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust: https://rustup.rs)"
printf '== cargo build --release -p chainwatch-exporter\n'
(cd "$ROOT" && cargo build --release -p chainwatch-exporter) || die "build failed"
BIN=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/chainwatch-exporter
[ -x "$BIN" ] || die "no binary at $BIN"
exec python3 "$BENCH/bodies.py" --bin "$BIN" --out "$OUT" --cases "${BODIES_CASES:-}"
