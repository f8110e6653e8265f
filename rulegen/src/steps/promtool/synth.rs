//! Synthetic input series: for each measure kind, series under which its value is a chosen
//! number from a known time on (`synth`), and the margins that put a value just past or just
//! inside a threshold (`Margins`). A new measure kind adds its function here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chainwatch_duration::Duration;

use crate::conventions;
use crate::model::{LabelMap, Measure, Op, Record, Sel, Source};
use crate::promql::num;

/// Values on either side of a threshold.
pub trait Margins {
    /// A value that satisfies `x op t` with a wide margin.
    fn satisfy(self, t: f64) -> f64;
    /// A value that violates `x op t` with a wide margin.
    fn violate(self, t: f64) -> f64;
    /// (just past the threshold, just inside it). `relative`: step by 1% of the threshold even
    /// for whole numbers (ratios such as "slower than", "twice the rate").
    /// `exact`: the measured value is exactly the input (a gauge), so the threshold itself is the
    /// tightest value inside it for `>` and `<`.
    fn neighbours(self, t: f64, relative: bool, exact: bool) -> (f64, f64);
}

impl Margins for Op {
    fn satisfy(self, t: f64) -> f64 {
        match self {
            Op::Lt if t > 0.0 => 0.0,
            Op::Le if t >= 0.0 => 0.0,
            Op::Lt | Op::Le => t - 1.0,
            Op::Gt | Op::Ge => {
                if t > 0.0 && t <= 1.0 {
                    1.0
                } else if t <= 0.0 {
                    t + 1.0
                } else {
                    2.0 * t
                }
            }
            Op::Eq => t,
            Op::Ne => t + 1.0,
        }
    }

    fn violate(self, t: f64) -> f64 {
        match self {
            Op::Lt | Op::Le => {
                if t > 0.0 && t <= 1.0 {
                    1.0
                } else if t <= 0.0 {
                    t + 1.0
                } else {
                    2.0 * t
                }
            }
            Op::Gt if t >= 0.0 => 0.0,
            Op::Ge if t > 0.0 => 0.0,
            Op::Gt | Op::Ge => t - 1.0,
            Op::Eq => t + 1.0,
            Op::Ne => t,
        }
    }

    fn neighbours(self, t: f64, relative: bool, exact: bool) -> (f64, f64) {
        let d = if relative && t != 0.0 {
            t.abs() * 0.01
        } else {
            delta(t)
        };
        let below = if t == 0.0 || exact { t } else { t - d };
        match self {
            Op::Lt if exact => (t - d, t),
            Op::Gt => (t + d, below),
            Op::Ge => (t + d, t - d),
            Op::Lt => (t - d, if t == 0.0 { 0.0 } else { t + d }),
            Op::Le => (t - d, t + d),
            Op::Eq => (t, t + d),
            Op::Ne => (t + d, t),
        }
    }
}

/// The step used for "just past" and "just inside" a threshold.
fn delta(t: f64) -> f64 {
    if t.fract() == 0.0 && (t.abs() >= 1.0 || t == 0.0) {
        1.0
    } else {
        t.abs() * 0.01
    }
}

/// Values of one input series over the test's timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// start, start+step, start+2*step, ... to the end.
    Linear { start: f64, step: f64 },
    /// Explicit segments: (start, step, samples); the last one runs to the end.
    Segments(Vec<(f64, f64, usize)>),
    /// `value` for `samples` samples, then a staleness marker.
    ThenStale { value: f64, samples: usize },
    /// A list of values; the last repeats to the end.
    List(Vec<f64>),
}

fn seg(start: f64, step: f64, samples: usize) -> String {
    let n = samples.saturating_sub(1);
    if step == 0.0 {
        format!("{}x{n}", num(start))
    } else if step > 0.0 {
        format!("{}+{}x{n}", num(start), num(step))
    } else {
        format!("{}-{}x{n}", num(start), num(-step))
    }
}

impl Values {
    /// promtool's expanding notation for `samples` samples.
    pub fn notation(&self, samples: usize) -> String {
        match self {
            Values::Linear { start, step } => seg(*start, *step, samples),
            Values::Segments(segs) => {
                let mut out = Vec::new();
                let mut used = 0;
                for (i, (start, step, n)) in segs.iter().enumerate() {
                    let n = if i + 1 == segs.len() {
                        samples.saturating_sub(used).max(1)
                    } else {
                        *n
                    };
                    out.push(seg(*start, *step, n));
                    used += n;
                }
                out.join(" ")
            }
            Values::ThenStale { value, samples: n } => format!("{} stale", seg(*value, 0.0, *n)),
            Values::List(v) => {
                let mut s = String::new();
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    let _ = write!(s, "{}", num(*x));
                }
                if v.len() < samples {
                    let last = *v.last().unwrap_or(&0.0);
                    let _ = write!(s, " {}", seg(last, 0.0, samples - v.len()));
                }
                s
            }
        }
    }
}

/// Input series that make a measure take a value, and the labels of the result series.
#[derive(Debug, Clone, Default)]
pub struct Synth {
    /// Series (name and labels) → values.
    pub series: BTreeMap<(String, LabelMap), Values>,
    /// Labels of the input series behind the result of interest (`node` etc.).
    pub subject: LabelMap,
    /// The condition is true at every evaluation from this time on.
    pub true_from: Duration,
}

pub struct SynthCtx<'a> {
    pub interval: Duration,
    pub base: LabelMap,
    pub records: &'a [Record],
    /// Samples in the timeline (for explicit lists).
    pub samples: usize,
}

const BASE_COUNTER: f64 = 1000.0;

impl Synth {
    fn add(&mut self, sel_name: &str, labels: LabelMap, v: Values) {
        self.series.insert((sel_name.to_string(), labels), v);
    }
    pub fn merge(&mut self, other: Synth) -> Result<(), String> {
        for (k, v) in other.series {
            if let Some(old) = self.series.get(&k) {
                if *old != v {
                    return Err(format!(
                        "two conditions need different values of the same series {}{:?}",
                        k.0, k.1
                    ));
                }
            }
            self.series.insert(k, v);
        }
        self.true_from = self.true_from.max(other.true_from);
        Ok(())
    }
}

fn labels_for(sel: &Sel, base: &LabelMap) -> LabelMap {
    let mut l = base.clone();
    l.extend(fixed_labels(sel));
    l
}

/// Per-interval increment so that `increase(x[w])` is `target`.
fn slope_for_increase(target: f64, ctx: &SynthCtx, w: Duration) -> f64 {
    target * ctx.interval.secs_f64() / w.secs_f64()
}

/// Inputs under which this measure's value is `target` (constant from `true_from` on).
pub fn synth(m: &Measure, target: f64, ctx: &SynthCtx) -> Result<Synth, String> {
    match m {
        Measure::Value { sel, func, agg } => value(sel, func, agg, target, ctx),
        Measure::Ratio {
            num,
            den,
            window,
            rates,
            ..
        } => ratio(num, den, *window, *rates, target, ctx),
        Measure::FleetFraction {
            sel,
            op,
            value,
            window,
            by,
            liveness,
        } => fleet_fraction(
            sel,
            (*op, *value),
            *window,
            by,
            liveness.as_ref(),
            target,
            ctx,
        ),
        Measure::Inventory { sel, .. } => {
            if target != 1.0 {
                return Err(format!(
                    "an inventory holds known nodes (1), it cannot be {}",
                    num(target)
                ));
            }
            if let Source::Record(_) = sel.source {
                // The global tier's inventory of a liveness record: the nodes it holds, up.
                let mut s = constant(sel, 1.0, ctx)?;
                s.subject = ctx.base.clone();
                return Ok(s);
            }
            let mut s = node_seen(sel, true, ctx);
            s.subject = with_target(&ctx.base);
            Ok(s)
        }
        Measure::Liveness {
            identity, health, ..
        } => {
            let up = one_or_zero(target, "liveness")?;
            if let Source::Record(_) = health.source {
                // The global tier's liveness: the federated record's verdict.
                let mut s = constant(health, if up { 1.0 } else { 0.0 }, ctx)?;
                s.subject = ctx.base.clone();
                return Ok(s);
            }
            let mut s = node_seen(identity, up, ctx);
            s.add(
                &health.name,
                with_target(&labels_for(health, &ctx.base)),
                seen(up),
            );
            s.subject = ctx.base.clone();
            Ok(s)
        }
        Measure::TargetUp { inventory } => {
            let up = one_or_zero(target, "up")?;
            let Source::Record(i) = inventory.source else {
                return Err("target_up reads an inventory record".into());
            };
            let Measure::Inventory { sel, .. } = &ctx.records[i].measure else {
                return Err("target_up reads an inventory record".into());
            };
            let mut s = node_seen(sel, up, ctx);
            s.subject = with_target(&ctx.base);
            Ok(s)
        }
        Measure::Quantile {
            hist,
            q,
            window,
            versus,
            ..
        } => quantile(hist, *q, *window, versus, target, ctx),
        Measure::Deviation { terms } => deviation(terms, target, ctx),
        Measure::Lag { sel, .. } => lag(sel, target, ctx),
        Measure::Trend {
            sel,
            window,
            min_rate,
        } => trend(sel, *window, *min_rate, target, ctx),
        Measure::TimeFraction {
            inner,
            op,
            value,
            window,
        } => time_fraction(inner, *op, *value, *window, target, ctx),
        // A derived measure means what its raw measure means: the same inputs, which the derived
        // records (loaded by the test) turn into the same value.
        Measure::Derived { raw, .. } => synth(raw, target, ctx),
        Measure::BucketRate { hist, .. } => bucket_rate(hist, target, ctx),
        Measure::NoProgress { .. } | Measure::Absence { .. } | Measure::Raw { .. } => Err(format!(
            "a `{}` measure has no value to synthesize",
            m.kind()
        )),
    }
}

fn value(
    sel: &Sel,
    func: &Option<(String, Duration)>,
    agg: &Option<(String, Vec<String>)>,
    target: f64,
    ctx: &SynthCtx,
) -> Result<Synth, String> {
    let mut s = Synth::default();
    if let Some((a, _)) = agg {
        if !matches!(a.as_str(), "max" | "min" | "sum" | "avg") {
            return Err(format!("cannot synthesize a value for aggregation `{a}`"));
        }
    }
    let window = func.as_ref().map(|f| f.1).unwrap_or_default();
    match func.as_ref().map(|f| f.0.as_str()) {
        None | Some("max_over_time" | "min_over_time" | "avg_over_time") => {
            s = constant(sel, target, ctx)?;
        }
        Some("increase" | "delta") => {
            let step = slope_for_increase(target, ctx, window);
            s.add(
                &sel.name,
                labels_for(sel, &ctx.base),
                Values::Linear {
                    start: BASE_COUNTER,
                    step,
                },
            );
            s.subject = labels_for(sel, &ctx.base);
        }
        Some("rate") => {
            let step = target * ctx.interval.secs_f64();
            s.add(
                &sel.name,
                labels_for(sel, &ctx.base),
                Values::Linear {
                    start: BASE_COUNTER,
                    step,
                },
            );
            s.subject = labels_for(sel, &ctx.base);
        }
        Some(f) => return Err(format!("cannot synthesize inputs for `{f}`")),
    }
    s.true_from = s.true_from.max(window);
    Ok(s)
}

fn ratio(
    num: &Sel,
    den: &[Sel],
    window: Duration,
    rates: bool,
    target: f64,
    ctx: &SynthCtx,
) -> Result<Synth, String> {
    let mut s = Synth::default();
    let total = if rates { 1000.0 } else { 100.0 };
    let in_den = den.iter().position(|d| d == num);
    let others: Vec<&Sel> = den.iter().filter(|d| *d != num).collect();
    if others.is_empty() {
        return Err("the ratio is always 1: the denominator is the numerator".into());
    }
    let n = target * total;
    let rest = match in_den {
        Some(_) => {
            if !(0.0..=1.0).contains(&target) {
                return Err(format!("a part of a whole cannot be {target}"));
            }
            (1.0 - target) * total
        }
        None => total,
    };
    let mk = |v: f64| {
        if rates {
            Values::Linear {
                start: BASE_COUNTER,
                step: v,
            }
        } else {
            Values::Linear {
                start: v,
                step: 0.0,
            }
        }
    };
    s.add(&num.name, labels_for(num, &ctx.base), mk(n));
    for (i, o) in others.iter().enumerate() {
        s.add(
            &o.name,
            labels_for(o, &ctx.base),
            mk(if i == 0 { rest } else { 0.0 }),
        );
    }
    s.subject = ctx.base.clone();
    s.true_from = window;
    Ok(s)
}

/// The sample from which a synthesized failure (a scrape that fails, series that end) holds.
const FAIL_AT: usize = 1;

/// A node's sidecar as Prometheus sees it: its target `up` and its `identity` series (with the
/// target's `job` and `instance`), there throughout (`up`), or until its scrapes start failing at
/// `FAIL_AT` (up 0, the series stale).
fn node_seen(identity: &Sel, up: bool, ctx: &SynthCtx) -> Synth {
    let mut s = Synth::default();
    // `up` carries the target's labels only: job and instance.
    let t = with_target(&ctx.base);
    let target: LabelMap = ["job", "instance"]
        .iter()
        .map(|k| (k.to_string(), t[*k].clone()))
        .collect();
    s.add(
        "up",
        target,
        if up {
            Values::Linear {
                start: 1.0,
                step: 0.0,
            }
        } else {
            Values::Segments(vec![(1.0, 0.0, FAIL_AT), (0.0, 0.0, 0)])
        },
    );
    s.add(
        &identity.name,
        with_target(&labels_for(identity, &ctx.base)),
        seen(up),
    );
    s.subject = ctx.base.clone();
    if !up {
        s.true_from = ctx.interval.times(FAIL_AT as u64);
    }
    s
}

/// A series of a node's sidecar: 1 throughout, or gone (stale) from `FAIL_AT` on.
fn seen(up: bool) -> Values {
    if up {
        Values::Linear {
            start: 1.0,
            step: 0.0,
        }
    } else {
        Values::ThenStale {
            value: 1.0,
            samples: FAIL_AT,
        }
    }
}

/// `labels` and the scrape target of their node (`job`, `instance`).
fn with_target(labels: &LabelMap) -> LabelMap {
    let mut l = labels.clone();
    let node = labels.get("node").cloned().unwrap_or_default();
    l.insert("job".into(), conventions::TEST_JOB.into());
    l.insert("instance".into(), conventions::test_instance(&node));
    l
}

fn one_or_zero(target: f64, what: &str) -> Result<bool, String> {
    if target == 1.0 {
        Ok(true)
    } else if target == 0.0 {
        Ok(false)
    } else {
        Err(format!("{what} is 1 or 0, it cannot be {}", num(target)))
    }
}

/// The same context for another node of the fleet.
fn for_node<'a>(ctx: &SynthCtx<'a>, node: &str) -> SynthCtx<'a> {
    let mut base = ctx.base.clone();
    base.insert("node".into(), node.to_string());
    SynthCtx {
        interval: ctx.interval,
        base,
        records: ctx.records,
        samples: ctx.samples,
    }
}

fn fleet_fraction(
    sel: &Sel,
    (op, value): (Op, f64),
    window: Option<Duration>,
    by: &[String],
    liveness: Option<&Sel>,
    target: f64,
    ctx: &SynthCtx,
) -> Result<Synth, String> {
    let mut s = Synth::default();
    let k_total = fleet_size(target)?;
    let bad = (target * k_total as f64).round() as usize;
    let (bad_v, good_v) = condition_values(op, value);
    for i in 0..k_total {
        let node = format!("node-{}", i + 1);
        let v = if i < bad { bad_v } else { good_v };
        if let Some(Source::Record(r)) = liveness.map(|l| &l.source) {
            // Every node up: the fraction is the nodes that meet the condition.
            let mut up = synth(&ctx.records[*r].measure, 1.0, &for_node(ctx, &node))?;
            up.subject = LabelMap::new();
            s.merge(up)?;
        }
        if let Source::Record(r) = sel.source {
            // Each node's value through the recording rule it reads.
            let mut one = synth(&ctx.records[r].measure, v, &for_node(ctx, &node))?;
            one.subject = LabelMap::new();
            s.merge(one)?;
            continue;
        }
        let mut l = labels_for(sel, &ctx.base);
        l.insert("node".into(), node);
        let vals = match window {
            Some(w) => Values::Linear {
                start: BASE_COUNTER,
                step: slope_for_increase(v, ctx, w),
            },
            None => Values::Linear {
                start: v,
                step: 0.0,
            },
        };
        s.add(&sel.name, l, vals);
    }
    s.subject = ctx
        .base
        .iter()
        .filter(|(k, _)| by.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    s.true_from = s.true_from.max(window.unwrap_or_default());
    Ok(s)
}

fn quantile(
    hist: &Sel,
    q: f64,
    window: Duration,
    versus: &Option<Sel>,
    target: f64,
    ctx: &SynthCtx,
) -> Result<Synth, String> {
    let mut s = Synth::default();
    match versus {
        None => synth_histogram(&mut s, hist, q, target, ctx)?,
        Some(v) => {
            let mid = hist.buckets.len() / 2;
            let lower = if mid == 0 { 0.0 } else { hist.buckets[mid - 1] };
            let reference = (lower + hist.buckets[mid]) / 2.0;
            synth_histogram(&mut s, v, q, reference, ctx)?;
            synth_histogram(&mut s, hist, q, reference * target, ctx)?;
        }
    }
    s.subject = ctx.base.clone();
    s.true_from = window;
    Ok(s)
}

fn deviation(terms: &[(Sel, f64)], target: f64, ctx: &SynthCtx) -> Result<Synth, String> {
    let mut s = Synth::default();
    for (i, (sel, t)) in terms.iter().enumerate() {
        let v = if i == 0 {
            if *t == 0.0 {
                target
            } else {
                t + target * t.abs()
            }
        } else {
            *t
        };
        s.merge(constant(sel, v, ctx)?)?;
    }
    s.subject = ctx.base.clone();
    Ok(s)
}

fn lag(sel: &Sel, target: f64, ctx: &SynthCtx) -> Result<Synth, String> {
    let mut s = Synth::default();
    let l = labels_for(sel, &ctx.base);
    let mut leader = l.clone();
    leader.insert("node".into(), "node-leader".into());
    s.add(
        &sel.name,
        l.clone(),
        Values::Linear {
            start: BASE_COUNTER,
            step: 0.0,
        },
    );
    s.add(
        &sel.name,
        leader,
        Values::Linear {
            start: BASE_COUNTER + target,
            step: 0.0,
        },
    );
    s.subject = l;
    Ok(s)
}

fn trend(
    sel: &Sel,
    window: Duration,
    min_rate: f64,
    target: f64,
    ctx: &SynthCtx,
) -> Result<Synth, String> {
    let mut s = Synth::default();
    // Rates growing geometrically by `target` per window: the ratio of consecutive
    // windows is `target` at every time.
    let i = ctx.interval.secs_f64();
    let per_window = (window.ms() / ctx.interval.ms()) as f64;
    let g = target.powf(1.0 / per_window);
    let base_rate = if min_rate > 0.0 { min_rate * 2.0 } else { 1.0 };
    let mut v = Vec::with_capacity(ctx.samples);
    let mut c = BASE_COUNTER;
    let mut inc = base_rate * i;
    for _ in 0..ctx.samples {
        v.push((c * 1e6).round() / 1e6);
        c += inc;
        inc *= g;
    }
    let l = labels_for(sel, &ctx.base);
    s.add(&sel.name, l.clone(), Values::List(v));
    s.subject = l;
    s.true_from = window.times(2);
    Ok(s)
}

fn time_fraction(
    inner: &Measure,
    op: Op,
    value: f64,
    window: Duration,
    target: f64,
    ctx: &SynthCtx,
) -> Result<Synth, String> {
    let v = if target == 1.0 {
        op.satisfy(value)
    } else if target == 0.0 {
        op.violate(value)
    } else {
        return Err("a time fraction can be synthesized as 0 or 1 only".into());
    };
    let mut s = synth(inner, v, ctx)?;
    s.true_from = Duration(s.true_from.ms() + window.ms());
    Ok(s)
}

/// Every bucket of `hist` (so its `+Inf` bucket, the subject) growing by `target` per second.
fn bucket_rate(hist: &Sel, target: f64, ctx: &SynthCtx) -> Result<Synth, String> {
    let mut s = Synth::default();
    let step = target * ctx.interval.secs_f64();
    let les = hist.buckets.iter().map(|b| (le_label(*b), step));
    add_buckets(&mut s, hist, les.chain([("+Inf".into(), step)]), ctx);
    s.subject = labels_for(hist, &ctx.base);
    s.subject.insert("le".into(), "+Inf".into());
    Ok(s)
}

/// A constant value of a selector, through recording rules when it names one.
fn constant(sel: &Sel, v: f64, ctx: &SynthCtx) -> Result<Synth, String> {
    match &sel.source {
        Source::Record(i) => {
            let r = &ctx.records[*i];
            let mut s = synth(&r.measure, v, ctx)?;
            s.subject.extend(r.labels.clone());
            s.true_from = Duration(s.true_from.ms() + ctx.interval.ms());
            Ok(s)
        }
        Source::Catalog { counter: true, .. } => Err(format!(
            "{} is a counter: compare its `increase` or `rate` over a window, not its value",
            sel.name
        )),
        _ => {
            let mut s = Synth::default();
            let l = labels_for(sel, &ctx.base);
            s.add(
                &sel.name,
                l.clone(),
                Values::Linear {
                    start: v,
                    step: 0.0,
                },
            );
            s.subject = l;
            Ok(s)
        }
    }
}

/// (value of a node that meets `op value`, value of one that does not).
pub fn condition_values(op: Op, value: f64) -> (f64, f64) {
    match op {
        Op::Gt => (value + 1.0, value),
        Op::Ge => (value, value - 1.0),
        Op::Lt => (value - 1.0, value),
        Op::Le => (value, value + 1.0),
        Op::Eq => (value, value + 1.0),
        Op::Ne => (value + 1.0, value),
    }
}

/// Smallest fleet in which `fraction` of the nodes is a whole number of nodes.
pub fn fleet_size(fraction: f64) -> Result<usize, String> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(format!("a fraction of nodes cannot be {fraction}"));
    }
    for k in [10usize, 20, 50, 100, 1000] {
        let n = fraction * k as f64;
        if (n - n.round()).abs() < 1e-9 {
            return Ok(k);
        }
    }
    Err(format!(
        "{fraction} of a fleet is not a whole number of nodes in a fleet of up to 1000"
    ))
}

/// The fleet-fraction grid: (just past, just inside) in a fleet of 10.
pub fn fraction_neighbours(op: Op, t: f64) -> (f64, f64) {
    let k = 10.0;
    let tk = t * k;
    let (past, inside) = match op {
        Op::Gt => (tk.floor() + 1.0, tk.floor()),
        Op::Ge => (tk.ceil(), tk.ceil() - 1.0),
        Op::Lt => (tk.ceil() - 1.0, tk.ceil()),
        Op::Le => (tk.floor(), tk.floor() + 1.0),
        Op::Eq => (tk.round(), tk.round() + 1.0),
        Op::Ne => (tk.round() + 1.0, tk.round()),
    };
    (past.clamp(0.0, k) / k, inside.clamp(0.0, k) / k)
}

fn le_label(b: f64) -> String {
    num(b)
}

/// Bucket series whose `q` quantile is `x`.
fn synth_histogram(
    s: &mut Synth,
    hist: &Sel,
    q: f64,
    x: f64,
    ctx: &SynthCtx,
) -> Result<(), String> {
    let b = &hist.buckets;
    let top = *b.last().ok_or("histogram without buckets")?;
    if !(x > 0.0 && x < top) {
        return Err(format!(
            "a quantile of {x} cannot be shown with {}'s buckets (0 to {top})",
            hist.name
        ));
    }
    let u_idx = b.iter().position(|u| x <= *u).expect("x < top");
    let lower = if u_idx == 0 { 0.0 } else { b[u_idx - 1] };
    let upper = b[u_idx];
    let f = (x - lower) / (upper - lower);
    let total = 1000.0;
    // Cumulative counts per interval at `lower` (cl) and `upper` (cu).
    let (cl, cu) = if f <= q {
        if u_idx == 0 && f < q {
            return Err(format!(
                "a quantile of {x} lies too low in {}'s first bucket to be synthesized",
                hist.name
            ));
        }
        (total * (q - f) / (1.0 - f), total)
    } else {
        (0.0, total * q / f)
    };
    let mut bounds: Vec<(String, f64)> = Vec::new();
    for (i, ub) in b.iter().enumerate() {
        let c = if i < u_idx {
            cl
        } else if i == u_idx {
            cu
        } else {
            total
        };
        bounds.push((le_label(*ub), c));
    }
    bounds.push(("+Inf".into(), total));
    add_buckets(s, hist, bounds.into_iter(), ctx);
    Ok(())
}

/// Bucket series of `hist`, each counting up by its step per interval.
fn add_buckets(
    s: &mut Synth,
    hist: &Sel,
    steps: impl Iterator<Item = (String, f64)>,
    ctx: &SynthCtx,
) {
    for (le, step) in steps {
        let mut l = labels_for(hist, &ctx.base);
        l.insert("le".into(), le);
        s.add(
            &format!("{}_bucket", hist.name),
            l,
            Values::Linear {
                start: BASE_COUNTER,
                step,
            },
        );
    }
}

/// Labels a synthesized series of this selector carries besides the base labels.
pub fn fixed_labels(sel: &Sel) -> LabelMap {
    let mut m = LabelMap::new();
    for x in &sel.matchers {
        match x.op {
            "=" => {
                m.insert(x.name.clone(), x.value.clone());
            }
            "=~" => {
                let first = x.value.split('|').next().unwrap_or_default();
                m.insert(x.name.clone(), first.to_string());
            }
            _ => {}
        }
    }
    m
}

/// How long after the inputs enter a constant regime the value is fully formed.
pub fn warmup(m: &Measure, records: &[Record]) -> Duration {
    let own = m.durations().into_iter().max().unwrap_or_default();
    let deps = m
        .selectors()
        .iter()
        .filter_map(|s| match s.source {
            Source::Record(i) => Some(warmup(&records[i].measure, records)),
            _ => None,
        })
        .max()
        .unwrap_or_default();
    match m {
        Measure::Trend { window, .. } => window.times(2),
        _ => Duration(own.ms() + deps.ms()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_straddle_the_threshold() {
        for op in [Op::Gt, Op::Ge, Op::Lt, Op::Le] {
            for t in [0.05, 0.95, 2.0, 30.0, 1000.0, 0.0001] {
                let (past, inside) = op.neighbours(t, false, false);
                let holds = |x: f64| match op {
                    Op::Gt => x > t,
                    Op::Ge => x >= t,
                    Op::Lt => x < t,
                    Op::Le => x <= t,
                    _ => unreachable!(),
                };
                assert!(holds(past), "{op:?} {t}: past {past}");
                assert!(!holds(inside), "{op:?} {t}: inside {inside}");
            }
        }
    }

    #[test]
    fn fleet_grid() {
        assert_eq!(fraction_neighbours(Op::Gt, 0.3), (0.4, 0.3));
        assert_eq!(fraction_neighbours(Op::Gt, 0.5), (0.6, 0.5));
        assert_eq!(fraction_neighbours(Op::Ge, 1.0), (1.0, 0.9));
        assert_eq!(fleet_size(0.3).unwrap(), 10);
        assert_eq!(fleet_size(0.25).unwrap(), 20);
    }

    #[test]
    fn notation() {
        assert_eq!(
            Values::Linear {
                start: 1.0,
                step: 0.0
            }
            .notation(5),
            "1x4"
        );
        assert_eq!(
            Values::Linear {
                start: 1000.0,
                step: 2.5
            }
            .notation(3),
            "1000+2.5x2"
        );
        assert_eq!(
            Values::ThenStale {
                value: 1.0,
                samples: 3
            }
            .notation(10),
            "1x2 stale"
        );
        assert_eq!(
            Values::Segments(vec![(1000.0, 1.0, 3), (1002.0, 0.0, 0)]).notation(6),
            "1000+1x2 1002x2"
        );
    }
}
