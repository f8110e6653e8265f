//! Service level objectives (`slos`), as Sloth generates them: the error ratio recorded over the
//! windows of the multi-window multi-burn-rate alerts and over the period, the period's SLI and
//! error budget left, a page for a fast burn and a ticket for a slow one (Google SRE workbook,
//! "Alerting on SLOs", recommendation 6). The error ratios are measures of the usual kinds
//! (`ratio`, `time_fraction`), so windows of a day or more are answered from the hourly rollups
//! (`derive`) like every other long window.

use std::collections::BTreeMap;

use chainwatch_duration::Duration;

use crate::conventions::{
    runbook_url, slo_alertgroup, slo_alerts, slo_budget_record, slo_error_record, slo_sli_record,
    SLO_GROUP, TEST_CHAIN,
};
use crate::model::{
    AlertM, BurnM, LabelMap, Measure, Origin, Record, Scope, SeverityM, SloAlertM, SloM, Variant,
};
use crate::promql::{self, num};
use crate::spec::v1::{Kinds, RatioQ, Slo, TimeFractionQ};
use crate::spec::Spec;

use super::alerts::{annotations, sample_labels, scope_of};
use super::ctx::{is_ident, Ctx};
use super::measures::measure;
use super::selectors::check_expr;

/// The windows of the workbook's alerts, short ones first; the period comes last.
const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];
/// (long window, short window, burn rate): page on 2% of a 30-day budget spent in an hour or 5%
/// in six hours, ticket on 10% in a day or in three.
const PAGE: [(&str, &str, f64); 2] = [("1h", "5m", 14.4), ("6h", "30m", 6.0)];
const TICKET: [(&str, &str, f64); 2] = [("1d", "2h", 3.0), ("3d", "6h", 1.0)];

/// Rounds away the float noise of `1 - objective` and of `factor * budget` (0.1, not
/// 0.09999999999999998), as the objective was written.
fn round(v: f64) -> f64 {
    (v * 1e12).round() / 1e12
}

fn d(s: &str) -> Duration {
    Duration::parse(s).expect("a constant window")
}

/// Checks every SLO and adds its error-ratio, SLI and budget records to `cx.records`.
pub fn records(spec: &Spec, cx: &mut Ctx) -> Vec<SloM> {
    let mut out = Vec::new();
    for (i, s) in spec.slos.iter().enumerate() {
        if let Some(m) = slo(spec, cx, i, s) {
            out.push(m);
        }
    }
    out
}

/// The fields of an SLO other than its measure; `None` when one is wrong.
fn fields(spec: &Spec, cx: &mut Ctx, s: &Slo, p: &str) -> Option<(Duration, f64, Scope)> {
    let before = cx.error_count();
    if !is_ident(&s.name, "-") || s.name.chars().any(|c| c.is_ascii_uppercase()) {
        cx.err(
            &format!("{p}.name"),
            format!(
                "`{}` is not an SLO name (lower-case words joined by `-`)",
                s.name
            ),
        );
    }
    if !is_ident(&s.alert, "") {
        cx.err(
            &format!("{p}.alert"),
            format!("`{}` is not an alert name", s.alert),
        );
    }
    if !(s.objective > 0.0 && s.objective < 1.0) {
        cx.err(
            &format!("{p}.objective"),
            format!(
                "{} is not in (0, 1): write the share of good events, e.g. 0.95",
                num(s.objective)
            ),
        );
    }
    let period = cx.dur(&s.period, &format!("{p}.period"));
    if let Some(per) = period {
        if per < d("3d") {
            cx.err(
                &format!("{p}.period"),
                format!("{per} is shorter than 3d, the longest window of the slow-burn ticket"),
            );
        }
    }
    for (field, sev) in [("page", &s.page), ("ticket", &s.ticket)] {
        if !spec.severities.contains_key(sev) {
            let known: Vec<&str> = spec.severities.keys().map(String::as_str).collect();
            cx.err(
                &format!("{p}.{field}"),
                format!("unknown severity `{sev}` (known: {})", known.join(", ")),
            );
        }
    }
    if !spec.runbooks.contains_key(&s.runbook) {
        cx.err(
            &format!("{p}.runbook"),
            format!("unknown runbook `{}`", s.runbook),
        );
    }
    let scope = match &s.chain {
        Some(c) if !cx.chains.contains_key(c) => {
            cx.err(&format!("{p}.chain"), format!("unknown chain `{c}`"));
            Scope::All
        }
        Some(c) => Scope::Chain(c.clone()),
        None => Scope::All,
    };
    if let Some(g) = &s.group {
        if !is_ident(g, "-") {
            cx.err(&format!("{p}.group"), format!("`{g}` is not a group name"));
        }
    }
    cx.check_criteria(&s.criteria, &format!("{p}.criteria"));
    (cx.error_count() == before).then_some((period?, round(1.0 - s.objective), scope))
}

/// The error measure of `s` over `window`, its errors at `p.errors`.
fn errors_over(cx: &mut Ctx, s: &Slo, p: &str, window: Duration) -> Option<Measure> {
    let e = &s.errors;
    let ratio = e.ratio.as_ref().map(|r| RatioQ {
        window: Some(window.to_string()),
        ..r.clone()
    });
    let tf = e.time_fraction.as_ref().map(|t| TimeFractionQ {
        metric: t.metric.clone(),
        op: t.op.clone(),
        value: t.value,
        window: window.to_string(),
    });
    let k = Kinds {
        value: None,
        ratio: ratio.as_ref(),
        fleet_fraction: None,
        quantile: None,
        no_progress: None,
        absence: None,
        deviation: None,
        lag: None,
        trend: None,
        time_fraction: tf.as_ref(),
        inventory: None,
        liveness: None,
        target_up: None,
        raw: None,
    };
    measure(cx, &k, &format!("{p}.errors"), cx.default_block_time)
}

/// The burn conditions of one alert that an error ratio can reach (at most 1: with a budget of
/// 10%, 14.4x never happens and would be a rule that cannot fire).
fn burns(table: &[(&str, &str, f64)], budget: f64) -> Vec<BurnM> {
    table
        .iter()
        .filter(|(_, _, f)| round(f * budget) < 1.0)
        .map(|(l, s, f)| BurnM {
            long: d(l),
            short: d(s),
            factor: *f,
        })
        .collect()
}

fn slo(spec: &Spec, cx: &mut Ctx, i: usize, s: &Slo) -> Option<SloM> {
    let p = format!("slos[{i}]");
    let set = [s.errors.ratio.is_some(), s.errors.time_fraction.is_some()];
    if set.iter().filter(|x| **x).count() != 1 {
        cx.err(
            &format!("{p}.errors"),
            "set exactly one of ratio (bad events over all events), time_fraction (the condition of a bad instant)",
        );
        return None;
    }
    if let Some(w) = s.errors.ratio.as_ref().and_then(|r| r.window.as_ref()) {
        cx.err(
            &format!("{p}.errors.ratio.window"),
            format!("`{w}`: an SLO's windows are its alerts' (5m to 3d) and its period; remove `window`"),
        );
        return None;
    }
    let (period, budget, scope) = fields(spec, cx, s, &p)?;
    let (page_name, ticket_name) = slo_alerts(&s.alert);
    let page = burns(&PAGE, budget);
    if page.is_empty() {
        cx.err(
            &format!("{p}.objective"),
            format!("a budget of {} cannot burn at {}x or {}x (the error ratio would exceed 1): no page could fire; an SLO this loose needs no page", num(budget), PAGE[0].2, PAGE[1].2),
        );
        return None;
    }
    let group = s.group.clone().unwrap_or_else(|| SLO_GROUP.to_string());
    let mut windows: Vec<Duration> = WINDOWS
        .iter()
        .map(|w| d(w))
        .filter(|w| *w < period)
        .collect();
    windows.push(period);
    let mut made = Vec::new();
    let mut errors = None;
    for w in windows {
        let m = errors_over(cx, s, &p, w)?;
        errors.get_or_insert_with(|| m.clone());
        let name = slo_error_record(&s.name, &w.to_string());
        let measures = format!("{} Error ratio over {w} (SLO {}).", s.measures, s.name);
        add_record(cx, s, &p, &group, &scope, &name, measures, m)?;
        made.push((w, name));
    }
    let last = made.last().map(|(_, n)| n.clone())?;
    let sli_record = slo_sli_record(&s.name, &period.to_string());
    let budget_record = slo_budget_record(&s.name, &period.to_string());
    let sli = Measure::Raw {
        expr: format!("1 - {last}"),
        tests: vec![],
    };
    let left = Measure::Raw {
        expr: format!("1 - {last} / {}", num(budget)),
        tests: vec![],
    };
    let sli_words = format!(
        "{} SLI over the {period} period (objective {}).",
        s.measures,
        num(s.objective)
    );
    add_record(cx, s, &p, &group, &scope, &sli_record, sli_words, sli)?;
    let budget_words = format!(
        "Error budget left of SLO {} over {period}: 1 untouched, 0 spent, below 0 overspent.",
        s.name
    );
    add_record(
        cx,
        s,
        &p,
        &group,
        &scope,
        &budget_record,
        budget_words,
        left,
    )?;
    Some(SloM {
        name: s.name.clone(),
        criteria: s.criteria.clone(),
        group,
        objective: s.objective,
        budget,
        period,
        errors: errors?,
        windows: made,
        sli_record,
        budget_record,
        page: SloAlertM {
            name: page_name,
            severity: s.page.clone(),
            burns: page,
        },
        ticket: SloAlertM {
            name: ticket_name,
            severity: s.ticket.clone(),
            burns: burns(&TICKET, budget),
        },
        path: p,
    })
}

#[allow(clippy::too_many_arguments)]
fn add_record(
    cx: &mut Ctx,
    s: &Slo,
    p: &str,
    group: &str,
    scope: &Scope,
    name: &str,
    measures: String,
    m: Measure,
) -> Option<()> {
    if let Some(prev) = cx.names.insert(name.to_string(), p.to_string()) {
        cx.err(
            &format!("{p}.name"),
            format!("needs the recording rule `{name}`, a name {prev} already takes"),
        );
        return None;
    }
    let expr = promql::measure_expr(&m, scope);
    let out_labels = check_expr(cx, &expr, p)?;
    cx.records.push(Record {
        name: name.to_string(),
        origin: Origin::Spec,
        criteria: s.criteria.clone(),
        group: group.to_string(),
        measures,
        labels: LabelMap::new(),
        measure: m,
        scope: scope.clone(),
        expr,
        out_labels,
        path: p.to_string(),
    });
    Some(())
}

/// The page and ticket alerts of every SLO.
pub fn alerts(
    spec: &Spec,
    cx: &mut Ctx,
    severities: &BTreeMap<String, SeverityM>,
    slos: &[SloM],
) -> Vec<AlertM> {
    let mut out = Vec::new();
    for m in slos {
        let Some(s) = spec.slos.iter().find(|s| s.name == m.name) else {
            continue;
        };
        for (a, fast) in [(&m.page, true), (&m.ticket, false)] {
            if let Some(al) = alert(spec, cx, severities, s, m, a, fast) {
                out.push(al);
            }
        }
    }
    out
}

fn alert(
    spec: &Spec,
    cx: &mut Ctx,
    severities: &BTreeMap<String, SeverityM>,
    s: &Slo,
    m: &SloM,
    a: &SloAlertM,
    fast: bool,
) -> Option<AlertM> {
    if let Some(prev) = cx.names.insert(a.name.clone(), m.path.clone()) {
        cx.err(
            &format!("{}.alert", m.path),
            format!("needs the alert `{}`, a name {prev} already takes", a.name),
        );
        return None;
    }
    let conds: Vec<(String, String)> = a
        .burns
        .iter()
        .map(|b| {
            let t = num(round(b.factor * m.budget));
            let long = m.record_of(b.long).expect("a window of the SLO");
            let short = m.record_of(b.short).expect("a window of the SLO");
            (
                promql::slo_burn(long, short, &t),
                format!(
                    "error ratio > {} x {} over {} and {}",
                    num(b.factor),
                    num(m.budget),
                    b.long,
                    b.short
                ),
            )
        })
        .collect();
    let exprs: Vec<&str> = conds.iter().map(|(e, _)| e.as_str()).collect();
    let expr = promql::alert_rule(&exprs);
    let threshold_text = conds
        .iter()
        .map(|(_, t)| t.clone())
        .collect::<Vec<_>>()
        .join("; or ");
    let out_labels = check_expr(cx, &expr, &m.path)?;
    let scope = match &s.chain {
        Some(c) => Scope::Chain(c.clone()),
        None => Scope::All,
    };
    let variant = Variant {
        test_chain: s.chain.clone().unwrap_or_else(|| TEST_CHAIN.to_string()),
        scope,
        measure: Measure::Raw {
            expr: expr.clone(),
            tests: vec![],
        },
        op: None,
        threshold: None,
        for_: Duration::ZERO,
        expr: expr.clone(),
        threshold_text: threshold_text.clone(),
        out_labels: out_labels.clone(),
    };
    let scope_label = scope_of(&out_labels);
    let mut rule_labels = LabelMap::new();
    rule_labels.insert(
        crate::conventions::PRIORITY_LABEL.into(),
        a.severity.clone(),
    );
    if let Some(level) = spec.severities.get(&a.severity).map(|p| p.level.clone()) {
        rule_labels.insert(crate::conventions::SEVERITY_LABEL.into(), level);
    }
    rule_labels.insert("criterion".into(), s.criteria.join(","));
    rule_labels.insert("scope".into(), scope_label.into());
    rule_labels.insert("alertgroup".into(), slo_alertgroup(&s.name));
    rule_labels.insert("slo".into(), s.name.clone());
    let (speed, what) = if fast {
        ("fast", "at a pace that spends it within days: act now")
    } else {
        (
            "slowly",
            "at a pace that spends it before the period ends: plan a fix",
        )
    };
    let summary = format!(
        "Error budget of SLO {} burning {speed} on {{{{ $labels.node }}}}",
        s.name
    );
    let description = format!(
        "{{{{ $labels.node }}}} ({{{{ $labels.chain }}}}/{{{{ $labels.network }}}}) is spending the {} error budget of SLO {} (objective {}) {what}.",
        m.period, s.name, num(s.objective)
    );
    let url = runbook_url(&spec.defaults.runbook_base_url, &a.name);
    let annotations = annotations(
        &summary,
        &description,
        severities.get(&a.severity),
        &url,
        &threshold_text,
    );
    let sample = sample_labels(&a.name, &rule_labels, &variant);
    Some(AlertM {
        name: a.name.clone(),
        criteria: s.criteria.clone(),
        group: m.group.clone(),
        measures: format!("{} Burn rate of the {} error budget.", s.measures, m.period),
        severity: a.severity.clone(),
        summary,
        description,
        runbook_url: url,
        runbook: s.runbook.clone(),
        alertgroup: Some(slo_alertgroup(&s.name)),
        variants: vec![variant],
        expr,
        for_: Duration::ZERO,
        threshold_text,
        scope: scope_label,
        rule_labels,
        annotations,
        value_format: None,
        sample_labels: sample,
        path: m.path.clone(),
    })
}
