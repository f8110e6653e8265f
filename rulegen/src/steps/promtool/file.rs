//! One promtool test file: its structure (what `templates/prometheus/test.yml.tera` renders), the
//! rule groups it loads, and why it could not be generated.

use serde::Serialize;
use tera::Context;

use crate::conventions;
use crate::model::{LabelMap, Measure, Model, Record, Source, Tier};
use crate::promql;
use crate::write::templates::{TemplateError, Templates, TESTS_TEMPLATE};

#[derive(Debug, Clone)]
pub struct TestFile {
    /// The rule groups the test loads, dependencies first, its own last; each with whether it
    /// is global (its file is in `rules/global/`).
    pub groups_loaded: Vec<(String, bool)>,
    pub evaluation_interval: String,
    pub groups: Vec<TestGroup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestGroup {
    pub comment: String,
    pub interval: String,
    pub input_series: Vec<InSeries>,
    pub alert_tests: Vec<AlertTest>,
    pub expr_tests: Vec<ExprTest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InSeries {
    pub series: String,
    pub values: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertTest {
    pub comment: String,
    pub eval_time: String,
    pub alertname: String,
    pub exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpAlert {
    pub labels: LabelMap,
    pub annotations: LabelMap,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExprTest {
    pub comment: String,
    pub expr: String,
    pub eval_time: String,
    pub exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpSample {
    pub labels: String,
    pub value: String,
}

/// An error of test generation, about the spec item at `path`.
#[derive(Debug, Clone)]
pub struct GenError {
    pub path: String,
    pub message: String,
}

pub type GResult<T> = Result<T, GenError>;

pub fn gerr(path: &str, m: impl Into<String>) -> GenError {
    GenError {
        path: path.to_string(),
        message: m.into(),
    }
}

/// The recording rules a measure reads (through others too), dependencies first.
pub fn record_deps(m: &Measure, records: &[Record], out: &mut Vec<usize>) {
    for s in m.selectors() {
        if let Source::Record(i) = s.source {
            record_deps(&records[i].measure, records, out);
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    if let Measure::Raw { expr, .. } = m {
        if let Ok(e) = promql::parse(expr) {
            for vs in promql::selectors(&e) {
                if let Some(i) = records
                    .iter()
                    .position(|r| Some(&r.name) == vs.name.as_ref())
                {
                    record_deps(&records[i].measure, records, out);
                    if !out.contains(&i) {
                        out.push(i);
                    }
                }
            }
        }
    }
}

/// The rule groups a test of these measures loads: those of the recording rules they read,
/// dependencies first, then its own.
pub fn groups_loaded(own_group: &str, measures: &[&Measure], model: &Model) -> Vec<(String, bool)> {
    let records = &model.records;
    let mut deps = Vec::new();
    for m in measures {
        record_deps(m, records, &mut deps);
    }
    let mut groups: Vec<String> = Vec::new();
    for i in deps {
        let g = &records[i].group;
        if !groups.contains(g) && g != own_group {
            groups.push(g.clone());
        }
    }
    groups.push(own_group.to_string());
    groups
        .into_iter()
        .map(|g| {
            let global = model.tier(&g) == Tier::Global;
            (g, global)
        })
        .collect()
}

/// The test file at `path`.
pub fn render(
    t: &Templates,
    path: &str,
    title: &str,
    tf: &TestFile,
) -> Result<String, TemplateError> {
    let rule_files: Vec<String> = tf
        .groups_loaded
        .iter()
        .map(|(g, global)| conventions::rule_file_from_test(g, *global))
        .collect();
    // promtool evaluates groups in an unspecified order unless told: dependencies first, or a
    // rule reading a recording rule of another group may see none.
    let order: Vec<String> = if tf.groups_loaded.len() > 1 {
        tf.groups_loaded
            .iter()
            .map(|(g, _)| conventions::rule_group(g))
            .collect()
    } else {
        Vec::new()
    };
    let mut c = Context::new();
    c.insert("title", title);
    c.insert("path", path);
    c.insert("rule_files", &rule_files);
    c.insert("group_eval_order", &order);
    c.insert("evaluation_interval", &tf.evaluation_interval);
    c.insert("groups", &tf.groups);
    t.render(TESTS_TEMPLATE, &c)
}
