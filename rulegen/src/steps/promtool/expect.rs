//! What a test expects: series in promtool's notation, the labels a result carries under the
//! synthesized inputs, the alert that must fire (labels and annotations expanded), samples.

use crate::conventions;
use crate::model::{AlertM, LabelMap, Labels, Record};
use crate::promql::{self, escape, num};

use chainwatch_duration::Duration;

use crate::write::text::replace_labels;

use super::file::{ExpAlert, ExpSample, ExprTest, InSeries};
use super::synth::Synth;

/// A series as promtool writes it: `name{label="value", …}`.
pub fn series_text(name: &str, labels: &LabelMap) -> String {
    if labels.is_empty() && !name.is_empty() {
        return name.to_string();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{name}{{{}}}", parts.join(", "))
}

/// The labels of the test node of `chain`.
pub fn base_labels(chain: &str) -> LabelMap {
    conventions::test_node_labels(chain)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Labels the result of `expr` carries under the synthesized inputs.
pub fn actual_labels(expr: &str, synth: &Synth, records: &[Record]) -> Labels {
    let e = promql::parse(expr).expect("validated");
    let leaf = |vs: &promql_parser::parser::VectorSelector| -> Option<Labels> {
        let name = vs.name.as_deref()?;
        if let Some(r) = records.iter().find(|r| r.name == name) {
            let mut l = actual_labels(&r.expr, synth, records);
            l.extend(r.labels.keys().cloned());
            return Some(l);
        }
        let mut l = Labels::new();
        for (n, labels) in synth.series.keys() {
            if n == name {
                l.extend(labels.keys().cloned());
            }
        }
        if name == "up" || l.is_empty() {
            l.extend(["job".to_string(), "instance".to_string()]);
        }
        Some(l)
    };
    promql::out_labels(&e, &leaf).unwrap_or_default()
}

/// The input series of a test, `samples` long.
pub fn inputs(s: &Synth, samples: usize) -> Vec<InSeries> {
    s.series
        .iter()
        .map(|((n, l), v)| InSeries {
            series: series_text(n, l),
            values: v.notation(samples),
        })
        .collect()
}

/// An annotation with `{{ $labels.x }}` replaced by the series' values, as Prometheus does.
fn expand(text: &str, labels: &LabelMap) -> String {
    replace_labels(text, |l| labels.get(l).cloned().unwrap_or_default())
}

/// The alert a test expects to fire on a series with these labels: its labels and annotations,
/// expanded.
pub fn expected_alert(a: &AlertM, series_labels: &LabelMap) -> ExpAlert {
    let mut labels = series_labels.clone();
    labels.extend(a.rule_labels.clone());
    let annotations = a
        .annotations
        .clone()
        .into_iter()
        .map(|(k, t)| (k, expand(&t, series_labels)))
        .collect();
    ExpAlert {
        labels,
        annotations,
    }
}

/// The labels of `subject` among `keys`.
pub fn restrict(subject: &LabelMap, keys: &Labels) -> LabelMap {
    subject
        .iter()
        .filter(|(k, _)| keys.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// An expression test that a record (or gate) has value `v`: exactly for whole numbers, within
/// 1e-9 for the others.
pub fn sample_test(
    comment: String,
    selector: &str,
    labels: &LabelMap,
    v: f64,
    t: Duration,
) -> ExprTest {
    if v == v.round() && v.abs() < 1e15 {
        ExprTest {
            comment,
            expr: selector.to_string(),
            eval_time: t.to_string(),
            exp_samples: vec![ExpSample {
                labels: series_text(selector.split('{').next().unwrap_or(selector), labels),
                value: num(v),
            }],
        }
    } else {
        // Float arithmetic (rates, interpolation) is compared with a tolerance.
        ExprTest {
            comment: format!("{comment} (within 1e-9)"),
            expr: format!("abs({selector} - {}) < bool 1e-09", num(v)),
            eval_time: t.to_string(),
            exp_samples: vec![ExpSample {
                labels: series_text("", labels),
                value: "1".into(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        v.iter()
            .map(|(k, x)| (k.to_string(), x.to_string()))
            .collect()
    }

    #[test]
    fn annotations_expand_labels() {
        let l = labels(&[("node", "n1"), ("chain", "c")]);
        assert_eq!(
            expand("{{ $labels.node }} of {{$labels.chain}}!", &l),
            "n1 of c!"
        );
    }
}
