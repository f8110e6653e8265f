#!/usr/bin/env bash
# Generated artifacts: fresh against thresholds.yaml, every criterion mapped, and valid for the
# real promtool (rules checked, every generated unit test passing).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p chainwatch-rulegen
echo "== chainwatch-rulegen --check"
./target/debug/chainwatch-rulegen --check
echo "== chainwatch-rulegen coverage"
if [ -f ../shared/criteria.md ]; then
  ./target/debug/chainwatch-rulegen coverage --criteria ../shared/criteria.md
else
  ./target/debug/chainwatch-rulegen coverage
fi
echo "== promtool check rules"
promtool check rules prometheus/rules/*.rules.yml
echo "== promtool test rules"
promtool test rules prometheus/tests/*/*.test.yml > target/promtool-test.log 2>&1 \
  || { cat target/promtool-test.log; exit 1; }
echo "promtool test rules: $(ls prometheus/tests/*/*.test.yml | wc -l) test files, all passed"
