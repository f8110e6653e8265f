//! Applying a JSON mapping to a document (`mapping::doc`, parsed keeping what the mapping reads):
//! values by JSON pointer, arrays expanded into labeled series, and series of array elements that
//! disappeared from a successful answer removed.

use std::collections::HashSet;
use std::sync::Mutex;

use std::sync::Arc;

use prometheus::{CounterVec, GaugeVec};

use super::doc::{shown, Need, Node};
use crate::registry::{Guard, MAX_LABEL_VALUE_BYTES};

/// No state name is longer; a longer string is not lowercased to find out.
const MAX_STATE_BYTES: usize = 256;
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

/// A mapping of one JSON document (an `http_json` answer, or one JSON-RPC call's `result`).
pub struct JsonMapping {
    pub nodes: Vec<JsonNode>,
    /// What of the document `nodes` read.
    pub need: Need,
}

impl JsonMapping {
    pub fn new(nodes: Vec<JsonNode>) -> Self {
        let mut need = Need::default();
        add_needs(&nodes, &mut need);
        need.finish();
        JsonMapping { nodes, need }
    }
}

fn add_needs(nodes: &[JsonNode], need: &mut Need) {
    for n in nodes {
        match n {
            JsonNode::Metric(m) => {
                need.value(&m.pointer);
                for l in &m.labels {
                    if let LabelVal::Pointer(p) = l {
                        need.whole(p);
                    }
                }
            }
            JsonNode::Each { pointer, children } => add_needs(children, need.each(pointer)),
        }
    }
}

/// What applying a document did: the problems found (wrong types), and the label sets each
/// metric inside an `each` was written with, for [`Applied::settle`].
pub struct Applied {
    pub problems: Vec<String>,
    current: Vec<(usize, HashSet<Vec<String>>)>,
}

/// Apply `nodes` to `doc`: every value that can be read is written. A missing field is not a
/// problem: APIs leave out what does not apply (the consensus stats omit fallbacks in shadow
/// mode). Nothing is removed yet: see [`Applied::settle`].
pub fn apply(nodes: &[JsonNode], doc: &Node) -> Applied {
    let mut problems = Vec::new();
    let mut current: Vec<(usize, HashSet<Vec<String>>)> = Vec::new();
    walk(nodes, doc, false, &mut problems, &mut current);
    Applied { problems, current }
}

impl Applied {
    /// After the whole poll: when it succeeded (`complete`, every document read without a
    /// problem), the series of `each` elements that are gone are removed, not left at their last
    /// value; after a failed or partial poll nothing is removed — an element that could not be
    /// read is not known to be gone — and it is looked for again next time.
    /// Returns the problems.
    pub fn settle(self, nodes: &[JsonNode], complete: bool) -> Vec<String> {
        let complete = complete && self.problems.is_empty();
        let mut current = self.current;
        let mut k = 0;
        visit(nodes, &mut |m, in_each| {
            if in_each {
                let now = current
                    .iter_mut()
                    .find(|(i, _)| *i == k)
                    .map(|(_, s)| std::mem::take(s))
                    .unwrap_or_default();
                let mut seen = m.seen.lock().unwrap_or_else(|p| p.into_inner());
                if complete {
                    for gone in seen.difference(&now) {
                        remove(m, gone);
                    }
                    *seen = now;
                } else {
                    seen.extend(now);
                }
            }
            k += 1;
        });
        self.problems
    }
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
    ctx: &Node,
    in_each: bool,
    problems: &mut Vec<String>,
    current: &mut Vec<(usize, HashSet<Vec<String>>)>,
) {
    let mut index = 0usize;
    walk_at(nodes, ctx, in_each, problems, current, &mut index);
}

fn walk_at(
    nodes: &[JsonNode],
    ctx: &Node,
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
                let elements: Vec<&Node> = match ctx.lookup(pointer) {
                    Ok(None) => Vec::new(),
                    Err(e) => {
                        problems.push(e);
                        Vec::new()
                    }
                    Ok(Some(n)) => n.members().unwrap_or_else(|| {
                        problems.push(format!(
                            "{}: expected an array, got {}",
                            shown(pointer),
                            n.type_name()
                        ));
                        Vec::new()
                    }),
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

/// A number, a boolean (1/0) or a string holding a number; only finite values: NaN and ±Inf
/// (which JSON can only carry as strings) are values that could not be read.
fn number(v: &Node) -> Option<f64> {
    match v {
        Node::Num(n) => Some(*n),
        Node::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Node::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

fn label_string(v: &Node) -> String {
    match v {
        Node::Str(s) => s.to_string(),
        Node::Null => String::new(),
        other => other.to_string(),
    }
}

/// Write one metric from `ctx`; the label values written, or None when nothing was written. A
/// value that cannot be used is a problem and leaves the series as it was.
fn set(m: &JsonMetric, ctx: &Node, problems: &mut Vec<String>) -> Option<Vec<String>> {
    let raw = match ctx.lookup(&m.pointer) {
        Ok(Some(raw)) => raw,
        Ok(None) => return None,
        Err(e) => {
            problems.push(format!("{e} ({})", m.name));
            return None;
        }
    };
    let wrong = |expected: &str| {
        format!(
            "{} ({}): expected {expected}, got {}",
            shown(&m.pointer),
            m.name,
            describe(raw)
        )
    };
    // The value first: a label set is admitted only for a value that is written.
    enum Write {
        Value(f64),
        State(String),
    }
    let write = match &m.kind {
        JsonKind::Gauge(_) => match number(raw) {
            Some(v) => Write::Value(v * m.scale),
            None => {
                problems.push(wrong("a finite number"));
                return None;
            }
        },
        JsonKind::Counter { .. } => match number(raw).map(|v| v * m.scale) {
            Some(v) if v >= 0.0 && v.is_finite() => Write::Value(v),
            _ => {
                problems.push(wrong("a finite non-negative number"));
                return None;
            }
        },
        JsonKind::State { states, map, .. } => {
            let s = match raw {
                Node::Str(s) if s.len() <= MAX_STATE_BYTES => s,
                _ => {
                    problems.push(wrong("a string naming a state"));
                    return None;
                }
            };
            let s = s.trim().to_lowercase();
            let state = map.get(&s).cloned().unwrap_or(s);
            if !states.contains(&state.as_str()) {
                problems.push(format!(
                    "{} ({}): unknown state `{state}` (known: {})",
                    shown(&m.pointer),
                    m.name,
                    states.join(", ")
                ));
                return None;
            }
            Write::State(state)
        }
    };
    let mut labels = Vec::with_capacity(m.labels.len());
    for l in &m.labels {
        labels.push(match l {
            LabelVal::Empty => String::new(),
            LabelVal::Literal(s) => s.clone(),
            LabelVal::Pointer(p) => {
                let v = ctx.pointer(p).map(label_string).unwrap_or_default();
                if v.len() > MAX_LABEL_VALUE_BYTES {
                    problems.push(format!(
                        "{p} ({}): a label value of {} bytes, more than {MAX_LABEL_VALUE_BYTES}",
                        m.name,
                        v.len()
                    ));
                    return None;
                }
                v
            }
        });
    }
    if !m.guard.admit(&labels) {
        return None;
    }
    let l = refs(&labels);
    match (&m.kind, write) {
        (JsonKind::Gauge(g), Write::Value(v)) => g.with_label_values(&l).set(v),
        (JsonKind::Counter { family, totals }, Write::Value(v)) => family
            .with_label_values(&l)
            .inc_by(totals.delta(&labels, v)),
        (JsonKind::State { family, states, .. }, Write::State(state)) => {
            let mut full = labels.clone();
            full.push(String::new());
            for st in states.iter() {
                *full.last_mut().expect("pushed") = st.to_string();
                family
                    .with_label_values(&refs(&full))
                    .set(if *st == state { 1.0 } else { 0.0 });
            }
        }
        _ => unreachable!("the write matches the kind"),
    }
    Some(labels)
}

/// The value's type, and the value itself when it is short (a string "NaN" says more than "a
/// string").
fn describe(v: &Node) -> String {
    match v {
        Node::Str(s) if s.len() <= 40 => format!("the string {:?}", s),
        Node::Num(n) => format!("{n}"),
        other => other.type_name().to_string(),
    }
}
