//! Applying a JSON mapping to a document: values by JSON pointer, arrays expanded into labeled
//! series, and series of array elements that disappeared removed.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{CounterVec, GaugeVec};
use serde_json::Value;

use std::sync::Arc;

use crate::registry::Guard;
use crate::total::Totals;

pub enum LabelVal {
    Empty,
    Literal(String),
    /// Pointer into the innermost `each` element.
    Pointer(String),
}

pub enum JsonKind {
    Gauge(GaugeVec),
    Counter {
        family: CounterVec,
        totals: Totals,
    },
    State {
        family: GaugeVec,
        states: &'static [&'static str],
        map: std::collections::HashMap<String, String>,
    },
}

pub struct JsonMetric {
    pub name: &'static str,
    pub kind: JsonKind,
    pub pointer: String,
    pub scale: f64,
    /// In the family's label order (the state label excluded).
    pub labels: Vec<LabelVal>,
    /// Label sets written by the previous document; only tracked inside `each`.
    pub seen: Mutex<HashSet<Vec<String>>>,
    pub guard: Arc<Guard>,
}

pub enum JsonNode {
    Metric(JsonMetric),
    Each {
        pointer: String,
        children: Vec<JsonNode>,
    },
}

/// Apply `nodes` to `doc`. Returns the problems found (wrong types); everything that could be
/// applied was. A missing field is not a problem: APIs leave out what does not apply (the
/// consensus stats omit fallbacks in shadow mode).
pub fn apply(nodes: &[JsonNode], doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut current: Vec<(usize, HashSet<Vec<String>>)> = Vec::new();
    walk(nodes, doc, false, &mut problems, &mut current);
    // Series of elements that are gone are removed, not left at their last value.
    let mut k = 0;
    visit(nodes, &mut |m, in_each| {
        if in_each {
            let now = current
                .iter()
                .find(|(i, _)| *i == k)
                .map(|(_, s)| s.clone())
                .unwrap_or_default();
            let mut seen = m.seen.lock().unwrap_or_else(|p| p.into_inner());
            for gone in seen.difference(&now) {
                remove(m, gone);
            }
            *seen = now;
        }
        k += 1;
    });
    problems
}

fn visit(nodes: &[JsonNode], f: &mut dyn FnMut(&JsonMetric, bool)) {
    fn go(nodes: &[JsonNode], in_each: bool, f: &mut dyn FnMut(&JsonMetric, bool)) {
        for n in nodes {
            match n {
                JsonNode::Metric(m) => f(m, in_each),
                JsonNode::Each { children, .. } => go(children, true, f),
            }
        }
    }
    go(nodes, false, f)
}

fn remove(m: &JsonMetric, labels: &[String]) {
    m.guard.forget(labels);
    match &m.kind {
        JsonKind::Gauge(g) => {
            let _ = g.remove_label_values(&refs(labels));
        }
        JsonKind::Counter { family, totals } => {
            let _ = family.remove_label_values(&refs(labels));
            totals.forget(labels);
        }
        JsonKind::State { family, states, .. } => {
            for s in states.iter() {
                let mut l = labels.to_vec();
                l.push(s.to_string());
                let _ = family.remove_label_values(&refs(&l));
            }
        }
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Depth-first over the tree, numbering metrics in the same order as `visit`.
fn walk(
    nodes: &[JsonNode],
    ctx: &Value,
    in_each: bool,
    problems: &mut Vec<String>,
    current: &mut Vec<(usize, HashSet<Vec<String>>)>,
) {
    let mut index = 0usize;
    walk_at(nodes, ctx, in_each, problems, current, &mut index);
}

fn walk_at(
    nodes: &[JsonNode],
    ctx: &Value,
    in_each: bool,
    problems: &mut Vec<String>,
    current: &mut Vec<(usize, HashSet<Vec<String>>)>,
    index: &mut usize,
) {
    for n in nodes {
        match n {
            JsonNode::Metric(m) => {
                let k = *index;
                *index += 1;
                if let Some(labels) = set(m, ctx, problems) {
                    if in_each {
                        match current.iter_mut().find(|(i, _)| *i == k) {
                            Some((_, s)) => {
                                s.insert(labels);
                            }
                            None => current.push((k, HashSet::from([labels]))),
                        }
                    }
                }
            }
            JsonNode::Each { pointer, children } => {
                let start = *index;
                let elements: Vec<&Value> = match ctx.pointer(pointer) {
                    Some(Value::Array(a)) => a.iter().collect(),
                    Some(Value::Object(o)) => o.values().collect(),
                    None => Vec::new(),
                    Some(other) => {
                        problems.push(format!(
                            "{pointer}: expected an array, got {}",
                            type_name(other)
                        ));
                        Vec::new()
                    }
                };
                let mut end = start;
                for e in &elements {
                    let mut i = start;
                    walk_at(children, e, true, problems, current, &mut i);
                    end = i;
                }
                if elements.is_empty() {
                    end = start + count(children);
                }
                *index = end;
            }
        }
    }
}

fn count(nodes: &[JsonNode]) -> usize {
    nodes
        .iter()
        .map(|n| match n {
            JsonNode::Metric(_) => 1,
            JsonNode::Each { children, .. } => count(children),
        })
        .sum()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

fn label_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Write one metric from `ctx`; the label values written, or None when nothing was written.
fn set(m: &JsonMetric, ctx: &Value, problems: &mut Vec<String>) -> Option<Vec<String>> {
    let raw = ctx.pointer(&m.pointer)?;
    let labels: Vec<String> = m
        .labels
        .iter()
        .map(|l| match l {
            LabelVal::Empty => String::new(),
            LabelVal::Literal(s) => s.clone(),
            LabelVal::Pointer(p) => ctx.pointer(p).map(label_string).unwrap_or_default(),
        })
        .collect();
    if !m.guard.admit(&labels) {
        return None;
    }
    let l = refs(&labels);
    match &m.kind {
        JsonKind::Gauge(g) => match number(raw) {
            Some(v) => g.with_label_values(&l).set(v * m.scale),
            None => {
                problems.push(format!(
                    "{} ({}): expected a number, got {}",
                    m.pointer,
                    m.name,
                    type_name(raw)
                ));
                return None;
            }
        },
        JsonKind::Counter { family, totals } => match number(raw) {
            Some(v) if v >= 0.0 => family
                .with_label_values(&l)
                .inc_by(totals.delta(&labels, v * m.scale)),
            _ => {
                problems.push(format!(
                    "{} ({}): expected a non-negative number, got {}",
                    m.pointer,
                    m.name,
                    type_name(raw)
                ));
                return None;
            }
        },
        JsonKind::State {
            family,
            states,
            map,
        } => {
            let Value::String(s) = raw else {
                problems.push(format!(
                    "{} ({}): expected a string, got {}",
                    m.pointer,
                    m.name,
                    type_name(raw)
                ));
                return None;
            };
            let s = s.trim().to_lowercase();
            let state = map.get(&s).cloned().unwrap_or(s);
            if !states.contains(&state.as_str()) {
                problems.push(format!(
                    "{} ({}): unknown state `{state}` (known: {})",
                    m.pointer,
                    m.name,
                    states.join(", ")
                ));
                return None;
            }
            let mut full = labels.clone();
            full.push(String::new());
            for st in states.iter() {
                *full.last_mut().expect("pushed") = st.to_string();
                family
                    .with_label_values(&refs(&full))
                    .set(if *st == state { 1.0 } else { 0.0 });
            }
        }
    }
    Some(labels)
}
