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
