//! What a gate check found, as people read it (text) and as machines do (`--output json`), and
//! the exit code it ends with.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chainwatch_rulegen::model::GateM;
use chainwatch_rulegen::promql::num;
use serde::Serialize;

use crate::eval::Request;

/// The answer, in rising order of caution; the exit code is documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Proceed,
    Hold,
    Rollback,
    Unknown,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Proceed => 0,
            Verdict::Hold => 1,
            Verdict::Rollback => 2,
            Verdict::Unknown => 3,
        }
    }

    /// Which of two answers a pipeline must act on: roll back over unknown over hold over
    /// proceed.
    fn caution(self) -> u8 {
        match self {
            Verdict::Proceed => 0,
            Verdict::Hold => 1,
            Verdict::Unknown => 2,
            Verdict::Rollback => 3,
        }
    }

    pub fn worst(self, other: Verdict) -> Verdict {
        if other.caution() > self.caution() {
            other
        } else {
            self
        }
    }

    /// Final: waiting longer cannot change it (hold and unknown may).
    pub fn is_decided(self) -> bool {
        matches!(self, Verdict::Proceed | Verdict::Rollback)
    }

    pub fn word(self) -> &'static str {
        match self {
            Verdict::Proceed => "proceed",
            Verdict::Hold => "hold",
            Verdict::Rollback => "rollback",
            Verdict::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Proceed,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A proceed condition held on every node.
    Pass,
    /// A proceed condition failed on some node.
    Fail,
    /// A rollback condition holds now on some node.
    Tripped,
    /// A rollback condition held at some time within the window, not now.
    TrippedInWindow,
    /// A rollback condition never held within the window.
    Clear,
    NoData,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Tripped => "TRIPPED",
            Status::TrippedInWindow => "TRIPPED earlier",
            Status::Clear => "clear",
            Status::NoData => "NO DATA",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeValue {
    pub labels: BTreeMap<String, String>,
    /// The measured value (None: the value query returned nothing for this series).
    #[serde(serialize_with = "ser_opt_f64")]
    pub value: Option<f64>,
    /// The condition held (throughout its window, for proceed conditions with `throughout`).
    pub held: bool,
    /// Rollback conditions: held at some time within the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tripped_in_window: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CondReport {
    pub kind: Kind,
    pub name: String,
    pub op: String,
    pub threshold: f64,
    #[serde(serialize_with = "ser_dur")]
    pub throughout: Duration,
    pub status: Status,
    pub nodes: Vec<NodeValue>,
    pub value_query: String,
    pub verdict_query: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    pub labels: BTreeMap<String, String>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub conditions: Vec<CondReport>,
    /// Nodes reporting the gate's series now.
    pub nodes: usize,
    /// Nodes that did not report them a window ago.
    pub nodes_not_elapsed: Vec<BTreeMap<String, String>>,
    #[serde(serialize_with = "ser_opt_f64")]
    pub record_proceed: Option<f64>,
    #[serde(serialize_with = "ser_opt_f64")]
    pub record_rollback: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub gate: String,
    pub stage: String,
    pub source: String,
    pub criteria: Vec<String>,
    #[serde(serialize_with = "ser_dur")]
    pub window: Duration,
    /// RFC 3339.
    pub at: String,
    pub scope: BTreeMap<String, String>,
    pub verdict: Verdict,
    pub exit_code: u8,
    pub groups: Vec<GroupReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn ser_dur<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&chainwatch_duration::format_std(*d))
}

/// JSON has no NaN or infinities: those are written as Prometheus writes them, as strings.
fn ser_opt_f64<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(x) if x.is_finite() => s.serialize_f64(*x),
        Some(x) => s.serialize_str(&num(*x).replace("inf", "Inf")),
    }
}

pub fn rfc3339(t: f64) -> String {
    let st = std::time::UNIX_EPOCH + Duration::from_secs_f64(t.max(0.0));
    humantime::format_rfc3339_seconds(st).to_string()
}

impl Report {
    pub fn new(g: &GateM, req: &Request) -> Report {
        Report {
            gate: g.name.clone(),
            stage: g.stage.clone(),
            source: g.source.clone(),
            criteria: g.criteria.clone(),
            window: g.window.to_std(),
            at: rfc3339(req.at),
            scope: req.scope.iter().cloned().collect(),
            verdict: Verdict::Unknown,
            exit_code: Verdict::Unknown.exit_code(),
            groups: Vec::new(),
            error: None,
        }
    }

    pub fn set_groups(&mut self, groups: Vec<GroupReport>) {
        self.verdict = if groups.is_empty() {
            self.error = Some("no data: no series of the gate's conditions in this scope".into());
            Verdict::Unknown
        } else {
            groups
                .iter()
                .map(|g| g.verdict)
                .fold(Verdict::Proceed, Verdict::worst)
        };
        self.exit_code = self.verdict.exit_code();
        self.groups = groups;
    }

    pub fn set_error(&mut self, e: String) {
        self.error = Some(e);
        self.verdict = Verdict::Unknown;
        self.exit_code = Verdict::Unknown.exit_code();
    }

    /// One line: the verdict and why (for `--wait` progress).
    pub fn summary(&self) -> String {
        let mut why: Vec<String> = self.error.iter().cloned().collect();
        for g in &self.groups {
            for r in &g.reasons {
                why.push(format!("{}: {r}", labels(&g.labels)));
            }
        }
        if why.is_empty() {
            self.verdict.word().to_string()
        } else {
            format!("{} ({})", self.verdict.word(), why.join("; "))
        }
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "gate {}: {}", self.gate, self.stage);
        let _ = writeln!(
            s,
            "  {}; window {}; criteria {}; at {}",
            self.source,
            chainwatch_duration::format_std(self.window),
            self.criteria.join(", "),
            self.at
        );
        for g in &self.groups {
            group_text(&mut s, g, self.window);
        }
        if let Some(e) = &self.error {
            let _ = writeln!(s, "unknown: {e}");
        }
        let _ = writeln!(
            s,
            "verdict: {} (exit {})",
            self.verdict.word(),
            self.exit_code
        );
        s
    }
}

fn labels(l: &BTreeMap<String, String>) -> String {
    let v: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", v.join(", "))
}

fn value_text(v: Option<f64>) -> String {
    v.map(num).unwrap_or_else(|| "-".into())
}

fn group_text(s: &mut String, g: &GroupReport, window: Duration) {
    let _ = writeln!(
        s,
        "{}: {}",
        labels(&g.labels),
        g.verdict.word().to_uppercase()
    );
    let width = g.conditions.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &g.conditions {
        // The node that decides: a failing or tripped one if any, else the first.
        let shown = c
            .nodes
            .iter()
            .find(|n| match c.kind {
                Kind::Proceed => !n.held,
                Kind::Rollback => n.held || n.tripped_in_window == Some(true),
            })
            .or(c.nodes.first());
        let value = shown
            .map(|n| value_text(n.value))
            .unwrap_or_else(|| "-".into());
        let node = shown
            .and_then(|n| n.labels.get("node"))
            .map(|n| format!(" on {n}"))
            .unwrap_or_default();
        let throughout = if c.throughout.is_zero() {
            String::new()
        } else {
            format!(
                " throughout {}",
                chainwatch_duration::format_std(c.throughout)
            )
        };
        let kind = match c.kind {
            Kind::Proceed => "proceed ",
            Kind::Rollback => "rollback",
        };
        let _ = writeln!(
            s,
            "  {kind}  {:width$}  {value} {} {}{throughout}  {}  ({} node(s){node})",
            c.name,
            c.op,
            num(c.threshold),
            c.status.word(),
            c.nodes.len(),
        );
    }
    let w = chainwatch_duration::format_std(window);
    if g.nodes_not_elapsed.is_empty() {
        let _ = writeln!(s, "  window    {w} elapsed on {} node(s)", g.nodes);
    } else {
        let _ = writeln!(
            s,
            "  window    {w} NOT elapsed on {} of {} node(s)",
            g.nodes_not_elapsed.len(),
            g.nodes
        );
    }
    for (name, v) in [
        ("proceed", g.record_proceed),
        ("rollback", g.record_rollback),
    ] {
        if let Some(v) = v {
            let _ = writeln!(s, "  record    rollout_gate_{name} = {}", num(v));
        }
    }
    for r in &g.reasons {
        let _ = writeln!(s, "  because   {r}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_cautious_answer_wins() {
        use Verdict::*;
        assert_eq!(Proceed.worst(Hold), Hold);
        assert_eq!(Hold.worst(Unknown), Unknown);
        assert_eq!(Unknown.worst(Rollback), Rollback);
        assert_eq!(Rollback.worst(Proceed), Rollback);
        assert_eq!(
            [Proceed, Hold, Rollback, Unknown].map(Verdict::exit_code),
            [0, 1, 2, 3]
        );
    }
}
