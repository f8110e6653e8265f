//! Recording rules and rollout gates.

use chainwatch_duration::Duration;

use super::measure::{LabelMap, Labels, Measure, Op};

#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub criteria: Vec<String>,
    pub group: String,
    pub measures: String,
    pub labels: LabelMap,
    pub measure: Measure,
    pub expr: String,
    pub out_labels: Labels,
    pub path: String,
}

/// One condition of a gate: a measure compared with a threshold, held `throughout`.
#[derive(Debug, Clone)]
pub struct CondM {
    pub name: String,
    pub measure: Measure,
    pub op: Op,
    pub threshold: f64,
    pub throughout: Duration,
}

/// A rollout stage: may we proceed, must we roll back.
#[derive(Debug, Clone)]
pub struct GateM {
    pub name: String,
    pub criteria: Vec<String>,
    pub group: String,
    pub source: String,
    pub stage: String,
    pub window: Duration,
    pub by: Vec<String>,
    pub proceed: Vec<CondM>,
    pub rollback: Vec<CondM>,
    /// Its section of the runbook (`defaults.runbook_url#gate-<name>`).
    pub runbook_url: String,
    pub path: String,
}
