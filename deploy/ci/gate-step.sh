#!/usr/bin/env bash
# One pipeline step between two stages of a staged rollout: wait until the rollout gate decides,
# then let the pipeline go on (exit 0), or run the rollback command and fail (exit 2). A gate
# that has not decided when WAIT runs out fails the step with its answer: hold (1: re-run the
# step later) or unknown (3: no data, Prometheus unreachable). Never proceeds by default.
#
# Environment:
#   PROMETHEUS   Prometheus's base URL                       (required)
#   GATE         the gate, see `chainwatch-gate list`        (required)
#   CHAIN, NETWORK  the group the stage deployed to          (optional: every group)
#   WAIT         how long to wait for a decision             (default 1h)
#   INTERVAL     time between evaluations                    (default 1m)
#   ROLLBACK     a shell command run when the gate says roll back (optional)
#   THRESHOLDS   thresholds.yaml                             (default thresholds.yaml)
#   OVERLAY      the overlay the running rules were rendered with (optional)
#   CHAINWATCH_GATE  the binary                              (default chainwatch-gate)
set -uo pipefail
# A step written wrong is not a hold: exit 4, as chainwatch-gate does on invalid input.
[ -n "${PROMETHEUS:-}" ] || { echo "set PROMETHEUS to the URL of Prometheus" >&2; exit 4; }
[ -n "${GATE:-}" ] || { echo "set GATE to a gate (chainwatch-gate list)" >&2; exit 4; }
args=(--thresholds "${THRESHOLDS:-thresholds.yaml}")
[ -n "${OVERLAY:-}" ] && args+=(--overlay "$OVERLAY")
args+=(check --prometheus "$PROMETHEUS" --gate "$GATE" --wait "${WAIT:-1h}" --interval "${INTERVAL:-1m}")
[ -n "${CHAIN:-}" ] && args+=(--chain "$CHAIN")
[ -n "${NETWORK:-}" ] && args+=(--network "$NETWORK")
"${CHAINWATCH_GATE:-chainwatch-gate}" "${args[@]}"
code=$?
case "$code" in
  0) echo "gate $GATE: proceed" ;;
  1) echo "gate $GATE: hold — not decided within ${WAIT:-1h}; re-run this step later" >&2 ;;
  2)
    echo "gate $GATE: roll back" >&2
    if [ -n "${ROLLBACK:-}" ]; then
      bash -c "$ROLLBACK" || echo "gate $GATE: the rollback command failed ($?)" >&2
    fi
    ;;
  3) echo "gate $GATE: unknown — no answer from Prometheus or no data; not proceeding" >&2 ;;
  *) echo "gate $GATE: chainwatch-gate could not run (exit $code)" >&2 ;;
esac
exit "$code"
