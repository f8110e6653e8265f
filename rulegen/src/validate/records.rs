//! Recording rules, in order: each may use the ones above it.

use chainwatch_catalog::CONSTANT_LABELS;

use crate::model::{Labels, Measure, Origin, Record, Scope, Source};
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
    let mut m = measure(cx, &r.kinds(), &p, block_time)?;
    if let Measure::Inventory { record, .. } = &mut m {
        *record = r.record.clone();
    }
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
    let mut rec = Record {
        name: r.record.clone(),
        origin: Origin::Spec,
        criteria: r.criteria.clone(),
        group: r.group.clone(),
        measures: r.measures.clone(),
        labels: r.labels.clone(),
        measure: m,
        scope: Scope::All,
        expr: expr.clone(),
        out_labels: Labels::new(),
        path: p,
    };
    if let Measure::Inventory { .. } = rec.measure {
        // An inventory reads its own last value: its labels are known before its expression
        // is checked (a node and its target).
        rec.out_labels = CONSTANT_LABELS
            .iter()
            .chain(&["job", "instance"])
            .map(|s| s.to_string())
            .collect();
        cx.records.push(rec.clone());
        let out = check_expr(cx, &expr, &field);
        cx.records.pop();
        // Over a federated record the target is the regional server's /federate: the global
        // Prometheus adds its job and instance when it scrapes, no rule keeps them.
        let federated: Labels = CONSTANT_LABELS.iter().map(|s| s.to_string()).collect();
        let over_record = matches!(
            &rec.measure,
            Measure::Inventory { sel, .. } if matches!(sel.source, Source::Record(_))
        );
        let kept = out.as_ref() == Some(&rec.out_labels)
            || (over_record && out.as_ref() == Some(&federated));
        if !kept {
            cx.err(
                &field,
                format!(
                    "the inventory of `{}` must keep the labels {}",
                    rec.name,
                    CONSTANT_LABELS.join(", ")
                ),
            );
            return None;
        }
        return Some(rec);
    }
    rec.out_labels = check_expr(cx, &expr, &field)?;
    Some(rec)
}
