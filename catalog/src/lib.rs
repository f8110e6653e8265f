//! The standardized metric catalog: every metric the sidecar may export and that rules, panels and
//! profiles may name. Both tools read this table, so a rule can never name a metric the sidecar
//! does not know, and a profile can never produce one that rules do not expect.

pub mod conventions;
pub mod declare;
mod markdown;
mod metrics;

pub use declare::{Catalog, MetricDecl, DECLARED_PREFIX};
pub use markdown::to_markdown;
pub use metrics::CATALOG;

/// Labels the sidecar attaches to every series from its configuration (`labels:`), never from a
/// log line. Rules group and route by them.
pub const CONSTANT_LABELS: &[&str] = &["chain", "network", "region", "node"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram {
        buckets: &'static [f64],
    },
    /// A gauge with one series per state, exactly one of which is 1 (OpenMetrics "stateset").
    State {
        label: &'static str,
        states: &'static [&'static str],
    },
}

impl Kind {
    /// The Prometheus exposition type.
    pub fn prometheus_type(&self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::State { .. } => "gauge",
            Kind::Histogram { .. } => "histogram",
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram { .. } => "histogram",
            Kind::State { .. } => "state",
        }
    }
}

/// Base units, spelled in the metric name per Prometheus conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Bytes,
    Ratio,
    /// A plain count or a dimensionless value (heights, peers, λ).
    None,
}

impl Unit {
    pub fn suffix(&self) -> Option<&'static str> {
        match self {
            Unit::Seconds => Some("seconds"),
            Unit::Bytes => Some("bytes"),
            Unit::Ratio => Some("ratio"),
            Unit::None => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    pub help: &'static str,
    /// Labels a profile may set on this metric, besides [`CONSTANT_LABELS`].
    pub labels: &'static [&'static str],
    /// Rows of criteria.md this metric serves (documentation and coverage).
    pub criteria: &'static [&'static str],
}

impl Metric {
    /// Every label a series of this metric may carry (constant, profile and state labels).
    pub fn all_labels(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = CONSTANT_LABELS.to_vec();
        v.extend_from_slice(self.labels);
        if let Kind::State { label, .. } = self.kind {
            v.push(label);
        }
        v
    }

    pub fn allows_label(&self, label: &str) -> bool {
        self.labels.contains(&label)
    }

    /// Names of the series this metric produces in the text format.
    pub fn series_names(&self) -> Vec<String> {
        match self.kind {
            Kind::Histogram { .. } => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{}", self.name, s))
                .collect(),
            _ => vec![self.name.to_string()],
        }
    }

    /// True for `chain_*` (node) metrics, false for `chainwatch_*` and `process_*` (the sidecar's
    /// own).
    pub fn is_node_metric(&self) -> bool {
        self.name.starts_with("chain_")
    }
}

/// The catalog entry with this exact name.
pub fn lookup(name: &str) -> Option<&'static Metric> {
    CATALOG.iter().find(|m| m.name == name)
}

/// The catalog entry a series name belongs to: `chain_x_seconds_bucket` resolves to the histogram
/// `chain_x_seconds`. What rules and panels use to check a PromQL selector.
pub fn resolve_series(series: &str) -> Option<&'static Metric> {
    if let Some(m) = lookup(series) {
        return Some(m);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix) {
            if let Some(m) = lookup(base) {
                if matches!(m.kind, Kind::Histogram { .. }) {
                    return Some(m);
                }
            }
        }
    }
    None
}

/// Edits (insertions, deletions, substitutions) a misspelt name may be away from the name meant.
pub const MAX_TYPO: usize = 4;

/// The candidate closest to `name` within [`MAX_TYPO`] edits (ties: the first in name order), for
/// the "did you mean" of an unknown name.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, _)| *d <= MAX_TYPO)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_sorted_within_prefix_groups() {
        let mut seen = HashSet::new();
        for m in CATALOG {
            assert!(seen.insert(m.name), "duplicate metric {}", m.name);
        }
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        for m in CATALOG {
            assert_eq!(conventions::problems(&m.shape()), vec![], "{}", m.name);
            // process_*: the standard process metrics, named as every client library names them.
            assert!(
                m.name.starts_with("chain_")
                    || m.name.starts_with("chainwatch_")
                    || m.name.starts_with("process_"),
                "{} lacks a chain_/chainwatch_/process_ prefix",
                m.name
            );
            assert!(
                !m.name.starts_with(DECLARED_PREFIX),
                "{}: {DECLARED_PREFIX} is reserved for declared metrics",
                m.name
            );
        }
    }

    #[test]
    fn histogram_series_resolve_to_their_metric() {
        let m = resolve_series("chain_block_propagation_seconds_bucket").unwrap();
        assert_eq!(m.name, "chain_block_propagation_seconds");
        assert!(resolve_series("chain_block_height_bucket").is_none());
        assert!(resolve_series("chain_no_such_metric").is_none());
    }

    #[test]
    fn nearest_finds_a_misspelling_and_nothing_far() {
        let names = [
            "chain_peers",
            "chain_block_height",
            "chain_blocks_mined_total",
        ];
        assert_eq!(nearest("chain_peerz", names), Some("chain_peers"));
        assert_eq!(
            nearest("chain_blocks_mind_total", names),
            Some("chain_blocks_mined_total")
        );
        assert_eq!(nearest("chain_mempool_size", names), None);
        // Ties go to the first name in order, whatever the order given.
        assert_eq!(nearest("ab", ["ad", "ac"]), Some("ac"));
    }
}
