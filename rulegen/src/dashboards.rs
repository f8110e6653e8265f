//! Grafana: dashboards (`grafana/dashboards/<id>.json`) and their provisioning files.
//!
//! Panel queries are PromQL with Grafana variables. Every selector of a query gets the dashboard's
//! filters (`network=~"$network"`, …) for the labels its series carry, so thresholds.yaml stays
//! readable. A query may also be an alert's measured value (`alert: NodeOutOfSync`: the very
//! expression the alert compares) or a state metric (`state: chain_consensus_mode`, one number per
//! state with value mappings). Thresholds of the alerts a panel concerns are drawn on it, so one
//! number in thresholds.yaml moves the rule, its test and the line together.

use std::collections::{BTreeMap, BTreeSet};

use chainwatch_catalog::{lookup, Kind, CONSTANT_LABELS};
use chainwatch_yaml::SpecError;
use serde_json::{json, Value};

use crate::build::{series_labels, AlertM, Locator, Model};
use crate::model::{Measure, Op, Scope};
use crate::promql::{self, Labels};
use crate::spec::{self, Spec};
use chainwatch_duration::Duration;

pub const DASHBOARD_DIR: &str = "grafana/dashboards";
pub const DATASOURCE_PATH: &str = "grafana/provisioning/datasources/prometheus.yml";
pub const PROVIDER_PATH: &str = "grafana/provisioning/dashboards/chainwatch.yml";
pub const UID_PREFIX: &str = "chainwatch-";
pub const DATASOURCE_UID: &str = "chainwatch-prometheus";

/// Variables a dashboard may filter by (each is the label of the same name).
pub const FILTER_VARIABLES: &[&str] = &["chain", "network", "region", "node"];
const PANEL_KINDS: &[&str] = &[
    "timeseries",
    "stat",
    "table",
    "state-timeline",
    "bargauge",
    "gauge",
];
const UNITS: &[&str] = &[
    "short",
    "none",
    "percentunit",
    "percent",
    "s",
    "ms",
    "dtdurations",
    "bytes",
    "Bps",
    "ops",
    "cps",
    "reqps",
    "bool",
    "locale",
];

#[derive(Debug, Clone)]
pub struct QueryM {
    /// PromQL as Grafana gets it (variables, filters).
    pub expr: String,
    pub legend: String,
    /// Where it came from, for docs: `alert X`, `state m` or empty.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub alert: String,
    pub op: Op,
    pub value: f64,
    pub level: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct PanelM {
    /// `<dashboard>/<panel>`, what coverage names.
    pub id: String,
    pub title: String,
    pub description: String,
    pub kind: String,
    pub criteria: Vec<String>,
    pub row: Option<String>,
    pub unit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub width: u32,
    pub height: u32,
    pub queries: Vec<QueryM>,
    pub lines: Vec<Line>,
    /// Metrics and recording rules the queries select.
    pub uses: Vec<String>,
    pub sort_by: Option<String>,
    /// Value mappings of state queries: (value, text, color).
    pub mappings: Vec<(u32, String, String)>,
}

#[derive(Debug, Clone)]
pub struct DashboardM {
    pub id: String,
    pub uid: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub variables: Vec<String>,
    pub time_from: String,
    pub panels: Vec<PanelM>,
}

/// Grafana's built-in variables, with a value that parses where each may stand.
fn builtin(name: &str) -> Option<&'static str> {
    Some(match name {
        "__rate_interval" | "__interval" => "1m",
        "__range" => "1h",
        "__range_s" => "3600",
        "__range_ms" | "__interval_ms" => "60000",
        _ => return None,
    })
}

/// Replace Grafana variables with values that parse (a valid stand-in for each). Errors name an
/// unknown variable.
pub fn substitute(expr: &str, vars: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            let j = inner
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{expr}`"))?;
            (&inner[..j], j + 2)
        } else {
            let j = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..j], j)
        };
        if let Some(v) = builtin(name) {
            out.push_str(v);
        } else if vars.iter().any(|v| v == name) {
            out.push_str("placeholder");
        } else {
            return Err(format!(
                "unknown variable `${name}` (this dashboard has ${}; Grafana's $__rate_interval, $__interval, $__range)",
                vars.join(", $")
            ));
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Insert `filters(metric)` matchers into every selector of the metrics named in `names`.
/// Strings are skipped; a selector's existing matchers of the same labels are kept.
pub fn inject(expr: &str, filters: &dyn Fn(&str) -> Vec<(String, String)>) -> String {
    let b = expr.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let is_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b':';
    let is_cont = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    // Skip a string literal starting at `i`; returns the index after it.
    let skip_string = |i: usize| -> usize {
        let q = b[i];
        let mut j = i + 1;
        while j < b.len() && b[j] != q {
            if b[j] == b'\\' && q != b'`' {
                j += 1;
            }
            j += 1;
        }
        (j + 1).min(b.len())
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            let j = skip_string(i);
            out.push_str(&expr[i..j]);
            i = j;
        } else if c.is_ascii_digit() || c == b'$' {
            // Numbers, durations and variables are not identifiers.
            let mut j = i + 1;
            while j < b.len() && (is_cont(b[j]) || b[j] == b'.' || b[j] == b'{' && c == b'$') {
                if b[j] == b'{' {
                    while j < b.len() && b[j] != b'}' {
                        j += 1;
                    }
                }
                j += 1;
            }
            let j = j.min(b.len());
            out.push_str(&expr[i..j]);
            i = j;
        } else if is_start(c) {
            let mut j = i + 1;
            while j < b.len() && is_cont(b[j]) {
                j += 1;
            }
            let ident = &expr[i..j];
            out.push_str(ident);
            i = j;
            let fs = filters(ident);
            if fs.is_empty() {
                continue;
            }
            let mut k = j;
            while k < b.len() && b[k].is_ascii_whitespace() {
                k += 1;
            }
            if k < b.len() && b[k] == b'(' {
                continue; // a function
            }
            if k < b.len() && b[k] == b'{' {
                // Find the closing brace, skipping strings.
                let mut e = k + 1;
                while e < b.len() && b[e] != b'}' {
                    if b[e] == b'"' || b[e] == b'\'' || b[e] == b'`' {
                        e = skip_string(e);
                    } else {
                        e += 1;
                    }
                }
                let inner = &expr[k + 1..e.min(b.len())];
                let have: BTreeSet<String> = inner
                    .split(',')
                    .filter_map(|m| {
                        let n: String = m
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        (!n.is_empty()).then_some(n)
                    })
                    .collect();
                let add: Vec<String> = fs
                    .iter()
                    .filter(|(l, _)| !have.contains(l))
                    .map(|(l, v)| format!("{l}=~\"{v}\""))
                    .collect();
                out.push_str(&expr[j..k + 1]);
                out.push_str(&add.join(", "));
                if !add.is_empty() && !inner.trim().is_empty() {
                    out.push_str(", ");
                }
                i = k + 1;
            } else {
                let add: Vec<String> = fs.iter().map(|(l, v)| format!("{l}=~\"{v}\"")).collect();
                out.push('{');
                out.push_str(&add.join(", "));
                out.push('}');
            }
        } else {
            let ch = expr[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The state metric as one number per node: 1 for its first state, 2 for the second, ….
fn state_expr(metric: &str, label: &str, states: &[&str]) -> String {
    let parts: Vec<String> = states
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{metric}{{{label}=\"{s}\"}} * {}", i + 1))
        .collect();
    format!("sum without ({label}) (\n  {}\n)", parts.join("\n  or "))
}

fn state_color(s: &str, i: usize) -> String {
    match s {
        "healthy" => "green".into(),
        "degraded" => "orange".into(),
        "critical" => "red".into(),
        _ => ["blue", "purple", "yellow", "green", "orange"][i % 5].into(),
    }
}

fn level_color(level: &str) -> &'static str {
    match level {
        "critical" => "red",
        "warning" => "orange",
        _ => "blue",
    }
}

/// The legend Grafana shows for a result with these labels.
fn default_legend(out: &Labels) -> String {
    let mut parts: Vec<String> = Vec::new();
    if out.contains("node") {
        parts.push("{{node}}".into());
    } else if out.contains("network") {
        let mut s = String::from("{{chain}}/{{network}}");
        if out.contains("region") {
            s.push_str(" {{region}}");
        }
        parts.push(s);
    } else if out.contains("region") {
        parts.push("{{region}}".into());
    }
    for l in out {
        if !CONSTANT_LABELS.contains(&l.as_str())
            && !["job", "instance", "le"].contains(&l.as_str())
        {
            parts.push(format!("{{{{{l}}}}}"));
        }
    }
    parts.join(" ")
}

struct Ctx<'a> {
    loc: &'a Locator,
    errs: &'a mut Vec<SpecError>,
}

impl Ctx<'_> {
    fn err(&mut self, field: &str, msg: impl Into<String>) {
        self.errs.push(self.loc.error(field, msg));
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The plotted measure of an alert (its value, before the comparison).
fn alert_measure(a: &AlertM) -> Option<String> {
    let v = &a.variants[0];
    if v.measure.is_condition() || v.threshold.is_none() {
        return None;
    }
    Some(v.measure.expr(&Scope::All))
}

/// Threshold lines of an alert: one per distinct threshold (per-chain overrides included).
fn lines_of(m: &Model, a: &AlertM) -> Vec<Line> {
    let level = m.severities[&a.severity].level.clone();
    let mut out: Vec<Line> = Vec::new();
    for v in &a.variants {
        if let (Some(op), Some(t)) = (v.op, v.threshold) {
            if !out.iter().any(|l| l.value == t && l.op == op) {
                out.push(Line {
                    alert: a.name.clone(),
                    op,
                    value: t,
                    level: level.clone(),
                    text: v.threshold_text.clone(),
                });
            }
        }
    }
    out
}

/// Grafana threshold steps from lines: each region between lines takes the colour of the most
/// urgent alert that holds on it (green where none does); every line is a step.
pub fn steps(lines: &[Line]) -> Vec<(Option<f64>, String)> {
    let mut bps: Vec<f64> = lines.iter().map(|l| l.value).collect();
    // `== t` holds on a point: colour [t, t + step) and return to normal after it.
    for l in lines.iter().filter(|l| l.op == Op::Eq) {
        let d = if l.value.fract() == 0.0 {
            1.0
        } else {
            l.value.abs() * 0.01
        };
        bps.push(l.value + d);
    }
    bps.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    bps.dedup();
    let rank = |lv: &str| match lv {
        "critical" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    };
    let color_of = |bad: &dyn Fn(&Line) -> bool| -> String {
        lines
            .iter()
            .filter(|l| bad(l))
            .max_by_key(|l| rank(&l.level))
            .map(|l| level_color(&l.level).to_string())
            .unwrap_or_else(|| "green".into())
    };
    let mut out = Vec::new();
    let Some(first) = bps.first().copied() else {
        return vec![(None, "green".into())];
    };
    // Below the lowest line.
    out.push((
        None,
        color_of(&|l: &Line| matches!(l.op, Op::Lt | Op::Le) && l.value >= first),
    ));
    for (i, b) in bps.iter().enumerate() {
        let next = bps.get(i + 1).copied();
        let c = color_of(&|l: &Line| match l.op {
            Op::Gt | Op::Ge => l.value <= *b,
            Op::Lt | Op::Le => next.is_some_and(|n| l.value >= n),
            Op::Eq => l.value == *b,
            Op::Ne => l.value != *b,
        });
        out.push((Some(*b), c));
    }
    out
}

fn panel(
    m: &Model,
    ctx: &mut Ctx,
    d: &spec::Dashboard,
    vars: &[String],
    p: &spec::Panel,
    field: &str,
) -> Option<PanelM> {
    let mut ok = true;
    if !is_slug(&p.id) {
        ctx.err(
            &format!("{field}.id"),
            format!("`{}` is not a panel id (lowercase words joined by -)", p.id),
        );
        ok = false;
    }
    let kind = p.kind.clone().unwrap_or_else(|| "timeseries".into());
    if !PANEL_KINDS.contains(&kind.as_str()) {
        ctx.err(
            &format!("{field}.type"),
            format!("unknown panel type `{kind}` ({})", PANEL_KINDS.join(", ")),
        );
        ok = false;
    }
    for (i, c) in p.criteria.iter().enumerate() {
        if !m.criteria.contains(c) {
            ctx.err(
                &format!("{field}.criteria[{i}]"),
                format!("unknown criterion `{c}` (not in the `criteria` list)"),
            );
        }
    }
    if let Some(u) = &p.unit {
        if !UNITS.contains(&u.as_str()) {
            ctx.err(
                &format!("{field}.unit"),
                format!("unknown unit `{u}` ({})", UNITS.join(", ")),
            );
        }
    }
    let width = p.width.unwrap_or(12);
    let height = p.height.unwrap_or(8);
    if !(1..=24).contains(&width) {
        ctx.err(&format!("{field}.width"), "a width is 1 to 24 grid columns");
    }
    if !(2..=30).contains(&height) {
        ctx.err(&format!("{field}.height"), "a height is 2 to 30 grid rows");
    }
    let filter: Vec<String> = match &p.filter {
        Some(f) => {
            for (i, v) in f.iter().enumerate() {
                if !vars.contains(v) {
                    ctx.err(
                        &format!("{field}.filter[{i}]"),
                        format!("`{v}` is not a variable of dashboard `{}`", d.id),
                    );
                }
            }
            f.clone()
        }
        None => vars.to_vec(),
    };
    if p.queries.is_empty() {
        ctx.err(
            &format!("{field}.queries"),
            "a panel needs at least one query",
        );
        ok = false;
    }
    let mut queries = Vec::new();
    let mut uses: BTreeSet<String> = BTreeSet::new();
    let mut plotted_alerts: Vec<String> = Vec::new();
    let mut plotted_measures: Vec<String> = Vec::new();
    let mut mappings = Vec::new();
    for (qi, q) in p.queries.iter().enumerate() {
        let qf = format!("{field}.queries[{qi}]");
        let set = [q.expr.is_some(), q.alert.is_some(), q.state.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if set != 1 {
            ctx.err(&qf, "set exactly one of `expr`, `alert`, `state`");
            ok = false;
            continue;
        }
        let (raw, origin, efield) = if let Some(e) = &q.expr {
            (e.trim().to_string(), String::new(), format!("{qf}.expr"))
        } else if let Some(name) = &q.alert {
            let Some(a) = m.alerts.iter().find(|a| &a.name == name) else {
                ctx.err(&format!("{qf}.alert"), format!("unknown alert `{name}`"));
                ok = false;
                continue;
            };
            let Some(e) = alert_measure(a) else {
                ctx.err(
                    &format!("{qf}.alert"),
                    format!(
                        "{name} is a condition (`{}`) with no value to plot",
                        a.variants[0].measure.kind()
                    ),
                );
                ok = false;
                continue;
            };
            plotted_alerts.push(name.clone());
            plotted_measures.push(e.clone());
            (e, format!("alert {name}"), format!("{qf}.alert"))
        } else {
            let name = q.state.as_ref().expect("one is set");
            match lookup(name).map(|x| x.kind) {
                Some(Kind::State { label, states }) => {
                    if !mappings.is_empty() {
                        ctx.err(&format!("{qf}.state"), "one state query per panel");
                    }
                    for (i, s) in states.iter().enumerate() {
                        mappings.push((i as u32 + 1, s.to_string(), state_color(s, i)));
                    }
                    (
                        state_expr(name, label, states),
                        format!("state {name}"),
                        format!("{qf}.state"),
                    )
                }
                _ => {
                    ctx.err(
                        &format!("{qf}.state"),
                        format!("`{name}` is not a state metric of the catalog"),
                    );
                    ok = false;
                    continue;
                }
            }
        };
        // Parse with the variables replaced, check every selector.
        let parsed = match substitute(&raw, vars)
            .and_then(|s| promql::parse(&s).map_err(|e| format!("does not parse: {}", e.trim())))
        {
            Ok(e) => e,
            Err(e) => {
                ctx.err(&efield, e);
                ok = false;
                continue;
            }
        };
        let mut names = BTreeSet::new();
        let mut bad = false;
        for vs in promql::selectors(&parsed) {
            let Some(n) = vs.name.clone() else {
                ctx.err(&efield, "every selector must name a metric");
                bad = true;
                break;
            };
            if n == "up" || series_labels(&m.records, &n).is_none() {
                ctx.err(&efield, format!("unknown metric `{n}`: not in the catalog, not a recording rule of this file"));
                bad = true;
                break;
            }
            names.insert(n);
        }
        if !bad && names.is_empty() {
            ctx.err(&efield, "the query selects no metric");
            bad = true;
        }
        if bad {
            ok = false;
            continue;
        }
        let fil = |metric: &str| -> Vec<(String, String)> {
            if !names.contains(metric) {
                return Vec::new();
            }
            let carried = series_labels(&m.records, metric).unwrap_or_default();
            filter
                .iter()
                .filter(|v| carried.contains(*v))
                .map(|v| (v.clone(), format!("${v}")))
                .collect()
        };
        let expr = inject(&raw, &fil);
        let reparsed = substitute(&expr, vars)
            .and_then(|s| promql::parse(&s).map_err(|e| e.trim().to_string()));
        let reparsed = match reparsed {
            Ok(e) => e,
            Err(e) => {
                ctx.err(
                    &efield,
                    format!("adding the dashboard filters broke the query: {e}"),
                );
                ok = false;
                continue;
            }
        };
        let leaf = |vs: &promql_parser::parser::VectorSelector| {
            vs.name
                .as_deref()
                .and_then(|n| series_labels(&m.records, n))
        };
        let out = promql::out_labels(&reparsed, &leaf).unwrap_or_default();
        let legend = match &q.legend {
            Some(l) => {
                let mut rest = l.as_str();
                while let Some(i) = rest.find("{{") {
                    let after = &rest[i + 2..];
                    let j = after.find("}}").unwrap_or(after.len());
                    let lab = after[..j].trim();
                    if !out.contains(lab) {
                        let have: Vec<&str> = out.iter().map(|s| s.as_str()).collect();
                        ctx.err(
                            &format!("{qf}.legend"),
                            format!(
                                "label `{lab}` is not on the query's result (its labels: {})",
                                if have.is_empty() {
                                    "none".into()
                                } else {
                                    have.join(", ")
                                }
                            ),
                        );
                    }
                    rest = after.get(j + 2..).unwrap_or("");
                }
                l.clone()
            }
            None => {
                if kind == "table" {
                    ctx.err(&qf, "a table query needs a `legend`: it names the column");
                }
                default_legend(&out)
            }
        };
        uses.extend(names);
        queries.push(QueryM {
            expr,
            legend,
            origin,
        });
    }
    // Threshold lines: of the alerts plotted, and of the alerts listed.
    let mut listed: Vec<String> = plotted_alerts.clone();
    for (i, t) in p.thresholds.iter().enumerate() {
        let tf = format!("{field}.thresholds[{i}]");
        let Some(a) = m.alerts.iter().find(|a| &a.name == t) else {
            ctx.err(&tf, format!("unknown alert `{t}`"));
            ok = false;
            continue;
        };
        let Some(measure) = alert_measure(a) else {
            ctx.err(&tf, format!("{t} has no threshold to draw"));
            ok = false;
            continue;
        };
        let gauge = match &a.variants[0].measure {
            Measure::Value {
                sel, func: None, ..
            } => uses.contains(&sel.name),
            _ => false,
        };
        let same = plotted_measures.contains(&measure)
            || m.records
                .iter()
                .any(|r| r.expr == measure && uses.contains(&r.name));
        if !(gauge || same) {
            ctx.err(
                &tf,
                format!(
                    "the panel does not plot what {t} measures: add `- alert: {t}` to its queries"
                ),
            );
            ok = false;
            continue;
        }
        if !listed.contains(t) {
            listed.push(t.clone());
        }
    }
    let mut lines = Vec::new();
    for name in &listed {
        if let Some(a) = m.alerts.iter().find(|a| &a.name == name) {
            lines.extend(lines_of(m, a));
        }
    }
    if !ok {
        return None;
    }
    let mut description = p.description.trim().to_string();
    if !lines.is_empty() {
        let mut by_alert: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for l in &lines {
            by_alert.entry(&l.alert).or_default().push(&l.text);
        }
        let parts: Vec<String> = listed
            .iter()
            .filter_map(|a| {
                let a_m = m.alerts.iter().find(|x| &x.name == a)?;
                Some(format!(
                    "{a} ({}): {}",
                    a_m.severity,
                    by_alert
                        .get(a.as_str())
                        .map(|v| v.join("; "))
                        .unwrap_or_default()
                ))
            })
            .collect();
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(&format!("Lines: {}.", parts.join(" | ")));
    }
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    if !p.criteria.is_empty() {
        description.push_str(&format!("Criteria {}. ", p.criteria.join(", ")));
    }
    description.push_str(&format!("(chainwatch panel {}/{})", d.id, p.id));
    Some(PanelM {
        id: format!("{}/{}", d.id, p.id),
        title: p.title.clone(),
        description,
        kind,
        criteria: p.criteria.clone(),
        row: p.row.clone(),
        unit: p.unit.clone(),
        min: p.min,
        max: p.max,
        width,
        height,
        queries,
        lines,
        uses: uses.into_iter().collect(),
        sort_by: p.sort_by.clone(),
        mappings,
    })
}

pub fn build(
    spec: &Spec,
    m: &Model,
    loc: &Locator,
    errs: &mut Vec<SpecError>,
) -> (Option<spec::Grafana>, Vec<DashboardM>) {
    let mut ctx = Ctx { loc, errs };
    if let Some(g) = &spec.grafana {
        let u = &g.prometheus_url;
        if !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with('$')) {
            ctx.err(
                "grafana.prometheus_url",
                format!("`{u}` is not an http(s) URL or a $VARIABLE"),
            );
        }
        if !g.dashboards_path.starts_with('/') {
            ctx.err(
                "grafana.dashboards_path",
                "an absolute path (where Grafana reads the dashboard files)",
            );
        }
        if let Err(e) = Duration::parse(&g.refresh) {
            ctx.err("grafana.refresh", e.to_string());
        }
    } else if !spec.dashboards.is_empty() {
        ctx.err(
            "dashboards",
            "dashboards need a `grafana` section (datasource URL, dashboards path)",
        );
    }
    let mut out = Vec::new();
    let mut uids = BTreeSet::new();
    for (di, d) in spec.dashboards.iter().enumerate() {
        let dp = format!("dashboards[{di}]");
        let uid = format!("{UID_PREFIX}{}", d.id);
        if !is_slug(&d.id) {
            ctx.err(
                &format!("{dp}.id"),
                format!(
                    "`{}` is not a dashboard id (lowercase words joined by -)",
                    d.id
                ),
            );
            continue;
        }
        if uid.len() > 40 {
            ctx.err(
                &format!("{dp}.id"),
                format!("uid `{uid}` is longer than Grafana's 40 characters"),
            );
        }
        if !uids.insert(uid.clone()) {
            ctx.err(
                &format!("{dp}.id"),
                format!("duplicate dashboard `{}`", d.id),
            );
        }
        let vars = d
            .variables
            .clone()
            .unwrap_or_else(|| FILTER_VARIABLES.iter().map(|s| s.to_string()).collect());
        for (i, v) in vars.iter().enumerate() {
            if !FILTER_VARIABLES.contains(&v.as_str()) {
                ctx.err(
                    &format!("{dp}.variables[{i}]"),
                    format!("unknown variable `{v}` ({})", FILTER_VARIABLES.join(", ")),
                );
            }
        }
        let time_from = d.time_from.clone().unwrap_or_else(|| "6h".into());
        if let Err(e) = Duration::parse(&time_from) {
            ctx.err(&format!("{dp}.time_from"), e.to_string());
        }
        let mut panels = Vec::new();
        let mut ids = BTreeSet::new();
        for (pi, p) in d.panels.iter().enumerate() {
            let pf = format!("{dp}.panels[{pi}]");
            if !ids.insert(p.id.clone()) {
                ctx.err(
                    &format!("{pf}.id"),
                    format!("duplicate panel `{}` in dashboard `{}`", p.id, d.id),
                );
                continue;
            }
            if let Some(pm) = panel(m, &mut ctx, d, &vars, p, &pf) {
                panels.push(pm);
            }
        }
        out.push(DashboardM {
            id: d.id.clone(),
            uid,
            title: d.title.clone(),
            description: d.description.clone(),
            tags: d.tags.clone(),
            variables: vars,
            time_from,
            panels,
        });
    }
    (spec.grafana.clone(), out)
}

// ------------------------------------------------------------------------------- rendering

fn ds() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn variable(name: &str, vars: &[String]) -> Value {
    // Each variable is narrowed by the ones before it.
    let idx = vars.iter().position(|v| v == name).unwrap_or(0);
    let narrowing: Vec<String> = vars[..idx]
        .iter()
        .map(|v| format!("{v}=~\"${v}\""))
        .collect();
    let sel = if narrowing.is_empty() {
        "chainwatch_source_up".to_string()
    } else {
        format!("chainwatch_source_up{{{}}}", narrowing.join(", "))
    };
    let q = format!("label_values({sel}, {name})");
    let mut label = name.to_string();
    label[..1].make_ascii_uppercase();
    json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": ds(),
        "query": q,
        "definition": q,
        "refresh": 2,
        "sort": 1,
        "multi": true,
        "includeAll": true,
        "allValue": ".*",
        "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "hide": 0
    })
}

fn render_panel(p: &PanelM, id: u32, x: u32, y: u32) -> Value {
    let instant = p.kind == "table";
    let targets: Vec<Value> = p
        .queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let mut t = json!({
                "refId": ref_id(i),
                "datasource": ds(),
                "expr": q.expr,
                "legendFormat": q.legend,
                "range": !instant,
                "instant": instant,
            });
            if instant {
                t["format"] = json!("table");
            }
            t
        })
        .collect();
    let steps: Vec<Value> = steps(&p.lines)
        .into_iter()
        .map(|(v, c)| json!({"color": c, "value": v}))
        .collect();
    let mut defaults = json!({
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": if p.kind == "timeseries" { "palette-classic" } else { "thresholds" }},
    });
    if let Some(u) = &p.unit {
        defaults["unit"] = json!(u);
    }
    if let Some(v) = p.min {
        defaults["min"] = json!(v);
    }
    if let Some(v) = p.max {
        defaults["max"] = json!(v);
    }
    if !p.mappings.is_empty() {
        let mut opts = serde_json::Map::new();
        for (i, (v, text, color)) in p.mappings.iter().enumerate() {
            opts.insert(
                v.to_string(),
                json!({"text": text, "color": color, "index": i}),
            );
        }
        defaults["mappings"] = json!([{"type": "value", "options": opts}]);
        defaults["color"] = json!({"mode": "thresholds"});
    }
    match p.kind.as_str() {
        "timeseries" => {
            defaults["custom"] = json!({
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 0,
                "showPoints": "never",
                "spanNulls": false,
                "thresholdsStyle": {"mode": if p.lines.is_empty() { "off" } else { "line" }},
            });
        }
        "state-timeline" => {
            defaults["custom"] = json!({"fillOpacity": 80, "lineWidth": 0});
        }
        "table" => {
            defaults["custom"] = json!({"align": "auto", "cellOptions": {"type": "auto"}});
        }
        _ => {}
    }
    let reduce = json!({"calcs": ["lastNotNull"], "fields": "", "values": false});
    let legend =
        json!({"showLegend": true, "displayMode": "list", "placement": "bottom", "calcs": []});
    let options = match p.kind.as_str() {
        "timeseries" => json!({"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}),
        "stat" => {
            json!({"reduceOptions": reduce, "colorMode": "value", "graphMode": "area", "justifyMode": "auto", "orientation": "auto", "textMode": "auto"})
        }
        "gauge" => {
            json!({"reduceOptions": reduce, "showThresholdLabels": false, "showThresholdMarkers": true})
        }
        "bargauge" => {
            json!({"reduceOptions": reduce, "displayMode": "gradient", "orientation": "horizontal", "showUnfilled": true})
        }
        "state-timeline" => {
            json!({"legend": legend, "mergeValues": true, "showValue": "auto", "alignValue": "left", "rowHeight": 0.9, "tooltip": {"mode": "single", "sort": "none"}})
        }
        _ => {
            json!({"showHeader": true, "cellHeight": "sm", "footer": {"show": false, "reducer": ["sum"], "fields": ""}})
        }
    };
    let mut v = json!({
        "id": id,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": ds(),
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    });
    if p.kind == "table" {
        let mut rename = serde_json::Map::new();
        for (i, q) in p.queries.iter().enumerate() {
            let key = if p.queries.len() == 1 {
                "Value".to_string()
            } else {
                format!("Value #{}", ref_id(i))
            };
            rename.insert(key, json!(q.legend));
        }
        let mut tr = vec![
            json!({"id": "merge", "options": {}}),
            json!({"id": "organize", "options": {"excludeByName": {"Time": true, "__name__": true, "job": true, "instance": true}, "renameByName": rename}}),
        ];
        if let Some(s) = &p.sort_by {
            tr.push(json!({"id": "sortBy", "options": {"fields": {}, "sort": [{"field": s, "desc": true}]}}));
        }
        v["transformations"] = json!(tr);
    }
    v
}

fn ref_id(i: usize) -> String {
    ((b'A' + (i as u8 % 26)) as char).to_string()
}

pub fn render_dashboard(g: &spec::Grafana, d: &DashboardM) -> String {
    let mut panels = Vec::new();
    let (mut x, mut y, mut row_h, mut id) = (0u32, 0u32, 0u32, 1u32);
    for p in &d.panels {
        if let Some(r) = &p.row {
            if x > 0 {
                y += row_h;
                x = 0;
                row_h = 0;
            }
            panels.push(json!({"id": id, "type": "row", "title": r, "collapsed": false, "panels": [], "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}));
            id += 1;
            y += 1;
        }
        if x + p.width > 24 {
            y += row_h;
            x = 0;
            row_h = 0;
        }
        panels.push(render_panel(p, id, x, y));
        id += 1;
        x += p.width;
        row_h = row_h.max(p.height);
    }
    let mut templating = vec![json!({
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": false,
        "multi": false,
        "options": [],
        "refresh": 1,
        "regex": ""
    })];
    for v in &d.variables {
        templating.push(variable(v, &d.variables));
    }
    let mut tags = vec![json!("chainwatch")];
    tags.extend(d.tags.iter().map(|t| json!(t)));
    let dash = json!({
        "uid": d.uid,
        "title": d.title,
        "description": format!("Generated by chainwatch-rulegen from thresholds.yaml: do not edit. {}", crate::render::one_line(&d.description)),
        "tags": tags,
        "editable": false,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "browser",
        "refresh": g.refresh,
        "time": {"from": format!("now-{}", d.time_from), "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": false,
        "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard"
        }]},
        "links": [{"title": "chainwatch", "type": "dashboards", "tags": ["chainwatch"], "asDropdown": true, "includeVars": true, "keepTime": true, "icon": "external link", "targetBlank": false, "tooltip": "", "url": ""}],
        "templating": {"list": templating},
        "panels": panels,
    });
    serde_json::to_string_pretty(&dash).expect("json") + "\n"
}

pub fn render(m: &Model) -> crate::Files {
    let mut files = crate::Files::new();
    let Some(g) = &m.grafana else {
        return files;
    };
    for d in &m.dashboards {
        files.insert(
            format!("{DASHBOARD_DIR}/{}.json", d.id),
            render_dashboard(g, d),
        );
    }
    let q = |s: &str| serde_json::to_string(s).expect("string");
    files.insert(
        DATASOURCE_PATH.into(),
        format!(
            "# Generated by chainwatch-rulegen from thresholds.yaml: do not edit.\n\
             # The Prometheus datasource of the chainwatch dashboards (`grafana.prometheus_url`; Grafana\n\
             # expands $VARIABLES from its environment here).\n\
             apiVersion: 1\n\
             datasources:\n\
             \x20 - name: Prometheus\n\
             \x20   uid: {}\n\
             \x20   type: prometheus\n\
             \x20   access: proxy\n\
             \x20   url: {}\n\
             \x20   isDefault: true\n\
             \x20   editable: false\n\
             \x20   jsonData:\n\
             \x20     timeInterval: {}\n",
            q(DATASOURCE_UID),
            q(&g.prometheus_url),
            m.scrape_interval
        ),
    );
    files.insert(
        PROVIDER_PATH.into(),
        format!(
            "# Generated by chainwatch-rulegen from thresholds.yaml: do not edit.\n\
             # Loads grafana/dashboards/*.json, mounted or copied at `grafana.dashboards_path`.\n\
             apiVersion: 1\n\
             providers:\n\
             \x20 - name: chainwatch\n\
             \x20   folder: {}\n\
             \x20   type: file\n\
             \x20   disableDeletion: true\n\
             \x20   allowUiUpdates: false\n\
             \x20   updateIntervalSeconds: 10\n\
             \x20   options:\n\
             \x20     path: {}\n\
             \x20     foldersFromFilesStructure: false\n",
            q(&g.folder),
            q(&g.dashboards_path)
        ),
    );
    files
}

/// For the runbook: the panels that draw an alert's threshold.
pub fn panels_drawing<'a>(m: &'a Model, alert: &str) -> Vec<(&'a DashboardM, &'a PanelM)> {
    let mut v = Vec::new();
    for d in &m.dashboards {
        for p in &d.panels {
            if p.lines.iter().any(|l| l.alert == alert) {
                v.push((d, p));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(m: &str) -> Vec<(String, String)> {
        if m.starts_with("chain_") || m.contains(':') {
            vec![
                ("network".into(), "$network".into()),
                ("node".into(), "$node".into()),
            ]
        } else {
            Vec::new()
        }
    }

    #[test]
    fn inject_adds_filters_to_every_selector_only() {
        assert_eq!(
            inject("sum by (node) (rate(chain_peers_total[$__rate_interval]))", &f),
            "sum by (node) (rate(chain_peers_total{network=~\"$network\", node=~\"$node\"}[$__rate_interval]))"
        );
        assert_eq!(
            inject("chain_x{engine=\"rust\", node=\"a\"} / node:y:z", &f),
            "chain_x{network=~\"$network\", engine=\"rust\", node=\"a\"} / node:y:z{network=~\"$network\", node=~\"$node\"}"
        );
        // Strings, numbers, functions and label names are left alone.
        assert_eq!(
            inject("label_replace(chain_a{}, \"chain_b\", \"x\", \"\", \"\") * 1e3", &f),
            "label_replace(chain_a{network=~\"$network\", node=~\"$node\"}, \"chain_b\", \"x\", \"\", \"\") * 1e3"
        );
    }

    #[test]
    fn substitute_knows_grafana_and_dashboard_variables() {
        let vars = vec!["network".to_string()];
        assert_eq!(
            substitute("rate(x{network=~\"$network\"}[$__rate_interval])", &vars).unwrap(),
            "rate(x{network=~\"placeholder\"}[1m])"
        );
        assert!(substitute("x{a=\"$cluster\"}", &vars).is_err());
    }

    fn line(op: Op, value: f64, level: &str) -> Line {
        Line {
            alert: "A".into(),
            op,
            value,
            level: level.into(),
            text: String::new(),
        }
    }

    #[test]
    fn steps_colour_each_region_by_the_most_urgent_alert_that_holds() {
        let s = steps(&[line(Op::Gt, 0.05, "warning"), line(Op::Gt, 0.2, "critical")]);
        assert_eq!(
            s,
            vec![
                (None, "green".into()),
                (Some(0.05), "orange".into()),
                (Some(0.2), "red".into())
            ]
        );
        let s = steps(&[line(Op::Lt, 0.95, "warning")]);
        assert_eq!(
            s,
            vec![(None, "orange".into()), (Some(0.95), "green".into())]
        );
        let s = steps(&[line(Op::Eq, 0.0, "critical")]);
        assert_eq!(
            s,
            vec![
                (None, "green".into()),
                (Some(0.0), "red".into()),
                (Some(1.0), "green".into())
            ]
        );
    }
}
