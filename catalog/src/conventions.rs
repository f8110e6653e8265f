//! The naming and type rules every metric obeys, built in or declared by a profile: Prometheus's
//! conventions (snake_case, base units as the name's suffix, `_total` for counters and only for
//! them) plus the catalog's own (a help sentence, labels that are not constant labels).

use crate::{Kind, Metric, Unit, CONSTANT_LABELS};

/// Units Prometheus wants spelled out in base form; a name carrying one is refused.
const NON_BASE_UNITS: &[&str] = &["_milliseconds", "_ms", "_percent", "_kilobytes"];

/// `a-z`, `0-9`, `_`, starting with a letter.
pub fn is_snake_case(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A metric's shape with borrowed strings: what the rules look at, for a built-in metric and for a
/// declaration not yet interned alike.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    pub name: &'a str,
    pub kind: ShapeKind<'a>,
    pub unit: Unit,
    pub help: &'a str,
    pub labels: &'a [&'a str],
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShapeKind<'a> {
    Counter,
    Gauge,
    Histogram {
        buckets: &'a [f64],
    },
    State {
        label: &'a str,
        states: &'a [&'a str],
    },
}

impl ShapeKind<'_> {
    fn name(&self) -> &'static str {
        match self {
            ShapeKind::Counter => "counter",
            ShapeKind::Gauge => "gauge",
            ShapeKind::Histogram { .. } => "histogram",
            ShapeKind::State { .. } => "state",
        }
    }
}

impl Metric {
    pub fn shape(&self) -> Shape<'static> {
        Shape {
            name: self.name,
            kind: match self.kind {
                Kind::Counter => ShapeKind::Counter,
                Kind::Gauge => ShapeKind::Gauge,
                Kind::Histogram { buckets } => ShapeKind::Histogram { buckets },
                Kind::State { label, states } => ShapeKind::State { label, states },
            },
            unit: self.unit,
            help: self.help,
            labels: self.labels,
        }
    }
}

/// Everything wrong with `m`, as (field, message): `name`, `type`, `unit`, `help`, `labels[i]`,
/// `buckets`, `states`, `state_label`. Empty when the metric follows every rule.
pub fn problems(m: &Shape<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut bad = |field: &str, msg: String| out.push((field.to_string(), msg));
    if !is_snake_case(m.name) {
        bad(
            "name",
            format!("`{}` is not snake_case (a-z, 0-9, `_`)", m.name),
        );
    }
    let is_counter = m.kind == ShapeKind::Counter;
    if m.name.ends_with("_total") != is_counter {
        bad(
            "name",
            if is_counter {
                format!("`{}` is a counter: its name ends in `_total`", m.name)
            } else {
                format!(
                    "`{}` is a {}: only counters end in `_total`",
                    m.name,
                    m.kind.name()
                )
            },
        );
    }
    let stem = m.name.strip_suffix("_total").unwrap_or(m.name);
    // `_timestamp_seconds` is a time in seconds: it carries the unit.
    let stem = stem
        .strip_suffix("_timestamp_seconds")
        .map_or(stem, |_| "x_seconds");
    match m.unit.suffix() {
        Some(u) if !stem.ends_with(&format!("_{u}")) => bad(
            "name",
            format!(
                "`{}` has unit {u}: the name ends in `_{u}`{}",
                m.name,
                if is_counter { " (before `_total`)" } else { "" }
            ),
        ),
        Some(_) => {}
        None => {
            for u in ["seconds", "bytes", "ratio"] {
                if stem.ends_with(&format!("_{u}")) {
                    bad(
                        "unit",
                        format!("`{}` ends in `_{u}`: declare `unit: {u}`", m.name),
                    );
                }
            }
        }
    }
    for u in NON_BASE_UNITS {
        if m.name.contains(u) {
            bad(
                "name",
                format!(
                    "`{}` names a non-base unit (`{}`): use seconds, bytes or a 0-1 ratio",
                    m.name,
                    &u[1..]
                ),
            );
        }
    }
    if m.help.trim().is_empty() || !m.help.ends_with('.') {
        bad(
            "help",
            "help is one sentence ending in `.` (it is the # HELP line)".to_string(),
        );
    }
    let state_label = match m.kind {
        ShapeKind::State { label, .. } => Some(label),
        _ => None,
    };
    for (i, &l) in m.labels.iter().enumerate() {
        let f = format!("labels[{i}]");
        if !is_snake_case(l) {
            bad(&f, format!("label `{l}` is not snake_case"));
        } else if CONSTANT_LABELS.contains(&l) {
            bad(
                &f,
                format!("`{l}` is a constant label: the sidecar's configuration sets it"),
            );
        } else if l == "le" || l == "quantile" {
            bad(&f, format!("`{l}` is reserved by Prometheus"));
        } else if m.labels[..i].contains(&l) {
            bad(&f, format!("label `{l}` is listed twice"));
        } else if Some(l) == state_label {
            bad(
                &f,
                format!("`{l}` is the state label; it is not listed again"),
            );
        }
    }
    match m.kind {
        ShapeKind::Histogram { buckets } => {
            if buckets.is_empty() {
                bad("buckets", "a histogram needs at least one bucket".into());
            } else if !buckets.iter().all(|b| b.is_finite()) {
                bad(
                    "buckets",
                    "bucket bounds are finite numbers (+Inf is implied)".into(),
                );
            } else if !buckets.windows(2).all(|w| w[0] < w[1]) {
                bad("buckets", "bucket bounds must increase strictly".into());
            }
        }
        ShapeKind::State { label, states } => {
            if !is_snake_case(label) || CONSTANT_LABELS.contains(&label) || label == "le" {
                bad(
                    "state_label",
                    format!("state label `{label}` must be a snake_case label of its own"),
                );
            }
            if states.is_empty() {
                bad("states", "a state metric needs at least one state".into());
            }
            for (i, s) in states.iter().enumerate() {
                if !is_snake_case(s) {
                    bad(
                        "states",
                        format!("state `{s}` is not snake_case (map raw values onto it)"),
                    );
                } else if states[..i].contains(s) {
                    bad("states", format!("state `{s}` is listed twice"));
                }
            }
        }
        ShapeKind::Counter | ShapeKind::Gauge => {}
    }
    out
}
