//! Tests of an alert, for every variant: fires just past the threshold once `for` has elapsed,
//! silent before `for` elapses, silent just inside the threshold. Condition kinds have their
//! own cases (a stall as long as the window and one shorter; a series gone and one that stays),
//! and `raw` alerts bring theirs.

use chainwatch_duration::Duration;

use crate::model::{AlertM, Measure, Model, RawTestM, Scope, Sel, Variant};
use crate::promql::{self, num};

use super::expect::{actual_labels, base_labels, expected_alert, inputs, restrict};
use super::file::{
    gerr, groups_loaded, record_deps, AlertTest, ExpAlert, GResult, InSeries, TestFile, TestGroup,
};
use super::synth::{
    fixed_labels, fraction_neighbours, synth, warmup, Margins, Synth, SynthCtx, Values,
};
use super::timing::{interval_for, round_up};

pub fn tests(m: &Model, a: &AlertM) -> GResult<TestFile> {
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
        let case = Case::new(m, a, v, i, needs_records);
        groups.extend(match v.measure.raw() {
            Measure::Raw { tests, .. } => case.hand_written(tests),
            Measure::NoProgress { sels, window } => case.no_progress(sels, *window),
            Measure::Absence { sel, lookback } => case.absence(sel, *lookback),
            _ => case.threshold(&v.measure)?,
        });
    }
    let measures: Vec<&Measure> = a.variants.iter().map(|v| &v.measure).collect();
    Ok(TestFile {
        groups_loaded: groups_loaded(&a.group, &measures, m),
        evaluation_interval: i.to_string(),
        groups,
    })
}

/// One variant under test.
struct Case<'a> {
    m: &'a Model,
    a: &'a AlertM,
    v: &'a Variant,
    /// The input step.
    i: Duration,
    /// An evaluation more to wait when the alert reads recording rules (they lag one).
    slack: Duration,
    /// ` (chain x)` in the comments of a per-chain variant.
    chain_note: String,
}

impl<'a> Case<'a> {
    fn new(m: &'a Model, a: &'a AlertM, v: &'a Variant, i: Duration, deps: bool) -> Case<'a> {
        let chain_note = match &v.scope {
            Scope::All => String::new(),
            Scope::Chain(c) => format!(" (chain {c})"),
            Scope::Except(_) => " (chains without an override)".to_string(),
        };
        Case {
            m,
            a,
            v,
            i,
            slack: if deps { i } else { Duration::ZERO },
            chain_note,
        }
    }

    fn alert_test(&self, comment: String, t: Duration, exp: Vec<ExpAlert>) -> AlertTest {
        AlertTest {
            comment,
            eval_time: t.to_string(),
            alertname: self.a.name.clone(),
            exp_alerts: exp,
        }
    }

    fn group(
        &self,
        comment: String,
        input_series: Vec<InSeries>,
        tests: Vec<AlertTest>,
    ) -> TestGroup {
        TestGroup {
            comment,
            interval: self.i.to_string(),
            input_series,
            alert_tests: tests,
            expr_tests: vec![],
        }
    }

    /// The alert expected on the subject of `s`, with the labels its result carries and its
    /// value (for the annotations that show it).
    fn expected(
        &self,
        s: &Synth,
        subject: &crate::model::LabelMap,
        value: Option<f64>,
    ) -> ExpAlert {
        let keys = actual_labels(&self.v.expr, s, &self.m.records);
        expected_alert(self.a, &restrict(subject, &keys), value)
    }

    /// The cases thresholds.yaml gives a raw expression.
    fn hand_written(&self, tests: &[RawTestM]) -> Vec<TestGroup> {
        let mut out = Vec::new();
        for (n, t) in tests.iter().enumerate() {
            let firing = t.firing.clone().unwrap_or_default();
            let exp = firing
                .iter()
                .map(|l| expected_alert(self.a, l, None))
                .collect();
            let input_series = t
                .input_series
                .iter()
                .map(|(s, x)| InSeries {
                    series: s.clone(),
                    values: x.clone(),
                })
                .collect();
            let test = self.alert_test(
                format!("{} alert(s) firing", firing.len()),
                t.eval_time,
                exp,
            );
            out.push(self.group(
                format!("hand-written case {} from thresholds.yaml", n + 1),
                input_series,
                vec![test],
            ));
        }
        out
    }

    /// Progress until t0, then a stall as long as the window (fires once `for` elapsed); just
    /// inside: the stall ends before the window does.
    fn no_progress(&self, sels: &[Sel], w: Duration) -> Vec<TestGroup> {
        let (i, f, name) = (self.i, self.v.for_, &self.a.name);
        let chain_note = &self.chain_note;
        let t0 = i.times(2);
        let stall_in = (w.ms() / i.ms()).saturating_sub(2) as usize;
        let fire = Duration(t0.ms() + w.ms() + f.ms());
        let samples = ((fire.ms() + w.ms()) / i.ms()) as usize + 4;
        let mut past = Synth::default();
        let mut inside = Synth::default();
        for s in sels {
            let l = {
                let mut l = base_labels(&self.v.test_chain);
                l.extend(fixed_labels(s));
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
        let exp = self.expected(&past, &past.subject, None);
        let mut tests = vec![self.alert_test(
            format!("stalled for {w} and then `for` {f}: fires"),
            fire + self.slack,
            vec![exp],
        )];
        if f.ms() >= i.ms() {
            let before = Duration((t0.ms() + w.ms() + f.ms()).saturating_sub(2 * i.ms()));
            tests.insert(
                0,
                self.alert_test(
                    format!("stalled, `for` {f} not yet elapsed: silent"),
                    before,
                    vec![],
                ),
            );
        }
        let silent = self.alert_test(
            "stall shorter than the window: silent".into(),
            fire + self.slack,
            vec![],
        );
        vec![
            self.group(
                format!("{name}{chain_note}: no progress past the {w} window"),
                inputs(&past, samples),
                tests,
            ),
            self.group(
                format!("{name}{chain_note}: a stall shorter than the {w} window"),
                inputs(&inside, samples),
                vec![silent],
            ),
        ]
    }

    /// The series disappears (fires once `for` elapsed); just inside: it stays.
    fn absence(&self, sel: &Sel, lookback: Duration) -> Vec<TestGroup> {
        let (i, f, name) = (self.i, self.v.for_, &self.a.name);
        let chain_note = &self.chain_note;
        let t0 = i.times(3);
        let fire = t0 + f;
        let samples = (fire.ms() / i.ms()) as usize + 4;
        let mut l = base_labels(&self.v.test_chain);
        l.extend(fixed_labels(sel));
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
        let exp = self.expected(&past, &l, None);
        let mut tests = vec![self.alert_test(
            format!("gone for `for` {f}: fires"),
            fire + self.slack,
            vec![exp],
        )];
        if f.ms() >= i.ms() {
            tests.insert(
                0,
                self.alert_test(
                    format!("gone, `for` {f} not yet elapsed: silent"),
                    Duration(fire.ms() - i.ms()),
                    vec![],
                ),
            );
        }
        let present = self.alert_test("present: silent".into(), fire + self.slack, vec![]);
        vec![
            self.group(
                format!("{name}{chain_note}: the series disappears (seen within {lookback})"),
                inputs(&past, samples),
                tests,
            ),
            self.group(
                format!("{name}{chain_note}: the series stays"),
                inputs(&inside, samples),
                vec![present],
            ),
        ]
    }

    /// Value kinds: inputs that put the measure just past the threshold (fires once `for`
    /// elapsed, silent before) and just inside it (silent).
    fn threshold(&self, measure: &Measure) -> GResult<Vec<TestGroup>> {
        let (i, f, name) = (self.i, self.v.for_, &self.a.name);
        let chain_note = &self.chain_note;
        let p = &self.a.path;
        let op = self.v.op.expect("value kinds have an op");
        let t = self.v.threshold.expect("value kinds have a threshold");
        let (past, inside) = match measure.raw() {
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
        let warm = warmup(measure, &self.m.records);
        let samples = ((warm.ms() * 2 + f.ms()) / i.ms()) as usize + 8;
        let ctx = SynthCtx {
            interval: i,
            base: base_labels(&self.v.test_chain),
            records: &self.m.records,
            samples,
        };
        let sp = synth(measure, past, &ctx).map_err(|e| {
            gerr(
                p,
                format!(
                    "cannot generate a test just past the threshold ({}): {e}",
                    num(past)
                ),
            )
        })?;
        let si = synth(measure, inside, &ctx).map_err(|e| {
            gerr(
                p,
                format!(
                    "cannot generate a test just inside the threshold ({}): {e}",
                    num(inside)
                ),
            )
        })?;
        let tf = round_up(sp.true_from.max(si.true_from), i);
        let fire = tf + f + self.slack;
        let exp = self.expected(&sp, &sp.subject, Some(past));
        let what = promql::describe(measure);
        let (o, tn) = (op.as_str(), num(t));
        let mut tests = vec![self.alert_test(
            format!(
                "{what} = {} (threshold {o} {tn}), `for` {f} elapsed: fires",
                num(past)
            ),
            fire,
            vec![exp],
        )];
        if f.ms() >= i.ms() {
            tests.insert(
                0,
                self.alert_test(
                    format!("just past the threshold, `for` {f} not yet elapsed: silent"),
                    Duration(f.ms() - i.ms()),
                    vec![],
                ),
            );
        }
        let total = (fire.ms() / i.ms()) as usize + 2;
        let silent = self.alert_test(
            format!("{what} = {} (threshold {o} {tn}): silent", num(inside)),
            fire,
            vec![],
        );
        Ok(vec![
            self.group(
                format!("{name}{chain_note}: just past the threshold {o} {tn}"),
                inputs(&sp, total),
                tests,
            ),
            self.group(
                format!("{name}{chain_note}: just inside the threshold {o} {tn}"),
                inputs(&si, total),
                vec![silent],
            ),
        ])
    }
}
