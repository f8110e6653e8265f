//! Prometheus registry whose families come only from the catalog (the compiled table and the
//! metrics the loaded profiles declare): nothing can be registered under a name, type, help or
//! bucket layout the catalog does not define.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use chainwatch_catalog::{Catalog, Kind, Metric};
use prometheus::{Counter, CounterVec, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("metric `{0}` is not in the catalog")]
    Unknown(String),
    #[error("metric `{name}` is a {actual}, not a {wanted}")]
    WrongKind {
        name: String,
        actual: &'static str,
        wanted: &'static str,
    },
    #[error("constant label `{0}` is not one of chain, network, region, node")]
    UnknownConstLabel(String),
    #[error("registering `{0}`: {1}")]
    Prometheus(String, prometheus::Error),
}

/// A metric family as registered, with the label names its series carry (in order).
#[derive(Clone)]
pub enum Family {
    Counter(CounterVec),
    Gauge(GaugeVec),
    Histogram(HistogramVec),
}

pub struct Metrics {
    registry: Registry,
    families: BTreeMap<&'static str, (Family, Vec<String>)>,
    guards: BTreeMap<&'static str, Arc<Guard>>,
    series_cap: usize,
    catalog: Catalog,
}

/// Default for `max_series_per_metric`: room for a large validator leaderboard or peer table,
/// while a capture that puts a block hash in a label cannot grow memory without bound.
pub const DEFAULT_SERIES_CAP: usize = 2000;

/// The longest label value taken from an API answer (JSON, native metrics): with the series cap,
/// what one metric's label values can hold is bounded (2,000 × 1 KiB). A longer value is a value
/// that could not be read (Prometheus's `label_value_length_limit` refuses the same).
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;

/// Bounds the label sets a metric written from captured or API-provided label values may have.
pub struct Guard {
    cap: usize,
    known: Mutex<HashSet<u64>>,
    dropped: Counter,
}

impl Guard {
    /// Whether a sample with these label values may be written.
    pub fn admit(&self, labels: &[String]) -> bool {
        let h = hash(labels);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.contains(&h) {
            return true;
        }
        if known.len() >= self.cap {
            self.dropped.inc();
            return false;
        }
        known.insert(h);
        true
    }

    /// How many label sets the metric may have.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// A sample dropped before it reached `admit` (its label sets could not all be kept).
    pub fn refuse(&self) {
        self.dropped.inc();
    }

    /// A label set whose series was removed frees its place.
    pub fn forget(&self, labels: &[String]) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&hash(labels));
    }
}

fn hash(labels: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

impl Metrics {
    /// `const_labels` are the configured `chain`/`network`/`region`/`node` values.
    pub fn new(const_labels: &BTreeMap<String, String>) -> Result<Self, RegistryError> {
        for k in const_labels.keys() {
            if !chainwatch_catalog::CONSTANT_LABELS.contains(&k.as_str()) {
                return Err(RegistryError::UnknownConstLabel(k.clone()));
            }
        }
        let labels = const_labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let registry = Registry::new_custom(None, Some(labels))
            .map_err(|e| RegistryError::Prometheus(String::new(), e))?;
        Ok(Self {
            registry,
            families: BTreeMap::new(),
            guards: BTreeMap::new(),
            series_cap: DEFAULT_SERIES_CAP,
            catalog: Catalog::builtin(),
        })
    }

    /// A registry with nothing in it.
    pub fn empty() -> Self {
        Self {
            registry: Registry::new(),
            families: BTreeMap::new(),
            guards: BTreeMap::new(),
            series_cap: DEFAULT_SERIES_CAP,
            catalog: Catalog::builtin(),
        }
    }

    /// The catalog families are registered from: the compiled table plus the metrics the loaded
    /// profiles declare (set once the profiles are compiled).
    pub fn set_catalog(&mut self, catalog: Catalog) {
        self.catalog = catalog;
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn set_series_cap(&mut self, cap: usize) {
        self.series_cap = cap.max(1);
    }

    /// The label-set guard of metric `name` (one per metric, shared by every writer).
    pub fn guard(&mut self, name: &'static str) -> Result<Arc<Guard>, RegistryError> {
        if let Some(g) = self.guards.get(name) {
            return Ok(g.clone());
        }
        let dropped = self
            .counter_vec("chainwatch_series_dropped_total", &["metric"])?
            .with_label_values(&[name]);
        let g = Arc::new(Guard {
            cap: self.series_cap,
            known: Mutex::new(HashSet::new()),
            dropped,
        });
        self.guards.insert(name, g.clone());
        Ok(g)
    }

    /// Label names `name` was registered with, if it was.
    pub fn labels_of(&self, name: &str) -> Option<Vec<String>> {
        self.families.get(name).map(|(_, l)| l.clone())
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The family for `name` with exactly these variable labels, registering it on first use.
    /// A second request must use the same label names (profiles are compiled so that it does).
    pub fn family(&mut self, name: &str, labels: &[String]) -> Result<Family, RegistryError> {
        let metric = self
            .catalog
            .lookup(name)
            .ok_or_else(|| RegistryError::Unknown(name.into()))?;
        if let Some((f, have)) = self.families.get(metric.name) {
            if have.as_slice() != labels {
                return Err(RegistryError::Prometheus(
                    name.into(),
                    prometheus::Error::Msg(format!(
                        "labels {have:?} already registered, asked for {labels:?}"
                    )),
                ));
            }
            return Ok(f.clone());
        }
        let f = build(metric, labels)?;
        let collector: Box<dyn prometheus::core::Collector> = match &f {
            Family::Counter(c) => Box::new(c.clone()),
            Family::Gauge(g) => Box::new(g.clone()),
            Family::Histogram(h) => Box::new(h.clone()),
        };
        self.registry
            .register(collector)
            .map_err(|e| RegistryError::Prometheus(name.into(), e))?;
        self.families
            .insert(metric.name, (f.clone(), labels.to_vec()));
        Ok(f)
    }

    pub fn counter_vec(
        &mut self,
        name: &str,
        labels: &[&str],
    ) -> Result<CounterVec, RegistryError> {
        match self.family(name, &owned(labels))? {
            Family::Counter(c) => Ok(c),
            _ => Err(self.wrong(name, "counter")),
        }
    }

    pub fn gauge_vec(&mut self, name: &str, labels: &[&str]) -> Result<GaugeVec, RegistryError> {
        match self.family(name, &owned(labels))? {
            Family::Gauge(g) => Ok(g),
            _ => Err(self.wrong(name, "gauge")),
        }
    }

    pub fn histogram_vec(
        &mut self,
        name: &str,
        labels: &[&str],
    ) -> Result<HistogramVec, RegistryError> {
        match self.family(name, &owned(labels))? {
            Family::Histogram(h) => Ok(h),
            _ => Err(self.wrong(name, "histogram")),
        }
    }

    /// The text exposition of everything registered.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let mut families = self.registry.gather();
        // The registry keeps constant labels in a hash map: their order changes from one process
        // to the next. Sorted, like client_golang's, a scrape is the same text for the same state.
        for f in &mut families {
            for m in f.mut_metric() {
                m.mut_label().sort_by(|a, b| a.name().cmp(b.name()));
            }
        }
        // Encoding into a String cannot fail for well-formed families; an error would mean a bug in
        // the prometheus crate, and a partial scrape is better than a crashed sidecar.
        let _ = prometheus::TextEncoder::new().encode_utf8(&families, &mut out);
        out
    }
}

fn owned(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|s| s.to_string()).collect()
}

impl Metrics {
    fn wrong(&self, name: &str, wanted: &'static str) -> RegistryError {
        let actual = self.catalog.lookup(name).map_or("?", |m| m.kind.name());
        RegistryError::WrongKind {
            name: name.into(),
            actual,
            wanted,
        }
    }
}

fn build(m: &Metric, labels: &[String]) -> Result<Family, RegistryError> {
    let names: Vec<&str> = labels.iter().map(String::as_str).collect();
    let err = |e| RegistryError::Prometheus(m.name.into(), e);
    Ok(match m.kind {
        Kind::Counter => {
            Family::Counter(CounterVec::new(Opts::new(m.name, m.help), &names).map_err(err)?)
        }
        Kind::Gauge | Kind::State { .. } => {
            Family::Gauge(GaugeVec::new(Opts::new(m.name, m.help), &names).map_err(err)?)
        }
        Kind::Histogram { buckets } => Family::Histogram(
            HistogramVec::new(
                HistogramOpts::new(m.name, m.help).buckets(buckets.to_vec()),
                &names,
            )
            .map_err(err)?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_catalog_metrics_register_with_catalog_help() {
        let mut m =
            Metrics::new(&BTreeMap::from([("node".to_string(), "n1".to_string())])).unwrap();
        assert!(matches!(
            m.counter_vec("chain_nope_total", &[]),
            Err(RegistryError::Unknown(_))
        ));
        assert!(matches!(
            m.gauge_vec("chain_blocks_mined_total", &[]),
            Err(RegistryError::WrongKind { .. })
        ));
        m.counter_vec("chain_blocks_mined_total", &[])
            .unwrap()
            .with_label_values(&[] as &[&str])
            .inc();
        let text = m.encode();
        assert!(
            text.contains(
                "# HELP chain_blocks_mined_total Blocks this node found (mined or proposed)."
            ),
            "{text}"
        );
        assert!(
            text.contains("chain_blocks_mined_total{node=\"n1\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn unknown_constant_label_is_refused() {
        let r = Metrics::new(&BTreeMap::from([(
            "datacenter".to_string(),
            "x".to_string(),
        )]));
        assert!(matches!(r, Err(RegistryError::UnknownConstLabel(_))));
    }
}
