//! `coverage`: every row of criteria.md → the alerts, recording rules, gates, panels or
//! not-measurable entries that cover it. A report, not a file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::conventions::{GATE_PROCEED, GATE_ROLLBACK};
use crate::model::Model;

/// Criterion ids of the table rows of criteria.md (`| E1 | ...`), in order.
pub fn criteria_ids(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in markdown.lines() {
        let Some(rest) = line.trim_start().strip_prefix('|') else {
            continue;
        };
        let cell = rest.split('|').next().unwrap_or("").trim();
        let ok = cell.len() >= 2
            && cell.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && cell
                .chars()
                .skip_while(|c| c.is_ascii_uppercase())
                .all(|c| c.is_ascii_digit())
            && cell.chars().any(|c| c.is_ascii_digit());
        if ok && !out.contains(&cell.to_string()) {
            out.push(cell.to_string());
        }
    }
    out
}

pub struct Coverage {
    pub report: String,
    pub unmapped: Vec<String>,
}

/// Map `ids` (from criteria.md, or the list in thresholds.yaml) to what covers them.
pub fn coverage(m: &Model, ids: &[String], source: &str) -> Coverage {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |ids: &[String], what: String| {
        for c in ids {
            map.entry(c.clone()).or_default().push(what.clone());
        }
    };
    for a in &m.alerts {
        add(&a.criteria, format!("alert {} ({})", a.name, a.severity));
        if let Some(hb) = m.alerting.as_ref().and_then(|al| al.heartbeat.as_ref()) {
            if hb.fed_by(a) {
                add(
                    &a.criteria,
                    format!(
                        "dead man's switch: {} every {} to receiver {}",
                        a.name, hb.timings.repeat_interval, hb.receiver
                    ),
                );
            }
        }
    }
    for r in &m.records {
        add(&r.criteria, format!("recording rule {}", r.name));
    }
    for g in &m.gates {
        let rec = if g.proceed.is_empty() {
            GATE_ROLLBACK
        } else {
            GATE_PROCEED
        };
        add(&g.criteria, format!("gate {} ({rec})", g.name));
    }
    for d in &m.dashboards {
        for p in &d.panels {
            add(&p.criteria, format!("panel {}", p.id));
        }
    }
    for n in &m.not_measurable {
        add(&n.criteria, format!("not measurable: {}", n.because));
    }
    let mut report = String::new();
    let _ = writeln!(report, "# coverage of {} criteria from {source}", ids.len());
    let mut unmapped = Vec::new();
    for id in ids {
        match map.get(id) {
            Some(v) => {
                let _ = writeln!(report, "{id:<4} {}", v.join("; "));
            }
            None => {
                let _ = writeln!(report, "{id:<4} UNMAPPED");
                unmapped.push(id.clone());
            }
        }
    }
    for id in &m.criteria {
        if !ids.contains(id) {
            let _ = writeln!(
                report,
                "note: {id} is listed in thresholds.yaml but not in {source}"
            );
        }
    }
    let _ = writeln!(
        report,
        "{} mapped, {} unmapped",
        ids.len() - unmapped.len(),
        unmapped.len()
    );
    Coverage { report, unmapped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_from_table_rows_only() {
        let md = "| # | criterion |\n|---|---|\n| E1 | x |\n| N14 | y |\n| family | seed |\n| COINjecture | 000 |\n";
        assert_eq!(criteria_ids(md), vec!["E1", "N14"]);
    }
}
