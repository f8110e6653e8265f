//! A measure as thresholds.yaml writes it (exactly one kind set) → a typed `Measure`, one
//! function per kind. A new kind is a field of `spec::v1::Kinds`, a function here, its PromQL in
//! `promql::expr` and its synthetic series in `steps::promtool::synth`.

use chainwatch_catalog::CONSTANT_LABELS;
use chainwatch_duration::Duration;

use crate::model::{Measure, RawTestM, Sel, Source};
use crate::promql;
use crate::spec::v1::{
    AbsenceQ, DeviationQ, FleetFractionQ, InventoryQ, Kinds, LagQ, LivenessQ, NoProgressQ,
    QuantileQ, RatioQ, RawQ, TargetUpQ, TimeFractionQ, TrendQ, ValueQ, KIND_NAMES,
};

use super::ctx::Ctx;
use super::selectors::selector;

/// The measure of an alert, recording rule or condition at field path `p`. `block_time`
/// resolves `Nx block_time` windows.
pub fn measure(cx: &mut Ctx, k: &Kinds, p: &str, block_time: Duration) -> Option<Measure> {
    let set = k.set();
    if set.len() != 1 {
        let msg = if set.is_empty() {
            format!("no measure: set exactly one of {KIND_NAMES}")
        } else {
            format!(
                "more than one measure ({}): set exactly one",
                set.join(", ")
            )
        };
        cx.err(p, msg);
        return None;
    }
    let kind = set[0];
    let f = |x: &str| format!("{p}.{kind}.{x}");
    match kind {
        "value" => value(cx, k.value?, &f),
        "ratio" => ratio(cx, k.ratio?, &f),
        "fleet_fraction" => fleet_fraction(cx, k.fleet_fraction?, &f),
        "quantile" => quantile(cx, k.quantile?, &f),
        "no_progress" => no_progress(cx, k.no_progress?, &f, block_time),
        "absence" => absence(cx, k.absence?, &f),
        "deviation" => deviation(cx, k.deviation?, &f),
        "lag" => lag(cx, k.lag?, &f),
        "trend" => trend(cx, k.trend?, &f),
        "time_fraction" => time_fraction(cx, k.time_fraction?, &f),
        "inventory" => inventory(cx, k.inventory?, &f),
        "liveness" => liveness(cx, k.liveness?, &f),
        "target_up" => target_up(cx, k.target_up?, &f),
        "raw" => raw(cx, k.raw?, &f),
        _ => unreachable!(),
    }
}

/// A metric's value, or a function of it over a window (`increase` for counters, `delta` for
/// gauges by default), optionally aggregated `by`.
fn value(cx: &mut Ctx, q: &ValueQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let sel = selector(cx, &q.metric, &f("metric"), false)?;
    let func = match (&q.function, &q.window, sel.is_counter()) {
        (None, None, false) => None,
        (fun, w, counter) => {
            let fname = fun.clone().unwrap_or_else(|| {
                if counter {
                    "increase".into()
                } else {
                    "delta".into()
                }
            });
            let ok = [
                "increase",
                "rate",
                "delta",
                "changes",
                "max_over_time",
                "min_over_time",
                "avg_over_time",
            ];
            if !ok.contains(&fname.as_str()) {
                cx.err(
                    &f("function"),
                    format!("unknown function `{fname}` (use one of {})", ok.join(", ")),
                );
                return None;
            }
            if counter != matches!(fname.as_str(), "increase" | "rate") {
                cx.err(
                    &f("function"),
                    format!(
                        "`{fname}` does not suit {} ({})",
                        sel.name,
                        if counter { "a counter" } else { "a gauge" }
                    ),
                );
                return None;
            }
            let w = cx.window(w.as_ref(), &f("window"))?;
            Some((fname, w))
        }
    };
    let agg = match &q.aggregate {
        None => {
            if q.by.is_some() {
                cx.err(&f("by"), "`by` needs an `aggregate`");
            }
            None
        }
        Some(a) => {
            if !["max", "min", "sum", "avg", "count"].contains(&a.as_str()) {
                cx.err(
                    &f("aggregate"),
                    format!("unknown aggregation `{a}` (use max, min, sum, avg or count)"),
                );
                return None;
            }
            Some((a.clone(), cx.by(q.by.as_ref(), &f("by"), CONSTANT_LABELS)))
        }
    };
    Some(Measure::Value { sel, func, agg })
}

/// numerator / denominator: rates of counters over a window, or values of gauges.
fn ratio(cx: &mut Ctx, q: &RatioQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let num = selector(cx, &q.numerator, &f("numerator"), false)?;
    let mut den = Vec::new();
    for (i, d) in q.denominator.to_vec().iter().enumerate() {
        let fp = if q.denominator.is_many() {
            format!("{}[{i}]", f("denominator"))
        } else {
            f("denominator")
        };
        den.push(selector(cx, d, &fp, false)?);
    }
    let rates = num.is_counter();
    if den.iter().any(|d| d.is_counter() != rates) {
        cx.err(
            &f("denominator"),
            "numerator and denominator must both be counters (a ratio of rates) or both gauges",
        );
        return None;
    }
    let window = if rates {
        cx.window(q.window.as_ref(), &f("window"))?
    } else {
        if q.window.is_some() {
            cx.err(&f("window"), "a ratio of gauges has no window");
        }
        Duration::ZERO
    };
    let by = cx.by(q.by.as_ref(), &f("by"), CONSTANT_LABELS);
    Some(Measure::Ratio {
        num,
        den,
        window,
        by,
        rates,
    })
}

/// The fraction of nodes per group whose metric satisfies `op value`.
fn fleet_fraction(cx: &mut Ctx, q: &FleetFractionQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let sel = selector(cx, &q.metric, &f("metric"), false)?;
    let op = cx.op(&q.op, &f("op"))?;
    let window = if sel.is_counter() {
        Some(cx.window(q.window.as_ref(), &f("window"))?)
    } else {
        if q.window.is_some() {
            cx.err(&f("window"), format!("{} is a gauge: no window", sel.name));
        }
        None
    };
    let by = cx.by(Some(&q.by), &f("by"), &[]);
    if by.iter().any(|l| l == "node") {
        cx.err(
            &f("by"),
            "a fleet fraction counts nodes: do not group by `node`",
        );
    }
    let liveness = match &q.liveness {
        None => None,
        Some(l) => {
            let s = of_kind(cx, l, &f("liveness"), "liveness")?;
            if let Some(b) = by.iter().find(|b| !CONSTANT_LABELS.contains(&b.as_str())) {
                cx.err(
                    &f("by"),
                    format!("`{b}`: counted over a liveness record, nodes are grouped by its labels ({})", CONSTANT_LABELS.join(", ")),
                );
            }
            Some(s)
        }
    };
    Some(Measure::FleetFraction {
        sel,
        op,
        value: q.value,
        window,
        by,
        liveness,
    })
}

/// A selector that names a recording rule of this file whose measure is of `kind`.
fn of_kind(cx: &mut Ctx, text: &str, field: &str, kind: &str) -> Option<Sel> {
    let s = selector(cx, text, field, false)?;
    let is_kind = match s.source {
        Source::Record(i) => cx.records[i].measure.kind() == kind,
        _ => false,
    };
    if !is_kind || !s.matchers.is_empty() {
        cx.err(
            field,
            format!("`{text}` must name a recording rule of kind `{kind}` (defined above, without matchers)"),
        );
        return None;
    }
    Some(s)
}

/// The nodes seen within the window: a gauge every sidecar exports, remembered per target.
fn inventory(cx: &mut Ctx, q: &InventoryQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let sel = selector(cx, &q.metric, &f("metric"), false)?;
    if !matches!(sel.source, Source::Catalog { counter: false, .. }) && !is_liveness(cx, &sel) {
        cx.err(
            &f("metric"),
            format!("`{}`: an inventory is kept from a gauge of the catalog that every sidecar exports (chainwatch_build_info), or at the global tier from the federated liveness record", sel.name),
        );
        return None;
    }
    let window = cx.dur(&q.window, &f("window"))?;
    if window.ms() < 2 * cx.scrape.ms() {
        cx.err(
            &f("window"),
            format!(
                "window {window} is shorter than two scrape intervals ({}): one failed scrape would forget the node",
                cx.scrape
            ),
        );
        return None;
    }
    // The rule's name is filled in by the recording rule that holds it.
    Some(Measure::Inventory {
        sel,
        window,
        record: String::new(),
    })
}

/// A liveness record: at the global tier, what each regional Prometheus federates of its nodes
/// is both the inventory's identity and the health check.
fn is_liveness(cx: &Ctx, s: &Sel) -> bool {
    match s.source {
        Source::Record(i) => cx.records[i].measure.kind() == "liveness" && s.matchers.is_empty(),
        _ => false,
    }
}

/// Up or down per node of an inventory, with the node's health check where it has one.
fn liveness(cx: &mut Ctx, q: &LivenessQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let inventory = of_kind(cx, &q.inventory, &f("inventory"), "inventory")?;
    let Source::Record(i) = inventory.source else {
        return None;
    };
    let Measure::Inventory { sel: identity, .. } = cx.records[i].measure.clone() else {
        return None;
    };
    let health = selector(cx, &q.health, &f("health"), false)?;
    if !matches!(health.source, Source::Catalog { counter: false, .. }) && !is_liveness(cx, &health)
    {
        cx.err(
            &f("health"),
            format!(
                "`{}`: the health check is a gauge of the catalog, 1 up and 0 down (chain_node_up), or at the global tier the federated liveness record",
                health.name
            ),
        );
        return None;
    }
    Some(Measure::Liveness {
        inventory,
        identity,
        health,
    })
}

/// `up` of each inventory node's scrape target.
fn target_up(cx: &mut Ctx, q: &TargetUpQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let inventory = of_kind(cx, &q.inventory, &f("inventory"), "inventory")?;
    Some(Measure::TargetUp { inventory })
}

/// A histogram's quantile, or the ratio of two histograms' quantiles (`versus`).
fn quantile(cx: &mut Ctx, q: &QuantileQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let hist = selector(cx, &q.histogram, &f("histogram"), true)?;
    if !(q.quantile > 0.0 && q.quantile < 1.0) {
        cx.err(
            &f("quantile"),
            format!("quantile {} is not between 0 and 1", q.quantile),
        );
    }
    let versus = match &q.versus {
        Some(v) => Some(selector(cx, v, &f("versus"), true)?),
        None => None,
    };
    let window = cx.window(q.window.as_ref(), &f("window"))?;
    let by = cx.by(q.by.as_ref(), &f("by"), CONSTANT_LABELS);
    Some(Measure::Quantile {
        hist,
        q: q.quantile,
        window,
        by,
        versus,
    })
}

/// None of the metrics moved within the window (`10m`, or `Nx block_time` of the chain).
fn no_progress(
    cx: &mut Ctx,
    q: &NoProgressQ,
    f: &dyn Fn(&str) -> String,
    block_time: Duration,
) -> Option<Measure> {
    let mut sels = Vec::new();
    for (i, m) in q.metrics.to_vec().iter().enumerate() {
        let fp = if q.metrics.is_many() {
            format!("{}[{i}]", f("metrics"))
        } else {
            f("metrics")
        };
        sels.push(selector(cx, m, &fp, false)?);
    }
    let window = match parse_block_times(&q.window) {
        Some(Ok(k)) => Duration((block_time.ms() as f64 * k).round() as u64),
        Some(Err(m)) => {
            cx.err(&f("window"), m);
            return None;
        }
        None => cx.dur(&q.window, &f("window"))?,
    };
    if window.ms() < 2 * cx.scrape.ms() {
        cx.err(
            &f("window"),
            format!(
                "window {window} is shorter than two scrape intervals ({})",
                cx.scrape
            ),
        );
        return None;
    }
    Some(Measure::NoProgress { sels, window })
}

/// A series seen within `lookback` that is gone now.
fn absence(cx: &mut Ctx, q: &AbsenceQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let sel = selector(cx, &q.metric, &f("metric"), false)?;
    let lookback = cx.dur(&q.lookback, &f("lookback"))?;
    Some(Measure::Absence { sel, lookback })
}

/// The largest relative deviation of gauges from their targets.
fn deviation(cx: &mut Ctx, q: &DeviationQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    if q.terms.is_empty() {
        cx.err(&f("terms"), "no terms");
        return None;
    }
    let mut terms = Vec::new();
    for (i, t) in q.terms.iter().enumerate() {
        let s = selector(cx, &t.metric, &format!("{}[{i}].metric", f("terms")), false)?;
        if s.is_counter() {
            cx.err(
                &format!("{}[{i}].metric", f("terms")),
                "a deviation is measured on gauges",
            );
            return None;
        }
        terms.push((s, t.target));
    }
    Some(Measure::Deviation { terms })
}

/// How far each node is behind the largest value of its group.
fn lag(cx: &mut Ctx, q: &LagQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let sel = selector(cx, &q.metric, &f("metric"), false)?;
    let by = cx.by(Some(&q.by), &f("by"), &[]);
    Some(Measure::Lag { sel, by })
}

/// A counter's rate over the window against the window before.
fn trend(cx: &mut Ctx, q: &TrendQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let sel = selector(cx, &q.metric, &f("metric"), false)?;
    if !sel.is_counter() {
        cx.err(&f("metric"), "a trend is measured on a counter's rate");
        return None;
    }
    let window = cx.window(Some(&q.window), &f("window"))?;
    if q.min_rate < 0.0 {
        cx.err(&f("min_rate"), "must not be negative");
    }
    Some(Measure::Trend {
        sel,
        window,
        min_rate: q.min_rate,
    })
}

/// The fraction of the window during which `metric op value` held.
fn time_fraction(cx: &mut Ctx, q: &TimeFractionQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    let sel = selector(cx, &q.metric, &f("metric"), false)?;
    let op = cx.op(&q.op, &f("op"))?;
    let window = cx.dur(&q.window, &f("window"))?;
    Some(Measure::TimeFraction {
        inner: Box::new(Measure::Value {
            sel,
            func: None,
            agg: None,
        }),
        op,
        value: q.value,
        window,
    })
}

/// PromQL as is, with its own promtool cases.
fn raw(cx: &mut Ctx, q: &RawQ, f: &dyn Fn(&str) -> String) -> Option<Measure> {
    if let Err(m) = promql::parse(&q.expr) {
        cx.err(&f("expr"), format!("PromQL does not parse: {}", m.trim()));
        return None;
    }
    if q.tests.is_empty() {
        cx.err(
            &f("tests"),
            "a raw expression must carry its own promtool tests",
        );
        return None;
    }
    let mut tests = Vec::new();
    for (i, t) in q.tests.iter().enumerate() {
        let tp = format!("{}[{i}]", f("tests"));
        let eval_time = cx.dur(&t.eval_time, &format!("{tp}.eval_time"))?;
        for (j, s) in t.input_series.iter().enumerate() {
            if let Err(m) = promql::parse(&s.series) {
                cx.err(
                    &format!("{tp}.input_series[{j}].series"),
                    format!("not a series: {}", m.trim()),
                );
            }
        }
        tests.push(RawTestM {
            input_series: t
                .input_series
                .iter()
                .map(|s| (s.series.clone(), s.values.clone()))
                .collect(),
            eval_time,
            firing: t.firing.clone(),
            samples: t
                .samples
                .as_ref()
                .map(|v| v.iter().map(|s| (s.labels.clone(), s.value)).collect()),
        });
    }
    Some(Measure::Raw {
        expr: q.expr.trim().to_string(),
        tests,
    })
}

/// `N x block_time` (or `block_time`): `Some(Ok(N))`; not of that form: `None`.
pub fn parse_block_times(s: &str) -> Option<Result<f64, String>> {
    let s = s.trim();
    let rest = s.strip_suffix("block_time")?;
    let k = rest.trim().strip_suffix('x').unwrap_or(rest).trim();
    let k = if k.is_empty() { "1" } else { k };
    Some(
        k.parse::<f64>()
            .ok()
            .filter(|k| *k > 0.0)
            .ok_or_else(|| format!("`{s}`: write `N x block_time`, e.g. `2x block_time`")),
    )
}
