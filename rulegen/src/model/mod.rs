//! Stage 3, the model: plain data that validation produced and every step reads. No rendering,
//! no validation, nothing from the other stages; the methods here only read the data (a
//! measure's selectors, the labels an alert carries, Alertmanager's matching semantics).

pub mod alert;
pub mod dashboard;
pub mod docs;
pub mod measure;
pub mod outputs;
pub mod record;
pub mod routing;
pub mod slo;

use std::collections::BTreeMap;

use chainwatch_duration::Duration;

pub use alert::{AlertM, SeverityM, ValueFormat, Variant};
pub use dashboard::{DashboardM, GrafanaM, Line, PanelM, QueryM};
pub use docs::{CriterionText, NotMeasurable, Runbook};
pub use measure::{
    LabelMap, Labels, Matcher, Measure, Op, Part, RawTestM, RollOp, Scope, Sel, Source, Via,
};
pub use outputs::{KubernetesM, OutputsM, PodMonitorM};
pub use record::{CondM, GateM, GroupM, Origin, Record, Tier};
pub use routing::{
    rule_matches, Alerting, AmMatcher, HeartbeatM, InhibitionM, PriorityRoute, ReceiverM, Timings,
};
pub use slo::{BurnM, SloAlertM, SloM};

/// Everything thresholds.yaml says, validated.
#[derive(Debug, Clone)]
pub struct Model {
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
    pub criteria: Vec<String>,
    pub severities: BTreeMap<String, SeverityM>,
    pub alerts: Vec<AlertM>,
    /// In thresholds.yaml order: each may use the ones before it.
    pub records: Vec<Record>,
    pub gates: Vec<GateM>,
    pub slos: Vec<SloM>,
    /// Rule groups with an evaluation interval of their own (the others use the global one).
    pub groups: BTreeMap<String, GroupM>,
    pub not_measurable: Vec<NotMeasurable>,
    /// Chain → expected block time.
    pub chains: BTreeMap<String, Duration>,
    pub criteria_text: BTreeMap<String, CriterionText>,
    pub runbooks: BTreeMap<String, Runbook>,
    pub alerting: Option<Alerting>,
    pub grafana: Option<GrafanaM>,
    pub dashboards: Vec<DashboardM>,
    pub outputs: OutputsM,
}

impl Model {
    /// Every rule group (one rule file each): of the alerts, recording rules and gates, sorted.
    pub fn rule_groups(&self) -> Vec<&str> {
        let mut g: Vec<&str> = self
            .alerts
            .iter()
            .map(|a| a.group.as_str())
            .chain(self.records.iter().map(|r| r.group.as_str()))
            .chain(self.gates.iter().map(|g| g.group.as_str()))
            .collect();
        g.sort();
        g.dedup();
        g
    }
}

impl Model {
    /// The tier a group runs on (a group without an entry under `groups:` is regional).
    pub fn tier(&self, group: &str) -> Tier {
        self.groups.get(group).map(|g| g.tier).unwrap_or_default()
    }
}
