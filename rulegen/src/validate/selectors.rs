//! Selectors and generated expressions against what exists: a selector names a catalog metric (or
//! one declared for this file), a recording rule defined above it, or `up`, with labels that
//! series carries; every selector of a generated expression does too, and the labels of its
//! result are known (for annotations and tests).

use std::collections::BTreeSet;

use chainwatch_catalog::{Catalog, Kind, CONSTANT_LABELS, DECLARED_PREFIX};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

use crate::conventions::{GATE_PROCEED, GATE_RECORD_LABELS, GATE_ROLLBACK};
use crate::model::{Labels, Matcher, Record, Sel, Source};
use crate::promql;

use super::ctx::Ctx;

/// Labels a series of this name can carry: a metric of `catalog` (or histogram series), a
/// recording rule of `records`, a rollout gate record, or `up`. `None`: no such series.
pub fn series_labels(catalog: &Catalog, records: &[Record], name: &str) -> Option<Labels> {
    let mut l: Labels = CONSTANT_LABELS.iter().map(|s| s.to_string()).collect();
    l.insert("job".into());
    l.insert("instance".into());
    if name == "up" {
        return Some(l);
    }
    if name == GATE_PROCEED || name == GATE_ROLLBACK {
        return Some(GATE_RECORD_LABELS.iter().map(|s| s.to_string()).collect());
    }
    if let Some(r) = records.iter().find(|r| r.name == name) {
        let mut l = r.out_labels.clone();
        l.extend(r.labels.keys().cloned());
        return Some(l);
    }
    let m = catalog.resolve_series(name)?;
    l.extend(m.all_labels().iter().map(|s| s.to_string()));
    if name.ends_with("_bucket") && name != m.name {
        l.insert("le".into());
    }
    Some(l)
}

/// Parse `metric{label="v"}` and resolve it against the catalog and recording rules.
pub fn selector(cx: &mut Ctx, text: &str, field: &str, histogram: bool) -> Option<Sel> {
    let parsed = match promql::parse(text) {
        Ok(e) => e,
        Err(m) => {
            cx.err(field, format!("`{text}` does not parse: {}", m.trim()));
            return None;
        }
    };
    let Expr::VectorSelector(vs) = parsed else {
        cx.err(field, format!("`{text}` must be a metric name with optional label matchers, such as chain_peers{{chain=\"bitcell\"}}"));
        return None;
    };
    let Some(name) = vs.name.clone() else {
        cx.err(field, format!("`{text}` names no metric"));
        return None;
    };
    if vs.offset.is_some() || vs.at.is_some() {
        cx.err(field, "offset and @ are not allowed here");
        return None;
    }
    let (source, buckets) = source(cx, &name, field, histogram)?;
    let matchers = matchers(cx, &name, &vs, field)?;
    if !vs.matchers.or_matchers.is_empty() {
        cx.err(field, "`or` in label matchers is not supported here");
        return None;
    }
    Some(Sel {
        name,
        matchers,
        source,
        buckets,
    })
}

/// Where the series of `name` come from (and a histogram's buckets); `histogram`: the selector
/// must name one (the `quantile` kind), else it must not.
fn source(cx: &mut Ctx, name: &str, field: &str, histogram: bool) -> Option<(Source, Vec<f64>)> {
    let mut buckets = Vec::new();
    let source = if let Some(i) = cx.records.iter().position(|r| r.name == name) {
        Source::Record(i)
    } else if name == "up" {
        Source::Up
    } else if let Some(m) = cx.catalog.resolve_series(name) {
        let is_hist = matches!(m.kind, Kind::Histogram { .. });
        if let Kind::Histogram { buckets: b } = m.kind {
            buckets = b.to_vec();
        }
        if histogram {
            if !(is_hist && name == m.name) {
                cx.err(field, format!("`{name}` is not a histogram of the catalog"));
                return None;
            }
        } else if is_hist && name == m.name {
            cx.err(
                field,
                format!(
                    "`{name}` is a histogram: use the `quantile` kind, or its _sum/_count series"
                ),
            );
            return None;
        }
        Source::Catalog {
            counter: m.kind == Kind::Counter || name != m.name,
            bucket: name.ends_with("_bucket"),
        }
    } else {
        let msg = unknown_metric(&cx.catalog, &cx.records, name, true);
        cx.err(field, msg);
        return None;
    };
    Some((source, buckets))
}

/// Why no series of `name` can be selected here, and the nearest name that can; `up`: whether
/// Prometheus's `up` can be.
pub fn unknown_metric(catalog: &Catalog, records: &[Record], name: &str, up: bool) -> String {
    let known: BTreeSet<String> = catalog
        .all()
        .flat_map(|m| std::iter::once(m.name.to_string()).chain(m.series_names()))
        .chain(records.iter().map(|r| r.name.clone()))
        .chain(up.then(|| "up".to_string()))
        .collect();
    let hint = chainwatch_catalog::nearest(name, known.iter().map(String::as_str))
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    if name.starts_with(DECLARED_PREFIX) {
        return format!(
            "unknown metric `{name}`: not declared under `metrics:` or in a file of `catalogs:`{hint}"
        );
    }
    let order = if name.contains(':') {
        " (recording rules must be defined above their first use)"
    } else {
        ""
    };
    let not_up = if up { ", not `up`" } else { "" };
    format!("unknown metric `{name}`: not in the catalog, not a recording rule of this file{not_up}{order}{hint}")
}

/// The label matchers of a selector of `name`: labels its series carry, states it has.
fn matchers(cx: &mut Ctx, name: &str, vs: &VectorSelector, field: &str) -> Option<Vec<Matcher>> {
    let allowed = series_labels(&cx.catalog, &cx.records, name).unwrap_or_default();
    let mut matchers = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == "__name__" {
            continue;
        }
        if !allowed.contains(&m.name) {
            let list: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            cx.err(
                field,
                format!(
                    "`{name}` has no label `{}` (its labels: {})",
                    m.name,
                    list.join(", ")
                ),
            );
            return None;
        }
        let op = match &m.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Re(_) => "=~",
            MatchOp::NotRe(_) => "!~",
        };
        if op == "=" {
            if let Some(Kind::State { label, states }) = cx.catalog.lookup(name).map(|x| x.kind) {
                if m.name == label && !states.contains(&m.value.as_str()) {
                    cx.err(
                        field,
                        format!(
                            "`{name}` has no {label} `{}` (states: {})",
                            m.value,
                            states.join(", ")
                        ),
                    );
                    return None;
                }
            }
        }
        matchers.push(Matcher {
            name: m.name.clone(),
            op,
            value: m.value.clone(),
        });
    }
    Some(matchers)
}

/// Checks every selector of a generated expression and returns the labels its result can
/// carry.
pub fn check_expr(cx: &mut Ctx, expr: &str, field: &str) -> Option<Labels> {
    let e = match promql::parse(expr) {
        Ok(e) => e,
        Err(m) => {
            cx.err(
                field,
                format!("generated PromQL `{expr}` does not parse: {}", m.trim()),
            );
            return None;
        }
    };
    for vs in promql::selectors(&e) {
        let name = vs.name.clone().or_else(|| {
            vs.matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__")
                .map(|m| m.value.clone())
        });
        match name {
            None => {
                cx.err(field, "every selector must name a metric");
                return None;
            }
            Some(n) => {
                if series_labels(&cx.catalog, &cx.records, &n).is_none() {
                    let msg = unknown_metric(&cx.catalog, &cx.records, &n, true);
                    cx.err(field, msg);
                    return None;
                }
            }
        }
    }
    let leaf = |vs: &promql_parser::parser::VectorSelector| {
        vs.name
            .as_deref()
            .and_then(|n| series_labels(&cx.catalog, &cx.records, n))
    };
    Some(promql::out_labels(&e, &leaf).unwrap_or_default())
}
