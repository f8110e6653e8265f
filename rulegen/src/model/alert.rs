//! Alerts: one rule per alert, made of variants (all chains; one chain with its own threshold;
//! the other chains), with the labels and annotations validation decided for it.

use chainwatch_duration::Duration;

use super::measure::{LabelMap, Labels, Measure, Op, Scope};

#[derive(Debug, Clone)]
pub struct SeverityM {
    pub name: String,
    pub level: String,
    pub response_time: String,
    pub description: String,
    pub receivers: Vec<String>,
}

/// One rule of an alert: the alert for all chains, or for one chain, or for the rest.
#[derive(Debug, Clone)]
pub struct Variant {
    pub scope: Scope,
    /// `chain` label value used by the generated tests.
    pub test_chain: String,
    pub measure: Measure,
    pub op: Option<Op>,
    pub threshold: Option<f64>,
    pub for_: Duration,
    pub expr: String,
    /// Human text of the condition, e.g. `chain_peers < 3 for 5m`.
    pub threshold_text: String,
    /// Labels the result of `expr` can carry.
    pub out_labels: Labels,
}

#[derive(Debug, Clone)]
pub struct AlertM {
    pub name: String,
    pub criteria: Vec<String>,
    pub group: String,
    pub measures: String,
    pub severity: String,
    pub summary: String,
    pub description: String,
    pub runbook_url: String,
    /// Key into `runbooks` (the first checks).
    pub runbook: String,
    /// Label `alertgroup`: the more urgent alert of a group mutes the milder ones.
    pub alertgroup: Option<String>,
    pub variants: Vec<Variant>,
    /// The one rule: the variants' expressions joined with `or` (each is scoped to its chains).
    pub expr: String,
    pub for_: Duration,
    pub threshold_text: String,
    /// `node`, `region` or `fleet`: what one firing alert is about.
    pub scope: &'static str,
    /// Labels the rule sets: its own `labels`, `severity`, `criterion`, `scope`, `alertgroup`.
    pub rule_labels: LabelMap,
    /// Annotations, unexpanded (`{{ $labels.x }}` kept).
    pub annotations: LabelMap,
    /// One concrete label set of a firing alert (routing and inhibition cases, the runbook).
    pub sample_labels: LabelMap,
    /// Field path of the alert in thresholds.yaml (for errors found later).
    pub path: String,
}

impl AlertM {
    /// Labels an alert has whatever its series: the rule's labels and `alertname`.
    pub fn static_labels(&self) -> LabelMap {
        let mut l = self.rule_labels.clone();
        l.insert("alertname".into(), self.name.clone());
        l
    }

    /// Every label an alert of this rule can carry (static ones and its expression's result).
    pub fn carried_labels(&self) -> Labels {
        let mut s: Labels = self.static_labels().into_keys().collect();
        s.extend(self.variants[0].out_labels.iter().cloned());
        s
    }
}
