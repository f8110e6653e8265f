//! Tests of a rollout gate: with every condition calm the gate may proceed (and need not roll
//! back); each proceed condition failing alone stops it; each rollback condition tripping alone
//! rolls it back.

use chainwatch_duration::Duration;

use crate::conventions::{GATE_LABEL, GATE_PROCEED, GATE_ROLLBACK, RECORD_TEST_CHAIN};
use crate::model::{CondM, GateM, LabelMap, Measure, Model};
use crate::promql::{escape, gate_condition, gate_scope, num};

use super::expect::{base_labels, inputs, series_text};
use super::file::{
    gerr, groups_loaded, record_deps, ExpSample, ExprTest, GResult, TestFile, TestGroup,
};
use super::synth::{synth, warmup, Margins, Synth, SynthCtx};
use super::timing::{eval_interval, interval_for, rollup_window, round_up};

pub fn tests(m: &Model, g: &GateM) -> GResult<TestFile> {
    let all: Vec<&CondM> = g.proceed.iter().chain(g.rollback.iter()).collect();
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
        .map(|c| Duration(warmup(&c.measure, &m.records).ms() + c.throughout.ms()))
        .max()
        .unwrap_or_default();
    let measures: Vec<&Measure> = all.iter().map(|c| &c.measure).collect();
    let ev = eval_interval(horizon, i, rollup_window(&measures, &m.records));
    let t = round_up(horizon + i.times(2) + ev.times(1 + deps.len() as u64), ev);
    let samples = (t.ms() / i.ms()) as usize + 2;
    let case = Case {
        g,
        all: &all,
        ctx: SynthCtx {
            interval: i,
            base: base_labels(g.chain.as_deref().unwrap_or(RECORD_TEST_CHAIN)),
            records: &m.records,
            samples,
        },
        t,
    };
    let mut groups = vec![case.all_is_well()?];
    for k in 0..all.len() {
        groups.push(case.one_flipped(k)?);
    }
    Ok(TestFile {
        groups_loaded: groups_loaded(&g.group, &measures, m),
        evaluation_interval: ev.to_string(),
        groups,
    })
}

struct Case<'a> {
    g: &'a GateM,
    /// Proceed conditions, then rollback conditions.
    all: &'a [&'a CondM],
    ctx: SynthCtx<'a>,
    /// When the gate records are read.
    t: Duration,
}

impl Case<'_> {
    fn is_proceed(&self, k: usize) -> bool {
        k < self.g.proceed.len()
    }

    /// Inputs under which every condition is calm (proceed holds, rollback does not trip) but
    /// condition `flip`, which is the other way.
    fn inputs(&self, flip: Option<usize>) -> GResult<Synth> {
        let p = &self.g.path;
        // The flipped condition's series come first; other conditions may not override them
        // (a proceed and a rollback condition may watch the same counter).
        let mut s = Synth::default();
        let mut order: Vec<usize> = (0..self.all.len()).collect();
        if let Some(k) = flip {
            order.retain(|x| *x != k);
            order.insert(0, k);
        }
        for k in order {
            let c = self.all[k];
            let holds = self.is_proceed(k) != (flip == Some(k));
            let v = if holds {
                c.op.satisfy(c.threshold)
            } else {
                c.op.violate(c.threshold)
            };
            let mut cs = synth(&c.measure, v, &self.ctx).map_err(|e| {
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
    }

    /// The test that gate record `name` is `v` at `t`.
    fn expect(&self, name: &str, v: f64, comment: String) -> ExprTest {
        let mut gl = LabelMap::new();
        for l in &self.g.by {
            if let Some(x) = self.ctx.base.get(l) {
                gl.insert(l.clone(), x.clone());
            }
        }
        gl.insert(GATE_LABEL.into(), self.g.name.clone());
        ExprTest {
            comment,
            expr: format!("{name}{{{GATE_LABEL}=\"{}\"}}", escape(&self.g.name)),
            eval_time: self.t.to_string(),
            exp_samples: vec![ExpSample {
                labels: series_text(name, &gl),
                value: num(v),
            }],
        }
    }

    /// For each condition answered from derived records: that condition alone, from them and
    /// from its raw series as it was written (what the gate read before rollups), both the value
    /// it has under these inputs — the derived answer is the raw one. With a condition flipped
    /// only that one (the others may share its series, whose values it set).
    fn same_as_raw(&self, flip: Option<usize>) -> Vec<ExprTest> {
        let by = self.g.by.join(", ");
        let scope = gate_scope(self.g);
        let mut labels = LabelMap::new();
        for l in &self.g.by {
            if let Some(x) = self.ctx.base.get(l) {
                labels.insert(l.clone(), x.clone());
            }
        }
        let mut out = Vec::new();
        for (k, c) in self.all.iter().enumerate() {
            let Measure::Derived { raw, .. } = &c.measure else {
                continue;
            };
            if flip.is_some_and(|f| f != k) {
                continue;
            }
            let holds = self.is_proceed(k) != (flip == Some(k));
            let agg = if self.is_proceed(k) { "min" } else { "max" };
            let as_written = CondM {
                measure: (**raw).clone(),
                ..(*c).clone()
            };
            for (cond, how) in [
                (*c, "from its rollups"),
                (&as_written, "from the raw series, as written"),
            ] {
                out.push(ExprTest {
                    comment: format!(
                        "`{}` {how}: {}",
                        c.name,
                        if holds { "holds" } else { "does not hold" }
                    ),
                    expr: format!("{agg} by ({by}) ({})", gate_condition(cond, &scope)),
                    eval_time: self.t.to_string(),
                    exp_samples: vec![ExpSample {
                        labels: series_text("", &labels),
                        value: num(if holds { 1.0 } else { 0.0 }),
                    }],
                });
            }
        }
        out
    }

    fn group(&self, comment: String, s: &Synth, tests: Vec<ExprTest>) -> TestGroup {
        TestGroup {
            comment,
            interval: self.ctx.interval.to_string(),
            input_series: inputs(s, self.ctx.samples),
            alert_tests: vec![],
            expr_tests: tests,
        }
    }

    fn all_is_well(&self) -> GResult<TestGroup> {
        let calm = self.inputs(None)?;
        let mut tests = Vec::new();
        if !self.g.proceed.is_empty() {
            tests.push(self.expect(
                GATE_PROCEED,
                1.0,
                "every proceed condition held: may proceed".into(),
            ));
        }
        if !self.g.rollback.is_empty() {
            tests.push(self.expect(
                GATE_ROLLBACK,
                0.0,
                "no rollback condition: no rollback".into(),
            ));
        }
        tests.extend(self.same_as_raw(None));
        Ok(self.group(format!("gate {}: all is well", self.g.name), &calm, tests))
    }

    fn one_flipped(&self, k: usize) -> GResult<TestGroup> {
        let c = self.all[k];
        let s = self.inputs(Some(k))?;
        let (test, verb) = if self.is_proceed(k) {
            let t = self.expect(
                GATE_PROCEED,
                0.0,
                format!("`{}` failed: may not proceed", c.name),
            );
            (t, "fails")
        } else {
            let t = self.expect(
                GATE_ROLLBACK,
                1.0,
                format!("`{}` tripped: roll back", c.name),
            );
            (t, "trips")
        };
        let comment = format!("gate {}: {verb} `{}`", self.g.name, c.name);
        let mut tests = vec![test];
        tests.extend(self.same_as_raw(Some(k)));
        Ok(self.group(comment, &s, tests))
    }
}
