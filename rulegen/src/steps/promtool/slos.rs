//! Tests of an SLO, one file for all its rules: inputs that hold its error ratio at a steady `e`
//! for longer than its period — none (a healthy period), half the budget when bad events can be
//! counted, every event or instant bad — and then every window's error ratio is `e`, the SLI
//! `1 - e`, the budget left `1 - e / budget`, and the page and the ticket fire exactly when `e`
//! is above one of their burn thresholds.

use crate::model::{AlertM, Measure, Model, Record, Scope, SloAlertM, SloM};
use crate::promql::num;

use super::expect::{actual_labels, base_labels, expected_alert, inputs, restrict, sample_test};
use super::file::{gerr, groups_loaded, record_deps, AlertTest, GResult, TestFile, TestGroup};
use super::synth::{synth, warmup, SynthCtx};
use super::timing::{eval_interval, interval_for, rollup_window, round_up};

fn record<'a>(m: &'a Model, name: &str) -> &'a Record {
    m.records
        .iter()
        .find(|r| r.name == name)
        .expect("an SLO's records are in the model")
}

fn alert<'a>(m: &'a Model, a: &SloAlertM) -> &'a AlertM {
    m.alerts
        .iter()
        .find(|x| x.name == a.name)
        .expect("an SLO's alerts are in the model")
}

/// Whether an error ratio of `e` on every window fires one of `a`'s burns.
fn fires(s: &SloM, a: &SloAlertM, e: f64) -> bool {
    let round = |v: f64| (v * 1e12).round() / 1e12;
    a.burns.iter().any(|b| e > round(b.factor * s.budget))
}

pub fn tests(m: &Model, s: &SloM) -> GResult<TestFile> {
    let budget = record(m, &s.budget_record);
    let sli = record(m, &s.sli_record);
    let (page, ticket) = (alert(m, &s.page), alert(m, &s.ticket));
    let measures: Vec<&Measure> = vec![
        &budget.measure,
        &sli.measure,
        &page.variants[0].measure,
        &ticket.variants[0].measure,
    ];
    let mut deps = Vec::new();
    for x in &measures {
        record_deps(x, &m.records, &mut deps);
    }
    let mut durs = vec![s.period];
    for d in &deps {
        durs.extend(m.records[*d].measure.durations());
    }
    let i = interval_for(&durs, &s.path)?;
    let period = &record(m, &s.windows.last().expect("the period").1).measure;
    let warm = warmup(period, &m.records);
    let ev = eval_interval(warm, i, rollup_window(&[period], &m.records));
    let depth = deps.len() as u64;
    let mut targets = vec![0.0];
    if matches!(s.errors.raw(), Measure::Ratio { .. }) {
        targets.push(s.budget / 2.0);
    }
    targets.push(1.0);
    let mut groups = Vec::new();
    for e in targets {
        groups.push(case(m, s, e, (i, ev, warm, depth))?);
    }
    Ok(TestFile {
        groups_loaded: groups_loaded(&s.group, &measures, m),
        evaluation_interval: ev.to_string(),
        groups,
    })
}

type Timing = (
    chainwatch_duration::Duration,
    chainwatch_duration::Duration,
    chainwatch_duration::Duration,
    u64,
);

/// The error ratio held at `e`: what every rule of the SLO is, once the period has passed.
fn case(m: &Model, s: &SloM, e: f64, (i, ev, warm, depth): Timing) -> GResult<TestGroup> {
    let chain = match &record(m, &s.budget_record).scope {
        Scope::Chain(c) => c.clone(),
        _ => crate::conventions::RECORD_TEST_CHAIN.to_string(),
    };
    // Long enough for the period's window, its rollups and every record it reads.
    let t_max = round_up(warm + warm + i.times(1 + depth) + ev.times(depth), ev);
    let samples = (t_max.ms() / i.ms()) as usize + 2;
    let ctx = SynthCtx {
        interval: i,
        base: base_labels(&chain),
        records: &m.records,
        samples,
    };
    let syn = synth(&s.errors, e, &ctx)
        .map_err(|x| gerr(&s.path, format!("cannot generate a test of the SLO: {x}")))?;
    let t = round_up(
        syn.true_from + warm + i.times(1 + depth) + ev.times(depth),
        ev,
    );
    if t > t_max {
        return Err(gerr(
            &s.path,
            "the SLO's inputs take longer to form than its test",
        ));
    }
    let mut expr_tests = Vec::new();
    let mut expect = |name: &str, v: f64| {
        let r = record(m, name);
        let keys = actual_labels(&r.expr, &syn, &m.records);
        let labels = restrict(&syn.subject, &keys);
        let sel = super::expect::series_text(name, &labels);
        expr_tests.push(sample_test(
            format!("{name} = {}", num(v)),
            &sel,
            &labels,
            v,
            t,
        ));
    };
    for (_, w) in &s.windows {
        expect(w, e);
    }
    expect(&s.sli_record, 1.0 - e);
    expect(&s.budget_record, 1.0 - e / s.budget);
    let mut alert_tests = Vec::new();
    for a in [&s.page, &s.ticket] {
        let al = alert(m, a);
        let exp = if fires(s, a, e) {
            let keys = actual_labels(&al.expr, &syn, &m.records);
            vec![expected_alert(al, &restrict(&syn.subject, &keys), None)]
        } else {
            vec![]
        };
        alert_tests.push(AlertTest {
            comment: format!(
                "error ratio {} on every window: {}",
                num(e),
                if exp.is_empty() { "silent" } else { "fires" }
            ),
            eval_time: t.to_string(),
            alertname: a.name.clone(),
            exp_alerts: exp,
        });
    }
    Ok(TestGroup {
        comment: format!(
            "SLO {}: error ratio {} for longer than the {} period",
            s.name,
            num(e),
            s.period
        ),
        interval: i.to_string(),
        input_series: inputs(&syn, samples),
        alert_tests,
        expr_tests,
    })
}
