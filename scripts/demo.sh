#!/usr/bin/env bash
# The demo (README, "Two commands"): a simulated fleet of nodes of every family in three regions,
# one chainwatch sidecar per node (run by the simulator beside its node: a host or region that goes
# down takes its sidecars with it), the rules, Alertmanager configuration and dashboards rendered
# by chainwatch-rulegen, the real Prometheus and Alertmanager — all on loopback, on ports picked
# at start. Prints where to look and how to inject failures, then the notifications Alertmanager
# delivers. Ctrl-C stops everything.
#
# It is the stack of the end-to-end suite (tests/e2e.rs, tests/support/stack.rs), left running:
# the fleet is tests/fixtures/e2e-fleet.yaml and the thresholds are thresholds.yaml with the
# overlay tests/fixtures/e2e-overlay.yaml, so alerts fire within seconds instead of minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

# Prometheus and Alertmanager from Debian's packages when missing (Debian installs Alertmanager
# as `prometheus-alertmanager`).
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v alertmanager >/dev/null || command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
  # The packages start their own services on :9090/:9093 where systemd runs; the demo needs
  # neither (it picks free ports), so leave them as the distribution set them up.
fi

echo "== building the sidecar, the simulator, rulegen and the demo"
cargo build -q -p chainwatch-exporter -p chainwatch-sim -p chainwatch-rulegen
cargo build -q -p chainwatch-tests --example demo

target="${CARGO_TARGET_DIR:-target}"
exec "$target/debug/examples/demo" "$@"
