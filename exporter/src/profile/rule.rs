//! One rule as written → one rule checked against the catalog, not yet bound to the registry.
//! Every problem of the rule is collected (not only the first), each with its field.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chainwatch_catalog::{Catalog, Kind, Metric, Unit};
use chainwatch_yaml::SpecError;
use regex::bytes::{Regex, RegexBuilder};

use super::literals::required_literals;
use super::spec::{ActionSpec, LabelSpec, RuleSpec, ValueSpec};
use super::{LabelSrc, Loaded, Matcher, ValueSrc};
use crate::arbiter::{Arbiter, UNRANKED};

/// What one action does, validated.
pub(super) struct Pending {
    pub metric: &'static Metric,
    /// label name → source
    pub labels: BTreeMap<String, LabelSrc>,
    pub value: Option<ValueSrc>,
    pub scale: f64,
    pub state_map: HashMap<String, String>,
    /// A counter following the node's running total.
    pub total: bool,
    /// Set by `combine: prefer`.
    pub arbiter: Option<Arc<Arbiter>>,
    pub rank: usize,
}

/// How an action updates its series, for telling whether two rules write the same fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// One event per line (counter increments, histogram observations).
    Event,
    /// The node's running total of events.
    Total,
    /// The current value (gauges, states).
    Set,
}

impl Pending {
    pub fn write(&self) -> Write {
        match self.metric.kind {
            Kind::Counter if self.total => Write::Total,
            Kind::Counter | Kind::Histogram { .. } => Write::Event,
            Kind::Gauge | Kind::State { .. } => Write::Set,
        }
    }
}

pub(super) struct PendingRule {
    /// `profile/rule`.
    pub name: String,
    /// Index of the profile in the loaded list, and of the rule in that profile.
    pub profile: usize,
    pub index: usize,
    pub matcher: Matcher,
    pub unless: Option<Regex>,
    pub literals: Option<Vec<Vec<u8>>>,
    pub actions: Vec<Pending>,
}

impl PendingRule {
    /// Whether the rule matches `line` (its examples and test lines, at load).
    pub fn matches(&self, line: &[u8]) -> bool {
        let hit = match &self.matcher {
            Matcher::Regex(re) => re.is_match(line),
            m @ Matcher::Json { .. } => crate::engine::json_capture(m, line, &mut Vec::new()),
        };
        hit && !self.unless.as_ref().is_some_and(|u| u.is_match(line))
    }
}

fn build_regex(re: &str) -> Result<Regex, regex::Error> {
    // ASCII classes by default: \d, \s, \w and \b mean what a log line needs, and an ASCII word
    // boundary keeps the fast DFA engines on lines holding emoji or λ. A profile can opt back in
    // with (?u).
    RegexBuilder::new(re)
        .unicode(false)
        .size_limit(1 << 22)
        .build()
}

/// Check rule `i` of profile `p` (the `pi`-th loaded) against `catalog`.
pub(super) fn compile_rule(
    catalog: &Catalog,
    p: &Loaded,
    pi: usize,
    i: usize,
    r: &RuleSpec,
) -> Result<PendingRule, Vec<SpecError>> {
    let mut errs = Vec::new();
    let at = |f: &str| format!("rules[{i}]{f}");
    let err = |f: &str, m: String| p.positions.error(at(f), m);
    if r.name.is_empty()
        || !r
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        errs.push(err(
            ".name",
            format!(
                "rule name `{}` must be non-empty letters, digits, `_` or `-`",
                r.name
            ),
        ));
    }
    if r.actions.is_empty() {
        errs.push(err(".actions", "a rule needs at least one action".into()));
    }
    let unless = match r.unless.as_deref().map(build_regex) {
        None => None,
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => {
            errs.push(err(".unless", format!("regex does not compile: {e}")));
            None
        }
    };
    let excluded = |ex: &str| unless.as_ref().is_some_and(|u| u.is_match(ex.as_bytes()));
    // Capture name → index.
    let mut captures: HashMap<String, usize> = HashMap::new();
    let compiled: Option<(Matcher, Option<Vec<Vec<u8>>>)> = match (&r.regex, &r.json) {
        (Some(re), None) => match build_regex(re) {
            Err(e) => {
                errs.push(err(".regex", format!("regex does not compile: {e}")));
                None
            }
            Ok(compiled) => {
                for (idx, name) in compiled.capture_names().enumerate() {
                    if let Some(n) = name {
                        captures.insert(n.to_string(), idx);
                    }
                }
                for (k, ex) in r.examples.iter().enumerate() {
                    if !compiled.is_match(ex.as_bytes()) {
                        errs.push(err(
                            &format!(".examples[{k}]"),
                            format!("example does not match the rule's regex: {ex:?}"),
                        ));
                    } else if excluded(ex) {
                        errs.push(err(
                            &format!(".examples[{k}]"),
                            format!("example is excluded by the rule's `unless`: {ex:?}"),
                        ));
                    }
                }
                for (k, ex) in r.not_examples.iter().enumerate() {
                    if compiled.is_match(ex.as_bytes()) && !excluded(ex) {
                        errs.push(err(
                            &format!(".not_examples[{k}]"),
                            format!("the rule's regex matches this line it must not match: {ex:?}"),
                        ));
                    }
                }
                Some((Matcher::Regex(compiled), required_literals(re)))
            }
        },
        (None, Some(j)) if j.require.is_empty() => {
            errs.push(err(
                ".json.require",
                "name at least one field the line must have".into(),
            ));
            None
        }
        (None, Some(j)) => {
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
            let mut out = Vec::new();
            for (k, ex) in r.examples.iter().enumerate() {
                if !crate::engine::json_capture(&m, ex.as_bytes(), &mut out) {
                    errs.push(err(
                        &format!(".examples[{k}]"),
                        format!("example is not a JSON object with the required fields: {ex:?}"),
                    ));
                } else if excluded(ex) {
                    errs.push(err(
                        &format!(".examples[{k}]"),
                        format!("example is excluded by the rule's `unless`: {ex:?}"),
                    ));
                }
            }
            for (k, ex) in r.not_examples.iter().enumerate() {
                if crate::engine::json_capture(&m, ex.as_bytes(), &mut out) && !excluded(ex) {
                    errs.push(err(
                        &format!(".not_examples[{k}]"),
                        format!("the rule matches this line it must not match: {ex:?}"),
                    ));
                }
            }
            Some((m, literals))
        }
        (Some(_), Some(_)) => {
            errs.push(err(
                ".regex",
                "give either `regex` or `json`, not both".into(),
            ));
            None
        }
        (None, None) => {
            errs.push(err("", "a rule needs `regex` or `json`".into()));
            None
        }
    };
    let cx = ActionCx {
        catalog,
        // Without a matcher, which captures exist is unknown: skip those checks.
        captures: compiled.as_ref().map(|_| &captures),
        regex: r.regex.is_some(),
    };
    let mut actions = Vec::new();
    for (j, a) in r.actions.iter().enumerate() {
        match compile_action(&cx, a) {
            Ok(p) => actions.push(p),
            Err((f, m)) => errs.push(err(&format!(".actions[{j}]{f}"), m)),
        }
    }
    match compiled {
        Some((matcher, literals)) if errs.is_empty() => Ok(PendingRule {
            name: format!("{}/{}", p.spec.name, r.name),
            profile: pi,
            index: i,
            matcher,
            unless,
            literals,
            actions,
        }),
        _ => Err(errs),
    }
}

struct ActionCx<'a> {
    catalog: &'a Catalog,
    captures: Option<&'a HashMap<String, usize>>,
    regex: bool,
}

impl ActionCx<'_> {
    /// Index of capture `name`; Ok(0) when captures are unknown (the matcher did not compile).
    fn capture(&self, name: &str) -> Result<usize, String> {
        let Some(captures) = self.captures else {
            return Ok(0);
        };
        captures.get(name).copied().ok_or_else(|| {
            let mut defined: Vec<&str> = captures.keys().map(String::as_str).collect();
            defined.sort();
            format!(
                "capture `{name}` is not defined by the rule's {} (defined: {})",
                if self.regex { "regex" } else { "json fields" },
                if defined.is_empty() {
                    "none".to_string()
                } else {
                    defined.join(", ")
                }
            )
        })
    }
}

/// One action, or (field below the action, message) for its first problem.
fn compile_action(cx: &ActionCx<'_>, a: &ActionSpec) -> Result<Pending, (String, String)> {
    let e = |f: &str, m: String| (f.to_string(), m);
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
            return Err(e(
                "",
                "an action needs one of `counter`, `gauge`, `histogram`, `state`".into(),
            ))
        }
        _ => {
            return Err(e(
                &format!(".{}", ops[1].0),
                "an action names exactly one of `counter`, `gauge`, `histogram`, `state`".into(),
            ))
        }
    };
    let opf = format!(".{op}");
    let metric = cx
        .catalog
        .lookup(metric_name)
        .ok_or_else(|| e(&opf, unknown_metric(cx.catalog, metric_name)))?;
    if !metric.is_node_metric() {
        return Err(e(
            &opf,
            format!(
                "`{metric_name}` is the sidecar's own metric; profiles set only chain_* metrics"
            ),
        ));
    }
    let fits = matches!(
        (op, metric.kind),
        ("counter", Kind::Counter)
            | ("gauge", Kind::Gauge)
            | ("histogram", Kind::Histogram { .. })
            | ("state", Kind::State { .. })
    );
    if !fits {
        return Err(e(
            &opf,
            format!(
                "`{metric_name}` is a {}, so the action must be `{}:`, not `{op}:`",
                metric.kind.name(),
                metric.kind.name()
            ),
        ));
    }
    let value_of = |f: &str, v: &ValueSpec| -> Result<ValueSrc, (String, String)> {
        match v {
            ValueSpec::Number(n) => Ok(ValueSrc::Number(*n)),
            ValueSpec::Capture(c) => cx
                .capture(c.trim_start_matches('$'))
                .map(ValueSrc::Capture)
                .map_err(|m| e(f, m)),
        }
    };
    let mut value = None;
    let mut total = false;
    match op {
        "counter" => {
            if a.value.is_some() {
                return Err(e(".value", "a counter takes `by` (increment) or `total` (absolute running total), not `value`".into()));
            }
            if !a.map.is_empty() {
                return Err(e(".map", "`map` belongs to state actions".into()));
            }
            match (&a.by, &a.total) {
                (Some(_), Some(_)) => {
                    return Err(e(".total", "give `by` or `total`, not both".into()))
                }
                (Some(b), None) => value = Some(value_of(".by", b)?),
                (None, Some(t)) => {
                    value = Some(ValueSrc::Capture(
                        cx.capture(t.trim_start_matches('$'))
                            .map_err(|m| e(".total", m))?,
                    ));
                    total = true;
                }
                (None, None) => {}
            }
        }
        _ => {
            if a.by.is_some() || a.total.is_some() {
                return Err(e(
                    if a.by.is_some() { ".by" } else { ".total" },
                    format!("`by` and `total` belong to counters, not {op} actions"),
                ));
            }
            let v = a.value.as_ref().ok_or_else(|| {
                e(
                    "",
                    format!("a {op} action needs `value:` (a capture name or a number)"),
                )
            })?;
            value = Some(value_of(".value", v)?);
            if op != "state" && !a.map.is_empty() {
                return Err(e(".map", "`map` belongs to state actions".into()));
            }
        }
    }
    let mut scale = a.scale.unwrap_or(1.0);
    if let Some(u) = &a.unit {
        scale *= unit_factor(u, metric).map_err(|m| e(".unit", m))?;
    }
    if !scale.is_finite() {
        return Err(e(".scale", "scale must be a finite number".into()));
    }
    let mut state_map = HashMap::new();
    if let Kind::State { states, label } = metric.kind {
        for (raw, st) in &a.map {
            if !states.contains(&st.as_str()) {
                return Err(e(
                    &format!(".map.{raw}"),
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
        let lp = format!(".labels.{name}");
        if chainwatch_catalog::CONSTANT_LABELS.contains(&name.as_str()) {
            return Err(e(&lp, format!("`{name}` is a constant label: set it in the sidecar config's `labels:`, not in a rule")));
        }
        if !metric.allows_label(name) {
            let allowed = if metric.labels.is_empty() {
                "none".to_string()
            } else {
                metric.labels.join(", ")
            };
            return Err(e(
                &lp,
                format!("label `{name}` is not allowed on `{metric_name}` (allowed: {allowed})"),
            ));
        }
        let src = match spec {
            LabelSpec::Text(t) => match t.strip_prefix('$') {
                Some(c) => LabelSrc::Capture {
                    idx: cx.capture(c).map_err(|m| e(&lp, m))?,
                    map: HashMap::new(),
                },
                None => LabelSrc::Literal(t.clone()),
            },
            LabelSpec::Mapped(m) => LabelSrc::Capture {
                idx: cx
                    .capture(m.from.trim_start_matches('$'))
                    .map_err(|msg| e(&format!("{lp}.from"), msg))?,
                map: m
                    .map
                    .iter()
                    .map(|(k, v)| (k.to_lowercase(), v.clone()))
                    .collect(),
            },
        };
        labels.insert(name.clone(), src);
    }
    Ok(Pending {
        metric,
        labels,
        value,
        scale,
        state_map,
        total,
        arbiter: None,
        rank: UNRANKED,
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

/// Why `name` names no metric of `catalog`, with the nearest name that does: what a log rule and
/// an API mapping say about an unknown metric.
pub fn unknown_metric(catalog: &Catalog, name: &str) -> String {
    let hint = catalog
        .nearest(name)
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    if name.starts_with(chainwatch_catalog::DECLARED_PREFIX) {
        format!("unknown metric `{name}`: not declared under `metrics:` of a loaded profile{hint}")
    } else {
        format!(
            "unknown metric `{name}`: not in the catalog (`chainwatch-exporter catalog` lists them){hint}"
        )
    }
}
