//! Recording rules and rollout gates.

use chainwatch_duration::Duration;

use super::measure::{LabelMap, Labels, Measure, Op, Scope};

/// Where a recording rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `recording_rules` of thresholds.yaml.
    Spec,
    /// Derived by rulegen: a rollup a long window is built from, or a bucket rate several
    /// quantiles share. Rendered first in its group; tested through the rules that read it.
    Derived,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub origin: Origin,
    pub criteria: Vec<String>,
    pub group: String,
    pub measures: String,
    pub labels: LabelMap,
    pub measure: Measure,
    /// The chains it records (derived records read only the chain of their readers).
    pub scope: Scope,
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
    /// The chain the gate is about: every selector of its conditions is restricted to it.
    pub chain: Option<String>,
    pub proceed: Vec<CondM>,
    pub rollback: Vec<CondM>,
    /// Its section of the runbook (`defaults.runbook_url#gate-<name>`).
    pub runbook_url: String,
    pub path: String,
}

/// A rule group evaluated at its own interval, and why that interval.
#[derive(Debug, Clone)]
pub struct GroupM {
    /// None: the global evaluation interval.
    pub interval: Option<Duration>,
    pub why: String,
    pub tier: Tier,
}

/// Where a group runs in a two-tier deployment: on every regional Prometheus (scraping the
/// sidecars), or on the global one, over the recording rules the regional servers federate. One
/// Prometheus runs both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tier {
    #[default]
    Regional,
    Global,
}
