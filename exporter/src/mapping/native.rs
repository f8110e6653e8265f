//! Re-exporting a node's native Prometheus metrics: the samples of the mapped series, summed over
//! the labels a mapping drops, scaled, written to catalog gauges and counters; label sets that are
//! gone from a successful answer removed.
//!
//! An answer is read in one pass over its lines, keeping nothing but the sums of the mapped
//! series, at most `max_series_per_metric` label sets each (more could not be exported anyway:
//! the surplus is dropped and counted in `chainwatch_series_dropped_total`). Lines of series the
//! mapping does not read cost no memory.
//!
//! What could not be read changes nothing: a line that is not in the text format makes the whole
//! answer unreadable (a sum could miss a summand), nothing is written and nothing removed; a NaN
//! or ±Inf sample (or a negative counter) leaves its series at its last value, and a sample whose
//! label value is longer than `MAX_LABEL_VALUE_BYTES` is not read. Each is a problem the source
//! counts as `decode`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::promtext;
use super::{BoundSeries, SeriesTarget};
use crate::registry::MAX_LABEL_VALUE_BYTES;

/// Apply `text` to `series`; the problems found (empty: a successful answer).
pub fn apply(series: &[BoundSeries], text: &str) -> Vec<String> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in series.iter().enumerate() {
        by_name.entry(s.from.as_str()).or_default().push(i);
    }
    let mut sums: Vec<BTreeMap<Vec<String>, f64>> = vec![BTreeMap::new(); series.len()];
    let mut unreadable: Vec<BTreeSet<Vec<String>>> = vec![BTreeSet::new(); series.len()];
    let (mut samples, mut bad, mut first_bad) = (0usize, 0usize, None);
    let mut non_finite: Vec<String> = Vec::new();
    let mut long_labels = 0usize;
    for line in promtext::lines(text) {
        let line = match line {
            Ok(l) => l,
            Err(n) => {
                bad += 1;
                first_bad.get_or_insert(n);
                continue;
            }
        };
        samples += 1;
        let Some(targets) = by_name.get(line.name) else {
            continue;
        };
        for &i in targets {
            let s = &series[i];
            let key: Vec<String> = s
                .labels
                .iter()
                .map(|l| {
                    l.as_ref()
                        .and_then(|n| line.label(n))
                        .map(|v| v.into_owned())
                        .unwrap_or_default()
                })
                .collect();
            if key.iter().any(|v| v.len() > MAX_LABEL_VALUE_BYTES) {
                long_labels += 1;
                continue;
            }
            let v = line.value * s.scale;
            let counter = matches!(s.target, SeriesTarget::Counter { .. });
            if !v.is_finite() || (counter && v < 0.0) {
                if non_finite.len() < 3 {
                    non_finite.push(format!("{} {}", line.name, line.value));
                }
                if unreadable[i].len() < s.guard.cap() {
                    unreadable[i].insert(key);
                }
                continue;
            }
            let known = sums[i].len() + unreadable[i].len();
            match sums[i].get_mut(&key) {
                Some(sum) => *sum += v,
                None if known < s.guard.cap() => {
                    sums[i].insert(key, v);
                }
                None => s.guard.refuse(),
            }
        }
    }
    if bad > 0 {
        return vec![format!(
            "{bad} lines are not in the Prometheus text format (the first: line {})",
            first_bad.unwrap_or(0)
        )];
    }
    if samples == 0 {
        return vec!["no samples in the answer".to_string()];
    }
    let mut problems = Vec::new();
    if !non_finite.is_empty() {
        problems.push(format!(
            "values that are not finite (or negative counters) keep their series' last value: {}",
            non_finite.join(", ")
        ));
    }
    if long_labels > 0 {
        // Which label set they belong to is not known: nothing is removed.
        problems.push(format!(
            "{long_labels} samples with a label value longer than {MAX_LABEL_VALUE_BYTES} bytes"
        ));
    }
    let complete = problems.is_empty();
    for ((s, sums), unreadable) in series.iter().zip(sums).zip(unreadable) {
        write(s, sums, &unreadable, complete);
    }
    problems
}

fn refs(k: &[String]) -> Vec<&str> {
    k.iter().map(String::as_str).collect()
}

/// Write `sums`; when the answer was `complete` (then nothing is `unreadable`), remove the label
/// sets it no longer holds.
fn write(
    s: &BoundSeries,
    mut sums: BTreeMap<Vec<String>, f64>,
    unreadable: &BTreeSet<Vec<String>>,
    complete: bool,
) {
    // A sum with an unreadable summand is not written at all.
    sums.retain(|k, _| !unreadable.contains(k) && s.guard.admit(k));
    for (k, v) in &sums {
        match &s.target {
            SeriesTarget::Gauge(g) => g.with_label_values(&refs(k)).set(*v),
            SeriesTarget::Counter { family, totals } => family
                .with_label_values(&refs(k))
                .inc_by(totals.delta(k, *v)),
        }
    }
    let mut seen = s.seen.lock().unwrap_or_else(|p| p.into_inner());
    if !complete {
        seen.extend(sums.into_keys());
        return;
    }
    for gone in seen.iter().filter(|k| !sums.contains_key(*k)) {
        s.guard.forget(gone);
        match &s.target {
            SeriesTarget::Gauge(g) => {
                let _ = g.remove_label_values(&refs(gone));
            }
            SeriesTarget::Counter { family, totals } => {
                let _ = family.remove_label_values(&refs(gone));
                totals.forget(gone);
            }
        }
    }
    *seen = sums.into_keys().collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::BoundApi;
    use crate::pipeline::{self, Pipeline};
    use std::collections::BTreeMap;

    /// A profile mapping `node_peer_ping{addr}` onto `chain_peer_ping_seconds{peer}` (kept) and
    /// `node_bytes{dir}` onto a counter (summed), with room for `cap` label sets a metric.
    fn pipeline(cap: usize) -> (tempfile::TempDir, Pipeline) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.yaml");
        std::fs::write(
            &p,
            "version: 1\nname: t\napis:\n  native:\n    type: prometheus\n    series:\n      - {from: node_peer_ping, gauge: chain_peer_ping_seconds, labels: {peer: addr}}\n      - {from: node_bytes, counter: chain_network_receive_bytes_total}\n",
        )
        .unwrap();
        let pl = pipeline::build(&[p.display().to_string()], &BTreeMap::new(), cap).unwrap();
        (dir, pl)
    }

    fn series(p: &Pipeline) -> &[BoundSeries] {
        match &p.apis["native"].bound {
            BoundApi::Prometheus(s) => s,
            _ => unreachable!(),
        }
    }

    fn sample(p: &Pipeline, name: &str, labels: &str) -> Option<f64> {
        promtext::parse(&p.metrics.encode())
            .0
            .into_iter()
            .find(|s| {
                s.name == name
                    && labels.split(',').filter(|l| !l.is_empty()).all(|l| {
                        let (k, v) = l.split_once('=').unwrap();
                        s.labels.get(k).map(String::as_str) == Some(v)
                    })
            })
            .map(|s| s.value)
    }

    const GOOD: &str = "node_peer_ping{addr=\"a\"} 0.1\nnode_peer_ping{addr=\"b\"} 0.2\nnode_bytes{dir=\"x\"} 10\nnode_bytes{dir=\"y\"} 5\n";

    #[test]
    fn sums_keeps_and_removes_only_after_a_good_answer() {
        let (_d, p) = pipeline(100);
        let s = series(&p);
        assert!(apply(s, GOOD).is_empty());
        assert_eq!(sample(&p, "chain_peer_ping_seconds", "peer=b"), Some(0.2));
        assert_eq!(
            sample(&p, "chain_network_receive_bytes_total", ""),
            Some(15.0)
        );
        // A NaN summand: that sum is not written; a missing peer is not removed.
        let partial =
            "node_peer_ping{addr=\"a\"} 0.3\nnode_bytes{dir=\"x\"} 20\nnode_bytes{dir=\"y\"} NaN\n";
        let problems = apply(s, partial);
        assert!(problems[0].contains("node_bytes NaN"), "{problems:?}");
        assert_eq!(sample(&p, "chain_peer_ping_seconds", "peer=a"), Some(0.3));
        assert_eq!(sample(&p, "chain_peer_ping_seconds", "peer=b"), Some(0.2));
        assert_eq!(
            sample(&p, "chain_network_receive_bytes_total", ""),
            Some(15.0)
        );
        // One bad line: nothing at all is written.
        let bad = apply(s, "node_peer_ping{addr=\"a\"} 0.9\n}{\n");
        assert!(bad[0].contains("line 2"), "{bad:?}");
        assert_eq!(sample(&p, "chain_peer_ping_seconds", "peer=a"), Some(0.3));
        assert_eq!(apply(s, "# only comments\n"), ["no samples in the answer"]);
        // A good answer without b: b goes.
        assert!(apply(s, "node_peer_ping{addr=\"a\"} 0.4\nnode_bytes 20\n").is_empty());
        assert_eq!(sample(&p, "chain_peer_ping_seconds", "peer=b"), None);
        assert_eq!(
            sample(&p, "chain_network_receive_bytes_total", ""),
            Some(20.0)
        );
    }

    #[test]
    fn label_sets_are_capped_while_reading_and_long_values_refused() {
        let (_d, p) = pipeline(3);
        let s = series(&p);
        let many: String = (0..1000)
            .map(|i| format!("node_peer_ping{{addr=\"p{i}\"}} 1\n"))
            .collect();
        assert!(apply(s, &many).is_empty());
        let kept = promtext::parse(&p.metrics.encode())
            .0
            .iter()
            .filter(|x| x.name == "chain_peer_ping_seconds")
            .count();
        assert_eq!(kept, 3);
        assert_eq!(
            sample(
                &p,
                "chainwatch_series_dropped_total",
                "metric=chain_peer_ping_seconds"
            ),
            Some(997.0)
        );
        let long = format!("node_peer_ping{{addr=\"{}\"}} 1\n", "x".repeat(2000));
        let problems = apply(s, &long);
        assert!(problems[0].contains("longer than 1024"), "{problems:?}");
        assert_eq!(
            promtext::parse(&p.metrics.encode())
                .0
                .iter()
                .filter(|x| x.name == "chain_peer_ping_seconds")
                .count(),
            3
        );
    }
}
