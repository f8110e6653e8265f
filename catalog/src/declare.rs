//! Metrics declared outside the compiled table — by a profile's `metrics:` or a catalog extension
//! file — under the reserved prefix [`DECLARED_PREFIX`]. The same declaration is read by the
//! sidecar (which then serves the metric) and can be read by rulegen (which then accepts it in
//! thresholds.yaml), so both agree on its type, unit, help and labels, exactly as they agree on the
//! built-in table.
//!
//! ```yaml
//! metrics:
//!   - name: chain_x_mempool_evictions_total
//!     type: counter                 # counter, gauge, histogram, state
//!     help: Transactions evicted from the mempool.
//!     labels: [reason]              # labels a rule may set, besides the constant ones
//!   - name: chain_x_rpc_latency_seconds
//!     type: histogram
//!     unit: seconds                 # seconds, bytes, ratio or none (the default)
//!     buckets: [0.01, 0.1, 1, 10]   # default: Prometheus's default buckets
//!     help: Latency of the node's RPC answers.
//!   - name: chain_x_sync_phase
//!     type: state
//!     state_label: phase            # default `state`
//!     states: [headers, blocks, done]
//!     help: Sync phase; the series of the current phase is 1.
//! ```

use std::path::Path;
use std::sync::Mutex;

use chainwatch_yaml::{Positions, SpecError};
use serde::Deserialize;

use crate::conventions::{self, Shape, ShapeKind};
use crate::{Kind, Metric, Unit, CATALOG};

/// Names of declared metrics start with this; no built-in metric does, so a declaration can never
/// shadow or be shadowed by a catalog metric added later.
pub const DECLARED_PREFIX: &str = "chain_x_";

/// client_golang's `DefBuckets`, for a histogram declared without `buckets`.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One declared metric as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: DeclKind,
    #[serde(default)]
    pub unit: DeclUnit,
    pub help: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// histogram only.
    #[serde(default)]
    pub buckets: Option<Vec<f64>>,
    /// state only: the label that carries the state (default `state`).
    #[serde(default)]
    pub state_label: Option<String>,
    /// state only.
    #[serde(default)]
    pub states: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeclKind {
    Counter,
    Gauge,
    Histogram,
    State,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeclUnit {
    Seconds,
    Bytes,
    Ratio,
    #[default]
    None,
}

/// The built-in table plus declared metrics: what a profile, the registry or rulegen may name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    declared: Vec<Declared>,
}

#[derive(Debug, Clone)]
struct Declared {
    metric: &'static Metric,
    decl: MetricDecl,
    /// `file:line` of the declaration.
    at: String,
}

impl Catalog {
    /// Only the compiled table.
    pub fn builtin() -> Self {
        Self::default()
    }

    /// The metric with this exact name, built in or declared.
    pub fn lookup(&self, name: &str) -> Option<&'static Metric> {
        crate::lookup(name).or_else(|| {
            self.declared
                .iter()
                .find(|d| d.metric.name == name)
                .map(|d| d.metric)
        })
    }

    /// The metric a series name belongs to (`x_seconds_bucket` → the histogram `x_seconds`).
    pub fn resolve_series(&self, series: &str) -> Option<&'static Metric> {
        if let Some(m) = self.lookup(series) {
            return Some(m);
        }
        ["_bucket", "_sum", "_count"].iter().find_map(|s| {
            series
                .strip_suffix(s)
                .and_then(|base| self.lookup(base))
                .filter(|m| matches!(m.kind, Kind::Histogram { .. }))
        })
    }

    /// The declared metrics, in the order they were declared.
    pub fn declared(&self) -> impl Iterator<Item = &'static Metric> + '_ {
        self.declared.iter().map(|d| d.metric)
    }

    /// Every metric: the built-in table, then the declared ones.
    pub fn all(&self) -> impl Iterator<Item = &'static Metric> + '_ {
        CATALOG.iter().chain(self.declared())
    }

    /// The metric, built in or declared, whose name is closest to the misspelt `name`.
    pub fn nearest(&self, name: &str) -> Option<&'static str> {
        crate::nearest(name, self.all().map(|m| m.name))
    }

    /// Where a declared metric was declared (`file:line`).
    pub fn declared_at(&self, name: &str) -> Option<&str> {
        self.declared
            .iter()
            .find(|d| d.metric.name == name)
            .map(|d| d.at.as_str())
    }

    /// Validate `decls` (the value of the field `field` of the document `pos` indexes, usually
    /// `metrics`) and add them. Every problem is reported, each at its `file:line:col` and field.
    /// Declaring a metric already declared is fine when both declarations are the same (two
    /// profiles that share an extension); otherwise it is an error naming both places.
    pub fn declare(
        &mut self,
        decls: &[MetricDecl],
        pos: &Positions,
        field: &str,
    ) -> Result<(), Vec<SpecError>> {
        let mut errs = Vec::new();
        for (i, d) in decls.iter().enumerate() {
            let at = |f: &str| {
                if f.is_empty() {
                    format!("{field}[{i}]")
                } else {
                    format!("{field}[{i}].{f}")
                }
            };
            let before = errs.len();
            let metric = check(d, &mut |f: &str, m: String| errs.push(pos.error(at(f), m)));
            if errs.len() > before {
                continue;
            }
            let p = pos.pos(&at("name"));
            let here = format!("{}:{}", pos.file().display(), p.line);
            if let Some(prev) = self.declared.iter().find(|x| x.metric.name == d.name) {
                if prev.decl != *d {
                    errs.push(pos.error(
                        at("name"),
                        format!(
                            "`{}` is already declared differently at {}; declare a metric once (or identically)",
                            d.name, prev.at
                        ),
                    ));
                }
                continue;
            }
            match intern(metric) {
                Ok(m) => self.declared.push(Declared {
                    metric: m,
                    decl: d.clone(),
                    at: here,
                }),
                Err(m) => errs.push(pos.error(at("name"), m)),
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

/// The declarations of one document: only its `metrics:` key is read, so a profile and a
/// catalog extension file (`version: 1` and `metrics:`) are both accepted.
#[derive(Deserialize)]
struct MetricsOnly {
    #[serde(default)]
    metrics: Vec<MetricDecl>,
}

/// The catalog extended by the `metrics:` of YAML text read from `file`.
pub fn from_str(file: &Path, text: &str) -> Result<Catalog, Vec<SpecError>> {
    let mut c = Catalog::builtin();
    add_str(&mut c, file, text)?;
    Ok(c)
}

/// The catalog extended by the `metrics:` of each file (profiles or catalog extension files), in
/// order; every error of every file is returned.
pub fn load_files<P: AsRef<Path>>(files: &[P]) -> Result<Catalog, Vec<SpecError>> {
    let mut c = Catalog::builtin();
    let mut errs = Vec::new();
    for f in files {
        let f = f.as_ref();
        match std::fs::read_to_string(f) {
            Ok(text) => {
                if let Err(e) = add_str(&mut c, f, &text) {
                    errs.extend(e);
                }
            }
            Err(e) => errs.push(SpecError {
                file: f.to_path_buf(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    if errs.is_empty() {
        Ok(c)
    } else {
        Err(errs)
    }
}

/// Add the `metrics:` of YAML text read from `file` to `c` (for a caller that reads the file
/// itself, to say where it looked when it cannot).
pub fn add_str(c: &mut Catalog, file: &Path, text: &str) -> Result<(), Vec<SpecError>> {
    let (doc, pos): (MetricsOnly, Positions) =
        chainwatch_yaml::from_str(file, text).map_err(|e| vec![e])?;
    c.declare(&doc.metrics, &pos, "metrics")
}

/// A declaration as the metric it declares, or its problems reported through `err(field, msg)`.
fn check(d: &MetricDecl, err: &mut dyn FnMut(&str, String)) -> OwnedMetric {
    if !d.name.starts_with(DECLARED_PREFIX) {
        err(
            "name",
            format!(
                "a declared metric's name starts with `{DECLARED_PREFIX}` (reserved for metrics outside the catalog); `{}` does not",
                d.name
            ),
        );
    }
    let only = |f: &str, kind: &str| format!("`{f}` belongs to {kind} metrics");
    if d.kind != DeclKind::Histogram && d.buckets.is_some() {
        err("buckets", only("buckets", "histogram"));
    }
    if d.kind != DeclKind::State {
        if d.state_label.is_some() {
            err("state_label", only("state_label", "state"));
        }
        if !d.states.is_empty() {
            err("states", only("states", "state"));
        }
    }
    let m = OwnedMetric {
        name: d.name.clone(),
        kind: d.kind,
        unit: match d.unit {
            DeclUnit::Seconds => Unit::Seconds,
            DeclUnit::Bytes => Unit::Bytes,
            DeclUnit::Ratio => Unit::Ratio,
            DeclUnit::None => Unit::None,
        },
        help: d.help.clone(),
        labels: d.labels.clone(),
        buckets: d
            .buckets
            .clone()
            .unwrap_or_else(|| DEFAULT_BUCKETS.to_vec()),
        state_label: d.state_label.clone().unwrap_or_else(|| "state".into()),
        states: d.states.clone(),
    };
    // The very rules the built-in table is held to.
    let labels: Vec<&str> = m.labels.iter().map(String::as_str).collect();
    let states: Vec<&str> = m.states.iter().map(String::as_str).collect();
    let shape = Shape {
        name: &m.name,
        kind: match m.kind {
            DeclKind::Counter => ShapeKind::Counter,
            DeclKind::Gauge => ShapeKind::Gauge,
            DeclKind::Histogram => ShapeKind::Histogram {
                buckets: &m.buckets,
            },
            DeclKind::State => ShapeKind::State {
                label: &m.state_label,
                states: &states,
            },
        },
        unit: m.unit,
        help: &m.help,
        labels: &labels,
    };
    for (f, msg) in conventions::problems(&shape) {
        // The unit of a declaration is its own field; the naming rule's "unit" problems are too.
        err(&f, msg);
    }
    m
}

/// A validated declaration before it is interned.
#[derive(Debug, Clone, PartialEq)]
struct OwnedMetric {
    name: String,
    kind: DeclKind,
    unit: Unit,
    help: String,
    labels: Vec<String>,
    buckets: Vec<f64>,
    state_label: String,
    states: Vec<String>,
}

/// Declared metrics live as long as the process (the catalog hands out `&'static Metric`, like its
/// compiled table). Equal declarations share one entry, so reloading a configuration does not
/// grow memory; distinct declarations are capped so that nothing can grow it without bound.
static INTERNED: Mutex<Vec<(OwnedMetric, &'static Metric)>> = Mutex::new(Vec::new());

/// Distinct declared metrics one process accepts over its lifetime (reloads included).
pub const MAX_DECLARED: usize = 4096;

fn intern(m: OwnedMetric) -> Result<&'static Metric, String> {
    let mut all = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, metric)) = all.iter().find(|(o, _)| *o == m) {
        return Ok(metric);
    }
    if all.len() >= MAX_DECLARED {
        return Err(format!(
            "this process has already accepted {MAX_DECLARED} distinct declared metrics; restart it to load more"
        ));
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let leak_all = |v: &[String]| -> &'static [&'static str] {
        Box::leak(v.iter().map(|s| leak(s)).collect())
    };
    let metric: &'static Metric = Box::leak(Box::new(Metric {
        name: leak(&m.name),
        kind: match m.kind {
            DeclKind::Counter => Kind::Counter,
            DeclKind::Gauge => Kind::Gauge,
            DeclKind::Histogram => Kind::Histogram {
                buckets: Box::leak(m.buckets.clone().into_boxed_slice()),
            },
            DeclKind::State => Kind::State {
                label: leak(&m.state_label),
                states: leak_all(&m.states),
            },
        },
        unit: m.unit,
        help: leak(&m.help),
        labels: leak_all(&m.labels),
        criteria: &[],
    }));
    all.push((m, metric));
    Ok(metric)
}
