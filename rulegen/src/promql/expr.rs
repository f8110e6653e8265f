//! Every PromQL expression rulegen generates, built from the model: a selector scoped to its
//! chains, the value of each measure kind, an alert's condition (the value compared with its
//! threshold) and its one rule (the per-chain variants joined with `or`), and a rollout gate's
//! records. A new measure kind adds its arm to `measure_expr`.

use chainwatch_catalog::CONSTANT_LABELS;
use chainwatch_duration::Duration;

use crate::model::{CondM, GateM, Measure, Op, RollOp, Scope, Sel, Via};

/// A label value in a PromQL (or YAML double-quoted) string.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A number as PromQL and promtool write it.
pub fn num(v: f64) -> String {
    if v == f64::INFINITY {
        return "+Inf".into();
    }
    let s = format!("{v}");
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn by_clause(by: &[String]) -> String {
    by.join(", ")
}

/// `metric{matchers…}` restricted to the variant's chains.
pub fn selector(sel: &Sel, scope: &Scope) -> String {
    named_selector(sel, &sel.name, scope)
}

/// The `_bucket` series of a histogram selector.
pub fn bucket_selector(sel: &Sel, scope: &Scope) -> String {
    named_selector(sel, &format!("{}_bucket", sel.name), scope)
}

fn named_selector(sel: &Sel, name: &str, scope: &Scope) -> String {
    let mut parts: Vec<String> = sel
        .matchers
        .iter()
        .map(|m| format!("{}{}\"{}\"", m.name, m.op, escape(&m.value)))
        .collect();
    match scope {
        Scope::All => {}
        Scope::Chain(c) => parts.push(format!("chain=\"{}\"", escape(c))),
        Scope::Except(cs) => {
            let alts: Vec<String> = cs.iter().map(|c| regex_escape(c)).collect();
            parts.push(format!("chain!~\"{}\"", escape(&alts.join("|"))))
        }
    }
    if parts.is_empty() {
        name.to_string()
    } else {
        format!("{}{{{}}}", name, parts.join(", "))
    }
}

/// Resolution of a subquery over `w`: about 40 to 200 points.
pub fn subquery_step(w: Duration) -> Duration {
    for c in [3_600_000u64, 300_000, 60_000, 30_000, 15_000, 5_000] {
        if c * 40 <= w.ms() {
            return Duration(c);
        }
    }
    Duration(1_000)
}

/// The PromQL of a measure: its value, or for condition kinds the condition.
pub fn measure_expr(m: &Measure, scope: &Scope) -> String {
    match m {
        Measure::Value { sel, func, agg } => {
            let mut e = match func {
                Some((f, w)) => format!("{f}({}[{w}])", selector(sel, scope)),
                None => selector(sel, scope),
            };
            if let Some((a, by)) = agg {
                e = format!("{a} by ({}) ({e})", by_clause(by));
            }
            e
        }
        Measure::Ratio {
            num,
            den,
            window,
            by,
            rates,
        } => ratio(num, den, *window, by, *rates, scope),
        Measure::FleetFraction {
            sel,
            op,
            value,
            window,
            by,
            liveness,
        } => {
            let inner = match window {
                Some(w) => format!("increase({}[{w}])", selector(sel, scope)),
                None => selector(sel, scope),
            };
            let by = by_clause(by);
            let cond = format!("{inner} {} bool {}", op.as_str(), num(*value));
            match liveness {
                None => format!("sum by ({by}) ({cond}) / count by ({by}) ({inner})"),
                Some(l) => {
                    // Per node: 1 when it meets the condition or is down, 0 when it is up and
                    // does not; every node the liveness record knows counts.
                    let node = CONSTANT_LABELS.join(", ");
                    let per_node = format!(
                        "max by ({node}) (({cond}) or ({} == bool 0))",
                        selector(l, scope)
                    );
                    format!("sum by ({by}) ({per_node}) / count by ({by}) ({per_node})")
                }
            }
        }
        Measure::Inventory {
            sel,
            window,
            record,
        } => inventory(sel, *window, record, scope),
        Measure::Liveness {
            inventory,
            identity,
            health,
        } => liveness(inventory, identity, health, scope),
        Measure::TargetUp { inventory } => format!(
            "{} * on (job, instance) group_right () {}",
            target_up(),
            selector(inventory, scope)
        ),
        Measure::Quantile {
            hist,
            q,
            window,
            by,
            versus,
        } => {
            let one = |s: &Sel| {
                format!(
                    "histogram_quantile({}, sum by (le, {}) (rate({}[{window}])))",
                    num(*q),
                    by_clause(by),
                    bucket_selector(s, scope)
                )
            };
            match versus {
                Some(v) => format!("{} / {}", one(hist), one(v)),
                None => one(hist),
            }
        }
        Measure::NoProgress { sels, window } => no_progress(sels, *window, scope),
        Measure::Absence { sel, lookback } => {
            let s = selector(sel, scope);
            format!("present_over_time({s}[{lookback}]) unless {s}")
        }
        Measure::Deviation { terms } => deviation(terms, scope),
        Measure::Lag { sel, by } => {
            let s = selector(sel, scope);
            let by = by_clause(by);
            format!("max by ({by}) ({s}) - on ({by}) group_right {s}")
        }
        Measure::Trend {
            sel,
            window,
            min_rate,
        } => {
            let s = selector(sel, scope);
            format!(
                "(rate({s}[{window}]) > {}) / rate({s}[{window}] offset {window})",
                num(*min_rate)
            )
        }
        Measure::TimeFraction {
            inner,
            op,
            value,
            window,
        } => format!(
            "avg_over_time(({} {} bool {})[{window}:{}])",
            measure_expr(inner, scope),
            op.as_str(),
            num(*value),
            subquery_step(*window)
        ),
        Measure::Raw { expr, .. } => expr.clone(),
        Measure::BucketRate { hist, window, by } => format!(
            "sum by (le, {}) (rate({}[{window}]))",
            by_clause(by),
            bucket_selector(hist, scope)
        ),
        Measure::Derived { raw, via } => derived(raw, via, scope),
    }
}

/// A derived measure: its raw measure's value, read from the records rulegen derived for it.
fn derived(raw: &Measure, via: &Via, scope: &Scope) -> String {
    match via {
        Via::Rollups { window, rollup, .. } => {
            let span = Duration(window.ms() - rollup.ms());
            from_rollups(raw, via, *window, span, scope)
        }
        Via::Answers { .. } => from_answers(raw, via, scope),
        Via::Buckets { .. } => from_buckets(raw, via, scope),
        Via::Record { parts } => selector(&parts[0].sel, scope),
    }
}

/// The record of `op` of selector `sel`, selected with `sel`'s own matchers (the record keeps
/// the labels they match on). Validation made every part a measure needs.
fn part(via: &Via, sel: &Sel, op: RollOp) -> Sel {
    let rec = via
        .part(&sel.name, op)
        .unwrap_or_else(|| panic!("no {op:?} rollup of {} was derived", sel.name));
    Sel {
        matchers: sel.matchers.clone(),
        ..rec.clone()
    }
}

/// A long window from rollups over `span` (the window less the rollup's own window): averages
/// of rates, of values, of the fraction of time; largest and smallest values for a gauge's
/// change. `increase` is the average rate times the window.
fn from_rollups(
    raw: &Measure,
    via: &Via,
    window: Duration,
    span: Duration,
    scope: &Scope,
) -> String {
    let over = |f: &str, s: &Sel, op: RollOp| {
        format!("{f}({}[{span}])", selector(&part(via, s, op), scope))
    };
    match raw {
        Measure::Value { sel, func, agg } => {
            let f = func.as_ref().map(|f| f.0.as_str()).unwrap_or_default();
            let mut e = match f {
                "increase" => format!(
                    "{} * {}",
                    over("avg_over_time", sel, RollOp::Rate),
                    window.ms() / 1000
                ),
                "rate" => over("avg_over_time", sel, RollOp::Rate),
                "delta" => format!(
                    "({} - {})",
                    over("max_over_time", sel, RollOp::Max),
                    over("min_over_time", sel, RollOp::Min)
                ),
                "max_over_time" => over("max_over_time", sel, RollOp::Max),
                "min_over_time" => over("min_over_time", sel, RollOp::Min),
                _ => over("avg_over_time", sel, RollOp::Avg),
            };
            if let Some((a, by)) = agg {
                e = format!("{a} by ({}) ({e})", by_clause(by));
            }
            e
        }
        Measure::Ratio { num, den, by, .. } => {
            let term = |s: &Sel| {
                format!(
                    "sum by ({}) ({})",
                    by_clause(by),
                    over("avg_over_time", s, RollOp::Rate)
                )
            };
            ratio_of(&term, num, den)
        }
        // The rollup holds the fraction itself: the inner selector's matchers are inside it.
        Measure::TimeFraction { inner, .. } => {
            let rec = via
                .part(&inner.selectors()[0].name, RollOp::Fraction)
                .expect("a time fraction's rollup was derived");
            format!("avg_over_time({}[{span}])", selector(rec, scope))
        }
        other => measure_expr(other, scope),
    }
}

/// A long window from its answer records: the value at an instant.
fn from_answers(raw: &Measure, via: &Via, scope: &Scope) -> String {
    let at = |s: &Sel, op: RollOp| selector(&part(via, s, op), scope);
    match raw {
        Measure::Value { sel, func, agg } => {
            let op = answer_op(func.as_ref().map(|f| f.0.as_str()).unwrap_or_default());
            let e = at(sel, op);
            match agg {
                Some((a, by)) => format!("{a} by ({}) ({e})", by_clause(by)),
                None => e,
            }
        }
        Measure::Ratio { num, den, by, .. } => {
            let term = |s: &Sel| format!("sum by ({}) ({})", by_clause(by), at(s, RollOp::Rate));
            ratio_of(&term, num, den)
        }
        other => measure_expr(other, scope),
    }
}

/// What the answer record of a long-window function holds.
pub fn answer_op(func: &str) -> RollOp {
    match func {
        "increase" => RollOp::Increase,
        "rate" => RollOp::Rate,
        "delta" => RollOp::Delta,
        "max_over_time" => RollOp::Max,
        "min_over_time" => RollOp::Min,
        _ => RollOp::Avg,
    }
}

/// Quantiles from a shared bucket-rate record, re-summed to the quantile's grouping.
fn from_buckets(raw: &Measure, via: &Via, scope: &Scope) -> String {
    let Measure::Quantile {
        hist,
        q,
        by,
        versus,
        ..
    } = raw
    else {
        return measure_expr(raw, scope);
    };
    let one = |s: &Sel| {
        format!(
            "histogram_quantile({}, sum by (le, {}) ({}))",
            num(*q),
            by_clause(by),
            selector(&part(via, s, RollOp::Buckets), scope)
        )
    };
    match versus {
        Some(v) => format!("{} / {}", one(hist), one(v)),
        None => one(hist),
    }
}

/// The labels of one node and the target that scrapes its sidecar.
fn node_and_target() -> String {
    let mut l: Vec<&str> = CONSTANT_LABELS.to_vec();
    l.extend(["job", "instance"]);
    l.join(", ")
}

/// `up` per target. Targets are joined to nodes by `job` and `instance`, the labels Prometheus
/// always sets; the maximum keeps one series per target where two Prometheus servers scrape it.
fn target_up() -> String {
    "max by (job, instance) (up)".into()
}

/// Every node whose `sel` was seen within `window`, with the target that scraped it; and, read
/// from the rule's own last value, every node it knew whose target is still down, so a host
/// that stays dead longer than the window does not drop out of the fleet. A target that leaves
/// service discovery has no `up` any more: it is forgotten once the window has passed.
fn inventory(sel: &Sel, window: Duration, record: &str, scope: &Scope) -> String {
    let by = node_and_target();
    let own = named_selector(
        &Sel {
            matchers: Vec::new(),
            ..sel.clone()
        },
        record,
        scope,
    );
    format!(
        "max by ({by}) (max_over_time({}[{window}]))\nor\n({own} and on (job, instance) ({} == 0))",
        selector(sel, scope),
        target_up()
    )
}

/// Per node of the inventory: 0 when its target cannot be scraped; else its health check's
/// verdict where it has one; else 1 while its sidecar's series are there; 0 once they are gone.
fn liveness(inventory: &Sel, identity: &Sel, health: &Sel, scope: &Scope) -> String {
    let by = node_and_target();
    let inv = selector(inventory, scope);
    // Over a federated liveness record the identity is the health check: read it once.
    let seen = if identity.name == health.name {
        String::new()
    } else {
        format!("\n  or\n    max by ({by}) ({})", selector(identity, scope))
    };
    format!(
        "max by ({node}) (\n    ({inv} * on (job, instance) group_left () ({up} == 0))\n  or\n    min by ({by}) ({health}){seen}\n  or\n    ({inv} * 0)\n)",
        node = CONSTANT_LABELS.join(", "),
        up = target_up(),
        health = selector(health, scope),
    )
}

/// numerator / denominator: rates summed `by` for counters, values summed `by` for gauges; a
/// denominator of several selectors is their sum.
fn ratio(
    num: &Sel,
    den: &[Sel],
    window: Duration,
    by: &[String],
    rates: bool,
    scope: &Scope,
) -> String {
    let term = |s: &Sel| {
        if rates {
            format!(
                "sum by ({}) (rate({}[{window}]))",
                by_clause(by),
                selector(s, scope)
            )
        } else {
            format!("sum by ({}) ({})", by_clause(by), selector(s, scope))
        }
    };
    ratio_of(&term, num, den)
}

/// `term(num) / term(den…)`, a denominator of several terms summed.
fn ratio_of(term: &dyn Fn(&Sel) -> String, num: &Sel, den: &[Sel]) -> String {
    let d: Vec<String> = den.iter().map(term).collect();
    let d = if d.len() == 1 {
        d[0].clone()
    } else {
        format!("({})", d.join(" + "))
    };
    format!("{} / {}", term(num), d)
}

fn no_progress(sels: &[Sel], window: Duration, scope: &Scope) -> String {
    let term = |s: &Sel| {
        let f = if s.is_counter() { "increase" } else { "delta" };
        format!("{f}({}[{window}])", selector(s, scope))
    };
    // Only a series that already existed a whole window ago can be said to have made no progress
    // within it: right after a restart of Prometheus or of a sidecar, two equal samples in a
    // half-filled window are not a stalled chain.
    if sels.len() == 1 {
        let s = selector(&sels[0], scope);
        format!("{} <= 0 and {s} offset {window}", term(&sels[0]))
    } else {
        let by = CONSTANT_LABELS.join(", ");
        let t: Vec<String> = sels
            .iter()
            .map(|s| format!("sum by ({by}) ({})", term(s)))
            .collect();
        let old = format!(
            "sum by ({by}) ({} offset {window})",
            selector(&sels[0], scope)
        );
        format!("({}) <= 0 and {old}", t.join(" + "))
    }
}

fn deviation(terms: &[(Sel, f64)], scope: &Scope) -> String {
    let one = |s: &Sel, t: f64| {
        if t == 0.0 {
            format!("abs({})", selector(s, scope))
        } else {
            format!(
                "abs({} - {}) / {}",
                selector(s, scope),
                num(t),
                num(t.abs())
            )
        }
    };
    if terms.len() == 1 {
        return one(&terms[0].0, terms[0].1);
    }
    let parts: Vec<String> = terms
        .iter()
        .map(|(s, t)| {
            format!(
                "label_replace({}, \"quantity\", \"{}\", \"\", \"\")",
                one(s, *t),
                s.name
            )
        })
        .collect();
    format!("max without (quantity) ({})", parts.join(" or "))
}

// ------------------------------------------------------------------------------- alerts

/// One variant of an alert: its measure compared with its threshold (value kinds), or the
/// measure itself (condition kinds: no_progress, absence, raw).
pub fn alert_condition(
    m: &Measure,
    scope: &Scope,
    op: Option<Op>,
    threshold: Option<f64>,
) -> String {
    let value = measure_expr(m, scope);
    match (op, threshold) {
        (Some(o), Some(t)) => format!("{value} {} {}", o.as_str(), num(t)),
        _ => value,
    }
}

/// The one rule of an alert: its variants' conditions joined with `or`, each scoped to its
/// chains (so per-chain thresholds are one alert, not several).
/// One burn-rate condition of an SLO alert: both windows' error ratios above `threshold` (the
/// burn rate times the budget), so a burn fires as soon as the short window sees it and stops as
/// soon as it ends, as the long window alone would not.
pub fn slo_burn(long: &str, short: &str, threshold: &str) -> String {
    format!("{long} > {threshold} and {short} > {threshold}")
}

pub fn alert_rule(conditions: &[&str]) -> String {
    if conditions.len() == 1 {
        conditions[0].to_string()
    } else {
        let parts: Vec<String> = conditions.iter().map(|c| format!("({c})")).collect();
        parts.join("\nor\n")
    }
}

// ------------------------------------------------------------------------------- gates

/// The chains a gate's conditions read: its own, or all.
pub fn gate_scope(g: &GateM) -> Scope {
    g.chain.clone().map(Scope::Chain).unwrap_or_default()
}

/// Per node: the value a gate condition compares with its threshold.
pub fn gate_condition_value(c: &CondM, scope: &Scope) -> String {
    measure_expr(&c.measure, scope)
}

/// Per node: did the condition hold (throughout its window)? 1 or 0.
pub fn gate_condition(c: &CondM, scope: &Scope) -> String {
    let inner = format!(
        "{} {} bool {}",
        gate_condition_value(c, scope),
        c.op.as_str(),
        num(c.threshold)
    );
    if c.throughout.is_zero() {
        inner
    } else {
        format!(
            "min_over_time(({inner})[{}:{}])",
            c.throughout,
            subquery_step(c.throughout)
        )
    }
}

/// Per group of the gate: 1 when a proceed condition held on every node (`rollback`: when a
/// rollback condition holds on any node), else 0. What `gate check` and the canary templates
/// ask of each condition.
pub fn gate_condition_group(g: &GateM, c: &CondM, rollback: bool) -> String {
    let agg = if rollback { "max" } else { "min" };
    format!(
        "{agg} by ({}) ({})",
        g.by.join(", "),
        gate_condition(c, &gate_scope(g))
    )
}

/// 1 when every proceed condition held on every node of the group, else 0 (no data: no answer).
pub fn gate_proceed(g: &GateM) -> Option<String> {
    if g.proceed.is_empty() {
        return None;
    }
    let parts: Vec<String> = g
        .proceed
        .iter()
        .map(|c| gate_condition_group(g, c, false))
        .collect();
    Some(parts.join("\n  * "))
}

/// 1 when any rollback condition holds on any node of the group, else 0.
pub fn gate_rollback(g: &GateM) -> Option<String> {
    if g.rollback.is_empty() {
        return None;
    }
    let by = g.by.join(", ");
    let parts: Vec<String> = g
        .rollback
        .iter()
        .map(|c| {
            format!(
                "label_replace({}, \"condition\", \"{}\", \"\", \"\")",
                gate_condition(c, &gate_scope(g)),
                escape(&c.name)
            )
        })
        .collect();
    Some(format!(
        "max by ({by}) (\n    {}\n  )",
        parts.join("\n    or ")
    ))
}
