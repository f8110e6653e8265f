//! Validation and compilation of profiles into rules bound to registered metrics. Everything a
//! profile can get wrong is found here, at load, with file, line and field; the engine that runs
//! the result has no error paths of its own.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use chainwatch_catalog::{Kind, Metric, Unit};
use chainwatch_yaml::SpecError;
use prometheus::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec};
use regex::bytes::{CaptureLocations, Regex, RegexBuilder};

use super::literals::required_literals;
use super::spec::{ActionSpec, LabelSpec, RuleSpec, ValueSpec};
use super::Loaded;
use crate::registry::{Family, Guard, Metrics};
use crate::total::Totals;
use std::sync::Arc;

/// A compiled rule: how to recognise a line, and what to do with it.
pub struct Rule {
    /// `profile/rule`, the `rule` label of the sidecar's own metrics.
    pub name: String,
    pub matcher: Matcher,
    /// Byte strings one of which every matching line contains; None: try every line.
    pub literals: Option<Vec<Vec<u8>>>,
    pub actions: Vec<Action>,
    /// `chainwatch_rule_value_errors_total{rule}`.
    pub value_errors: Counter,
}

pub enum Matcher {
    Regex(Regex),
    /// Captures are the `fields` (top-level names or JSON pointers); `require` indexes into them.
    Json {
        fields: Vec<String>,
        require: Vec<usize>,
    },
}

pub enum ValueSrc {
    Number(f64),
    Capture(usize),
}

pub enum LabelSrc {
    Literal(String),
    Capture {
        idx: usize,
        map: HashMap<String, String>,
    },
}

pub enum Op {
    Inc {
        by: Option<ValueSrc>,
        scale: f64,
        family: CounterVec,
        fixed: Option<Counter>,
    },
    /// Follows an absolute total; remembers the last total per label set.
    Total {
        value: ValueSrc,
        scale: f64,
        family: CounterVec,
        last: Totals,
    },
    Set {
        value: ValueSrc,
        scale: f64,
        family: GaugeVec,
        /// Label values known at load; the series is created at the first value, never before:
        /// a gauge at 0 that nothing fed would claim "0 peers" for a node that said nothing.
        fixed: Option<(Vec<String>, OnceLock<Gauge>)>,
    },
    Observe {
        value: ValueSrc,
        scale: f64,
        family: HistogramVec,
        fixed: Option<Histogram>,
    },
    State {
        value: ValueSrc,
        map: HashMap<String, String>,
        states: &'static [&'static str],
        family: GaugeVec,
    },
}

pub struct Action {
    pub op: Op,
    /// Bounds the label sets of actions whose labels come from the line.
    pub guard: Option<Arc<Guard>>,
    /// One entry per registered label of the family, in order; the state label (last) excluded.
    pub labels: Vec<Option<LabelSrc>>,
}

/// Where captured values come from for one matched line.
pub enum Captures<'a> {
    Regex {
        line: &'a [u8],
        locs: &'a CaptureLocations,
    },
    Json(&'a [Option<String>]),
}

impl Captures<'_> {
    pub fn get(&self, idx: usize) -> Option<&[u8]> {
        match self {
            Captures::Regex { line, locs } => locs.get(idx).map(|(s, e)| &line[s..e]),
            Captures::Json(v) => v.get(idx).and_then(|o| o.as_deref()).map(str::as_bytes),
        }
    }
}

struct Pending {
    metric: &'static Metric,
    /// label name → source
    labels: BTreeMap<String, LabelSrc>,
    value: Option<ValueSrc>,
    scale: f64,
    state_map: HashMap<String, String>,
    total: bool,
}

struct PendingRule {
    name: String,
    matcher: Matcher,
    literals: Option<Vec<Vec<u8>>>,
    actions: Vec<Pending>,
}

/// Compile the rules of all `profiles` (merged) against the catalog and register their metrics.
pub fn compile(
    profiles: &[Loaded],
    demands: &BTreeMap<&'static str, BTreeSet<String>>,
    metrics: &mut Metrics,
) -> Result<Vec<Rule>, SpecError> {
    let mut pending = Vec::new();
    let mut seen = HashSet::new();
    let mut identities = HashSet::new();
    for p in profiles {
        if p.spec.version != 1 {
            return Err(p.positions.error(
                "version",
                format!(
                    "unsupported profile version {}; this sidecar reads version 1",
                    p.spec.version
                ),
            ));
        }
        if p.spec.name.is_empty() {
            return Err(p.positions.error("name", "profile name must not be empty"));
        }
        for (i, r) in p.spec.rules.iter().enumerate() {
            // Merged profiles may carry the very same rule (both COINjecture profiles count
            // error lines): it runs once, or every such line would be counted twice.
            let identity = format!(
                "{:?}|{:?}|{:?}",
                r.regex,
                r.json.as_ref().map(|j| &j.require),
                r.actions
            );
            if !identities.insert(identity) {
                continue;
            }
            let rule = compile_rule(p, i, r)?;
            if !seen.insert(rule.name.clone()) {
                return Err(p.positions.error(
                    format!("rules[{i}].name"),
                    format!("duplicate rule name `{}`", r.name),
                ));
            }
            pending.push(rule);
        }
    }

    // Every rule that touches a metric must give its series the same label names: register each
    // family once with the union, and let rules that do not set a label leave it empty.
    let mut union: BTreeMap<&'static str, BTreeSet<String>> = demands.clone();
    for r in &pending {
        for a in &r.actions {
            union
                .entry(a.metric.name)
                .or_default()
                .extend(a.labels.keys().cloned());
        }
    }
    let value_errors = metrics
        .counter_vec("chainwatch_rule_value_errors_total", &["rule"])
        .map_err(|e| internal(profiles, e))?;

    let mut rules = Vec::new();
    for r in pending {
        let mut actions = Vec::new();
        for a in r.actions {
            let mut names: Vec<String> = union[a.metric.name].iter().cloned().collect();
            if let Kind::State { label, .. } = a.metric.kind {
                names.push(label.to_string());
            }
            let family = metrics
                .family(a.metric.name, &names)
                .map_err(|e| internal(profiles, e))?;
            let mut labels: Vec<Option<LabelSrc>> = Vec::new();
            let mut given = a.labels;
            for n in union[a.metric.name].iter() {
                labels.push(given.remove(n));
            }
            let fixed_values: Option<Vec<String>> = labels
                .iter()
                .map(|l| match l {
                    None => Some(String::new()),
                    Some(LabelSrc::Literal(s)) => Some(s.clone()),
                    Some(LabelSrc::Capture { .. }) => None,
                })
                .collect();
            let fixed = |vals: &Option<Vec<String>>| vals.clone();
            let dynamic = labels
                .iter()
                .any(|l| matches!(l, Some(LabelSrc::Capture { .. })));
            let guard = if dynamic {
                Some(
                    metrics
                        .guard(a.metric.name)
                        .map_err(|e| internal(profiles, e))?,
                )
            } else {
                None
            };
            let op = match (family, a.metric.kind) {
                (Family::Counter(c), _) if a.total => Op::Total {
                    value: a.value.expect("total has a value"),
                    scale: a.scale,
                    family: c,
                    last: Totals::default(),
                },
                (Family::Counter(c), _) => Op::Inc {
                    by: a.value,
                    scale: a.scale,
                    fixed: fixed(&fixed_values).map(|v| c.with_label_values(&v)),
                    family: c,
                },
                (Family::Gauge(g), Kind::State { states, .. }) => Op::State {
                    value: a.value.expect("state has a value"),
                    map: a.state_map,
                    states,
                    family: g,
                },
                (Family::Gauge(g), _) => Op::Set {
                    value: a.value.expect("gauge has a value"),
                    scale: a.scale,
                    fixed: fixed(&fixed_values).map(|v| (v, OnceLock::new())),
                    family: g,
                },
                (Family::Histogram(h), _) => Op::Observe {
                    value: a.value.expect("histogram has a value"),
                    scale: a.scale,
                    fixed: fixed(&fixed_values).map(|v| h.with_label_values(&v)),
                    family: h,
                },
            };
            actions.push(Action { op, labels, guard });
        }
        rules.push(Rule {
            value_errors: value_errors.with_label_values(&[r.name.as_str()]),
            name: r.name,
            matcher: r.matcher,
            literals: r.literals,
            actions,
        });
    }
    Ok(rules)
}

fn internal(profiles: &[Loaded], e: impl std::fmt::Display) -> SpecError {
    let pos = profiles
        .first()
        .map(|p| p.positions.clone())
        .unwrap_or_default();
    pos.error("", format!("registering metrics: {e}"))
}

fn compile_rule(p: &Loaded, i: usize, r: &RuleSpec) -> Result<PendingRule, SpecError> {
    let at = |f: &str| format!("rules[{i}]{f}");
    let err = |f: &str, m: String| p.positions.error(at(f), m);
    if r.name.is_empty()
        || !r
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(err(
            ".name",
            format!(
                "rule name `{}` must be non-empty letters, digits, `_` or `-`",
                r.name
            ),
        ));
    }
    if r.actions.is_empty() {
        return Err(err(".actions", "a rule needs at least one action".into()));
    }
    // Capture name → index.
    let mut captures: HashMap<String, usize> = HashMap::new();
    let (matcher, literals) = match (&r.regex, &r.json) {
        (Some(re), None) => {
            // ASCII classes by default: \d, \s, \w and \b mean what a log line needs, and an ASCII
            // word boundary keeps the fast DFA engines on lines holding emoji or λ. A profile can
            // opt back in with (?u).
            let compiled = RegexBuilder::new(re)
                .unicode(false)
                .size_limit(1 << 22)
                .build()
                .map_err(|e| err(".regex", format!("regex does not compile: {e}")))?;
            for (idx, name) in compiled.capture_names().enumerate() {
                if let Some(n) = name {
                    captures.insert(n.to_string(), idx);
                }
            }
            for (k, ex) in r.examples.iter().enumerate() {
                if !compiled.is_match(ex.as_bytes()) {
                    return Err(err(
                        &format!(".examples[{k}]"),
                        format!("example does not match the rule's regex: {ex:?}"),
                    ));
                }
            }
            for (k, ex) in r.not_examples.iter().enumerate() {
                if compiled.is_match(ex.as_bytes()) {
                    return Err(err(
                        &format!(".not_examples[{k}]"),
                        format!("the rule's regex matches this line it must not match: {ex:?}"),
                    ));
                }
            }
            (Matcher::Regex(compiled), required_literals(re))
        }
        (None, Some(j)) => {
            if j.require.is_empty() {
                return Err(err(
                    ".json.require",
                    "name at least one field the line must have".into(),
                ));
            }
            let mut fields: Vec<String> = Vec::new();
            let mut require = Vec::new();
            for f in &j.require {
                require.push(field_index(&mut fields, &mut captures, f));
            }
            // Referenced-but-not-required fields are optional captures.
            for a in &r.actions {
                for name in referenced_captures(a) {
                    field_index(&mut fields, &mut captures, &name);
                }
            }
            // Every matching line holds the first required field's name in quotes.
            let first = j.require[0]
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            let literals = Some(vec![format!("\"{first}\"").into_bytes()]);
            let m = Matcher::Json { fields, require };
            for (k, ex) in r.examples.iter().enumerate() {
                let mut out = Vec::new();
                if !crate::engine::json_capture(&m, ex.as_bytes(), &mut out) {
                    return Err(err(
                        &format!(".examples[{k}]"),
                        format!("example is not a JSON object with the required fields: {ex:?}"),
                    ));
                }
            }
            for (k, ex) in r.not_examples.iter().enumerate() {
                let mut out = Vec::new();
                if crate::engine::json_capture(&m, ex.as_bytes(), &mut out) {
                    return Err(err(
                        &format!(".not_examples[{k}]"),
                        format!("the rule matches this line it must not match: {ex:?}"),
                    ));
                }
            }
            (m, literals)
        }
        (Some(_), Some(_)) => {
            return Err(err(
                ".regex",
                "give either `regex` or `json`, not both".into(),
            ))
        }
        (None, None) => return Err(err("", "a rule needs `regex` or `json`".into())),
    };
    let defined: Vec<String> = {
        let mut v: Vec<String> = captures.keys().cloned().collect();
        v.sort();
        v
    };
    let capture = |f: &str, name: &str| -> Result<usize, SpecError> {
        captures.get(name).copied().ok_or_else(|| {
            err(
                f,
                format!(
                    "capture `{name}` is not defined by the rule's {} (defined: {})",
                    if r.regex.is_some() {
                        "regex"
                    } else {
                        "json fields"
                    },
                    if defined.is_empty() {
                        "none".to_string()
                    } else {
                        defined.join(", ")
                    }
                ),
            )
        })
    };

    let mut actions = Vec::new();
    for (j, a) in r.actions.iter().enumerate() {
        let ap = |f: &str| format!(".actions[{j}]{f}");
        let ops: Vec<(&str, &String)> = [
            ("counter", &a.counter),
            ("gauge", &a.gauge),
            ("histogram", &a.histogram),
            ("state", &a.state),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let (op, metric_name) = match ops.as_slice() {
            [one] => *one,
            [] => {
                return Err(err(
                    &ap(""),
                    "an action needs one of `counter`, `gauge`, `histogram`, `state`".into(),
                ))
            }
            _ => {
                return Err(err(
                    &ap(&format!(".{}", ops[1].0)),
                    "an action names exactly one of `counter`, `gauge`, `histogram`, `state`"
                        .into(),
                ))
            }
        };
        let metric = chainwatch_catalog::lookup(metric_name).ok_or_else(|| {
            err(&ap(&format!(".{op}")), format!("unknown metric `{metric_name}`: not in the catalog (`chainwatch-exporter catalog` lists them){}", suggest(metric_name)))
        })?;
        if !metric.is_node_metric() {
            return Err(err(&ap(&format!(".{op}")), format!("`{metric_name}` is the sidecar's own metric; profiles set only chain_* metrics")));
        }
        let fits = matches!(
            (op, metric.kind),
            ("counter", Kind::Counter)
                | ("gauge", Kind::Gauge)
                | ("histogram", Kind::Histogram { .. })
                | ("state", Kind::State { .. })
        );
        if !fits {
            let hint = match metric.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram { .. } => "histogram",
                Kind::State { .. } => "state",
            };
            return Err(err(
                &ap(&format!(".{op}")),
                format!(
                    "`{metric_name}` is a {}, so the action must be `{hint}:`, not `{op}:`",
                    metric.kind.name()
                ),
            ));
        }
        let value_of = |f: &str, v: &ValueSpec| -> Result<ValueSrc, SpecError> {
            match v {
                ValueSpec::Number(n) => Ok(ValueSrc::Number(*n)),
                ValueSpec::Capture(c) => {
                    capture(&ap(f), c.trim_start_matches('$')).map(ValueSrc::Capture)
                }
            }
        };
        let mut value = None;
        let mut total = false;
        match op {
            "counter" => {
                if a.value.is_some() {
                    return Err(err(&ap(".value"), "a counter takes `by` (increment) or `total` (absolute running total), not `value`".into()));
                }
                if !a.map.is_empty() {
                    return Err(err(&ap(".map"), "`map` belongs to state actions".into()));
                }
                match (&a.by, &a.total) {
                    (Some(_), Some(_)) => {
                        return Err(err(&ap(".total"), "give `by` or `total`, not both".into()))
                    }
                    (Some(b), None) => value = Some(value_of(".by", b)?),
                    (None, Some(t)) => {
                        value = Some(ValueSrc::Capture(capture(
                            &ap(".total"),
                            t.trim_start_matches('$'),
                        )?));
                        total = true;
                    }
                    (None, None) => {}
                }
            }
            _ => {
                if a.by.is_some() || a.total.is_some() {
                    return Err(err(
                        &ap(if a.by.is_some() { ".by" } else { ".total" }),
                        format!("`by` and `total` belong to counters, not {op} actions"),
                    ));
                }
                let v = a.value.as_ref().ok_or_else(|| {
                    err(
                        &ap(""),
                        format!("a {op} action needs `value:` (a capture name or a number)"),
                    )
                })?;
                value = Some(value_of(".value", v)?);
                if op != "state" && !a.map.is_empty() {
                    return Err(err(&ap(".map"), "`map` belongs to state actions".into()));
                }
            }
        }
        let mut scale = a.scale.unwrap_or(1.0);
        if let Some(u) = &a.unit {
            scale *= unit_factor(u, metric).map_err(|m| err(&ap(".unit"), m))?;
        }
        if !scale.is_finite() {
            return Err(err(&ap(".scale"), "scale must be a finite number".into()));
        }
        let mut state_map = HashMap::new();
        if let Kind::State { states, label } = metric.kind {
            for (raw, st) in &a.map {
                if !states.contains(&st.as_str()) {
                    return Err(err(
                        &ap(&format!(".map.{raw}")),
                        format!(
                            "`{st}` is not a state of `{metric_name}` ({label}: {})",
                            states.join(", ")
                        ),
                    ));
                }
                state_map.insert(raw.to_lowercase(), st.clone());
            }
        }
        let mut labels = BTreeMap::new();
        for (name, spec) in &a.labels {
            let lp = ap(&format!(".labels.{name}"));
            if chainwatch_catalog::CONSTANT_LABELS.contains(&name.as_str()) {
                return Err(err(&lp, format!("`{name}` is a constant label: set it in the sidecar config's `labels:`, not in a rule")));
            }
            if !metric.allows_label(name) {
                let allowed = if metric.labels.is_empty() {
                    "none".to_string()
                } else {
                    metric.labels.join(", ")
                };
                return Err(err(
                    &lp,
                    format!(
                        "label `{name}` is not allowed on `{metric_name}` (allowed: {allowed})"
                    ),
                ));
            }
            let src = match spec {
                LabelSpec::Text(t) => match t.strip_prefix('$') {
                    Some(c) => LabelSrc::Capture {
                        idx: capture(&lp, c)?,
                        map: HashMap::new(),
                    },
                    None => LabelSrc::Literal(t.clone()),
                },
                LabelSpec::Mapped(m) => LabelSrc::Capture {
                    idx: capture(&format!("{lp}.from"), m.from.trim_start_matches('$'))?,
                    map: m
                        .map
                        .iter()
                        .map(|(k, v)| (k.to_lowercase(), v.clone()))
                        .collect(),
                },
            };
            labels.insert(name.clone(), src);
        }
        actions.push(Pending {
            metric,
            labels,
            value,
            scale,
            state_map,
            total,
        });
    }
    Ok(PendingRule {
        name: format!("{}/{}", p.spec.name, r.name),
        matcher,
        literals,
        actions,
    })
}

/// The factor converting a value in `unit` to `metric`'s base unit.
pub fn unit_factor(unit: &str, metric: &Metric) -> Result<f64, String> {
    Ok(match (unit, metric.unit) {
        ("ns", Unit::Seconds) => 1e-9,
        ("us" | "µs", Unit::Seconds) => 1e-6,
        ("ms", Unit::Seconds) => 1e-3,
        ("s", Unit::Seconds) => 1.0,
        ("m" | "min", Unit::Seconds) => 60.0,
        ("h", Unit::Seconds) => 3600.0,
        ("percent", Unit::Ratio) => 0.01,
        (other, u) => {
            return Err(format!(
                "unit `{other}` does not convert to `{}`'s base unit ({}); use ns, us, ms, s, m, h for seconds or percent for ratios",
                metric.name,
                u.suffix().unwrap_or("none")
            ))
        }
    })
}

fn field_index(
    fields: &mut Vec<String>,
    captures: &mut HashMap<String, usize>,
    name: &str,
) -> usize {
    let name = name.trim_start_matches('$');
    if let Some(i) = captures.get(name) {
        return *i;
    }
    fields.push(name.to_string());
    captures.insert(name.to_string(), fields.len() - 1);
    fields.len() - 1
}

fn referenced_captures(a: &ActionSpec) -> Vec<String> {
    let mut v = Vec::new();
    for s in [&a.by, &a.value].into_iter().flatten() {
        if let ValueSpec::Capture(c) = s {
            v.push(c.clone());
        }
    }
    if let Some(t) = &a.total {
        v.push(t.clone());
    }
    for l in a.labels.values() {
        match l {
            LabelSpec::Text(t) if t.starts_with('$') => v.push(t.clone()),
            LabelSpec::Mapped(m) => v.push(m.from.clone()),
            _ => {}
        }
    }
    v
}

/// ", did you mean `x`?" for a near miss in the catalog.
fn suggest(name: &str) -> String {
    let best = chainwatch_catalog::CATALOG
        .iter()
        .map(|m| (edit_distance(name, m.name), m.name))
        .min();
    match best {
        Some((d, n)) if d <= 4 => format!("; did you mean `{n}`?"),
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
