//! What one node of a family exports: the series of a real sidecar's `/metrics`, captured by
//! `bench/fleet.sh` from `chainwatch-sim` and `chainwatch-exporter`, one file per family
//! (`DIR/<family>.prom`). The constant labels are dropped (the fleet sets its own); every other
//! label, the metric's kind (from the catalog) and the captured value are kept.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use chainwatch_catalog::{Kind, CONSTANT_LABELS};
use chainwatch_exporter::mapping::promtext;

/// How a series behaves over time (its catalog kind, and for histograms which part it is).
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Counter,
    Gauge,
    /// One series of a state set: its captured value is kept.
    State,
    Bucket {
        le: f64,
    },
    Sum,
    Count,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// Labels besides the constant ones, sorted (`le` included for buckets).
    pub labels: Vec<(String, String)>,
    pub part: Part,
    pub value: f64,
    /// Histograms: the series of one histogram share this key (name and labels without `le`).
    pub histogram: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub family: String,
    /// The `chain` label the family's sidecar sets.
    pub chain: String,
    pub series: Vec<Series>,
    /// Mean observation of each histogram (captured sum / count), by histogram key.
    pub means: BTreeMap<String, f64>,
}

/// The templates of `dir`, ordered by family name.
pub fn load_dir(dir: &Path) -> Result<Vec<Template>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading templates in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "prom"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("{}: no <family>.prom templates", dir.display());
    }
    paths
        .iter()
        .map(|p| {
            let family = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            parse(&family, &text).with_context(|| format!("{}", p.display()))
        })
        .collect()
}

/// One family's template from a sidecar's `/metrics` text.
pub fn parse(family: &str, text: &str) -> Result<Template> {
    let (samples, bad) = promtext::parse(text);
    if bad > 0 {
        bail!("{bad} lines are not in the Prometheus text format");
    }
    let mut chain = None;
    let mut series = Vec::new();
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for s in samples {
        let Some(metric) = chainwatch_catalog::resolve_series(&s.name) else {
            bail!("{}: not a catalog metric", s.name);
        };
        if let Some(c) = s.labels.get("chain") {
            chain.get_or_insert_with(|| c.clone());
        }
        let labels: Vec<(String, String)> = s
            .labels
            .iter()
            .filter(|(k, _)| !CONSTANT_LABELS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let key = |labels: &[(String, String)]| {
            let l: Vec<String> = labels
                .iter()
                .filter(|(k, _)| k != "le")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{}{{{}}}", metric.name, l.join(","))
        };
        let (part, histogram) = match metric.kind {
            Kind::Counter => (Part::Counter, None),
            Kind::Gauge => (Part::Gauge, None),
            Kind::State { .. } => (Part::State, None),
            Kind::Histogram { .. } => {
                let k = key(&labels);
                let part = if s.name.ends_with("_bucket") {
                    let le = s.labels.get("le").map(String::as_str).unwrap_or("+Inf");
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().with_context(|| format!("{}: le={le}", s.name))?
                    };
                    Part::Bucket { le }
                } else if s.name.ends_with("_sum") {
                    sums.entry(k.clone()).or_default().0 = s.value;
                    Part::Sum
                } else {
                    sums.entry(k.clone()).or_default().1 = s.value;
                    Part::Count
                };
                (part, Some(k))
            }
        };
        series.push(Series {
            name: s.name,
            labels,
            part,
            value: s.value,
            histogram,
        });
    }
    let Some(chain) = chain else {
        bail!("no series carries a `chain` label");
    };
    // Histograms that saw no observation yet get the middle of their buckets as mean.
    let mut means = BTreeMap::new();
    for s in &series {
        let Some(k) = &s.histogram else { continue };
        if means.contains_key(k) {
            continue;
        }
        let (sum, count) = sums.get(k).copied().unwrap_or_default();
        let mean = if count > 0.0 && sum > 0.0 {
            sum / count
        } else {
            let les: Vec<f64> = series
                .iter()
                .filter(|x| x.histogram.as_ref() == Some(k))
                .filter_map(|x| match x.part {
                    Part::Bucket { le } if le.is_finite() => Some(le),
                    _ => None,
                })
                .collect();
            les.get(les.len() / 2).copied().unwrap_or(1.0)
        };
        means.insert(k.clone(), mean);
    }
    Ok(Template {
        family: family.to_string(),
        chain,
        series,
        means,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP chain_block_height Height.
# TYPE chain_block_height gauge
chain_block_height{chain="dilithion",network="testnet",region="eu",node="d1"} 1200
chain_send_timeouts_total{chain="dilithion",network="testnet",region="eu",node="d1"} 0
chain_block_propagation_seconds_bucket{chain="dilithion",network="testnet",region="eu",node="d1",le="1"} 3
chain_block_propagation_seconds_bucket{chain="dilithion",network="testnet",region="eu",node="d1",le="+Inf"} 4
chain_block_propagation_seconds_sum{chain="dilithion",network="testnet",region="eu",node="d1"} 2
chain_block_propagation_seconds_count{chain="dilithion",network="testnet",region="eu",node="d1"} 4
chainwatch_source_up{source="rpc",chain="dilithion",network="testnet",region="eu",node="d1"} 1
"#;

    #[test]
    fn keeps_series_drops_constant_labels() {
        let t = parse("dilithion", TEXT).unwrap();
        assert_eq!(t.chain, "dilithion");
        assert_eq!(t.series.len(), 7);
        assert_eq!(t.series[0].part, Part::Gauge);
        assert!(t.series[0].labels.is_empty());
        assert_eq!(t.series[1].part, Part::Counter);
        assert_eq!(t.series[2].part, Part::Bucket { le: 1.0 });
        assert_eq!(t.series[3].part, Part::Bucket { le: f64::INFINITY });
        assert_eq!(t.series[6].labels, vec![("source".into(), "rpc".into())]);
        let k = t.series[2].histogram.clone().unwrap();
        assert_eq!(t.series[5].histogram.as_ref(), Some(&k));
        assert_eq!(t.means[&k], 0.5);
    }

    #[test]
    fn refuses_what_no_sidecar_exports() {
        let e = parse("x", "no_such_metric{chain=\"a\"} 1\n").unwrap_err();
        assert!(e.to_string().contains("not a catalog metric"), "{e}");
        assert!(parse("x", "chain_block_height 1\n").is_err());
    }
}
