//! Validation of profiles' `apis:` mappings and their binding to registered metric families.
//! Checked at load with file, line and field, like log rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use chainwatch_catalog::{Catalog, Kind, Metric};
use chainwatch_yaml::{Positions, SpecError};
use prometheus::{CounterVec, GaugeVec};

use super::doc::Need as DocNeed;
use super::json::{JsonKind, JsonMapping, JsonMetric, JsonNode, LabelVal};
use crate::profile::spec::{ApiKind, ApiSpec, JsonMetricSpec, SeriesSpec};
use crate::profile::Loaded;
use crate::registry::{Family, Metrics};
use crate::total::Totals;

/// A mapping ready to apply.
pub struct Api {
    pub name: String,
    pub path: Option<String>,
    pub bound: BoundApi,
}

pub enum BoundApi {
    HttpJson(JsonMapping),
    JsonRpc(Vec<RpcCall>),
    Prometheus(Vec<BoundSeries>),
}

impl BoundApi {
    pub fn kind(&self) -> ApiKind {
        match self {
            BoundApi::HttpJson(_) => ApiKind::HttpJson,
            BoundApi::JsonRpc(_) => ApiKind::Jsonrpc,
            BoundApi::Prometheus(_) => ApiKind::Prometheus,
        }
    }
}

pub struct RpcCall {
    pub method: String,
    pub params: Vec<serde_json::Value>,
    /// Applied to the call's `result`.
    pub mapping: JsonMapping,
    /// What of the response is read: `result` as the mapping needs it, `error` whole.
    pub envelope: DocNeed,
}

impl RpcCall {
    fn new(method: String, params: Vec<serde_json::Value>, mapping: JsonMapping) -> Self {
        let mut envelope = DocNeed::default();
        *envelope.at("/result") = mapping.need.clone();
        envelope.value("/result");
        envelope.whole("/error");
        envelope.finish();
        RpcCall {
            method,
            params,
            mapping,
            envelope,
        }
    }
}

pub struct BoundSeries {
    pub guard: std::sync::Arc<crate::registry::Guard>,
    pub from: String,
    pub scale: f64,
    /// (catalog label, native label) in the family's label order.
    pub labels: Vec<Option<String>>,
    pub target: SeriesTarget,
    pub seen: Mutex<BTreeSet<Vec<String>>>,
}

pub enum SeriesTarget {
    Gauge(GaugeVec),
    Counter { family: CounterVec, totals: Totals },
}

/// What one mapped metric needs, found by validation.
struct Need {
    metric: &'static Metric,
    labels: BTreeSet<String>,
}

/// Labels each metric needs across all `apis:` of `profiles` (validating them on the way), so
/// that a family is registered once with the labels of log rules and API mappings together.
/// `catalog`: the built-in metrics and those the profiles declare (`profile::declared`).
pub fn api_label_demands(
    profiles: &[Loaded],
    catalog: &Catalog,
) -> Result<BTreeMap<&'static str, BTreeSet<String>>, SpecError> {
    let mut out: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for p in profiles {
        for (name, api) in &p.spec.apis {
            for need in validate(&p.positions, catalog, name, api)? {
                out.entry(need.metric.name).or_default().extend(need.labels);
            }
        }
    }
    Ok(out)
}

/// Where a mapping's metrics are looked up and its errors located.
#[derive(Clone, Copy)]
struct Cx<'a> {
    pos: &'a Positions,
    catalog: &'a Catalog,
}

fn validate(
    pos: &Positions,
    catalog: &Catalog,
    name: &str,
    api: &ApiSpec,
) -> Result<Vec<Need>, SpecError> {
    let cx = Cx { pos, catalog };
    let at = |f: &str| format!("apis.{name}{f}");
    let mut needs = Vec::new();
    let used: Vec<&str> = [
        (!api.metrics.is_empty()).then_some("metrics"),
        (!api.calls.is_empty()).then_some("calls"),
        (!api.series.is_empty()).then_some("series"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let want = match api.kind {
        ApiKind::HttpJson => "metrics",
        ApiKind::Jsonrpc => "calls",
        ApiKind::Prometheus => "series",
    };
    if used != [want] {
        return Err(pos.error(
            at(""),
            format!(
                "a `{}` mapping lists `{want}:` (and only that)",
                api.kind.name()
            ),
        ));
    }
    match api.kind {
        ApiKind::HttpJson => validate_json(
            cx,
            &at(".metrics"),
            &api.metrics,
            &BTreeMap::new(),
            false,
            &mut needs,
        )?,
        ApiKind::Jsonrpc => {
            for (i, c) in api.calls.iter().enumerate() {
                if c.method.is_empty() {
                    return Err(pos.error(
                        at(&format!(".calls[{i}].method")),
                        "method must not be empty",
                    ));
                }
                validate_json(
                    cx,
                    &at(&format!(".calls[{i}].metrics")),
                    &c.metrics,
                    &BTreeMap::new(),
                    false,
                    &mut needs,
                )?;
            }
        }
        ApiKind::Prometheus => {
            for (i, s) in api.series.iter().enumerate() {
                needs.push(validate_series(cx, &at(&format!(".series[{i}]")), s)?);
            }
        }
    }
    Ok(needs)
}

fn metric_of(cx: Cx, field: &str, name: &str, op: &str) -> Result<&'static Metric, SpecError> {
    let pos = cx.pos;
    let m = cx
        .catalog
        .lookup(name)
        .ok_or_else(|| pos.error(field, crate::profile::unknown_metric(cx.catalog, name)))?;
    if !m.is_node_metric() {
        return Err(pos.error(
            field,
            format!("`{name}` is the sidecar's own metric; mappings set only chain_* metrics"),
        ));
    }
    let fits = matches!(
        (op, m.kind),
        ("counter", Kind::Counter) | ("gauge", Kind::Gauge) | ("state", Kind::State { .. })
    );
    if !fits {
        return Err(pos.error(
            field,
            format!(
                "`{name}` is a {}, it cannot be mapped with `{op}:`",
                m.kind.name()
            ),
        ));
    }
    Ok(m)
}

fn check_pointer(pos: &Positions, field: &str, p: &str) -> Result<(), SpecError> {
    if p.is_empty() || p.starts_with('/') {
        Ok(())
    } else {
        Err(pos.error(
            field,
            format!("`{p}` is not a JSON pointer: use \"\" for the value itself or /a/b"),
        ))
    }
}

fn validate_json(
    cx: Cx,
    at: &str,
    specs: &[JsonMetricSpec],
    inherited: &BTreeMap<String, String>,
    in_each: bool,
    needs: &mut Vec<Need>,
) -> Result<(), SpecError> {
    let pos = cx.pos;
    for (i, s) in specs.iter().enumerate() {
        let f = |x: &str| format!("{at}[{i}]{x}");
        let ops: Vec<(&str, &String)> = [
            ("gauge", &s.gauge),
            ("counter", &s.counter),
            ("state", &s.state),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let mut labels = inherited.clone();
        labels.extend(s.labels.clone());
        if let Some(each) = &s.each {
            if !ops.is_empty() || s.pointer.is_some() {
                return Err(pos.error(
                    f(".each"),
                    "an `each` group holds `metrics:`; it names no metric and no pointer itself",
                ));
            }
            check_pointer(pos, &f(".each"), each)?;
            if s.metrics.is_empty() {
                return Err(pos.error(f(".metrics"), "an `each` group needs `metrics:`"));
            }
            validate_json(cx, &f(".metrics"), &s.metrics, &labels, true, needs)?;
            continue;
        }
        if !s.metrics.is_empty() {
            return Err(pos.error(f(".metrics"), "only an `each` group has nested `metrics:`"));
        }
        let (op, name) = match ops.as_slice() {
            [one] => *one,
            [] => {
                return Err(pos.error(
                    f(""),
                    "name one of `gauge`, `counter`, `state`, or give `each`",
                ))
            }
            _ => {
                return Err(pos.error(
                    f(&format!(".{}", ops[1].0)),
                    "name exactly one of `gauge`, `counter`, `state`",
                ))
            }
        };
        let m = metric_of(cx, &f(&format!(".{op}")), name, op)?;
        let p = s.pointer.as_deref().ok_or_else(|| {
            pos.error(
                f(""),
                "give the value's `pointer:` (\"\" for the value itself)",
            )
        })?;
        check_pointer(pos, &f(".pointer"), p)?;
        if op != "state" && !s.map.is_empty() {
            return Err(pos.error(f(".map"), "`map` belongs to state mappings"));
        }
        if let Kind::State { states, label } = m.kind {
            for (raw, st) in &s.map {
                if !states.contains(&st.as_str()) {
                    return Err(pos.error(
                        f(&format!(".map.{raw}")),
                        format!(
                            "`{st}` is not a state of `{name}` ({label}: {})",
                            states.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some(u) = &s.unit {
            crate::profile::unit_factor(u, m).map_err(|e| pos.error(f(".unit"), e))?;
        }
        for (k, v) in &labels {
            let lf = if s.labels.contains_key(k) {
                f(&format!(".labels.{k}"))
            } else {
                format!("{at}.labels.{k}")
            };
            if chainwatch_catalog::CONSTANT_LABELS.contains(&k.as_str()) {
                return Err(pos.error(
                    lf,
                    format!("`{k}` is a constant label: set it in the sidecar config's `labels:`"),
                ));
            }
            if !m.allows_label(k) {
                let allowed = if m.labels.is_empty() {
                    "none".to_string()
                } else {
                    m.labels.join(", ")
                };
                return Err(pos.error(
                    lf,
                    format!("label `{k}` is not allowed on `{name}` (allowed: {allowed})"),
                ));
            }
            if v.starts_with('/') && !in_each {
                return Err(pos.error(
                    lf,
                    "a label read from the document (`/pointer`) needs an enclosing `each`",
                ));
            }
        }
        needs.push(Need {
            metric: m,
            labels: labels.keys().cloned().collect(),
        });
    }
    Ok(())
}

fn validate_series(cx: Cx, at: &str, s: &SeriesSpec) -> Result<Need, SpecError> {
    let pos = cx.pos;
    if s.from.is_empty() {
        return Err(pos.error(format!("{at}.from"), "name the native series"));
    }
    let (op, name) = match (&s.gauge, &s.counter) {
        (Some(g), None) => ("gauge", g),
        (None, Some(c)) => ("counter", c),
        _ => return Err(pos.error(at, "name exactly one of `gauge`, `counter`")),
    };
    let m = metric_of(cx, &format!("{at}.{op}"), name, op)?;
    for k in s.labels.keys() {
        if !m.allows_label(k) {
            return Err(pos.error(
                format!("{at}.labels.{k}"),
                format!("label `{k}` is not allowed on `{name}`"),
            ));
        }
    }
    Ok(Need {
        metric: m,
        labels: s.labels.keys().cloned().collect(),
    })
}

/// Bind every mapping of `profiles` to its registered families. Call after the families are
/// registered (log rules compiled with `api_label_demands` merged in), with the same `catalog`.
pub fn bind(
    profiles: &[Loaded],
    catalog: &Catalog,
    metrics: &mut Metrics,
) -> Result<BTreeMap<String, Api>, SpecError> {
    let mut out = BTreeMap::new();
    for p in profiles {
        for (name, api) in &p.spec.apis {
            validate(&p.positions, catalog, name, api)?;
            let internal = |e: crate::registry::RegistryError| {
                p.positions.error(format!("apis.{name}"), e.to_string())
            };
            let bound = match api.kind {
                ApiKind::HttpJson => BoundApi::HttpJson(JsonMapping::new(
                    bind_json(catalog, &api.metrics, &BTreeMap::new(), metrics)
                        .map_err(internal)?,
                )),
                ApiKind::Jsonrpc => {
                    let mut calls = Vec::new();
                    for c in &api.calls {
                        calls.push(RpcCall::new(
                            c.method.clone(),
                            c.params.clone(),
                            JsonMapping::new(
                                bind_json(catalog, &c.metrics, &BTreeMap::new(), metrics)
                                    .map_err(internal)?,
                            ),
                        ));
                    }
                    BoundApi::JsonRpc(calls)
                }
                ApiKind::Prometheus => {
                    let mut v = Vec::new();
                    for s in &api.series {
                        v.push(bind_series(catalog, s, metrics).map_err(internal)?);
                    }
                    BoundApi::Prometheus(v)
                }
            };
            if out
                .insert(
                    name.clone(),
                    Api {
                        name: name.clone(),
                        path: api.path.clone(),
                        bound,
                    },
                )
                .is_some()
            {
                return Err(p.positions.error(
                    format!("apis.{name}"),
                    format!("mapping `{name}` is defined by two profiles"),
                ));
            }
        }
    }
    Ok(out)
}

/// The registered label names of `name` (without the state label), registering on first use.
fn family(
    metrics: &mut Metrics,
    m: &'static Metric,
    want: &BTreeSet<String>,
) -> Result<(Family, Vec<String>), crate::registry::RegistryError> {
    let mut names = metrics.labels_of(m.name).unwrap_or_else(|| {
        let mut v: Vec<String> = want.iter().cloned().collect();
        if let Kind::State { label, .. } = m.kind {
            v.push(label.to_string());
        }
        v
    });
    let f = metrics.family(m.name, &names)?;
    if let Kind::State { .. } = m.kind {
        names.pop();
    }
    Ok((f, names))
}

fn bind_json(
    catalog: &Catalog,
    specs: &[JsonMetricSpec],
    inherited: &BTreeMap<String, String>,
    metrics: &mut Metrics,
) -> Result<Vec<JsonNode>, crate::registry::RegistryError> {
    let mut out = Vec::new();
    for s in specs {
        let mut labels = inherited.clone();
        labels.extend(s.labels.clone());
        if let Some(each) = &s.each {
            out.push(JsonNode::Each {
                pointer: each.clone(),
                children: bind_json(catalog, &s.metrics, &labels, metrics)?,
            });
            continue;
        }
        let (op, name) = [
            ("gauge", &s.gauge),
            ("counter", &s.counter),
            ("state", &s.state),
        ]
        .into_iter()
        .find_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .expect("validated");
        let m = catalog.lookup(name).expect("validated");
        let (fam, names) = family(metrics, m, &labels.keys().cloned().collect())?;
        let label_vals = names
            .iter()
            .map(|n| match labels.get(n) {
                None => LabelVal::Empty,
                Some(v) if v.starts_with('/') => LabelVal::Pointer(v.clone()),
                Some(v) => LabelVal::Literal(v.clone()),
            })
            .collect();
        let mut scale = s.scale.unwrap_or(1.0);
        if let Some(u) = &s.unit {
            scale *= crate::profile::unit_factor(u, m).unwrap_or(1.0);
        }
        let kind = match (op, fam, m.kind) {
            ("gauge", Family::Gauge(g), _) => JsonKind::Gauge(g),
            ("counter", Family::Counter(c), _) => JsonKind::Counter {
                family: c,
                totals: Totals::default(),
            },
            ("state", Family::Gauge(g), Kind::State { states, .. }) => JsonKind::State {
                family: g,
                states,
                map: s
                    .map
                    .iter()
                    .map(|(k, v)| (k.to_lowercase(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            },
            _ => unreachable!("validated: op fits the metric's kind"),
        };
        out.push(JsonNode::Metric(JsonMetric {
            name: m.name,
            kind,
            pointer: s.pointer.clone().unwrap_or_default(),
            scale,
            labels: label_vals,
            seen: Mutex::new(Default::default()),
            guard: metrics.guard(m.name)?,
        }));
    }
    Ok(out)
}

fn bind_series(
    catalog: &Catalog,
    s: &SeriesSpec,
    metrics: &mut Metrics,
) -> Result<BoundSeries, crate::registry::RegistryError> {
    let name = s.gauge.as_ref().or(s.counter.as_ref()).expect("validated");
    let m = catalog.lookup(name).expect("validated");
    let (fam, names) = family(metrics, m, &s.labels.keys().cloned().collect())?;
    let target = match fam {
        Family::Gauge(g) => SeriesTarget::Gauge(g),
        Family::Counter(c) => SeriesTarget::Counter {
            family: c,
            totals: Totals::default(),
        },
        Family::Histogram(_) => unreachable!("validated: gauge or counter"),
    };
    Ok(BoundSeries {
        guard: metrics.guard(m.name)?,
        from: s.from.clone(),
        scale: s.scale.unwrap_or(1.0),
        labels: names.iter().map(|n| s.labels.get(n).cloned()).collect(),
        target,
        seen: Mutex::new(BTreeSet::new()),
    })
}
