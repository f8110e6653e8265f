#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need when missing, then runs
# formatting, lints, the whole workspace test suite and the generated-file checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real components, never mocks: promtool and prometheus (package prometheus), amtool and the
# Alertmanager (package prometheus-alertmanager, whose binary Debian names
# prometheus-alertmanager), systemd-journal-remote and logrotate come from Debian's packages. The
# end-to-end suite (tests/e2e.rs) runs the real prometheus and Alertmanager.
need=()
{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || need+=(prometheus)
{ command -v amtool >/dev/null \
  && { command -v alertmanager >/dev/null || command -v prometheus-alertmanager >/dev/null; }; } \
  || need+=(prometheus-alertmanager)
[ -x /usr/lib/systemd/systemd-journal-remote ] || [ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)
command -v journalctl >/dev/null || need+=(systemd)
# systemd-socket-activate (package systemd): the --web.systemd-socket tests.
command -v systemd-socket-activate >/dev/null || need+=(systemd)
# The Python client's strict OpenMetrics parser checks /metrics in OpenMetrics (exporter/tests/
# exposition.rs), and Python's ssl (OpenSSL) is the TLS server of exporter/tests/fetch_tls.rs.
/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' 2>/dev/null || need+=(python3-prometheus-client)
# logrotate: the real rotation (create, copytruncate, compress, dateext) of follow/tests/logrotate.rs
# and the compressed rotations replayed in exporter/tests/replay_compressed.rs.
[ -x /usr/sbin/logrotate ] || [ -x /sbin/logrotate ] || need+=(logrotate)
# jsonschema and yaml for Python: the canary templates checked against the published CRDs
# (rulegen/tests/crd_check.py).
python3 -c 'import jsonschema, yaml' 2>/dev/null || need+=(python3-jsonschema python3-yaml)
# curl: the real TLS client of the --web.config.file tests (exporter/tests/web_tls.rs).
command -v curl >/dev/null || need+=(curl)
# tinyproxy: the real HTTP proxy of the proxy_url test (exporter/tests/fetch_tls.rs).
command -v tinyproxy >/dev/null || need+=(tinyproxy-bin)
# jsonnet evaluates the generated mixin, kubectl builds the Kustomize bases (`kubectl kustomize`;
# Debian's kubernetes-client), node and npm run the schema checks (tests/kubernetes.rs,
# tests/grafana_schema.rs).
command -v jsonnet >/dev/null || need+=(jsonnet)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# The pinned npm packages of the schema checks (@grafana/schema, kubernetes-types, TypeScript,
# Ajv), into target/schemas/; a no-op when tests/schemas/package-lock.json has not changed.
echo "== npm packages of the schema checks"
bash scripts/schemas.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== generated files are fresh"
cargo run -q -p chainwatch-exporter -- catalog | diff -u docs/metrics.md - \
  || { echo "docs/metrics.md is stale: cargo run -p chainwatch-exporter -- catalog > docs/metrics.md"; exit 1; }
bash scripts/check-generated.sh
echo "== all checks passed"
