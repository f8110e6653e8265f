//! Prometheus rule files, one per group (`prometheus/rules/<group>.rules.yml`, a global group's
//! in `prometheus/rules/global/`): recording rules,
//! then the rollout gate records, then alerts, each in thresholds.yaml order.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tera::Context;

use crate::conventions::{self, GATE_LABEL, GATE_PROCEED, GATE_ROLLBACK};
use crate::model::{LabelMap, Model, Origin, Tier};
use crate::promql;
use crate::write::templates::{TemplateError, Templates, RULES_TEMPLATE};
use crate::write::text::{criteria_note, one_line};
use crate::write::Files;

#[derive(Serialize)]
struct RuleCtx {
    record: Option<String>,
    alert: Option<String>,
    comment: String,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    labels: LabelMap,
    annotations: LabelMap,
}

/// The rules of each group, and what kinds of rule each holds (its file's summary line).
#[derive(Default)]
struct Groups {
    rules: BTreeMap<String, Vec<RuleCtx>>,
    summaries: BTreeMap<String, BTreeSet<String>>,
}

impl Groups {
    fn add(&mut self, group: &str, what: &str, rule: RuleCtx) {
        self.rules.entry(group.to_string()).or_default().push(rule);
        self.summaries
            .entry(group.to_string())
            .or_default()
            .insert(what.to_string());
    }
}

pub fn render(m: &Model, t: &Templates) -> Result<Files, TemplateError> {
    let mut g = Groups::default();
    records(m, &mut g);
    gates(m, &mut g);
    alerts(m, &mut g);
    let mut files = Files::new();
    for (group, rules) in &g.rules {
        let mut c = Context::new();
        c.insert("group", group);
        c.insert("name", &conventions::rule_group(group));
        let s: Vec<&str> = g.summaries[group].iter().map(|s| s.as_str()).collect();
        c.insert("summary", &s.join(", "));
        c.insert("rules", rules);
        if let Some(gm) = m.groups.get(group) {
            if let Some(i) = gm.interval {
                c.insert("interval", &i.to_string());
            }
            c.insert("why", &one_line(&gm.why));
            c.insert("global", &(gm.tier == Tier::Global));
        }
        files.insert(
            conventions::rule_file_path(group, m.tier(group) == Tier::Global),
            t.render(RULES_TEMPLATE, &c)?,
        );
    }
    Ok(files)
}

/// Derived records first in their group: the rules after them read this evaluation's values.
fn records(m: &Model, g: &mut Groups) {
    let derived = m.records.iter().filter(|r| r.origin == Origin::Derived);
    let spec = m.records.iter().filter(|r| r.origin == Origin::Spec);
    for r in derived.chain(spec) {
        let rule = RuleCtx {
            record: Some(r.name.clone()),
            alert: None,
            comment: one_line(&format!(
                "{} [{}] {}",
                r.measures,
                r.measure.kind(),
                criteria_note(&r.criteria)
            )),
            expr: indent_expr(&r.expr),
            for_: None,
            labels: r.labels.clone(),
            annotations: LabelMap::new(),
        };
        g.add(&r.group, "recording rules", rule);
    }
}

fn gates(m: &Model, g: &mut Groups) {
    for gate in &m.gates {
        for (name, expr, what) in [
            (GATE_PROCEED, promql::gate_proceed(gate), "may we proceed"),
            (
                GATE_ROLLBACK,
                promql::gate_rollback(gate),
                "must we roll back",
            ),
        ] {
            let Some(expr) = expr else { continue };
            let mut labels = LabelMap::new();
            labels.insert(GATE_LABEL.into(), gate.name.clone());
            let rule = RuleCtx {
                record: Some(name.into()),
                alert: None,
                comment: one_line(&format!(
                    "{} ({}), {what}? window {} {}",
                    gate.stage,
                    gate.source,
                    gate.window,
                    criteria_note(&gate.criteria)
                )),
                expr: indent_expr(&expr),
                for_: None,
                labels,
                annotations: LabelMap::new(),
            };
            g.rules.entry(gate.group.clone()).or_default().push(rule);
        }
        g.summaries
            .entry(gate.group.clone())
            .or_default()
            .insert("rollout gates".into());
    }
}

fn alerts(m: &Model, g: &mut Groups) {
    for a in &m.alerts {
        let rule = RuleCtx {
            record: None,
            alert: Some(a.name.clone()),
            comment: one_line(&format!(
                "{} [{}] {}",
                a.measures,
                a.variants[0].measure.kind(),
                criteria_note(&a.criteria)
            )),
            expr: indent_expr(&a.expr),
            for_: if a.for_.is_zero() {
                None
            } else {
                Some(a.for_.to_string())
            },
            labels: a.rule_labels.clone(),
            annotations: a.annotations.clone(),
        };
        g.add(&a.group, "alerts", rule);
    }
}

/// A multi-line expression indented under `expr: |` of the template.
fn indent_expr(e: &str) -> String {
    e.lines().collect::<Vec<_>>().join("\n          ")
}
