//! Tests of a recording rule: a `promql_expr_test` that inputs synthesized for a representative
//! value make the rule that value (or the hand-written cases of a `raw` rule).

use chainwatch_duration::Duration;

use crate::conventions::RECORD_TEST_CHAIN;
use crate::model::{Measure, Model, RawTestM, Record, Scope};
use crate::promql::num;

use super::expect::{actual_labels, base_labels, inputs, restrict, sample_test, series_text};
use super::file::{
    gerr, groups_loaded, record_deps, ExpSample, ExprTest, GResult, InSeries, TestFile, TestGroup,
};
use super::synth::{synth, warmup, SynthCtx};
use super::timing::{eval_interval, interval_for, rollup_window, round_up};

pub fn tests(m: &Model, r: &Record) -> GResult<TestFile> {
    let mut durs = r.measure.durations();
    let mut deps = Vec::new();
    record_deps(&r.measure, &m.records, &mut deps);
    for d in &deps {
        durs.extend(m.records[*d].measure.durations());
    }
    let i = interval_for(&durs, &r.path)?;
    let (groups, eval_step) = match r.measure.raw() {
        Measure::Raw { tests, .. } => (hand_written(r, tests, i), i),
        _ => {
            let (group, ev) = synthesized(m, r, &r.measure, i, deps.len())?;
            (vec![group], ev)
        }
    };
    Ok(TestFile {
        groups_loaded: groups_loaded(&r.group, &[&r.measure], m),
        evaluation_interval: eval_step.to_string(),
        groups,
    })
}

/// The samples thresholds.yaml expects of a raw expression.
fn hand_written(r: &Record, tests: &[RawTestM], i: Duration) -> Vec<TestGroup> {
    let mut groups = Vec::new();
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
    groups
}

/// Inputs that make the rule a representative value, evaluated once the value (and the
/// `deps` rules it reads, one evaluation each) has formed. Returns the evaluation step too.
fn synthesized(
    m: &Model,
    r: &Record,
    measure: &Measure,
    i: Duration,
    deps: usize,
) -> GResult<(TestGroup, Duration)> {
    let v = sample_value(measure);
    let warm = warmup(measure, &m.records);
    let ev = eval_interval(warm, i, rollup_window(&[measure], &m.records));
    let t = round_up(warm + i.times(1 + deps as u64) + ev.times(deps as u64), ev);
    let samples = (t.ms() / i.ms()) as usize + 2;
    let ctx = SynthCtx {
        interval: i,
        base: base_labels(match &r.scope {
            Scope::Chain(c) => c,
            _ => RECORD_TEST_CHAIN,
        }),
        records: &m.records,
        samples,
    };
    let s = synth(measure, v, &ctx)
        .map_err(|e| gerr(&r.path, format!("cannot generate a test: {e}")))?;
    let keys = actual_labels(&r.expr, &s, &m.records);
    let mut labels = restrict(&s.subject, &keys);
    labels.extend(r.labels.clone());
    let selector = series_text(&r.name, &labels);
    let group = TestGroup {
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
    };
    Ok((group, ev))
}

/// A representative value for a recording rule's test.
fn sample_value(m: &Measure) -> f64 {
    match m.raw() {
        Measure::Value {
            func: Some((f, _)), ..
        } if f == "rate" => 0.5,
        Measure::BucketRate { .. } => 0.5,
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
        Measure::Inventory { .. } => 1.0,
        // A node down, and its target down.
        Measure::Liveness { .. } | Measure::TargetUp { .. } => 0.0,
        _ => 0.0,
    }
}
