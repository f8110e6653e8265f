#!/usr/bin/env bash
# Generated artifacts: fresh against thresholds.yaml, every criterion mapped, and valid for the
# real tools: promtool (rules checked, every generated unit test passing) and amtool (the
# Alertmanager config checked, every generated routing case resolving to exactly its receivers).
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
promtool check rules prometheus/rules/*.rules.yml prometheus/rules/global/*.rules.yml
echo "== promtool test rules"
promtool test rules prometheus/tests/*/*.test.yml > target/promtool-test.log 2>&1 \
  || { cat target/promtool-test.log; exit 1; }
echo "promtool test rules: $(ls prometheus/tests/*/*.test.yml | wc -l) test files, all passed"
# The tests written by hand (from the seeds' words, not from the model) run against the same rules.
echo "== promtool test rules (hand-written: rulegen/tests/testdata/*.test.yml)"
(cd rulegen && promtool test rules tests/testdata/*.test.yml > ../target/promtool-hand.log 2>&1) \
  || { cat target/promtool-hand.log; exit 1; }
echo "promtool test rules: $(ls rulegen/tests/testdata/*.test.yml | wc -l) hand-written files, all passed"
echo "== promtool test rules (hand-written from the seeds: rulegen/tests/testdata/seeds/)"
(cd rulegen/tests/testdata/seeds && promtool test rules ./*.test.yml > /dev/null)
echo "seed tests: $(ls rulegen/tests/testdata/seeds/*.test.yml | wc -l) files, all passed"
echo "== amtool check-config"
amtool check-config alertmanager/alertmanager.yml
echo "== amtool config routes test (alertmanager/tests/routes.tsv)"
passed=0 failed=0
while IFS=$'\t' read -r case receivers labels; do
  case "$case" in ''|'#'*) continue ;; esac
  # shellcheck disable=SC2086 # labels are space-separated name=value words
  if amtool config routes test --config.file=alertmanager/alertmanager.yml \
      --verify.receivers="$receivers" $labels > /dev/null 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "route $case: expected $receivers, got $(amtool config routes test \
      --config.file=alertmanager/alertmanager.yml $labels 2>/dev/null)"
  fi
done < alertmanager/tests/routes.tsv
echo "routes: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
