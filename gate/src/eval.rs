//! One evaluation of a gate at one time, per group of the gate (`by`, chain and network unless
//! thresholds.yaml says otherwise):
//!
//! - every condition asked on its own, per node: its value and whether it held (the gate's own
//!   expressions, built from the model by rulegen); a rollback condition also over the whole
//!   window ("roll back if ANY of these occur" — a trip an hour ago still counts);
//! - recording rules the expressions read are used where Prometheus holds them over the window,
//!   and replaced by their expressions where it does not (a fresh server, backfilled history);
//! - the window: every node of the group must have been reporting the gate's series a whole
//!   window ago, or it is too early to say "proceed";
//! - the gate's own records (`chainwatch:rollout_gate_*:bool`) where present, as a second
//!   opinion that can only make the answer more cautious.
//!
//! The verdict: roll back if a rollback condition tripped (now or within the window) or the
//! rollback record says so; unknown if a condition has no data or Prometheus cannot answer;
//! hold if a proceed condition fails, the window has not elapsed on every node, or the proceed
//! record says not yet; proceed otherwise. Never proceed by default.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chainwatch_catalog::CONSTANT_LABELS;
use chainwatch_rulegen::conventions::{GATE_LABEL, GATE_PROCEED, GATE_ROLLBACK};
use chainwatch_rulegen::model::{CondM, GateM};
use chainwatch_rulegen::promql::rewrite::{self, RecordDef};
use chainwatch_rulegen::promql::{self, escape};

use crate::prom::{Prometheus, QueryError, Sample};
use crate::report::{CondReport, GroupReport, Kind, NodeValue, Report, Status, Verdict};

pub type LabelSet = BTreeMap<String, String>;

/// What to evaluate: when, and which group (label → value; empty: every group).
#[derive(Debug, Clone)]
pub struct Request {
    pub at: f64,
    pub scope: Vec<(String, String)>,
}

/// What the evaluation needs beside the gate: the rules Prometheus evaluates and the intervals.
pub struct Context<'a> {
    pub defs: &'a [RecordDef],
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
enum EvalError {
    #[error("{0}")]
    Query(#[from] QueryError),
    /// A generated expression that cannot be rewritten: a bug of rulegen or of this program.
    #[error("cannot build the query: {0}")]
    Expr(String),
}

/// Evaluate `g`; any failure to ask is an `unknown` answer carrying the reason.
pub fn evaluate(p: &Prometheus, cx: &Context, g: &GateM, req: &Request) -> Report {
    let mut r = Report::new(g, req);
    match try_evaluate(p, cx, g, req) {
        Ok(groups) => r.set_groups(groups),
        Err(e) => r.set_error(e.to_string()),
    }
    r
}

fn dur(d: Duration) -> String {
    chainwatch_duration::format_std(d)
}

struct Asked {
    kind: Kind,
    cond: CondM,
    value_q: String,
    verdict_q: String,
    values: Vec<Sample>,
    verdicts: Vec<Sample>,
    /// Rollback conditions: max over the window of the verdict.
    in_window: Vec<Sample>,
}

fn try_evaluate(
    p: &Prometheus,
    cx: &Context,
    g: &GateM,
    req: &Request,
) -> Result<Vec<GroupReport>, EvalError> {
    let w = g.window.to_std();
    let scope = promql::gate_scope(g);
    let then = req.at - w.as_secs_f64();
    let conds: Vec<(Kind, &CondM)> = g
        .proceed
        .iter()
        .map(|c| (Kind::Proceed, c))
        .chain(g.rollback.iter().map(|c| (Kind::Rollback, c)))
        .collect();
    let raw: Vec<String> = conds
        .iter()
        .flat_map(|(_, c)| {
            [
                promql::gate_condition_value(c, &scope),
                promql::gate_condition(c, &scope),
            ]
        })
        .collect();
    let keep = held_records(p, cx, req, then, &raw)?;
    let query = |e: &str| -> Result<String, EvalError> {
        let x = rewrite::expand(e, cx.defs, &|n| keep.contains(n)).map_err(EvalError::Expr)?;
        rewrite::scoped(&x, &req.scope).map_err(EvalError::Expr)
    };
    let step = window_step(w, cx.evaluation_interval);
    let mut asked = Vec::new();
    for (kind, c) in &conds {
        let value_q = query(&promql::gate_condition_value(c, &scope))?;
        let verdict_q = query(&promql::gate_condition(c, &scope))?;
        let values = p.instant(&value_q, req.at)?;
        let verdicts = p.instant(&verdict_q, req.at)?;
        let in_window = if *kind == Kind::Rollback {
            let q = format!("max_over_time(({verdict_q})[{}:{}])", dur(w), dur(step));
            p.instant(&q, req.at)?
        } else {
            Vec::new()
        };
        asked.push(Asked {
            kind: *kind,
            cond: (*c).clone(),
            value_q,
            verdict_q,
            values,
            verdicts,
            in_window,
        });
    }
    // The window: nodes reporting the gate's series now, and a window ago.
    let watched: Vec<&Asked> = if asked.iter().any(|a| a.kind == Kind::Proceed) {
        asked.iter().filter(|a| a.kind == Kind::Proceed).collect()
    } else {
        asked.iter().collect()
    };
    let mut sels = BTreeSet::new();
    for a in &watched {
        for s in rewrite::selectors(&a.verdict_q).map_err(EvalError::Expr)? {
            sels.insert(s.promql());
        }
    }
    let lookback = cx
        .scrape_interval
        .saturating_mul(2)
        .max(Duration::from_secs(300));
    let coverage = format!(
        "group by ({}) ({})",
        CONSTANT_LABELS.join(", "),
        sels.iter()
            .map(|s| format!("last_over_time({s}[{}])", dur(lookback)))
            .collect::<Vec<_>>()
            .join(" or ")
    );
    let nodes_now = p.instant(&coverage, req.at)?;
    let nodes_then = p.instant(&coverage, then)?;
    let record = |name: &str| -> Result<Vec<Sample>, EvalError> {
        let sel = format!("{name}{{{GATE_LABEL}=\"{}\"}}", escape(&g.name));
        Ok(p.instant(
            &rewrite::scoped(&sel, &req.scope).map_err(EvalError::Expr)?,
            req.at,
        )?)
    };
    let rec_proceed = if g.proceed.is_empty() {
        Vec::new()
    } else {
        record(GATE_PROCEED)?
    };
    let rec_rollback = if g.rollback.is_empty() {
        Vec::new()
    } else {
        record(GATE_ROLLBACK)?
    };
    Ok(groups(
        g,
        &asked,
        &nodes_now,
        &nodes_then,
        &rec_proceed,
        &rec_rollback,
    ))
}

/// The resolution at which a rollback condition is re-evaluated over the window: the rules'
/// own interval, coarser for long windows (at most about 10,000 points).
fn window_step(w: Duration, evaluation_interval: Duration) -> Duration {
    let fine = Duration::from_secs(w.as_secs().div_ceil(10_000).max(1));
    evaluation_interval.max(fine)
}

/// Recording rules that `exprs` read (directly or through other records) which Prometheus
/// holds both now and a window ago: those are asked as they are, the others expanded.
fn held_records(
    p: &Prometheus,
    cx: &Context,
    req: &Request,
    then: f64,
    exprs: &[String],
) -> Result<BTreeSet<String>, EvalError> {
    let mut keep = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut work: Vec<String> = Vec::new();
    for e in exprs {
        for s in rewrite::selectors(e).map_err(EvalError::Expr)? {
            work.push(s.name);
        }
    }
    while let Some(name) = work.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let rules: Vec<&RecordDef> = cx.defs.iter().filter(|d| d.record == name).collect();
        let Some(interval) = rules.iter().map(|d| d.interval).max() else {
            continue;
        };
        let lookback = interval.saturating_mul(2).max(Duration::from_secs(300));
        let sel = rewrite::scoped(&name, &req.scope).map_err(EvalError::Expr)?;
        let q = format!("count(last_over_time({sel}[{}]))", dur(lookback));
        let held = !p.instant(&q, req.at)?.is_empty() && !p.instant(&q, then)?.is_empty();
        if held {
            keep.insert(name);
        } else {
            for d in rules {
                for s in rewrite::selectors(&d.expr).map_err(EvalError::Expr)? {
                    work.push(s.name);
                }
            }
        }
    }
    Ok(keep)
}

fn project(l: &LabelSet, names: &[String]) -> LabelSet {
    names
        .iter()
        .filter_map(|n| l.get(n).map(|v| (n.clone(), v.clone())))
        .collect()
}

fn node_of(l: &LabelSet) -> LabelSet {
    let names: Vec<String> = CONSTANT_LABELS.iter().map(|s| s.to_string()).collect();
    project(l, &names)
}

/// Split every answer by group and decide each group.
fn groups(
    g: &GateM,
    asked: &[Asked],
    nodes_now: &[Sample],
    nodes_then: &[Sample],
    rec_proceed: &[Sample],
    rec_rollback: &[Sample],
) -> Vec<GroupReport> {
    let mut keys: BTreeSet<LabelSet> = BTreeSet::new();
    for a in asked {
        for s in &a.verdicts {
            keys.insert(project(&s.labels, &g.by));
        }
    }
    for s in nodes_now {
        keys.insert(project(&s.labels, &g.by));
    }
    let in_group = |k: &LabelSet, l: &LabelSet| project(l, &g.by) == *k;
    let mut out = Vec::new();
    for key in keys {
        let conditions: Vec<CondReport> = asked
            .iter()
            .map(|a| condition(a, &|l| in_group(&key, l)))
            .collect();
        let then: BTreeSet<LabelSet> = nodes_then
            .iter()
            .filter(|s| in_group(&key, &s.labels))
            .map(|s| node_of(&s.labels))
            .collect();
        let now: Vec<LabelSet> = nodes_now
            .iter()
            .filter(|s| in_group(&key, &s.labels))
            .map(|s| node_of(&s.labels))
            .collect();
        let not_elapsed: Vec<LabelSet> =
            now.iter().filter(|n| !then.contains(*n)).cloned().collect();
        let rec = |v: &[Sample]| {
            v.iter()
                .find(|s| in_group(&key, &s.labels))
                .map(|s| s.value)
        };
        let mut gr = GroupReport {
            labels: key.clone(),
            verdict: Verdict::Unknown,
            reasons: Vec::new(),
            conditions,
            nodes: now.len(),
            nodes_not_elapsed: not_elapsed,
            record_proceed: rec(rec_proceed),
            record_rollback: rec(rec_rollback),
        };
        decide(g, &mut gr);
        out.push(gr);
    }
    out
}

fn condition(a: &Asked, in_group: &dyn Fn(&LabelSet) -> bool) -> CondReport {
    let mut nodes: Vec<NodeValue> = Vec::new();
    for s in a.verdicts.iter().filter(|s| in_group(&s.labels)) {
        nodes.push(NodeValue {
            labels: s.labels.clone(),
            value: a
                .values
                .iter()
                .find(|v| v.labels == s.labels)
                .map(|v| v.value),
            held: s.value == 1.0,
            tripped_in_window: a
                .in_window
                .iter()
                .find(|v| v.labels == s.labels)
                .map(|v| v.value == 1.0),
        });
    }
    let status = if nodes.is_empty() {
        Status::NoData
    } else {
        match a.kind {
            Kind::Proceed if nodes.iter().all(|n| n.held) => Status::Pass,
            Kind::Proceed => Status::Fail,
            Kind::Rollback if nodes.iter().any(|n| n.held) => Status::Tripped,
            Kind::Rollback if nodes.iter().any(|n| n.tripped_in_window == Some(true)) => {
                Status::TrippedInWindow
            }
            Kind::Rollback => Status::Clear,
        }
    };
    CondReport {
        kind: a.kind,
        name: a.cond.name.clone(),
        op: a.cond.op.as_str().to_string(),
        threshold: a.cond.threshold,
        throughout: a.cond.throughout.to_std(),
        value_query: a.value_q.clone(),
        verdict_query: a.verdict_q.clone(),
        status,
        nodes,
    }
}

fn node_list(nodes: &[LabelSet]) -> String {
    let names: Vec<String> = nodes
        .iter()
        .map(|n| n.get("node").cloned().unwrap_or_else(|| format!("{n:?}")))
        .collect();
    names.join(", ")
}

fn decide(g: &GateM, gr: &mut GroupReport) {
    let w = dur(g.window.to_std());
    let mut reasons = Vec::new();
    let tripped: Vec<&CondReport> = gr
        .conditions
        .iter()
        .filter(|c| matches!(c.status, Status::Tripped | Status::TrippedInWindow))
        .collect();
    for c in &tripped {
        reasons.push(match c.status {
            Status::Tripped => format!("rollback criterion `{}` holds", c.name),
            _ => format!(
                "rollback criterion `{}` tripped within the last {w}",
                c.name
            ),
        });
    }
    if gr.record_rollback == Some(1.0) && tripped.is_empty() {
        reasons.push(format!("{GATE_ROLLBACK} is 1"));
    }
    if !reasons.is_empty() {
        gr.verdict = Verdict::Rollback;
        gr.reasons = reasons;
        return;
    }
    for c in gr.conditions.iter().filter(|c| c.status == Status::NoData) {
        reasons.push(format!("no data for `{}`", c.name));
    }
    if gr.nodes == 0 {
        reasons.push("no node reports the gate's series".into());
    }
    if !reasons.is_empty() {
        gr.verdict = Verdict::Unknown;
        gr.reasons = reasons;
        return;
    }
    for c in gr.conditions.iter().filter(|c| c.status == Status::Fail) {
        let n = c.nodes.iter().filter(|n| !n.held).count();
        reasons.push(format!(
            "`{}` not met on {n} of {} node(s)",
            c.name,
            c.nodes.len()
        ));
    }
    if !gr.nodes_not_elapsed.is_empty() {
        reasons.push(format!(
            "the {w} window has not elapsed on {} (no data {w} ago)",
            node_list(&gr.nodes_not_elapsed)
        ));
    }
    if gr.record_proceed == Some(0.0) && reasons.is_empty() {
        reasons.push(format!("{GATE_PROCEED} is 0"));
    }
    gr.verdict = if reasons.is_empty() {
        Verdict::Proceed
    } else {
        Verdict::Hold
    };
    gr.reasons = reasons;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_windows_are_re_evaluated_coarser() {
        let s = Duration::from_secs;
        assert_eq!(window_step(s(600), s(15)), s(15));
        assert_eq!(window_step(s(7 * 86400), s(15)), s(61));
        assert_eq!(window_step(s(28 * 86400), s(60)), s(242));
    }
}
