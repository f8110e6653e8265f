//! What the runbook and coverage quote: `criteria_text`, `runbooks`, `not_measurable`.

use std::collections::BTreeMap;

use crate::model::{CriterionText, NotMeasurable, Runbook};
use crate::spec::Spec;

use super::ctx::Ctx;

/// The words of criteria of the `criteria` list.
pub fn criteria_text(spec: &Spec, cx: &mut Ctx) -> BTreeMap<String, CriterionText> {
    for c in spec.criteria_text.keys() {
        if !cx.criteria.contains(c) {
            cx.err(
                &format!("criteria_text.{c}"),
                format!("unknown criterion `{c}` (not in the `criteria` list)"),
            );
        }
    }
    spec.criteria_text
        .iter()
        .map(|(k, t)| {
            let t = CriterionText {
                what: t.what.clone(),
                seed: t.seed.clone(),
            };
            (k.clone(), t)
        })
        .collect()
}

/// What cannot be measured, and why (`because …`).
pub fn not_measurable(spec: &Spec, cx: &mut Ctx) -> Vec<NotMeasurable> {
    for (i, n) in spec.not_measurable.iter().enumerate() {
        let p = format!("not_measurable[{i}]");
        cx.check_criteria(&n.criteria, &format!("{p}.criteria"));
        if !n.because.starts_with("because") {
            cx.err(&format!("{p}.because"), "say why, starting with `because`");
        }
    }
    spec.not_measurable
        .iter()
        .map(|n| NotMeasurable {
            criteria: n.criteria.clone(),
            what: n.what.clone(),
            because: n.because.clone(),
        })
        .collect()
}

/// The first checks alerts name in `runbook` (each alert's name is checked with the alert).
pub fn runbooks(spec: &Spec) -> BTreeMap<String, Runbook> {
    spec.runbooks
        .iter()
        .map(|(k, r)| {
            let r = Runbook {
                title: r.title.clone(),
                source: r.source.clone(),
                checks: r.checks.clone(),
            };
            (k.clone(), r)
        })
        .collect()
}
