//! Step 3: promtool unit tests. For every alert variant: fires just past the threshold once `for`
//! has elapsed, silent just inside the threshold, silent before `for` elapses. For every recording
//! rule: a `promql_expr_test` of a synthesized value. For every gate: proceed when all conditions
//! hold, hold when any fails, roll back when any rollback condition trips.

use serde::Serialize;

use crate::build::{AlertM, GateM, Model, Record, Variant};
use crate::model::*;
use crate::promql::{self, Labels};
use chainwatch_duration::{gcd, Duration};

#[derive(Debug, Clone, Serialize)]
pub struct TestFile {
    pub rule_files: Vec<String>,
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

type GResult<T> = Result<T, GenError>;

fn gerr(path: &str, m: impl Into<String>) -> GenError {
    GenError {
        path: path.to_string(),
        message: m.into(),
    }
}

/// The test step: the largest round interval that divides every duration, fits four times (at
/// worst twice) into the shortest, and keeps the longest range under promtool's limit of 10000
/// samples per query.
pub fn choose_interval(durs: &[Duration]) -> Duration {
    let durs: Vec<u64> = durs.iter().map(|d| d.ms()).filter(|d| *d > 0).collect();
    let (Some(min), Some(max)) = (durs.iter().copied().min(), durs.iter().copied().max()) else {
        return Duration::from_secs(60);
    };
    const CANDIDATES: [u64; 13] = [
        3_600_000, 1_800_000, 900_000, 600_000, 300_000, 150_000, 120_000, 60_000, 30_000, 15_000,
        10_000, 5_000, 1_000,
    ];
    for fit in [4, 2] {
        for c in CANDIDATES {
            if durs.iter().all(|d| d % c == 0) && c * fit <= min && max / c <= 8000 {
                return Duration(c);
            }
        }
    }
    let g = durs.iter().fold(0, |a, b| gcd(a, *b));
    Duration(g.max(1))
}

/// The test step, or why no promtool test can span these durations.
fn interval_for(durs: &[Duration], path: &str) -> GResult<Duration> {
    let i = choose_interval(durs);
    let max = durs.iter().copied().max().unwrap_or_default();
    let min = durs
        .iter()
        .copied()
        .filter(|d| !d.is_zero())
        .min()
        .unwrap_or_default();
    if max.ms() / i.ms() > 8000 || (min.ms() > 0 && min.ms() % i.ms() != 0) {
        return Err(gerr(
            path,
            format!("cannot test windows from {min} to {max} together: promtool allows 10000 samples per range; shorten the longest window (or, in an overlay, the gate's window)"),
        ));
    }
    Ok(i)
}

/// Rule evaluation step for tests that run to `horizon`: coarse enough to keep promtool fast (about
/// a hundred evaluations), a multiple of the input step.
fn eval_interval(horizon: Duration, input: Duration) -> Duration {
    for c in [3_600_000u64, 1_800_000, 900_000, 600_000, 300_000, 60_000] {
        if c % input.ms() == 0 && c * 100 <= horizon.ms() {
            return Duration(c);
        }
    }
    input
}

fn round_up(d: Duration, i: Duration) -> Duration {
    Duration(d.ms().div_ceil(i.ms()) * i.ms())
}

pub fn series_text(name: &str, labels: &LabelMap) -> String {
    if labels.is_empty() && !name.is_empty() {
        return name.to_string();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{name}{{{}}}", parts.join(", "))
}

fn base_labels(chain: &str) -> LabelMap {
    [
        ("chain", chain),
        ("network", "testnet"),
        ("region", "eu-central"),
        ("node", "node-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Labels the result of `expr` carries under the synthesized inputs.
fn actual_labels(expr: &str, synth: &Synth, records: &[Record]) -> Labels {
    let e = promql::parse(expr).expect("validated");
    let leaf = |vs: &promql_parser::parser::VectorSelector| -> Option<Labels> {
        let name = vs.name.as_deref()?;
        if let Some(r) = records.iter().find(|r| r.name == name) {
            let mut l = actual_labels(&r.expr, synth, records);
            l.extend(r.labels.keys().cloned());
            return Some(l);
        }
        let mut l = Labels::new();
        for (n, labels) in synth.series.keys() {
            if n == name {
                l.extend(labels.keys().cloned());
            }
        }
        if name == "up" || l.is_empty() {
            l.extend(["job".to_string(), "instance".to_string()]);
        }
        Some(l)
    };
    promql::out_labels(&e, &leaf).unwrap_or_default()
}

fn record_deps(m: &Measure, records: &[Record], out: &mut Vec<usize>) {
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

/// Rule files (relative to a test file two levels down) a measure needs, dependencies first.
fn rule_files(own_group: &str, measures: &[&Measure], records: &[Record]) -> Vec<String> {
    let mut deps = Vec::new();
    for m in measures {
        record_deps(m, records, &mut deps);
    }
    let mut files: Vec<String> = Vec::new();
    for i in deps {
        let f = rule_file_name(&records[i].group);
        if !files.contains(&f) && records[i].group != own_group {
            files.push(f);
        }
    }
    files.push(rule_file_name(own_group));
    files
        .into_iter()
        .map(|f| format!("../../rules/{f}"))
        .collect()
}

pub fn rule_file_name(group: &str) -> String {
    format!("{group}.rules.yml")
}

fn inputs(s: &Synth, samples: usize) -> Vec<InSeries> {
    s.series
        .iter()
        .map(|((n, l), v)| InSeries {
            series: series_text(n, l),
            values: v.notation(samples),
        })
        .collect()
}

fn expand(text: &str, labels: &LabelMap) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after.find("}}").unwrap_or(after.len());
        let inner = after[..j].trim();
        let l = inner.strip_prefix("$labels.").unwrap_or(inner);
        out.push_str(labels.get(l).map(|s| s.as_str()).unwrap_or(""));
        rest = after.get(j + 2..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

pub fn scope_of(labels: &Labels) -> &'static str {
    if labels.contains("node") {
        "node"
    } else if labels.contains("region") {
        "region"
    } else {
        "fleet"
    }
}

/// The labels every rule of an alert carries.
pub fn alert_labels(a: &AlertM, v: &Variant) -> LabelMap {
    let mut l = a.labels.clone();
    l.insert("severity".into(), a.severity.clone());
    l.insert("criterion".into(), a.criteria.join(","));
    l.insert("scope".into(), scope_of(&v.out_labels).into());
    if let Some(g) = &a.alertgroup {
        l.insert("alertgroup".into(), g.clone());
    }
    l
}

/// The annotations of a variant, unexpanded (`{{ $labels.x }}` kept).
pub fn alert_annotations(m: &Model, a: &AlertM) -> LabelMap {
    let mut an = LabelMap::new();
    an.insert("summary".into(), a.summary.clone());
    an.insert("description".into(), a.description.clone());
    let sev = &m.severities[&a.severity];
    an.insert(
        "response_time".into(),
        format!(
            "{} ({}): respond within {}",
            sev.name, sev.level, sev.response_time
        ),
    );
    an.insert("runbook_url".into(), a.runbook_url.clone());
    an.insert("threshold".into(), a.threshold_text.clone());
    an
}

fn expected_alert(m: &Model, a: &AlertM, v: &Variant, series_labels: &LabelMap) -> ExpAlert {
    let mut labels = series_labels.clone();
    labels.extend(alert_labels(a, v));
    let annotations = alert_annotations(m, a)
        .into_iter()
        .map(|(k, t)| (k, expand(&t, series_labels)))
        .collect();
    ExpAlert {
        labels,
        annotations,
    }
}

fn restrict(subject: &LabelMap, keys: &Labels) -> LabelMap {
    subject
        .iter()
        .filter(|(k, _)| keys.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn alert_tests(m: &Model, a: &AlertM) -> GResult<TestFile> {
    let mut groups = Vec::new();
    let mut durs = Vec::new();
    let mut needs_records = false;
    for v in &a.variants {
        durs.extend(v.measure.durations());
        durs.push(v.for_);
        let mut deps = Vec::new();
        record_deps(&v.measure, &m.records, &mut deps);
        for d in &deps {
            durs.extend(m.records[*d].measure.durations());
        }
        needs_records |= !deps.is_empty();
    }
    let i = interval_for(&durs, &a.path)?;
    for v in &a.variants {
        groups.extend(variant_tests(m, a, v, i, needs_records)?);
    }
    let measures: Vec<&Measure> = a.variants.iter().map(|v| &v.measure).collect();
    Ok(TestFile {
        rule_files: rule_files(&a.group, &measures, &m.records),
        evaluation_interval: i.to_string(),
        groups,
    })
}

fn variant_tests(
    m: &Model,
    a: &AlertM,
    v: &Variant,
    i: Duration,
    deps: bool,
) -> GResult<Vec<TestGroup>> {
    let p = &a.path;
    let base = base_labels(&v.test_chain);
    let chain_note = match &v.scope {
        Scope::All => String::new(),
        Scope::Chain(c) => format!(" (chain {c})"),
        Scope::Except(_) => " (chains without an override)".to_string(),
    };
    let f = v.for_;
    let slack = if deps { i } else { Duration::ZERO };
    let mk_alert = |comment: String, t: Duration, exp: Vec<ExpAlert>| AlertTest {
        comment,
        eval_time: t.to_string(),
        alertname: a.name.clone(),
        exp_alerts: exp,
    };
    let mut out = Vec::new();
    match &v.measure {
        Measure::Raw { tests, .. } => {
            for (n, t) in tests.iter().enumerate() {
                let firing = t.firing.clone().unwrap_or_default();
                let exp = firing.iter().map(|l| expected_alert(m, a, v, l)).collect();
                out.push(TestGroup {
                    comment: format!("hand-written case {} from thresholds.yaml", n + 1),
                    interval: i.to_string(),
                    input_series: t
                        .input_series
                        .iter()
                        .map(|(s, x)| InSeries {
                            series: s.clone(),
                            values: x.clone(),
                        })
                        .collect(),
                    alert_tests: vec![mk_alert(
                        format!("{} alert(s) firing", firing.len()),
                        t.eval_time,
                        exp,
                    )],
                    expr_tests: vec![],
                });
            }
        }
        Measure::NoProgress { sels, window } => {
            // Progress until t0, then a stall; just inside: the stall ends before the window.
            let w = *window;
            let t0 = i.times(2);
            let stall_in = (w.ms() / i.ms()).saturating_sub(2) as usize;
            let fire = Duration(t0.ms() + w.ms() + f.ms());
            let samples = ((fire.ms() + w.ms()) / i.ms()) as usize + 4;
            let mut past = Synth::default();
            let mut inside = Synth::default();
            for s in sels {
                let l = {
                    let mut l = base.clone();
                    l.extend(s.fixed_labels());
                    l
                };
                let start = 1000.0;
                past.series.insert(
                    (s.name.clone(), l.clone()),
                    Values::Segments(vec![(start, 1.0, 2), (start + 2.0, 0.0, 0)]),
                );
                inside.series.insert(
                    (s.name.clone(), l.clone()),
                    Values::Segments(vec![
                        (start, 1.0, 2),
                        (start + 2.0, 0.0, stall_in + 1),
                        (start + 3.0, 1.0, 0),
                    ]),
                );
                past.subject = l;
            }
            let keys = actual_labels(&v.expr, &past, &m.records);
            let exp = expected_alert(m, a, v, &restrict(&past.subject, &keys));
            let mut tests = vec![mk_alert(
                format!("stalled for {w} and then `for` {f}: fires"),
                fire + slack,
                vec![exp],
            )];
            if f.ms() >= i.ms() {
                let before = Duration((t0.ms() + w.ms() + f.ms()).saturating_sub(2 * i.ms()));
                tests.insert(
                    0,
                    mk_alert(
                        format!("stalled, `for` {f} not yet elapsed: silent"),
                        before,
                        vec![],
                    ),
                );
            }
            out.push(TestGroup {
                comment: format!("{}{chain_note}: no progress past the {w} window", a.name),
                interval: i.to_string(),
                input_series: inputs(&past, samples),
                alert_tests: tests,
                expr_tests: vec![],
            });
            out.push(TestGroup {
                comment: format!(
                    "{}{chain_note}: a stall shorter than the {w} window",
                    a.name
                ),
                interval: i.to_string(),
                input_series: inputs(&inside, samples),
                alert_tests: vec![mk_alert(
                    "stall shorter than the window: silent".into(),
                    fire + slack,
                    vec![],
                )],
                expr_tests: vec![],
            });
        }
        Measure::Absence { sel, lookback } => {
            let t0 = i.times(3);
            let fire = t0 + f;
            let samples = (fire.ms() / i.ms()) as usize + 4;
            let mut l = base.clone();
            l.extend(sel.fixed_labels());
            let mut past = Synth::default();
            past.series.insert(
                (sel.name.clone(), l.clone()),
                Values::ThenStale {
                    value: 1.0,
                    samples: 3,
                },
            );
            past.subject = l.clone();
            let mut inside = Synth::default();
            inside.series.insert(
                (sel.name.clone(), l.clone()),
                Values::Linear {
                    start: 1.0,
                    step: 0.0,
                },
            );
            let keys = actual_labels(&v.expr, &past, &m.records);
            let exp = expected_alert(m, a, v, &restrict(&l, &keys));
            let mut tests = vec![mk_alert(
                format!("gone for `for` {f}: fires"),
                fire + slack,
                vec![exp],
            )];
            if f.ms() >= i.ms() {
                tests.insert(
                    0,
                    mk_alert(
                        format!("gone, `for` {f} not yet elapsed: silent"),
                        Duration(fire.ms() - i.ms()),
                        vec![],
                    ),
                );
            }
            out.push(TestGroup {
                comment: format!(
                    "{}{chain_note}: the series disappears (seen within {lookback})",
                    a.name
                ),
                interval: i.to_string(),
                input_series: inputs(&past, samples),
                alert_tests: tests,
                expr_tests: vec![],
            });
            out.push(TestGroup {
                comment: format!("{}{chain_note}: the series stays", a.name),
                interval: i.to_string(),
                input_series: inputs(&inside, samples),
                alert_tests: vec![mk_alert("present: silent".into(), fire + slack, vec![])],
                expr_tests: vec![],
            });
        }
        measure => {
            let op = v.op.expect("value kinds have an op");
            let t = v.threshold.expect("value kinds have a threshold");
            let (past, inside) = match measure {
                Measure::FleetFraction { .. } => fraction_neighbours(op, t),
                Measure::Quantile {
                    versus: Some(_), ..
                }
                | Measure::Trend { .. }
                | Measure::Ratio { .. }
                | Measure::Deviation { .. } => op.neighbours(t, true, false),
                Measure::Value { func: None, .. } | Measure::Lag { .. } => {
                    op.neighbours(t, false, true)
                }
                _ => op.neighbours(t, false, false),
            };
            let warm = measure.warmup(&m.records);
            let samples = ((warm.ms() * 2 + f.ms()) / i.ms()) as usize + 8;
            let ctx = SynthCtx {
                interval: i,
                base: base.clone(),
                records: &m.records,
                samples,
            };
            let sp = measure.synth(past, &ctx).map_err(|e| {
                gerr(
                    p,
                    format!(
                        "cannot generate a test just past the threshold ({}): {e}",
                        num(past)
                    ),
                )
            })?;
            let si = measure.synth(inside, &ctx).map_err(|e| {
                gerr(
                    p,
                    format!(
                        "cannot generate a test just inside the threshold ({}): {e}",
                        num(inside)
                    ),
                )
            })?;
            let tf = round_up(sp.true_from.max(si.true_from), i);
            let fire = tf + f + slack;
            let keys = actual_labels(&v.expr, &sp, &m.records);
            let exp = expected_alert(m, a, v, &restrict(&sp.subject, &keys));
            let mut tests = vec![mk_alert(
                format!(
                    "{} = {} (threshold {} {}), `for` {f} elapsed: fires",
                    measure.describe(),
                    num(past),
                    op.as_str(),
                    num(t)
                ),
                fire,
                vec![exp],
            )];
            if f.ms() >= i.ms() {
                tests.insert(
                    0,
                    mk_alert(
                        format!("just past the threshold, `for` {f} not yet elapsed: silent"),
                        Duration(f.ms() - i.ms()),
                        vec![],
                    ),
                );
            }
            let total = (fire.ms() / i.ms()) as usize + 2;
            out.push(TestGroup {
                comment: format!(
                    "{}{chain_note}: just past the threshold {} {}",
                    a.name,
                    op.as_str(),
                    num(t)
                ),
                interval: i.to_string(),
                input_series: inputs(&sp, total),
                alert_tests: tests,
                expr_tests: vec![],
            });
            out.push(TestGroup {
                comment: format!(
                    "{}{chain_note}: just inside the threshold {} {}",
                    a.name,
                    op.as_str(),
                    num(t)
                ),
                interval: i.to_string(),
                input_series: inputs(&si, total),
                alert_tests: vec![mk_alert(
                    format!(
                        "{} = {} (threshold {} {}): silent",
                        measure.describe(),
                        num(inside),
                        op.as_str(),
                        num(t)
                    ),
                    fire,
                    vec![],
                )],
                expr_tests: vec![],
            });
        }
    }
    Ok(out)
}

/// A representative value for a recording rule's test.
fn sample_value(m: &Measure) -> f64 {
    match m {
        Measure::Value {
            func: Some((f, _)), ..
        } if f == "rate" => 0.5,
        Measure::Value { .. } => 42.0,
        Measure::Ratio { .. } => 0.25,
        Measure::FleetFraction { .. } => 0.3,
        Measure::Quantile { hist, versus, .. } => {
            if versus.is_some() {
                1.5
            } else {
                let mid = hist.buckets.len() / 2;
                let lower = if mid == 0 { 0.0 } else { hist.buckets[mid - 1] };
                (lower + hist.buckets[mid]) / 2.0
            }
        }
        Measure::Deviation { .. } => 0.1,
        Measure::Lag { .. } => 7.0,
        Measure::Trend { .. } => 2.5,
        Measure::TimeFraction { .. } => 1.0,
        _ => 0.0,
    }
}

fn sample_test(
    comment: String,
    selector: &str,
    labels: &LabelMap,
    v: f64,
    t: Duration,
) -> ExprTest {
    if v == v.round() && v.abs() < 1e15 {
        ExprTest {
            comment,
            expr: selector.to_string(),
            eval_time: t.to_string(),
            exp_samples: vec![ExpSample {
                labels: series_text(selector.split('{').next().unwrap_or(selector), labels),
                value: num(v),
            }],
        }
    } else {
        // Float arithmetic (rates, interpolation) is compared with a tolerance.
        ExprTest {
            comment: format!("{comment} (within 1e-9)"),
            expr: format!("abs({selector} - {}) < bool 1e-09", num(v)),
            eval_time: t.to_string(),
            exp_samples: vec![ExpSample {
                labels: series_text("", labels),
                value: "1".into(),
            }],
        }
    }
}

pub fn record_tests(m: &Model, r: &Record) -> GResult<TestFile> {
    let mut durs = r.measure.durations();
    let mut deps = Vec::new();
    record_deps(&r.measure, &m.records, &mut deps);
    for d in &deps {
        durs.extend(m.records[*d].measure.durations());
    }
    let i = interval_for(&durs, &r.path)?;
    let mut eval_step = i;
    let mut groups = Vec::new();
    match &r.measure {
        Measure::Raw { tests, .. } => {
            for (n, t) in tests.iter().enumerate() {
                let samples = t.samples.clone().unwrap_or_default();
                groups.push(TestGroup {
                    comment: format!("hand-written case {} from thresholds.yaml", n + 1),
                    interval: i.to_string(),
                    input_series: t
                        .input_series
                        .iter()
                        .map(|(s, x)| InSeries {
                            series: s.clone(),
                            values: x.clone(),
                        })
                        .collect(),
                    alert_tests: vec![],
                    expr_tests: vec![ExprTest {
                        comment: format!("{} sample(s)", samples.len()),
                        expr: r.name.clone(),
                        eval_time: t.eval_time.to_string(),
                        exp_samples: samples
                            .iter()
                            .map(|(l, v)| {
                                let mut l = l.clone();
                                l.extend(r.labels.clone());
                                ExpSample {
                                    labels: series_text(&r.name, &l),
                                    value: num(*v),
                                }
                            })
                            .collect(),
                    }],
                });
            }
        }
        measure => {
            let v = sample_value(measure);
            let warm = measure.warmup(&m.records);
            let ev = eval_interval(warm, i);
            let t = round_up(
                warm + i.times(1 + deps.len() as u64) + ev.times(deps.len() as u64),
                ev,
            );
            eval_step = ev;
            let samples = (t.ms() / i.ms()) as usize + 2;
            let ctx = SynthCtx {
                interval: i,
                base: base_labels("coinjecture"),
                records: &m.records,
                samples,
            };
            let s = measure
                .synth(v, &ctx)
                .map_err(|e| gerr(&r.path, format!("cannot generate a test: {e}")))?;
            let keys = actual_labels(&r.expr, &s, &m.records);
            let mut labels = restrict(&s.subject, &keys);
            labels.extend(r.labels.clone());
            let selector = series_text(&r.name, &labels);
            groups.push(TestGroup {
                comment: format!("{}: inputs that make it {}", r.name, num(v)),
                interval: i.to_string(),
                input_series: inputs(&s, samples),
                alert_tests: vec![],
                expr_tests: vec![sample_test(
                    format!("{} = {}", r.name, num(v)),
                    &selector,
                    &labels,
                    v,
                    t,
                )],
            });
        }
    }
    Ok(TestFile {
        rule_files: rule_files(&r.group, &[&r.measure], &m.records),
        evaluation_interval: eval_step.to_string(),
        groups,
    })
}

pub const GATE_PROCEED: &str = "chainwatch:rollout_gate_proceed:bool";
pub const GATE_ROLLBACK: &str = "chainwatch:rollout_gate_rollback:bool";

pub fn gate_tests(m: &Model, g: &GateM) -> GResult<TestFile> {
    let all: Vec<&crate::build::CondM> = g.proceed.iter().chain(g.rollback.iter()).collect();
    let mut durs: Vec<Duration> = vec![];
    let mut deps = Vec::new();
    for c in &all {
        durs.extend(c.measure.durations());
        durs.push(c.throughout);
        record_deps(&c.measure, &m.records, &mut deps);
    }
    for d in &deps {
        durs.extend(m.records[*d].measure.durations());
    }
    let i = interval_for(&durs, &g.path)?;
    let horizon = all
        .iter()
        .map(|c| Duration(c.measure.warmup(&m.records).ms() + c.throughout.ms()))
        .max()
        .unwrap_or_default();
    let ev = eval_interval(horizon, i);
    let t = round_up(horizon + i.times(2) + ev.times(1 + deps.len() as u64), ev);
    let samples = (t.ms() / i.ms()) as usize + 2;
    let ctx = SynthCtx {
        interval: i,
        base: base_labels("coinjecture"),
        records: &m.records,
        samples,
    };
    let p = &g.path;
    // Values per condition: calm (proceed holds / rollback does not trip) and tripped.
    let calm = |c: &crate::build::CondM, is_proceed: bool| {
        if is_proceed {
            c.op.satisfy(c.threshold)
        } else {
            c.op.violate(c.threshold)
        }
    };
    let build_inputs = |flip: Option<usize>| -> GResult<Synth> {
        // The flipped condition's series come first; other conditions may not override them
        // (a proceed and a rollback condition may watch the same counter).
        let mut s = Synth::default();
        let mut order: Vec<usize> = (0..all.len()).collect();
        if let Some(k) = flip {
            order.retain(|x| *x != k);
            order.insert(0, k);
        }
        for k in order {
            let c = all[k];
            let is_proceed = k < g.proceed.len();
            let mut v = calm(c, is_proceed);
            if flip == Some(k) {
                v = if is_proceed {
                    c.op.violate(c.threshold)
                } else {
                    c.op.satisfy(c.threshold)
                };
            }
            let mut cs = c.measure.synth(v, &ctx).map_err(|e| {
                gerr(
                    p,
                    format!("condition `{}`: cannot generate a test: {e}", c.name),
                )
            })?;
            if flip.is_some() {
                cs.series.retain(|key, _| !s.series.contains_key(key));
            }
            s.merge(cs)
                .map_err(|e| gerr(p, format!("condition `{}`: {e}", c.name)))?;
        }
        Ok(s)
    };
    let mut gl = LabelMap::new();
    for l in &g.by {
        if let Some(v) = ctx.base.get(l) {
            gl.insert(l.clone(), v.clone());
        }
    }
    gl.insert("gate".into(), g.name.clone());
    let sel = |name: &str| format!("{name}{{gate=\"{}\"}}", escape(&g.name));
    let expect = |name: &str, v: f64, comment: String| ExprTest {
        comment,
        expr: sel(name),
        eval_time: t.to_string(),
        exp_samples: vec![ExpSample {
            labels: series_text(name, &gl),
            value: num(v),
        }],
    };
    let mut groups = Vec::new();
    let calm_s = build_inputs(None)?;
    let mut tests = Vec::new();
    if !g.proceed.is_empty() {
        tests.push(expect(
            GATE_PROCEED,
            1.0,
            "every proceed condition held: may proceed".into(),
        ));
    }
    if !g.rollback.is_empty() {
        tests.push(expect(
            GATE_ROLLBACK,
            0.0,
            "no rollback condition: no rollback".into(),
        ));
    }
    groups.push(TestGroup {
        comment: format!("gate {}: all is well", g.name),
        interval: i.to_string(),
        input_series: inputs(&calm_s, samples),
        alert_tests: vec![],
        expr_tests: tests,
    });
    for (k, c) in all.iter().enumerate() {
        let is_proceed = k < g.proceed.len();
        let s = build_inputs(Some(k))?;
        let test = if is_proceed {
            expect(
                GATE_PROCEED,
                0.0,
                format!("`{}` failed: may not proceed", c.name),
            )
        } else {
            expect(
                GATE_ROLLBACK,
                1.0,
                format!("`{}` tripped: roll back", c.name),
            )
        };
        groups.push(TestGroup {
            comment: format!(
                "gate {}: {} `{}`",
                g.name,
                if is_proceed { "fails" } else { "trips" },
                c.name
            ),
            interval: i.to_string(),
            input_series: inputs(&s, samples),
            alert_tests: vec![],
            expr_tests: vec![test],
        });
    }
    let measures: Vec<&Measure> = all.iter().map(|c| &c.measure).collect();
    Ok(TestFile {
        rule_files: rule_files(&g.group, &measures, &m.records),
        evaluation_interval: ev.to_string(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        v.iter()
            .map(|(k, x)| (k.to_string(), x.to_string()))
            .collect()
    }

    #[test]
    fn intervals_divide_every_duration() {
        let d = |s: &str| Duration::parse(s).unwrap();
        assert_eq!(choose_interval(&[d("5m"), d("10m")]), d("1m"));
        assert_eq!(choose_interval(&[d("2m")]), d("30s"));
        assert_eq!(choose_interval(&[d("1w")]), d("1h"));
        assert_eq!(choose_interval(&[]), d("1m"));
        assert_eq!(choose_interval(&[d("5s"), d("10s")]), d("1s"));
    }

    #[test]
    fn annotations_expand_labels() {
        let l = labels(&[("node", "n1"), ("chain", "c")]);
        assert_eq!(
            expand("{{ $labels.node }} of {{$labels.chain}}!", &l),
            "n1 of c!"
        );
    }
}
