//! Steps 2 and 4: rule files and test files, rendered with the tera templates in `templates/`
//! (compiled into the binary). Output is a sorted map from path to content: deterministic.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tera::{Context, Tera};

use crate::build::{gate_proceed_expr, gate_rollback_expr, Model};
use crate::model::LabelMap;
use crate::testgen::{self, GenError, TestFile, GATE_PROCEED, GATE_ROLLBACK};

pub const OUTPUT_DIR: &str = "prometheus";

const RULES_TEMPLATE: &str = include_str!("../../templates/prometheus/rules.yml.tera");
const TEST_TEMPLATE: &str = include_str!("../../templates/prometheus/test.yml.tera");
const ALERTMANAGER_TEMPLATE: &str =
    include_str!("../../templates/alertmanager/alertmanager.yml.tera");

/// Generated files by path relative to the output root.
pub type Files = BTreeMap<String, String>;

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

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn indent_expr(e: &str) -> String {
    e.lines().collect::<Vec<_>>().join("\n          ")
}

fn tera() -> Result<Tera, tera::Error> {
    let mut t = Tera::default();
    t.add_raw_template("rules.yml", RULES_TEMPLATE)?;
    t.add_raw_template("test.yml", TEST_TEMPLATE)?;
    t.add_raw_template("alertmanager.yml", ALERTMANAGER_TEMPLATE)?;
    // `q`: a YAML double-quoted scalar (JSON string syntax is valid YAML).
    t.register_filter(
        "q",
        |v: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
            let s = match v {
                tera::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Ok(tera::Value::String(
                serde_json::to_string(&s).expect("string"),
            ))
        },
    );
    // `sq`: a YAML single-quoted scalar (Alertmanager matchers read better without escapes).
    t.register_filter(
        "sq",
        |v: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
            let s = match v {
                tera::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Ok(tera::Value::String(format!("'{}'", s.replace('\'', "''"))))
        },
    );
    Ok(t)
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template: {0}")]
    Template(String),
    #[error("{}: {}", .0.path, .0.message)]
    Gen(GenError),
}

fn terr(e: tera::Error) -> RenderError {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    RenderError::Template(msg)
}

pub fn render(m: &Model) -> Result<Files, RenderError> {
    let t = tera().map_err(terr)?;
    let mut files = Files::new();
    // Group → rules (records first, then gates, then alerts; each in thresholds.yaml order).
    let mut groups: BTreeMap<String, Vec<RuleCtx>> = BTreeMap::new();
    let mut summaries: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &m.records {
        groups.entry(r.group.clone()).or_default().push(RuleCtx {
            record: Some(r.name.clone()),
            alert: None,
            comment: one_line(&format!(
                "{} [{}] {}",
                r.measures,
                r.measure.kind(),
                crit(&r.criteria)
            )),
            expr: indent_expr(&r.expr),
            for_: None,
            labels: r.labels.clone(),
            annotations: LabelMap::new(),
        });
        summaries
            .entry(r.group.clone())
            .or_default()
            .insert("recording rules".into());
    }
    for g in &m.gates {
        for (name, expr, what) in [
            (GATE_PROCEED, gate_proceed_expr(g), "may we proceed"),
            (GATE_ROLLBACK, gate_rollback_expr(g), "must we roll back"),
        ] {
            let Some(expr) = expr else { continue };
            let mut labels = LabelMap::new();
            labels.insert("gate".into(), g.name.clone());
            groups.entry(g.group.clone()).or_default().push(RuleCtx {
                record: Some(name.into()),
                alert: None,
                comment: one_line(&format!(
                    "{} ({}), {what}? window {} {}",
                    g.stage,
                    g.source,
                    g.window,
                    crit(&g.criteria)
                )),
                expr: indent_expr(&expr),
                for_: None,
                labels,
                annotations: LabelMap::new(),
            });
        }
        summaries
            .entry(g.group.clone())
            .or_default()
            .insert("rollout gates".into());
    }
    for a in &m.alerts {
        let v = &a.variants[0];
        groups.entry(a.group.clone()).or_default().push(RuleCtx {
            record: None,
            alert: Some(a.name.clone()),
            comment: one_line(&format!(
                "{} [{}] {}",
                a.measures,
                v.measure.kind(),
                crit(&a.criteria)
            )),
            expr: indent_expr(&a.expr),
            for_: if a.for_.is_zero() {
                None
            } else {
                Some(a.for_.to_string())
            },
            labels: testgen::alert_labels(a, v),
            annotations: testgen::alert_annotations(m, a),
        });
        summaries
            .entry(a.group.clone())
            .or_default()
            .insert("alerts".into());
    }
    for (group, rules) in &groups {
        let mut c = Context::new();
        c.insert("group", group);
        c.insert("name", &format!("chainwatch-{group}"));
        let s: Vec<&str> = summaries[group].iter().map(|s| s.as_str()).collect();
        c.insert("summary", &s.join(", "));
        c.insert("rules", rules);
        let text = t.render("rules.yml", &c).map_err(terr)?;
        files.insert(
            format!("{OUTPUT_DIR}/rules/{}", testgen::rule_file_name(group)),
            text + "\n",
        );
    }
    let mut emit =
        |dir: &str, stem: &str, title: String, tf: TestFile| -> Result<(), RenderError> {
            let path = format!("{OUTPUT_DIR}/tests/{dir}/{stem}.test.yml");
            let mut c = Context::new();
            c.insert("title", &title);
            c.insert("path", &path);
            c.insert("rule_files", &tf.rule_files);
            // promtool evaluates groups in an unspecified order unless told: dependencies first,
            // or a rule reading a recording rule of another group may see none.
            let order: Vec<String> = if tf.rule_files.len() > 1 {
                tf.rule_files
                    .iter()
                    .filter_map(|f| {
                        let stem = f.rsplit('/').next()?.strip_suffix(".rules.yml")?;
                        Some(format!("chainwatch-{stem}"))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            c.insert("group_eval_order", &order);
            c.insert("evaluation_interval", &tf.evaluation_interval);
            c.insert("groups", &tf.groups);
            let text = t.render("test.yml", &c).map_err(terr)?;
            files.insert(path, text + "\n");
            Ok(())
        };
    for a in &m.alerts {
        let tf = testgen::alert_tests(m, a).map_err(RenderError::Gen)?;
        emit(
            "alerts",
            &a.name,
            format!("Tests of alert {} {}", a.name, crit(&a.criteria)),
            tf,
        )?;
    }
    for r in &m.records {
        let tf = testgen::record_tests(m, r).map_err(RenderError::Gen)?;
        emit(
            "records",
            &r.name.replace(':', "_"),
            format!("Tests of recording rule {}", r.name),
            tf,
        )?;
    }
    for g in &m.gates {
        let tf = testgen::gate_tests(m, g).map_err(RenderError::Gen)?;
        emit(
            "gates",
            &g.name,
            format!(
                "Tests of rollout gate {}: {} ({})",
                g.name, g.stage, g.source
            ),
            tf,
        )?;
    }
    // Alertmanager, Grafana, the runbook.
    if let Some(al) = &m.alerting {
        files.extend(crate::alerting::render(m, al, &t).map_err(terr)?);
    }
    files.extend(crate::dashboards::render(m));
    if !m.alerts.is_empty() {
        files.insert(
            crate::runbook::RUNBOOK_PATH.into(),
            crate::runbook::render(m),
        );
    }
    Ok(files)
}

fn crit(c: &[String]) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!("(criteria {})", c.join(", "))
    }
}
