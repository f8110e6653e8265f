//! Alertmanager: receivers, the route tree's inputs (severity and scope receivers, timings, the
//! heartbeat), inhibitions, and Alertmanager's own semantics over them (which receivers an alert
//! reaches, which rule mutes which alert), which validation and the steps both ask.

use std::collections::BTreeMap;

use chainwatch_catalog::CONSTANT_LABELS;
use chainwatch_duration::Duration;

use super::alert::AlertM;
use super::measure::LabelMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct ReceiverM {
    pub name: String,
    pub kind: String,
    pub channel: Option<String>,
    pub secret_file: Option<String>,
    pub url: Option<String>,
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmMatcher {
    pub name: String,
    pub op: String,
    pub value: String,
}

impl AmMatcher {
    /// Alertmanager's notation of the matcher: `name="value"` (the value quoted).
    pub fn render(&self) -> String {
        format!(
            "{}{}{}",
            self.name,
            self.op,
            serde_json::to_string(&self.value).expect("string")
        )
    }

    /// Does the matcher accept `v` (a missing label is the empty string)? Regexes are anchored.
    pub fn matches(&self, v: &str) -> bool {
        match self.op.as_str() {
            "=" => v == self.value,
            "!=" => v != self.value,
            "=~" | "!~" => {
                let re = regex::Regex::new(&format!("^(?:{})$", self.value)).expect("validated");
                re.is_match(v) == (self.op == "=~")
            }
            _ => false,
        }
    }
}

fn all_match(ms: &[AmMatcher], labels: &LabelMap) -> bool {
    ms.iter()
        .all(|m| m.matches(labels.get(&m.name).map(String::as_str).unwrap_or_default()))
}

/// Matches of `ms` against an alert rule: labels the rule sets are compared; labels of its
/// series are assumed to match when the rule carries them.
pub fn rule_matches(ms: &[AmMatcher], a: &AlertM) -> bool {
    let st = a.static_labels();
    let carried = a.carried_labels();
    ms.iter().all(|m| match st.get(&m.name) {
        Some(v) => m.matches(v),
        None if carried.contains(&m.name) => true,
        None => m.matches(""),
    })
}

#[derive(Debug, Clone)]
pub struct InhibitionM {
    pub name: String,
    pub why: String,
    pub source: Vec<AmMatcher>,
    pub target: Vec<AmMatcher>,
    pub equal: Vec<String>,
}

impl InhibitionM {
    /// Alertmanager's semantics: the source mutes the target when both match their sides and the
    /// `equal` labels agree (missing = empty); an alert that matches both sides is not muted by one
    /// that also does.
    pub fn mutes(&self, source: &LabelMap, target: &LabelMap) -> bool {
        let get = |l: &LabelMap, k: &str| l.get(k).cloned().unwrap_or_default();
        if !all_match(&self.source, source) || !all_match(&self.target, target) {
            return false;
        }
        if self.equal.iter().any(|k| get(source, k) != get(target, k)) {
            return false;
        }
        let both = |l: &LabelMap| all_match(&self.source, l) && all_match(&self.target, l);
        !(both(target) && both(source))
    }

    /// Sample labels of `source` and `target` firing on the same node, region or network (the
    /// source's values of the constant labels among `equal`).
    pub fn aligned(&self, source: &AlertM, target: &AlertM) -> (LabelMap, LabelMap) {
        let src = source.sample_labels.clone();
        let mut tgt = target.sample_labels.clone();
        for k in self
            .equal
            .iter()
            .filter(|k| CONSTANT_LABELS.contains(&k.as_str()))
        {
            match src.get(k) {
                Some(v) => {
                    tgt.insert(k.clone(), v.clone());
                }
                None => {
                    tgt.remove(k);
                }
            }
        }
        (src, tgt)
    }
}

#[derive(Debug, Clone)]
pub struct HeartbeatM {
    pub receiver: String,
    pub labels: LabelMap,
    pub timings: Timings,
}

impl HeartbeatM {
    /// Does this alert feed the dead man's switch (carry every heartbeat label)?
    pub fn fed_by(&self, a: &AlertM) -> bool {
        self.selects(&a.static_labels())
    }

    /// Do these labels select the heartbeat route?
    pub fn selects(&self, labels: &LabelMap) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Where the alerts of one priority go, and when.
#[derive(Debug, Clone)]
pub struct PriorityRoute {
    pub name: String,
    /// critical, warning or info: the `severity` label of its alerts.
    pub level: String,
    pub timings: Timings,
    pub receivers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Alerting {
    pub default_receiver: String,
    pub group_by: Vec<String>,
    pub resolve_timeout: Option<Duration>,
    pub root: Timings,
    pub heartbeat: Option<HeartbeatM>,
    /// The priorities' routes, most urgent first (by level, then name).
    pub priorities: Vec<PriorityRoute>,
    /// The labels routes key on: the priority, and the level (the one other mixins' alerts carry).
    pub priority_label: String,
    pub severity_label: String,
    /// Scope label value → extra receivers.
    pub scope_receivers: BTreeMap<String, Vec<String>>,
    pub receivers: BTreeMap<String, ReceiverM>,
    /// Explicit inhibitions, then the generated alertgroup rules.
    pub inhibitions: Vec<InhibitionM>,
}

impl Alerting {
    /// The receivers an alert must reach, in the order of the route tree: the heartbeat receiver
    /// alone, or the receivers of its scope and then those of its severity. This is the intent
    /// the routing cases check the rendered tree against.
    pub fn expected_receivers(&self, labels: &LabelMap) -> Vec<String> {
        if let Some(hb) = &self.heartbeat {
            if hb.selects(labels) {
                return vec![hb.receiver.clone()];
            }
        }
        let mut out = Vec::new();
        if let Some(scope) = labels.get("scope") {
            if let Some(rs) = self.scope_receivers.get(scope) {
                out.extend(rs.iter().cloned());
            }
        }
        match self.route_of(labels) {
            Some(p) => out.extend(p.receivers.iter().cloned()),
            None => {
                if out.is_empty() {
                    out.push(self.default_receiver.clone());
                }
            }
        }
        out
    }

    /// Which rule mutes `target` when `source` fires (Alertmanager's semantics over all rules).
    pub fn muted_by(&self, source: &LabelMap, target: &LabelMap) -> Option<&str> {
        self.inhibitions
            .iter()
            .find(|r| r.mutes(source, target))
            .map(|r| r.name.as_str())
    }

    /// The priority route an alert takes: its `priority`'s, or, for an alert of another mixin
    /// that carries a `severity` but no `priority`, that of the most urgent priority of its level.
    pub fn route_of(&self, labels: &LabelMap) -> Option<&PriorityRoute> {
        match labels.get(&self.priority_label) {
            Some(p) => self.priorities.iter().find(|r| &r.name == p),
            None => labels
                .get(&self.severity_label)
                .and_then(|l| self.foreign(l)),
        }
    }

    /// The route of the alerts of `level` that carry no priority (none when no priority has it).
    pub fn foreign(&self, level: &str) -> Option<&PriorityRoute> {
        self.priorities.iter().find(|r| r.level == level)
    }

    /// Timings an alert of this priority's notifications follow.
    pub fn timings_of(&self, priority: &str) -> Option<Timings> {
        self.priorities
            .iter()
            .find(|r| r.name == priority)
            .map(|r| r.timings)
    }
}
