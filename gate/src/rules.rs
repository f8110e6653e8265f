//! The recording rules a Prometheus loaded with the generated rule files evaluates: read from
//! the rule files rulegen renders (the same text Prometheus reads), so that a record without
//! samples can be replaced by its expression.

use std::collections::BTreeMap;
use std::time::Duration;

use chainwatch_rulegen::conventions;
use chainwatch_rulegen::promql::rewrite::RecordDef;
use chainwatch_rulegen::Files;
use serde::Deserialize;

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    #[serde(default)]
    interval: Option<String>,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    #[serde(default)]
    record: Option<String>,
    expr: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Every recording rule of the rendered rule files; a group without `interval` is evaluated at
/// `evaluation_interval`.
pub fn records(files: &Files, evaluation_interval: Duration) -> Result<Vec<RecordDef>, String> {
    let dir = format!("{}/rules/", conventions::PROMETHEUS_DIR);
    let mut out = Vec::new();
    for (path, text) in files {
        if !(path.starts_with(&dir) && path.ends_with(".rules.yml")) {
            continue;
        }
        let f: RuleFile =
            serde_norway::from_str(text).map_err(|e| format!("generated {path}: {e}"))?;
        for g in f.groups {
            let interval = match &g.interval {
                Some(i) => chainwatch_duration::parse_std(i)
                    .map_err(|e| format!("generated {path}: interval `{i}`: {e}"))?,
                None => evaluation_interval,
            };
            for r in g.rules {
                if let Some(record) = r.record {
                    out.push(RecordDef {
                        record,
                        labels: r.labels,
                        expr: r.expr,
                        interval,
                    });
                }
            }
        }
    }
    Ok(out)
}
