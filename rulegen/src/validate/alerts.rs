//! Alerts: the alert's own fields, then its variants (one rule for all chains, or one per chain
//! with its own threshold or block time plus one for the other chains), each a measure compared
//! with a threshold, then its annotations against the labels its expression carries. The labels,
//! annotations and scope of the rule are decided here.

use std::collections::{BTreeMap, BTreeSet};

use chainwatch_duration::Duration;

use crate::conventions;
use crate::model::{AlertM, LabelMap, Labels, Measure, Op, Scope, SeverityM, ValueFormat, Variant};
use crate::promql::{self, num};
use crate::spec::v1::Alert;
use crate::spec::Spec;

use super::ctx::{is_ident, Ctx};
use super::measures::{measure, parse_block_times};
use super::selectors::check_expr;

/// Labels an alert's own `labels` may not set: the rule sets them.
const RESERVED_LABELS: &[&str] = &[
    conventions::SEVERITY_LABEL,
    conventions::PRIORITY_LABEL,
    "criterion",
    "scope",
    "alertname",
    "alertgroup",
];

pub fn alerts(spec: &Spec, cx: &mut Ctx, severities: &BTreeMap<String, SeverityM>) -> Vec<AlertM> {
    let mut out = Vec::new();
    for (i, a) in spec.alerts.iter().enumerate() {
        if let Some(m) = alert(spec, cx, severities, i, a) {
            out.push(m);
        }
    }
    out
}

fn alert(
    spec: &Spec,
    cx: &mut Ctx,
    severities: &BTreeMap<String, SeverityM>,
    i: usize,
    a: &Alert,
) -> Option<AlertM> {
    let p = format!("alerts[{i}]");
    if !is_ident(&a.name, "") {
        cx.err(
            &format!("{p}.name"),
            format!("`{}` is not an alert name", a.name),
        );
        return None;
    }
    if let Some(prev) = cx.names.insert(a.name.clone(), p.clone()) {
        cx.err(
            &format!("{p}.name"),
            format!("duplicate name `{}` (also {prev})", a.name),
        );
        return None;
    }
    fields(spec, cx, severities, a, &p);
    let for_ = match &a.for_ {
        Some(f) => cx.dur(f, &format!("{p}.for"))?,
        None => Duration::ZERO,
    };
    let mut variants = Vec::new();
    for planned in plan(cx, a, &p, for_) {
        variants.push(variant(cx, a, &p, planned)?);
    }
    // Compared with `==`, the value is the threshold itself: nothing to show.
    let value_format = match variants[0].op {
        Some(Op::Eq) => None,
        _ => value_format(&variants[0].measure, &cx.records),
    };
    // The summary is the same for every alert of a group (a page's title): labels only. The
    // description may show the value, formatted, where the alert has one.
    for (field, text, value) in [
        ("summary", &a.summary, None),
        ("description", &a.description, value_format),
    ] {
        // One error per annotation: the first variant whose labels lack it.
        for v in &variants {
            let before = cx.error_count();
            check_template(cx, text, &format!("{p}.{field}"), &v.out_labels, value);
            if cx.error_count() > before {
                break;
            }
        }
    }
    let mut m = assemble(spec, severities, a, p, for_, variants);
    if let Some(f) = value_format {
        m.annotations
            .insert("value".into(), promql::humanize::template(f));
    }
    m.value_format = value_format;
    Some(m)
}

/// How the alert's value reads: a percentage for fractions, a duration for seconds, a number
/// otherwise; none for conditions and for up/down states (the summary says it all).
fn value_format(m: &Measure, records: &[crate::model::Record]) -> Option<ValueFormat> {
    let unit = |name: &str| chainwatch_catalog::resolve_series(name).map(|x| x.unit);
    let seconds = |name: &str| unit(name) == Some(chainwatch_catalog::Unit::Seconds);
    Some(match m {
        Measure::NoProgress { .. }
        | Measure::Absence { .. }
        | Measure::Raw { .. }
        | Measure::Inventory { .. }
        | Measure::Liveness { .. }
        | Measure::TargetUp { .. }
        | Measure::BucketRate { .. } => return None,
        Measure::Derived { raw, .. } => return value_format(raw, records),
        Measure::Ratio { num, .. } if num.name.ends_with("_seconds_sum") => ValueFormat::Duration,
        Measure::Ratio { .. }
        | Measure::FleetFraction { .. }
        | Measure::TimeFraction { .. }
        | Measure::Deviation { .. } => ValueFormat::Percent,
        Measure::Quantile {
            versus: None, hist, ..
        } if seconds(&hist.name) => ValueFormat::Duration,
        Measure::Value { sel, func, .. } => {
            match (&sel.source, func.as_ref().map(|f| f.0.as_str())) {
                (crate::model::Source::Record(i), None) => {
                    return value_format(&records[*i].measure, records)
                }
                (_, None | Some("max_over_time" | "min_over_time" | "avg_over_time"))
                    if seconds(&sel.name) =>
                {
                    ValueFormat::Duration
                }
                (_, None | Some("max_over_time" | "min_over_time" | "avg_over_time"))
                    if unit(&sel.name) == Some(chainwatch_catalog::Unit::Ratio) =>
                {
                    ValueFormat::Percent
                }
                _ => ValueFormat::Number,
            }
        }
        Measure::Quantile { .. } | Measure::Lag { .. } | Measure::Trend { .. } => {
            ValueFormat::Number
        }
    })
}

/// The alert's own fields: group, criteria, severity, runbook, alertgroup, labels.
fn fields(spec: &Spec, cx: &mut Ctx, severities: &BTreeMap<String, SeverityM>, a: &Alert, p: &str) {
    if !is_ident(&a.group, "-") {
        cx.err(
            &format!("{p}.group"),
            format!("`{}` is not a group name", a.group),
        );
    }
    if a.criteria.is_empty() {
        cx.err(
            &format!("{p}.criteria"),
            "an alert serves at least one criterion",
        );
    }
    cx.check_criteria(&a.criteria, &format!("{p}.criteria"));
    if !severities.contains_key(&a.severity) {
        let known: Vec<&str> = severities.keys().map(|s| s.as_str()).collect();
        cx.err(
            &format!("{p}.severity"),
            format!(
                "unknown priority `{}` (an alert's `severity` names a key of `severities:`: {}; its level follows from there)",
                a.severity,
                known.join(", ")
            ),
        );
    }
    if !is_ident(&a.runbook.replace('-', "_"), "") {
        cx.err(
            &format!("{p}.runbook"),
            format!(
                "`{}` is not a runbook name (lowercase words joined by -)",
                a.runbook
            ),
        );
    } else if !spec.runbooks.contains_key(&a.runbook) {
        cx.err(
            &format!("{p}.runbook"),
            format!(
                "unknown runbook `{}` (define its first checks under `runbooks`)",
                a.runbook
            ),
        );
    }
    if let Some(g) = &a.alertgroup {
        if !is_ident(&g.replace('-', "_"), "") {
            cx.err(
                &format!("{p}.alertgroup"),
                format!("`{g}` is not an alertgroup name (words joined by -)"),
            );
        }
    }
    for k in a.labels.keys() {
        if RESERVED_LABELS.contains(&k.as_str()) || !is_ident(k, "") {
            cx.err(
                &format!("{p}.labels.{k}"),
                format!("label `{k}` is reserved or not a label name"),
            );
        }
    }
}

/// A variant before its measure is checked.
struct Planned {
    scope: Scope,
    test_chain: String,
    block_time: Duration,
    threshold: Option<f64>,
    for_: Duration,
}

/// The variants of an alert: one for all chains, or one per chain that has its own threshold
/// (or, for `Nx block_time` windows, every chain) and one for the chains without.
fn plan(cx: &mut Ctx, a: &Alert, p: &str, for_: Duration) -> Vec<Planned> {
    let mut per_chain: BTreeSet<String> = BTreeSet::new();
    for c in a.chains.keys() {
        if !cx.chains.contains_key(c) {
            let known: Vec<&str> = cx.chains.keys().map(|s| s.as_str()).collect();
            cx.err(
                &format!("{p}.chains.{c}"),
                format!("unknown chain `{c}` (chains: {})", known.join(", ")),
            );
        }
        per_chain.insert(c.clone());
    }
    let per_block_time = a
        .no_progress
        .as_ref()
        .is_some_and(|q| parse_block_times(&q.window).is_some());
    if per_block_time {
        per_chain.extend(cx.chains.keys().cloned());
    }
    if per_chain.is_empty() {
        let test_chain = cx
            .chains
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| conventions::TEST_CHAIN.into());
        return vec![Planned {
            scope: Scope::All,
            test_chain,
            block_time: cx.default_block_time,
            threshold: a.threshold,
            for_,
        }];
    }
    let mut plan: Vec<Planned> = per_chain
        .iter()
        .map(|c| Planned {
            scope: Scope::Chain(c.clone()),
            test_chain: c.clone(),
            block_time: cx.chains.get(c).copied().unwrap_or(cx.default_block_time),
            threshold: a.chains.get(c).and_then(|o| o.threshold).or(a.threshold),
            for_,
        })
        .collect();
    plan.push(Planned {
        scope: Scope::Except(per_chain.iter().cloned().collect()),
        test_chain: conventions::OTHER_CHAIN.into(),
        block_time: cx.default_block_time,
        threshold: a.threshold,
        for_,
    });
    plan
}

/// One variant: its measure, compared with its threshold (value kinds) or as is (condition
/// kinds), as PromQL whose every selector exists. `None` stops the alert.
fn variant(cx: &mut Ctx, a: &Alert, p: &str, planned: Planned) -> Option<Variant> {
    let Planned {
        scope,
        test_chain,
        block_time,
        threshold,
        for_,
    } = planned;
    let m = measure(cx, &a.kinds(), p, block_time)?;
    if matches!(m, Measure::Inventory { .. }) {
        cx.err(
            &format!("{p}.inventory"),
            "an inventory is a recording rule (alerts read it through liveness or target_up)",
        );
        return None;
    }
    if matches!(m, Measure::Raw { .. }) && scope != Scope::All {
        cx.err(
            &format!("{p}.chains"),
            "per-chain overrides need a typed measure, not raw PromQL",
        );
        return None;
    }
    let op = comparison(cx, a, p, &m);
    if !m.is_condition() && threshold.is_none() {
        cx.err(p, "missing `threshold`");
        return None;
    }
    if m.is_condition() && threshold.is_some() {
        cx.err(
            &format!("{p}.threshold"),
            format!("a `{}` measure is a condition: no `threshold`", m.kind()),
        );
        return None;
    }
    if !m.is_condition() && op.is_none() {
        return None;
    }
    let expr = promql::alert_condition(&m, &scope, op, threshold);
    let field = if let Measure::Raw { .. } = m {
        format!("{p}.raw.expr")
    } else {
        p.to_string()
    };
    let out_labels = check_expr(cx, &expr, &field)?;
    let mut threshold_text = match (op, threshold) {
        (Some(o), Some(t)) => format!("{} {} {}", promql::describe(&m), o.as_str(), num(t)),
        _ => match &m {
            Measure::NoProgress { window, .. } => format!("no progress within {window}"),
            Measure::Absence { lookback, .. } => format!("series gone (seen within {lookback})"),
            _ => "raw PromQL condition".to_string(),
        },
    };
    if let Scope::Chain(c) = &scope {
        threshold_text = format!("{c}: {threshold_text}");
    }
    Some(Variant {
        scope,
        test_chain,
        measure: m,
        op,
        threshold,
        for_,
        expr,
        threshold_text,
        out_labels,
    })
}

/// `op`: required by value kinds, refused by condition kinds.
fn comparison(cx: &mut Ctx, a: &Alert, p: &str, m: &Measure) -> Option<Op> {
    match (&a.op, m.is_condition()) {
        (Some(o), false) => cx.op(o, &format!("{p}.op")),
        (None, false) => {
            cx.err(
                p,
                format!("a `{}` measure needs `op` and `threshold`", m.kind()),
            );
            None
        }
        (Some(_), true) => {
            cx.err(
                &format!("{p}.op"),
                format!(
                    "a `{}` measure is a condition: no `op`/`threshold`",
                    m.kind()
                ),
            );
            None
        }
        (None, true) => None,
    }
}

/// Annotations may name only `{{ $labels.x }}` labels the expression's result carries, and,
/// where `value` allows, the value through a humanize function.
fn check_template(
    cx: &mut Ctx,
    text: &str,
    field: &str,
    labels: &Labels,
    value: Option<ValueFormat>,
) {
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            cx.err(field, "unclosed `{{`");
            return;
        };
        let inner = after[..j].trim();
        match inner.strip_prefix("$labels.") {
            Some(l) if is_ident(l, "") => {
                if !labels.contains(l) {
                    let list: Vec<&str> = labels.iter().map(|s| s.as_str()).collect();
                    cx.err(
                        field,
                        format!(
                            "label `{l}` is not on the result of the expression (its labels: {})",
                            if list.is_empty() {
                                "none".into()
                            } else {
                                list.join(", ")
                            }
                        ),
                    );
                }
            }
            _ if value.is_some() && promql::value_template(inner).is_some() => {}
            _ if inner.starts_with("$value") && value.is_some() => {
                cx.err(field, format!("`{{{{ {inner} }}}}`: show the value through a template function, `{{{{ $value | humanize }}}}`, `humanizePercentage` or `humanizeDuration` (generated tests expect the text exactly)"));
            }
            _ if inner.starts_with("$value") && field.ends_with(".description") => {
                cx.err(field, format!("`{{{{ {inner} }}}}`: this alert has no value to show (a condition, an up/down state or raw PromQL); only {{{{ $labels.NAME }}}} may be used"));
            }
            _ => {
                cx.err(field, format!("`{{{{ {inner} }}}}`: only {{{{ $labels.NAME }}}} may be used (the summary is the title of a page that groups alerts of several values; `$value` goes in the description)"));
            }
        }
        rest = &after[j + 2..];
    }
}

/// What one firing alert is about: a node, a region, or the fleet, by the labels it carries.
pub(super) fn scope_of(labels: &Labels) -> &'static str {
    if labels.contains("node") {
        "node"
    } else if labels.contains("region") {
        "region"
    } else {
        "fleet"
    }
}

/// The alert as the steps read it: one rule, its labels and annotations.
fn assemble(
    spec: &Spec,
    severities: &BTreeMap<String, SeverityM>,
    a: &Alert,
    path: String,
    for_: Duration,
    variants: Vec<Variant>,
) -> AlertM {
    let conditions: Vec<&str> = variants.iter().map(|v| v.expr.as_str()).collect();
    let expr = promql::alert_rule(&conditions);
    // Default first, then the chains in order.
    let mut texts: Vec<String> = variants.iter().map(|v| v.threshold_text.clone()).collect();
    if texts.len() > 1 {
        let default = texts.pop().unwrap_or_default();
        texts.insert(0, format!("other chains: {default}"));
    }
    let mut threshold_text = texts.join("; ");
    if !for_.is_zero() {
        threshold_text.push_str(&format!("; for {for_}"));
    }
    // The variants differ in their chain matchers only, so their results carry the same labels.
    let scope = scope_of(&variants[0].out_labels);
    let mut rule_labels = a.labels.clone();
    rule_labels.insert(conventions::PRIORITY_LABEL.into(), a.severity.clone());
    if let Some(sev) = severities.get(&a.severity) {
        rule_labels.insert(conventions::SEVERITY_LABEL.into(), sev.level.clone());
    }
    rule_labels.insert("criterion".into(), a.criteria.join(","));
    rule_labels.insert("scope".into(), scope.into());
    if let Some(g) = &a.alertgroup {
        rule_labels.insert("alertgroup".into(), g.clone());
    }
    let runbook_url = conventions::runbook_url(&spec.defaults.runbook_base_url, &a.name);
    let annotations = annotations(
        &a.summary,
        &a.description,
        severities.get(&a.severity),
        &runbook_url,
        &threshold_text,
    );
    let sample_labels = sample_labels(&a.name, &rule_labels, &variants[0]);
    AlertM {
        name: a.name.clone(),
        criteria: a.criteria.clone(),
        group: a.group.clone(),
        measures: a.measures.clone(),
        severity: a.severity.clone(),
        summary: a.summary.clone(),
        description: a.description.clone(),
        runbook_url,
        runbook: a.runbook.clone(),
        alertgroup: a.alertgroup.clone(),
        variants,
        expr,
        for_,
        threshold_text,
        scope,
        rule_labels,
        annotations,
        value_format: None,
        sample_labels,
        path,
    }
}

/// One concrete label set of a firing alert: its static labels (no `criterion`) plus the test
/// node's values of the labels its result carries, `some-<label>` for the others.
pub(super) fn sample_labels(name: &str, rule_labels: &LabelMap, v: &Variant) -> LabelMap {
    let mut l = rule_labels.clone();
    l.insert("alertname".into(), name.to_string());
    l.remove("criterion");
    let out = &v.out_labels;
    for (k, value) in conventions::test_node_labels(&v.test_chain) {
        if out.contains(k) {
            l.insert(k.into(), value);
        }
    }
    for k in out {
        if !l.contains_key(k) && !["job", "instance", "le"].contains(&k.as_str()) {
            l.insert(k.clone(), format!("some-{k}"));
        }
    }
    l
}

/// The annotations every alert carries, SLO alerts too.
pub(super) fn annotations(
    summary: &str,
    description: &str,
    severity: Option<&SeverityM>,
    runbook_url: &str,
    threshold: &str,
) -> LabelMap {
    let mut out = LabelMap::new();
    out.insert("summary".into(), summary.to_string());
    out.insert("description".into(), description.to_string());
    if let Some(sev) = severity {
        out.insert(
            "response_time".into(),
            format!(
                "{} ({}): respond within {}",
                sev.name, sev.level, sev.response_time
            ),
        );
    }
    out.insert("runbook_url".into(), runbook_url.to_string());
    out.insert("threshold".into(), threshold.to_string());
    out
}
