//! Recording rules rulegen derives so that the rules cost what a fleet can afford, as the
//! monitoring mixins and Sloth do:
//!
//! - **Rollups.** A measure over a window of a day or more (`LONG`) would read every sample of
//!   that window at every evaluation (a week of a counter is 40k samples per series). Instead a
//!   rollup records the measure's building block over `ROLLUP` (an hour: a counter's rate, a
//!   gauge's average, largest or smallest value, the fraction of the hour a condition held) in
//!   group `rollups`, every `groups.rollups.interval`, and the long answer is built from those
//!   (`promql::expr`): a few thousand samples per series instead of tens of thousands. One
//!   rollup per metric and kind serves every reader, restricted to the chain of its readers
//!   when they all read one chain.
//!   A recording rule over a long window reads the rollups itself and is recorded with them, in
//!   group `rollups` after the rollups (whatever group thresholds.yaml gives it); an alert or
//!   gate reads an instant of an answer record instead (the window's increase, rate, change…
//!   per series, in group `rollups` after the rollups), one answer for every reader of the
//!   same window: three Dilithion gates, one week of blocks.
//! - **Shared bucket rates.** Quantiles of one histogram over the same window and grouping (the
//!   p50, p95, p99 of CID propagation; the two medians of Rust against legacy) read one record of
//!   the bucket rates instead of each computing it, recorded first in the group of the first
//!   (with the rollups, every few minutes, when the window is an hour or more).
//! - **Records read, not recomputed.** An alert over the very measure a recording rule of its
//!   group records reads the record.
//!
//! The readers keep their raw measure (`Measure::Derived`): what it means, its words and its
//! tests' inputs do not change, only the PromQL that answers it.

use chainwatch_duration::Duration;

use crate::conventions::{bucket_record, rollup_of_record, rollup_record, ROLLUP_GROUP};
use crate::model::{AlertM, GateM, Measure, Origin, Part, Record, RollOp, Scope, Sel, Source, Via};
use crate::promql;

use super::ctx::Ctx;
use super::selectors::check_expr;

/// Windows from which a measure is answered from rollups.
pub const LONG: Duration = Duration(24 * 3_600_000);
/// The window each rollup covers.
pub const ROLLUP: Duration = Duration(3_600_000);

/// Where a measure is read: a recording rule, a variant of an alert, a condition of a gate.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Site {
    Record(usize),
    Alert(usize, usize),
    Gate(usize, bool, usize),
}

/// A derived record to make: what it holds, of which selector, for which chains.
struct Want {
    key: String,
    name: String,
    group: String,
    measure: Measure,
    /// Chains of its readers (`None`: some reader reads every chain).
    chains: Option<Vec<String>>,
    /// The field of the first reader (errors about the record point there).
    path: String,
}

/// Derives the rollups and shared bucket rates, adds them to `cx.records` and rewrites the
/// measures that read them. Returns whether group `rollups` has rules (it then needs an
/// interval).
pub fn derive(cx: &mut Ctx, alerts: &mut [AlertM], gates: &mut [GateM]) -> bool {
    let sites = sites(cx, alerts, gates);
    let mut wants: Vec<Want> = Vec::new();
    for (site, scope, path) in &sites {
        let m = measure_at(cx, alerts, gates, *site).clone();
        for w in rollups_of(cx, &m, *site, path) {
            add_want(&mut wants, w, scope);
        }
    }
    let made = make(cx, wants);
    // A recording rule over a long window is recorded at its group's interval: it reads the
    // rollups. An alert or gate reads an instant of the answer record of its window (made once
    // for all its readers, at the rollups' interval).
    let mut awants: Vec<Want> = Vec::new();
    for (site, scope, path) in &sites {
        let m = measure_at(cx, alerts, gates, *site).clone();
        match site {
            Site::Record(i) => {
                let reader = cx.records[*i].name.clone();
                if let Some(d) = rolled_measure(cx, &m, Some(&reader), &made) {
                    set_measure(cx, alerts, gates, *site, d);
                    // Its inputs move at the rollups' pace: evaluated more often, it would
                    // re-read a day or a week of them for the same answer (the SLO group's
                    // windows, every minute, were a fifth of the evaluation time of 1000 nodes).
                    cx.records[*i].group = ROLLUP_GROUP.into();
                }
            }
            _ => {
                for w in answers_of(cx, &m, &made, path) {
                    add_want(&mut awants, w, scope);
                }
            }
        }
    }
    let answers = make(cx, awants);
    for (site, _, _) in &sites {
        if matches!(site, Site::Record(_)) {
            continue;
        }
        let m = measure_at(cx, alerts, gates, *site).clone();
        if let Some(d) = answered_measure(cx, &m, &answers) {
            set_measure(cx, alerts, gates, *site, d);
        }
    }
    // Bucket rates, once the rollups are in place (quantiles never have long windows).
    let mut bwants: Vec<Want> = Vec::new();
    let mut uses: std::collections::BTreeMap<String, usize> = Default::default();
    for (site, scope, path) in &sites {
        let m = measure_at(cx, alerts, gates, *site).clone();
        let group = group_of(cx, alerts, gates, *site);
        for w in buckets_of(&m, &group, path) {
            *uses.entry(w.key.clone()).or_default() += 1;
            add_want(&mut bwants, w, scope);
        }
    }
    bwants.retain(|w| uses[&w.key] > 1);
    let made = make(cx, bwants);
    for (site, _, _) in &sites {
        let m = measure_at(cx, alerts, gates, *site).clone();
        if let Some(d) = bucket_measure(cx, &m, &made) {
            set_measure(cx, alerts, gates, *site, d);
        }
    }
    reuse_records(cx, alerts);
    rerender(cx, alerts);
    cx.records.iter().any(|r| r.group == ROLLUP_GROUP)
}

/// An alert whose condition is over a measure a recording rule of its own group computes
/// (ConsensusFallbackRateHigh and its rollback over `node:chain_consensus_fallbacks:ratio_rate10m`)
/// reads that record instead of computing it again: the group evaluates its records first, so
/// the alert sees this evaluation's value.
fn reuse_records(cx: &Ctx, alerts: &mut [AlertM]) {
    for a in alerts.iter_mut() {
        for v in a.variants.iter_mut() {
            if matches!(v.measure, Measure::Derived { .. } | Measure::Raw { .. }) {
                continue;
            }
            let Some(idx) = cx.records.iter().position(|r| {
                r.group == a.group
                    && r.origin == Origin::Spec
                    && r.measure == v.measure
                    && (r.scope == v.scope || r.scope == Scope::All)
            }) else {
                continue;
            };
            let of = cx.records[idx].name.clone();
            v.measure = Measure::Derived {
                raw: Box::new(v.measure.clone()),
                via: Via::Record {
                    parts: vec![part(cx, &of, RollOp::Whole, idx)],
                },
            };
        }
    }
}

fn sites(cx: &Ctx, alerts: &[AlertM], gates: &[GateM]) -> Vec<(Site, Scope, String)> {
    let mut out = Vec::new();
    for (i, r) in cx.records.iter().enumerate() {
        out.push((Site::Record(i), r.scope.clone(), r.path.clone()));
    }
    for (i, a) in alerts.iter().enumerate() {
        for (j, v) in a.variants.iter().enumerate() {
            out.push((Site::Alert(i, j), v.scope.clone(), a.path.clone()));
        }
    }
    for (i, g) in gates.iter().enumerate() {
        let scope = g.chain.clone().map(Scope::Chain).unwrap_or_default();
        for (proceed, list, what) in [
            (true, &g.proceed, "proceed"),
            (false, &g.rollback, "rollback"),
        ] {
            for j in 0..list.len() {
                out.push((
                    Site::Gate(i, proceed, j),
                    scope.clone(),
                    format!("{}.{what}[{j}]", g.path),
                ));
            }
        }
    }
    out
}

fn measure_at<'a>(cx: &'a Ctx, alerts: &'a [AlertM], gates: &'a [GateM], s: Site) -> &'a Measure {
    match s {
        Site::Record(i) => &cx.records[i].measure,
        Site::Alert(i, j) => &alerts[i].variants[j].measure,
        Site::Gate(i, true, j) => &gates[i].proceed[j].measure,
        Site::Gate(i, false, j) => &gates[i].rollback[j].measure,
    }
}

fn set_measure(cx: &mut Ctx, alerts: &mut [AlertM], gates: &mut [GateM], s: Site, m: Measure) {
    match s {
        Site::Record(i) => cx.records[i].measure = m,
        Site::Alert(i, j) => alerts[i].variants[j].measure = m,
        Site::Gate(i, true, j) => gates[i].proceed[j].measure = m,
        Site::Gate(i, false, j) => gates[i].rollback[j].measure = m,
    }
}

fn group_of(cx: &Ctx, alerts: &[AlertM], gates: &[GateM], s: Site) -> String {
    match s {
        Site::Record(i) => cx.records[i].group.clone(),
        Site::Alert(i, _) => alerts[i].group.clone(),
        Site::Gate(i, _, _) => gates[i].group.clone(),
    }
}

/// Adds `w`, or widens the chains of the same record already wanted.
fn add_want(wants: &mut Vec<Want>, w: Want, scope: &Scope) {
    let chains = match scope {
        Scope::Chain(c) => Some(vec![c.clone()]),
        _ => None,
    };
    match wants.iter_mut().find(|x| x.key == w.key) {
        Some(x) => {
            x.chains = match (x.chains.take(), chains) {
                (Some(mut a), Some(b)) => {
                    for c in b {
                        if !a.contains(&c) {
                            a.push(c);
                        }
                    }
                    Some(a)
                }
                _ => None,
            }
        }
        None => wants.push(Want { chains, ..w }),
    }
}

/// The long window of a measure, if it has one of `LONG` or more.
fn long_window(m: &Measure) -> Option<Duration> {
    let w = match m {
        Measure::Value {
            func: Some((_, w)), ..
        } => *w,
        Measure::Ratio { window, .. }
        | Measure::Quantile { window, .. }
        | Measure::NoProgress { window, .. }
        | Measure::Trend { window, .. }
        | Measure::TimeFraction { window, .. } => *window,
        Measure::FleetFraction {
            window: Some(w), ..
        } => *w,
        Measure::Absence { lookback, .. } => *lookback,
        _ => return None,
    };
    (w >= LONG).then_some(w)
}

/// A metric a rollup can be made of: a catalog metric (or `up`), without its matchers (the
/// readers apply them to the rollup).
fn base(sel: &Sel) -> Option<Sel> {
    match sel.source {
        Source::Record(_) => None,
        _ => Some(Sel {
            matchers: vec![],
            ..sel.clone()
        }),
    }
}

fn value_rollup(sel: &Sel, op: RollOp, path: &str) -> Want {
    let (word, func) = match op {
        RollOp::Rate => ("rate", "rate"),
        RollOp::Max => ("max", "max_over_time"),
        RollOp::Min => ("min", "min_over_time"),
        _ => ("avg", "avg_over_time"),
    };
    let sel = base(sel).expect("checked by the caller");
    Want {
        key: format!("{op:?}:{}", sel.name),
        name: rollup_record(&sel.name, word, &ROLLUP.to_string()),
        group: ROLLUP_GROUP.into(),
        measure: Measure::Value {
            sel,
            func: Some((func.into(), ROLLUP)),
            agg: None,
        },
        chains: None,
        path: path.to_string(),
    }
}

/// The rollups a measure over a long window needs (of which selector, what, the record), or why
/// its kind has none. Empty: no long window.
fn needs(
    m: &Measure,
    reader: Option<&str>,
    path: &str,
) -> Result<Vec<(String, RollOp, Want)>, String> {
    let Some(w) = long_window(m) else {
        return Ok(vec![]);
    };
    let why = |why: &str| {
        format!("a {} over {w} would read every sample of {w} at every evaluation; windows of {LONG} or more are answered from rollups, and {why}", m.kind())
    };
    let sels = m.selectors();
    if sels.iter().any(|s| base(s).is_none()) && !matches!(m, Measure::TimeFraction { .. }) {
        return Err(why(
            "rollups are made of scraped metrics, not of recording rules",
        ));
    }
    let one = |s: &Sel, op: RollOp| (s.name.clone(), op, value_rollup(s, op, path));
    match m {
        Measure::Value {
            sel,
            func: Some((f, _)),
            ..
        } => match f.as_str() {
            "increase" | "rate" => Ok(vec![one(sel, RollOp::Rate)]),
            "delta" => Ok(vec![one(sel, RollOp::Max), one(sel, RollOp::Min)]),
            "avg_over_time" => Ok(vec![one(sel, RollOp::Avg)]),
            "max_over_time" => Ok(vec![one(sel, RollOp::Max)]),
            "min_over_time" => Ok(vec![one(sel, RollOp::Min)]),
            _ => Err(why(&format!("`{f}` has no rollup"))),
        },
        Measure::Ratio { rates: true, .. } => {
            Ok(sels.iter().map(|s| one(s, RollOp::Rate)).collect())
        }
        Measure::TimeFraction {
            inner, op, value, ..
        } => {
            let Some(reader) = reader else {
                return Err(why(
                    "a time fraction's rollup is named after its recording rule: record it first",
                ));
            };
            // One rollup per condition: the windows of an SLO (1d, 3d, the period) share it.
            let inner_sel = inner.selectors()[0].name.clone();
            let want = Want {
                key: format!("Fraction:{inner_sel}:{}:{value}", op.as_str()),
                name: rollup_of_record(reader, &w.to_string(), &ROLLUP.to_string()),
                group: ROLLUP_GROUP.into(),
                measure: Measure::TimeFraction {
                    inner: inner.clone(),
                    op: *op,
                    value: *value,
                    window: ROLLUP,
                },
                chains: None,
                path: path.to_string(),
            };
            Ok(vec![(
                inner.selectors()[0].name.clone(),
                RollOp::Fraction,
                want,
            )])
        }
        _ => Err(why(&format!("a `{}` has none", m.kind()))),
    }
}

/// The rollups to make for a measure; its error reported.
fn rollups_of(cx: &mut Ctx, m: &Measure, site: Site, path: &str) -> Vec<Want> {
    let reader = match site {
        Site::Record(i) => Some(cx.records[i].name.clone()),
        _ => None,
    };
    match needs(m, reader.as_deref(), path) {
        Ok(v) => v.into_iter().map(|(_, _, w)| w).collect(),
        Err(e) => {
            cx.err(path, e);
            vec![]
        }
    }
}

/// Adds the wanted records to `cx.records`; returns (key, index) of each made.
fn make(cx: &mut Ctx, wants: Vec<Want>) -> Vec<(String, usize)> {
    let mut made = Vec::new();
    for w in wants {
        // A recording rule of thresholds.yaml that already is this rollup (an SLO's error ratio
        // over the rollup window) serves as it.
        if let Some(i) = cx
            .records
            .iter()
            .position(|r| r.name == w.name && r.measure == w.measure)
        {
            made.push((w.key, i));
            continue;
        }
        if let Some(prev) = cx.names.get(&w.name) {
            let prev = prev.clone();
            cx.err(
                &w.path,
                format!(
                    "needs the derived recording rule `{}`, a name {prev} already takes",
                    w.name
                ),
            );
            continue;
        }
        cx.names.insert(w.name.clone(), w.path.clone());
        let scope = match w.chains.as_deref() {
            Some([c]) => Scope::Chain(c.clone()),
            _ => Scope::All,
        };
        let expr = promql::measure_expr(&w.measure, &scope);
        let Some(out_labels) = check_expr(cx, &expr, &w.path) else {
            continue;
        };
        cx.records.push(Record {
            name: w.name.clone(),
            origin: Origin::Derived,
            criteria: vec![],
            group: w.group,
            measures: what(&w.measure),
            labels: Default::default(),
            measure: w.measure,
            scope,
            expr,
            out_labels,
            path: w.path,
        });
        made.push((w.key, cx.records.len() - 1));
    }
    made
}

/// The comment of a derived record in its rule file.
fn what(m: &Measure) -> String {
    match m {
        Measure::BucketRate { hist, window, .. } => format!(
            "Bucket rates of {} over {window}, shared by its quantiles (derived).",
            hist.name
        ),
        Measure::Derived { raw, .. } => format!(
            "{} from the rollups, for the alerts and gates that read it (derived).",
            promql::describe(raw)
        ),
        _ => format!(
            "Rollup: {}, what windows of {LONG} and more are built from (derived).",
            promql::describe(m)
        ),
    }
}

/// The part of a derived measure that reads record `idx` for `op` of selector `of`.
fn part(cx: &Ctx, of: &str, op: RollOp, idx: usize) -> Part {
    Part {
        of: of.to_string(),
        op,
        sel: Sel {
            name: cx.records[idx].name.clone(),
            matchers: vec![],
            source: Source::Record(idx),
            buckets: vec![],
        },
    }
}

fn index(made: &[(String, usize)], key: &str) -> Option<usize> {
    made.iter().find(|(k, _)| k == key).map(|(_, i)| *i)
}

/// `m` answered from the rollups made for it, if it has a long window.
fn rolled_measure(
    cx: &Ctx,
    m: &Measure,
    reader: Option<&str>,
    made: &[(String, usize)],
) -> Option<Measure> {
    let window = long_window(m)?;
    let needs = needs(m, reader, "").ok()?;
    let mut parts = Vec::new();
    for (of, op, want) in needs {
        parts.push(part(cx, &of, op, index(made, &want.key)?));
    }
    Some(Measure::Derived {
        raw: Box::new(m.clone()),
        via: Via::Rollups {
            window,
            rollup: ROLLUP,
            parts,
        },
    })
}

/// The selectors of a long-window measure with the function each is read with over the window.
fn long_reads(m: &Measure) -> Vec<(&Sel, &str)> {
    match m {
        Measure::Value {
            sel,
            func: Some((f, _)),
            ..
        } => vec![(sel, f.as_str())],
        Measure::Ratio { rates: true, .. } => {
            m.selectors().into_iter().map(|s| (s, "rate")).collect()
        }
        _ => vec![],
    }
}

fn op_word(op: RollOp) -> &'static str {
    match op {
        RollOp::Increase => "increase",
        RollOp::Rate => "rate",
        RollOp::Delta => "delta",
        RollOp::Max => "max",
        RollOp::Min => "min",
        _ => "avg",
    }
}

fn answer_key(op: RollOp, window: Duration, sel: &str) -> String {
    format!("Answer:{op:?}:{window}:{sel}")
}

/// The answer records an alert's or gate's long window reads: per selector, its function over
/// the window, from the rollups made.
fn answers_of(cx: &Ctx, m: &Measure, made: &[(String, usize)], path: &str) -> Vec<Want> {
    let Some(window) = long_window(m) else {
        return vec![];
    };
    let mut out = Vec::new();
    for (sel, f) in long_reads(m) {
        let Some(base) = base(sel) else { continue };
        let op = promql::expr::answer_op(f);
        let raw = Measure::Value {
            sel: base.clone(),
            func: Some((f.to_string(), window)),
            agg: None,
        };
        let Some(measure) = rolled_measure(cx, &raw, None, made) else {
            continue;
        };
        out.push(Want {
            key: answer_key(op, window, &base.name),
            name: rollup_record(&base.name, op_word(op), &window.to_string()),
            group: ROLLUP_GROUP.into(),
            measure,
            chains: None,
            path: path.to_string(),
        });
    }
    out
}

/// An alert's or gate's long-window measure read from its answer records.
fn answered_measure(cx: &Ctx, m: &Measure, made: &[(String, usize)]) -> Option<Measure> {
    let window = long_window(m)?;
    let mut parts = Vec::new();
    for (sel, f) in long_reads(m) {
        let op = promql::expr::answer_op(f);
        parts.push(part(
            cx,
            &sel.name,
            op,
            index(made, &answer_key(op, window, &sel.name))?,
        ));
    }
    Some(Measure::Derived {
        raw: Box::new(m.clone()),
        via: Via::Answers { window, parts },
    })
}

/// The bucket-rate records a measure's quantiles could share.
fn buckets_of(m: &Measure, group: &str, path: &str) -> Vec<Want> {
    let Measure::Quantile {
        hist,
        window,
        by,
        versus,
        ..
    } = m
    else {
        return vec![];
    };
    std::iter::once(hist)
        .chain(versus.iter())
        .map(|h| bucket_want(h, *window, by, group, path))
        .collect()
}

fn bucket_want(h: &Sel, window: Duration, by: &[String], group: &str, path: &str) -> Want {
    // The record keeps the labels the quantiles select on (`engine`), so each re-sums its own.
    let mut by: Vec<String> = by.to_vec();
    for m in &h.matchers {
        if !by.contains(&m.name) {
            by.push(m.name.clone());
        }
    }
    let hist = Sel {
        matchers: vec![],
        ..h.clone()
    };
    // An hour's rate moves little in a few minutes: recorded with the rollups, not every 15s.
    let group = if window >= ROLLUP {
        ROLLUP_GROUP
    } else {
        group
    };
    Want {
        key: format!("Buckets:{}:{window}:{}", h.name, by.join(",")),
        name: bucket_record(&by, &h.name, &window.to_string()),
        group: group.to_string(),
        measure: Measure::BucketRate { hist, window, by },
        chains: None,
        path: path.to_string(),
    }
}

/// A quantile measure read from its shared bucket-rate record(s), if they were made.
fn bucket_measure(cx: &Ctx, m: &Measure, made: &[(String, usize)]) -> Option<Measure> {
    let Measure::Quantile { hist, versus, .. } = m else {
        return None;
    };
    let wants = buckets_of(m, "", "");
    let mut parts = Vec::new();
    for (h, w) in std::iter::once(hist).chain(versus.iter()).zip(wants) {
        parts.push(part(cx, &h.name, RollOp::Buckets, index(made, &w.key)?));
    }
    Some(Measure::Derived {
        raw: Box::new(m.clone()),
        via: Via::Buckets { parts },
    })
}

/// The expressions of the readers, now that their measures read derived records.
fn rerender(cx: &mut Ctx, alerts: &mut [AlertM]) {
    for i in 0..cx.records.len() {
        if !matches!(cx.records[i].measure, Measure::Derived { .. }) {
            continue;
        }
        let r = &cx.records[i];
        let (expr, path) = (promql::measure_expr(&r.measure, &r.scope), r.path.clone());
        if let Some(out) = check_expr(cx, &expr, &path) {
            cx.records[i].expr = expr;
            cx.records[i].out_labels = out;
        }
    }
    for a in alerts.iter_mut() {
        if !a
            .variants
            .iter()
            .any(|v| matches!(v.measure, Measure::Derived { .. }))
        {
            continue;
        }
        for v in a.variants.iter_mut() {
            v.expr = promql::alert_condition(&v.measure, &v.scope, v.op, v.threshold);
        }
        let conds: Vec<&str> = a.variants.iter().map(|v| v.expr.as_str()).collect();
        a.expr = promql::alert_rule(&conds);
        let path = a.path.clone();
        let expr = a.expr.clone();
        check_expr(cx, &expr, &path);
    }
}
