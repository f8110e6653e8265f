//! Grafana: the provisioning section, the dashboards and their panels. A panel query is PromQL
//! with Grafana variables, an alert's measured value (`alert: X`, the very expression X
//! compares) or a state metric (`state: m`); every selector of a query gets the dashboard's
//! filters for the labels its series carry, and the thresholds of the alerts a panel concerns
//! become its lines, so one number in thresholds.yaml moves the rule, its test and the line.

use std::collections::{BTreeMap, BTreeSet};

use chainwatch_catalog::{Kind, CONSTANT_LABELS};
use chainwatch_duration::Duration;

use crate::conventions::{self, MAX_UID_LEN};
use crate::model::{
    AlertM, DashboardM, GrafanaM, Labels, Line, Measure, Model, PanelM, QueryM, Scope,
};
use crate::promql::{self, grafana};
use crate::spec::v1::{Dashboard, Panel, Query};
use crate::spec::Spec;

use super::ctx::Ctx;
use super::gate_panels;
use super::selectors::{series_labels, unknown_metric};

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

/// The `grafana` section and every dashboard.
pub fn grafana(spec: &Spec, m: &Model, cx: &mut Ctx) -> (Option<GrafanaM>, Vec<DashboardM>) {
    if let Some(g) = &spec.grafana {
        let u = &g.prometheus_url;
        if !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with('$')) {
            cx.err(
                "grafana.prometheus_url",
                format!("`{u}` is not an http(s) URL or a $VARIABLE"),
            );
        }
        if !g.dashboards_path.starts_with('/') {
            cx.err(
                "grafana.dashboards_path",
                "an absolute path (where Grafana reads the dashboard files)",
            );
        }
        if let Err(e) = Duration::parse(&g.refresh) {
            cx.err("grafana.refresh", e.to_string());
        }
    } else if !spec.dashboards.is_empty() {
        cx.err(
            "dashboards",
            "dashboards need a `grafana` section (datasource URL, dashboards path)",
        );
    }
    let mut out = Vec::new();
    let mut uids = BTreeSet::new();
    for (di, d) in spec.dashboards.iter().enumerate() {
        if let Some(dm) = dashboard(m, cx, &mut uids, &format!("dashboards[{di}]"), d) {
            out.push(dm);
        }
    }
    let provisioning = spec.grafana.as_ref().map(|g| GrafanaM {
        prometheus_url: g.prometheus_url.clone(),
        dashboards_path: g.dashboards_path.clone(),
        folder: g.folder.clone(),
        refresh: g.refresh.clone(),
    });
    (provisioning, out)
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn dashboard(
    m: &Model,
    cx: &mut Ctx,
    uids: &mut BTreeSet<String>,
    dp: &str,
    d: &Dashboard,
) -> Option<DashboardM> {
    let uid = conventions::dashboard_uid(&d.id);
    if !is_slug(&d.id) {
        cx.err(
            &format!("{dp}.id"),
            format!(
                "`{}` is not a dashboard id (lowercase words joined by -)",
                d.id
            ),
        );
        return None;
    }
    if uid.len() > MAX_UID_LEN {
        cx.err(
            &format!("{dp}.id"),
            format!("uid `{uid}` is longer than Grafana's {MAX_UID_LEN} characters"),
        );
    }
    if !uids.insert(uid.clone()) {
        cx.err(
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
            cx.err(
                &format!("{dp}.variables[{i}]"),
                format!("unknown variable `{v}` ({})", FILTER_VARIABLES.join(", ")),
            );
        }
    }
    let time_from = d.time_from.clone().unwrap_or_else(|| "6h".into());
    if let Err(e) = Duration::parse(&time_from) {
        cx.err(&format!("{dp}.time_from"), e.to_string());
    }
    let mut panels = Vec::new();
    let mut ids = BTreeSet::new();
    for (pi, p) in d.panels.iter().enumerate() {
        let pf = format!("{dp}.panels[{pi}]");
        if !ids.insert(p.id.clone()) {
            cx.err(
                &format!("{pf}.id"),
                format!("duplicate panel `{}` in dashboard `{}`", p.id, d.id),
            );
            continue;
        }
        if let Some(pm) = panel(m, cx, d, &vars, p, &pf) {
            panels.push(pm);
        }
    }
    Some(DashboardM {
        id: d.id.clone(),
        uid,
        title: d.title.clone(),
        description: d.description.clone(),
        tags: d.tags.clone(),
        variables: vars,
        time_from,
        panels,
    })
}

/// What a panel's queries are checked against: the model, the dashboard's variables, the
/// panel's filters and type.
#[derive(Clone, Copy)]
struct PanelEnv<'a> {
    m: &'a Model,
    vars: &'a [String],
    filter: &'a [String],
    kind: &'a str,
}

/// What a panel's queries found: the series they select, the alerts they plot (and those
/// alerts' measures), the value mappings of a state query.
#[derive(Default)]
struct Plotted {
    uses: BTreeSet<String>,
    alerts: Vec<String>,
    measures: Vec<String>,
    mappings: Vec<(u32, String, String)>,
}

fn panel(
    m: &Model,
    cx: &mut Ctx,
    d: &Dashboard,
    vars: &[String],
    p: &Panel,
    field: &str,
) -> Option<PanelM> {
    let mut ok = true;
    if !is_slug(&p.id) {
        cx.err(
            &format!("{field}.id"),
            format!("`{}` is not a panel id (lowercase words joined by -)", p.id),
        );
        ok = false;
    }
    let kind = p.kind.clone().unwrap_or_else(|| "timeseries".into());
    if !PANEL_KINDS.contains(&kind.as_str()) {
        cx.err(
            &format!("{field}.type"),
            format!("unknown panel type `{kind}` ({})", PANEL_KINDS.join(", ")),
        );
        ok = false;
    }
    cx.check_criteria(&p.criteria, &format!("{field}.criteria"));
    if let Some(u) = &p.unit {
        if !UNITS.contains(&u.as_str()) {
            cx.err(
                &format!("{field}.unit"),
                format!("unknown unit `{u}` ({})", UNITS.join(", ")),
            );
        }
    }
    let width = p.width.unwrap_or(12);
    let height = p.height.unwrap_or(8);
    if !(1..=24).contains(&width) {
        cx.err(&format!("{field}.width"), "a width is 1 to 24 grid columns");
    }
    if !(2..=30).contains(&height) {
        cx.err(&format!("{field}.height"), "a height is 2 to 30 grid rows");
    }
    let filter: Vec<String> = match &p.filter {
        Some(f) => {
            for (i, v) in f.iter().enumerate() {
                if !vars.contains(v) {
                    cx.err(
                        &format!("{field}.filter[{i}]"),
                        format!("`{v}` is not a variable of dashboard `{}`", d.id),
                    );
                }
            }
            f.clone()
        }
        None => vars.to_vec(),
    };
    let gate = match gate_panels::gate_of(m, cx, p, field) {
        Ok(g) => g,
        Err(()) => {
            ok = false;
            None
        }
    };
    let spec_queries = match gate {
        Some(g) => gate_panels::queries(g),
        None => p.queries.clone(),
    };
    if spec_queries.is_empty() && p.gate.is_none() {
        cx.err(
            &format!("{field}.queries"),
            "a panel needs at least one query",
        );
        ok = false;
    }
    let mut plotted = Plotted::default();
    let mut queries = Vec::new();
    for (qi, q) in spec_queries.iter().enumerate() {
        let qf = format!("{field}.queries[{qi}]");
        let panel = PanelEnv {
            m,
            vars,
            filter: &filter,
            kind: &kind,
        };
        let Some(query) = query(&panel, cx, q, &qf, &mut plotted) else {
            ok = false;
            continue;
        };
        queries.push(query);
    }
    let (listed, lines) = threshold_lines(m, cx, p, field, &plotted, &mut ok);
    if !ok {
        return None;
    }
    let (title, description, links) = match gate {
        Some(g) => (
            gate_panels::title(g, p),
            format!(
                "{}\n\n{}",
                gate_panels::description(g),
                description(m, d, p, &listed, &lines)
            ),
            gate_panels::links(g),
        ),
        None => (
            p.title.clone(),
            description(m, d, p, &listed, &lines),
            Vec::new(),
        ),
    };
    Some(PanelM {
        id: conventions::panel_id(&d.id, &p.id),
        title,
        description,
        kind,
        criteria: match gate {
            Some(g) if p.criteria.is_empty() => g.criteria.clone(),
            _ => p.criteria.clone(),
        },
        row: p.row.clone(),
        unit: p.unit.clone(),
        min: p.min,
        max: p.max,
        width,
        height,
        queries,
        lines,
        uses: plotted.uses.into_iter().collect(),
        sort_by: p.sort_by.clone(),
        mappings: plotted.mappings,
        links,
    })
}

/// One query: its PromQL (from `expr`, `alert` or `state`), parsed with the variables replaced,
/// every selector known, the dashboard's filters added, the legend's labels on its result.
fn query(
    panel: &PanelEnv,
    cx: &mut Ctx,
    q: &Query,
    qf: &str,
    plotted: &mut Plotted,
) -> Option<QueryM> {
    let PanelEnv {
        m,
        vars,
        filter,
        kind,
    } = *panel;
    let (raw, origin, efield) = query_source(m, cx, q, qf, plotted)?;
    let parsed = match grafana::substitute(&raw, vars)
        .and_then(|s| promql::parse(&s).map_err(|e| format!("does not parse: {}", e.trim())))
    {
        Ok(e) => e,
        Err(e) => {
            cx.err(&efield, e);
            return None;
        }
    };
    let names = query_metrics(m, cx, &parsed, &efield)?;
    let catalog = &cx.catalog;
    let fil = |metric: &str| -> Vec<(String, String)> {
        if !names.contains(metric) {
            return Vec::new();
        }
        let carried = series_labels(catalog, &m.records, metric).unwrap_or_default();
        filter
            .iter()
            .filter(|v| carried.contains(*v))
            .map(|v| (v.clone(), format!("${v}")))
            .collect()
    };
    let expr = grafana::inject(&raw, &fil);
    let reparsed = grafana::substitute(&expr, vars)
        .and_then(|s| promql::parse(&s).map_err(|e| e.trim().to_string()));
    let reparsed = match reparsed {
        Ok(e) => e,
        Err(e) => {
            cx.err(
                &efield,
                format!("adding the dashboard filters broke the query: {e}"),
            );
            return None;
        }
    };
    let catalog = &cx.catalog;
    let leaf = |vs: &promql_parser::parser::VectorSelector| {
        vs.name
            .as_deref()
            .and_then(|n| series_labels(catalog, &m.records, n))
    };
    let out = promql::out_labels(&reparsed, &leaf).unwrap_or_default();
    let legend = legend(cx, q, qf, kind, &out);
    plotted.uses.extend(names);
    Some(QueryM {
        expr,
        legend,
        origin,
    })
}

/// The PromQL of a query as written, where it came from (`alert X`, `state m`), and the field
/// to blame for it.
fn query_source(
    m: &Model,
    cx: &mut Ctx,
    q: &Query,
    qf: &str,
    plotted: &mut Plotted,
) -> Option<(String, String, String)> {
    let set = [q.expr.is_some(), q.alert.is_some(), q.state.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if set != 1 {
        cx.err(qf, "set exactly one of `expr`, `alert`, `state`");
        return None;
    }
    if let Some(e) = &q.expr {
        return Some((e.trim().to_string(), String::new(), format!("{qf}.expr")));
    }
    if let Some(name) = &q.alert {
        let Some(a) = m.alerts.iter().find(|a| &a.name == name) else {
            cx.err(&format!("{qf}.alert"), format!("unknown alert `{name}`"));
            return None;
        };
        let Some(e) = alert_measure(a) else {
            cx.err(
                &format!("{qf}.alert"),
                format!(
                    "{name} is a condition (`{}`) with no value to plot",
                    a.variants[0].measure.kind()
                ),
            );
            return None;
        };
        plotted.alerts.push(name.clone());
        plotted.measures.push(e.clone());
        return Some((e, format!("alert {name}"), format!("{qf}.alert")));
    }
    let name = q.state.as_ref().expect("one is set");
    match cx.catalog.lookup(name).map(|x| x.kind) {
        Some(Kind::State { label, states }) => {
            if !plotted.mappings.is_empty() {
                cx.err(&format!("{qf}.state"), "one state query per panel");
            }
            for (i, s) in states.iter().enumerate() {
                plotted
                    .mappings
                    .push((i as u32 + 1, s.to_string(), state_color(s, i)));
            }
            Some((
                grafana::state_expr(name, label, states),
                format!("state {name}"),
                format!("{qf}.state"),
            ))
        }
        _ => {
            cx.err(
                &format!("{qf}.state"),
                format!("`{name}` is not a state metric of the catalog or declared for this file"),
            );
            None
        }
    }
}

/// The metrics and recording rules a query selects; each must exist (and `up` is not shown).
fn query_metrics(
    m: &Model,
    cx: &mut Ctx,
    parsed: &promql_parser::parser::Expr,
    efield: &str,
) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for vs in promql::selectors(parsed) {
        let Some(n) = vs.name.clone() else {
            cx.err(efield, "every selector must name a metric");
            return None;
        };
        if n == "up" {
            cx.err(
                efield,
                "unknown metric `up`: panels plot catalog metrics and recording rules",
            );
            return None;
        }
        if series_labels(&cx.catalog, &m.records, &n).is_none() {
            let msg = unknown_metric(&cx.catalog, &m.records, &n, false);
            cx.err(efield, msg);
            return None;
        }
        names.insert(n);
    }
    if names.is_empty() {
        cx.err(efield, "the query selects no metric");
        return None;
    }
    Some(names)
}

/// The legend as written (its labels must be on the result), or one made from the result's
/// labels; a table column needs its name.
fn legend(cx: &mut Ctx, q: &Query, qf: &str, kind: &str, out: &Labels) -> String {
    let Some(l) = &q.legend else {
        if kind == "table" {
            cx.err(qf, "a table query needs a `legend`: it names the column");
        }
        return default_legend(out);
    };
    let mut rest = l.as_str();
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let j = after.find("}}").unwrap_or(after.len());
        let lab = after[..j].trim();
        if !out.contains(lab) {
            let have: Vec<&str> = out.iter().map(|s| s.as_str()).collect();
            cx.err(
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

fn state_color(s: &str, i: usize) -> String {
    match s {
        "healthy" => "green".into(),
        "degraded" => "orange".into(),
        "critical" => "red".into(),
        _ => ["blue", "purple", "yellow", "green", "orange"][i % 5].into(),
    }
}

/// The plotted measure of an alert (its value, before the comparison).
fn alert_measure(a: &AlertM) -> Option<String> {
    let v = &a.variants[0];
    if v.measure.is_condition() || v.threshold.is_none() {
        return None;
    }
    Some(promql::measure_expr(&v.measure, &Scope::All))
}

/// The alerts whose thresholds the panel draws (those it plots, then those it lists, each of
/// which it must plot), and their lines.
fn threshold_lines(
    m: &Model,
    cx: &mut Ctx,
    p: &Panel,
    field: &str,
    plotted: &Plotted,
    ok: &mut bool,
) -> (Vec<String>, Vec<Line>) {
    let mut listed: Vec<String> = plotted.alerts.clone();
    for (i, t) in p.thresholds.iter().enumerate() {
        let tf = format!("{field}.thresholds[{i}]");
        let Some(a) = m.alerts.iter().find(|a| &a.name == t) else {
            cx.err(&tf, format!("unknown alert `{t}`"));
            *ok = false;
            continue;
        };
        let Some(measure) = alert_measure(a) else {
            cx.err(&tf, format!("{t} has no threshold to draw"));
            *ok = false;
            continue;
        };
        let gauge = match &a.variants[0].measure {
            Measure::Value {
                sel, func: None, ..
            } => plotted.uses.contains(&sel.name),
            _ => false,
        };
        let same = plotted.measures.contains(&measure)
            || m.records.iter().any(|r| {
                (r.expr == measure || r.name == measure) && plotted.uses.contains(&r.name)
            });
        if !(gauge || same) {
            cx.err(
                &tf,
                format!(
                    "the panel does not plot what {t} measures: add `- alert: {t}` to its queries"
                ),
            );
            *ok = false;
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
    (listed, lines)
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

/// The panel's description: its own words, the lines it draws, its criteria and its id.
fn description(m: &Model, d: &Dashboard, p: &Panel, listed: &[String], lines: &[Line]) -> String {
    let mut description = p.description.trim().to_string();
    if !lines.is_empty() {
        let mut by_alert: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for l in lines {
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
    description.push_str(&format!(
        "(chainwatch panel {})",
        conventions::panel_id(&d.id, &p.id)
    ));
    description
}
