//! Recording rules, in order: each may use the ones above it.

use crate::model::{Measure, Origin, Record, Scope};
use crate::promql;
use crate::spec::v1::Recording;
use crate::spec::Spec;

use super::ctx::{is_ident, Ctx};
use super::measures::measure;
use super::selectors::check_expr;

/// Checks every recording rule and adds the valid ones to `cx.records`.
pub fn records(spec: &Spec, cx: &mut Ctx) {
    for (i, r) in spec.recording_rules.iter().enumerate() {
        if let Some(rec) = record(cx, i, r) {
            cx.records.push(rec);
        }
    }
}

fn record(cx: &mut Ctx, i: usize, r: &Recording) -> Option<Record> {
    let p = format!("recording_rules[{i}]");
    if !(is_ident(&r.record, ":") && r.record.contains(':')) {
        cx.err(
            &format!("{p}.record"),
            format!(
                "`{}` is not a recording rule name (level:metric:operations)",
                r.record
            ),
        );
        return None;
    }
    if let Some(prev) = cx.names.insert(r.record.clone(), p.clone()) {
        cx.err(
            &format!("{p}.record"),
            format!("duplicate name `{}` (also {prev})", r.record),
        );
        return None;
    }
    if !is_ident(&r.group, "-") {
        cx.err(
            &format!("{p}.group"),
            format!("`{}` is not a group name", r.group),
        );
    }
    cx.check_criteria(&r.criteria, &format!("{p}.criteria"));
    let block_time = cx.default_block_time;
    let m = measure(cx, &r.kinds(), &p, block_time)?;
    if matches!(m, Measure::NoProgress { .. } | Measure::Absence { .. }) {
        cx.err(
            &p,
            format!(
                "`{}` is a condition; recording rules record values",
                m.kind()
            ),
        );
        return None;
    }
    let expr = promql::measure_expr(&m, &Scope::All);
    let field = if let Measure::Raw { .. } = m {
        format!("{p}.raw.expr")
    } else {
        p.clone()
    };
    let out = check_expr(cx, &expr, &field)?;
    Some(Record {
        name: r.record.clone(),
        origin: Origin::Spec,
        criteria: r.criteria.clone(),
        group: r.group.clone(),
        measures: r.measures.clone(),
        labels: r.labels.clone(),
        measure: m,
        scope: Scope::All,
        expr,
        out_labels: out,
        path: p,
    })
}
