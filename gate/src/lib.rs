//! chainwatch-gate: a rollout gate of thresholds.yaml answered against a Prometheus — proceed,
//! hold, roll back or unknown — for a pipeline step or a person.
//!
//! The gate comes from the model rulegen validates (`chainwatch_rulegen`), its queries from the
//! same PromQL builders as the generated rules, so `gate check`, the recording rules, the
//! dashboards and the canary templates cannot disagree on what a criterion means.
//! `prom` asks Prometheus, `rules` reads the generated recording rules, `eval` decides,
//! `report` says it.

pub mod eval;
pub mod prom;
pub mod report;
pub mod rules;
pub mod time;
