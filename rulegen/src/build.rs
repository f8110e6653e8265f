//! Step 1 of generation: validate the spec (plus an optional overlay) and map it into the model.
//! Every error names file, line, column and field; all errors are collected, none is written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chainwatch_catalog::{lookup, resolve_series, Kind, CONSTANT_LABELS};
use chainwatch_yaml::{Positions, SpecError};
use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;

use crate::model::*;
use crate::promql::{self, Labels};
use crate::spec::{self, Spec};
use chainwatch_duration::Duration;

#[derive(Debug, Clone)]
pub struct SeverityM {
    pub name: String,
    pub level: String,
    pub response_time: String,
    pub description: String,
    pub receivers: Vec<String>,
}

/// One rule of an alert: the alert for all chains, or for one chain, or for the rest.
#[derive(Debug, Clone)]
pub struct Variant {
    pub scope: Scope,
    /// `chain` label value used by the generated tests.
    pub test_chain: String,
    pub measure: Measure,
    pub op: Option<Op>,
    pub threshold: Option<f64>,
    pub for_: Duration,
    pub expr: String,
    /// Human text of the condition, e.g. `chain_peers < 3 for 5m`.
    pub threshold_text: String,
    pub out_labels: Labels,
}

#[derive(Debug, Clone)]
pub struct AlertM {
    pub name: String,
    pub criteria: Vec<String>,
    pub group: String,
    pub measures: String,
    pub severity: String,
    pub summary: String,
    pub description: String,
    pub runbook_url: String,
    /// Key into `runbooks` (the first checks).
    pub runbook: String,
    /// Label `alertgroup`: the more urgent alert of a group mutes the milder ones.
    pub alertgroup: Option<String>,
    pub labels: LabelMap,
    pub variants: Vec<Variant>,
    /// The one rule: the variants' expressions joined with `or` (each is scoped to its chains).
    pub expr: String,
    pub for_: Duration,
    pub threshold_text: String,
    /// Field path of the alert in thresholds.yaml (for errors found later).
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub criteria: Vec<String>,
    pub group: String,
    pub measures: String,
    pub labels: LabelMap,
    pub measure: Measure,
    pub expr: String,
    pub out_labels: Labels,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct CondM {
    pub name: String,
    pub measure: Measure,
    pub op: Op,
    pub threshold: f64,
    pub throughout: Duration,
}

#[derive(Debug, Clone)]
pub struct GateM {
    pub name: String,
    pub criteria: Vec<String>,
    pub group: String,
    pub source: String,
    pub stage: String,
    pub window: Duration,
    pub by: Vec<String>,
    pub proceed: Vec<CondM>,
    pub rollback: Vec<CondM>,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
    pub criteria: Vec<String>,
    pub severities: BTreeMap<String, SeverityM>,
    pub alerts: Vec<AlertM>,
    pub records: Vec<Record>,
    pub gates: Vec<GateM>,
    pub not_measurable: Vec<spec::NotMeasurable>,
    pub chains: BTreeMap<String, Duration>,
    pub criteria_text: BTreeMap<String, spec::CriterionText>,
    pub runbooks: BTreeMap<String, spec::Runbook>,
    /// `defaults.runbook_url`: the runbook document the alerts link to.
    pub runbook_base: String,
    pub alerting: Option<crate::alerting::Alerting>,
    pub grafana: Option<spec::Grafana>,
    pub dashboards: Vec<crate::dashboards::DashboardM>,
}

/// Where errors point: the base file, or the overlay for fields the overlay set.
pub struct Locator {
    base: Positions,
    overlay: Option<Positions>,
    /// base field path → overlay field path.
    redirect: HashMap<String, String>,
}

impl Locator {
    pub fn new(base: Positions) -> Locator {
        Locator {
            base,
            overlay: None,
            redirect: HashMap::new(),
        }
    }

    pub fn error(&self, field: &str, msg: impl Into<String>) -> SpecError {
        if let Some(ov) = &self.overlay {
            let mut best: Option<(&String, &String)> = None;
            for (k, v) in &self.redirect {
                let prefix_ok = field == k
                    || (field.starts_with(k.as_str())
                        && matches!(field.as_bytes().get(k.len()), Some(b'.') | Some(b'[')));
                if prefix_ok && best.is_none_or(|(bk, _)| k.len() > bk.len()) {
                    best = Some((k, v));
                }
            }
            if let Some((k, v)) = best {
                // An overlay field replaces the base value as a whole: point at it.
                let _ = k;
                return ov.error(v.clone(), msg);
            }
        }
        self.base.error(field.to_string(), msg)
    }
}

/// Load thresholds.yaml (and an overlay) and build the model.
pub fn load(path: &Path, overlay: Option<&Path>) -> Result<(Model, Locator), Vec<SpecError>> {
    let (mut spec, pos): (Spec, Positions) = read_yaml(path)?;
    let mut loc = Locator::new(pos);
    let mut errs = Vec::new();
    if let Some(op) = overlay {
        let (ov, opos): (spec::Overlay, Positions) = read_yaml(op)?;
        // Errors of the overlay itself, and those of what it changed, are reported together.
        if let Err(e) = apply_overlay(&mut spec, &ov, &opos, &mut loc) {
            errs.extend(e);
        }
        loc.overlay = Some(opos);
    }
    match build(&spec, &loc) {
        Ok(m) if errs.is_empty() => Ok((m, loc)),
        Ok(_) => Err(errs),
        Err(e) => {
            errs.extend(e);
            errs.sort_by_key(|x| (x.file.clone(), x.line, x.column));
            errs.dedup();
            Err(errs)
        }
    }
}

fn read_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<(T, Positions), Vec<SpecError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![SpecError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    chainwatch_yaml::from_str(path, &text).map_err(|e| vec![with_nearest_field(e, path, &text)])
}

/// A syntax error has a line but no field: name the last field that parsed before it.
fn with_nearest_field(mut e: SpecError, path: &Path, text: &str) -> SpecError {
    if !e.field.is_empty() || e.line == 0 {
        return e;
    }
    let lines: Vec<&str> = text.lines().collect();
    for keep in (e.line.saturating_sub(25)..e.line).rev() {
        let prefix = lines[..keep.min(lines.len())].join("\n");
        let Ok((v, pos)) = chainwatch_yaml::from_str::<serde_norway::Value>(path, &prefix) else {
            continue;
        };
        let mut paths = Vec::new();
        walk_value(&v, String::new(), &mut paths);
        let best = paths
            .into_iter()
            .map(|p| {
                let x = pos.pos(&p);
                ((x.line, x.column), p)
            })
            .filter(|(lc, _)| *lc <= (e.line, e.column))
            .max();
        if let Some((_, p)) = best {
            e.message = format!("{} (after this field)", e.message);
            e.field = p;
        }
        break;
    }
    e
}

fn walk_value(v: &serde_norway::Value, path: String, out: &mut Vec<String>) {
    match v {
        serde_norway::Value::Mapping(m) => {
            for (k, x) in m {
                let k = match k {
                    serde_norway::Value::String(s) => s.clone(),
                    other => serde_norway::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                let p = if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                };
                out.push(p.clone());
                walk_value(x, p, out);
            }
        }
        serde_norway::Value::Sequence(s) => {
            for (i, x) in s.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.push(p.clone());
                walk_value(x, p, out);
            }
        }
        _ => {}
    }
}

/// Build from text already read (tests render in memory).
pub fn load_str(path: &Path, text: &str) -> Result<(Model, Locator), Vec<SpecError>> {
    let (spec, pos): (Spec, Positions) = chainwatch_yaml::from_str(path, text)
        .map_err(|e| vec![with_nearest_field(e, path, text)])?;
    let loc = Locator::new(pos);
    let m = build(&spec, &loc)?;
    Ok((m, loc))
}

fn window_field(a: &mut spec::Alert) -> Option<(&mut Option<String>, &'static str)> {
    if let Some(q) = a.value.as_mut() {
        return Some((&mut q.window, "value.window"));
    }
    if let Some(q) = a.ratio.as_mut() {
        return Some((&mut q.window, "ratio.window"));
    }
    if let Some(q) = a.fleet_fraction.as_mut() {
        return Some((&mut q.window, "fleet_fraction.window"));
    }
    if let Some(q) = a.quantile.as_mut() {
        return Some((&mut q.window, "quantile.window"));
    }
    None
}

fn apply_overlay(
    spec: &mut Spec,
    ov: &spec::Overlay,
    opos: &Positions,
    loc: &mut Locator,
) -> Result<(), Vec<SpecError>> {
    let mut errs = Vec::new();
    if let Some(v) = ov.version {
        if v != spec.version {
            errs.push(opos.error(
                "version",
                format!(
                    "overlay version {v} does not match thresholds version {}",
                    spec.version
                ),
            ));
        }
    }
    let mut redirect = |b: String, o: String| {
        loc.redirect.insert(b, o);
    };
    if let Some(d) = &ov.defaults {
        let set = |dst: &mut String,
                   src: &Option<String>,
                   name: &str,
                   redirect: &mut dyn FnMut(String, String)| {
            if let Some(v) = src {
                *dst = v.clone();
                redirect(format!("defaults.{name}"), format!("defaults.{name}"));
            }
        };
        set(
            &mut spec.defaults.scrape_interval,
            &d.scrape_interval,
            "scrape_interval",
            &mut redirect,
        );
        set(
            &mut spec.defaults.evaluation_interval,
            &d.evaluation_interval,
            "evaluation_interval",
            &mut redirect,
        );
        set(
            &mut spec.defaults.rate_window,
            &d.rate_window,
            "rate_window",
            &mut redirect,
        );
        set(
            &mut spec.defaults.block_time,
            &d.block_time,
            "block_time",
            &mut redirect,
        );
    }
    for (c, oc) in &ov.chains {
        match spec.chains.get_mut(c) {
            None => errs.push(opos.error(
                format!("chains.{c}"),
                format!("no chain `{c}` in thresholds.yaml"),
            )),
            Some(ch) => {
                if let Some(b) = &oc.block_time {
                    ch.block_time = b.clone();
                    redirect(
                        format!("chains.{c}.block_time"),
                        format!("chains.{c}.block_time"),
                    );
                }
            }
        }
    }
    for (j, item) in ov.alerts.iter().enumerate() {
        let op = format!("alerts[{j}]");
        let Some(name) = &item.name else {
            errs.push(opos.error(
                format!("{op}.name"),
                "an overlay alert needs the `name` of the alert it changes",
            ));
            continue;
        };
        let Some(i) = spec.alerts.iter().position(|a| &a.name == name) else {
            errs.push(opos.error(
                format!("{op}.name"),
                format!("no alert named `{name}` in thresholds.yaml"),
            ));
            continue;
        };
        let a = &mut spec.alerts[i];
        let bp = format!("alerts[{i}]");
        if let Some(t) = item.threshold {
            a.threshold = Some(t);
            redirect(format!("{bp}.threshold"), format!("{op}.threshold"));
        }
        if let Some(f) = &item.for_ {
            a.for_ = Some(f.clone());
            redirect(format!("{bp}.for"), format!("{op}.for"));
        }
        if let Some(w) = &item.window {
            let mut done = false;
            if let Some((field, name)) = window_field(a) {
                *field = Some(w.clone());
                redirect(format!("{bp}.{name}"), format!("{op}.window"));
                done = true;
            } else if let Some(q) = a.no_progress.as_mut() {
                q.window = w.clone();
                redirect(format!("{bp}.no_progress.window"), format!("{op}.window"));
                done = true;
            } else if let Some(q) = a.absence.as_mut() {
                q.lookback = w.clone();
                redirect(format!("{bp}.absence.lookback"), format!("{op}.window"));
                done = true;
            } else if let Some(q) = a.trend.as_mut() {
                q.window = w.clone();
                redirect(format!("{bp}.trend.window"), format!("{op}.window"));
                done = true;
            }
            if !done {
                errs.push(opos.error(
                    format!("{op}.window"),
                    format!("alert `{name}` has no window to change"),
                ));
            }
        }
        for (c, o) in &item.chains {
            let e = a.chains.entry(c.clone()).or_default();
            if o.threshold.is_some() {
                e.threshold = o.threshold;
            }
            redirect(format!("{bp}.chains.{c}"), format!("{op}.chains.{c}"));
        }
    }
    for (j, item) in ov.recording_rules.iter().enumerate() {
        let op = format!("recording_rules[{j}]");
        let Some(name) = &item.record else {
            errs.push(opos.error(
                format!("{op}.record"),
                "an overlay recording rule needs the `record` it changes",
            ));
            continue;
        };
        let Some(i) = spec.recording_rules.iter().position(|r| &r.record == name) else {
            errs.push(opos.error(
                format!("{op}.record"),
                format!("no recording rule `{name}` in thresholds.yaml"),
            ));
            continue;
        };
        let r = &mut spec.recording_rules[i];
        if let Some(w) = &item.window {
            let bp = format!("recording_rules[{i}]");
            if let Some(q) = r.ratio.as_mut() {
                q.window = Some(w.clone());
                redirect(format!("{bp}.ratio.window"), format!("{op}.window"));
            } else if let Some(q) = r.quantile.as_mut() {
                q.window = Some(w.clone());
                redirect(format!("{bp}.quantile.window"), format!("{op}.window"));
            } else if let Some(q) = r.value.as_mut() {
                q.window = Some(w.clone());
                redirect(format!("{bp}.value.window"), format!("{op}.window"));
            } else if let Some(q) = r.time_fraction.as_mut() {
                q.window = w.clone();
                redirect(format!("{bp}.time_fraction.window"), format!("{op}.window"));
            } else {
                errs.push(opos.error(
                    format!("{op}.window"),
                    format!("recording rule `{name}` has no window to change"),
                ));
            }
        }
        if item.threshold.is_some()
            || item.for_.is_some()
            || !item.chains.is_empty()
            || item.name.is_some()
        {
            errs.push(opos.error(op.clone(), "a recording rule has only a `window` to change"));
        }
    }
    for (j, g) in ov.gates.iter().enumerate() {
        let op = format!("gates[{j}]");
        let Some(i) = spec.gates.iter().position(|x| x.name == g.name) else {
            errs.push(opos.error(
                format!("{op}.name"),
                format!("no gate named `{}` in thresholds.yaml", g.name),
            ));
            continue;
        };
        if let Some(w) = &g.window {
            spec.gates[i].window = w.clone();
            redirect(format!("gates[{i}].window"), format!("{op}.window"));
        }
    }
    for (name, r) in &ov.receivers {
        let op = format!("receivers.{name}");
        let Some(base) = spec.receivers.get_mut(name) else {
            errs.push(opos.error(op, format!("no receiver `{name}` in thresholds.yaml")));
            continue;
        };
        if let Some(u) = &r.url {
            base.url = Some(u.clone());
            redirect(format!("{op}.url"), format!("{op}.url"));
        }
        if let Some(f) = &r.secret_file {
            base.secret_file = Some(f.clone());
            redirect(format!("{op}.secret_file"), format!("{op}.secret_file"));
        }
    }
    for (name, t) in &ov.severities {
        let op = format!("severities.{name}");
        let Some(base) = spec.severities.get_mut(name) else {
            errs.push(opos.error(op, format!("no severity `{name}` in thresholds.yaml")));
            continue;
        };
        for (dst, src, f) in [
            (&mut base.group_wait, &t.group_wait, "group_wait"),
            (
                &mut base.group_interval,
                &t.group_interval,
                "group_interval",
            ),
            (
                &mut base.repeat_interval,
                &t.repeat_interval,
                "repeat_interval",
            ),
        ] {
            if let Some(v) = src {
                *dst = Some(v.clone());
                redirect(format!("{op}.{f}"), format!("{op}.{f}"));
            }
        }
    }
    if let Some(oa) = &ov.alertmanager {
        match spec.alertmanager.as_mut() {
            None => errs.push(opos.error(
                "alertmanager",
                "thresholds.yaml has no `alertmanager` section",
            )),
            Some(am) => {
                for (dst, src, f) in [
                    (&mut am.group_wait, &oa.group_wait, "group_wait"),
                    (&mut am.group_interval, &oa.group_interval, "group_interval"),
                    (
                        &mut am.repeat_interval,
                        &oa.repeat_interval,
                        "repeat_interval",
                    ),
                ] {
                    if let Some(v) = src {
                        *dst = v.clone();
                        redirect(format!("alertmanager.{f}"), format!("alertmanager.{f}"));
                    }
                }
                if let Some(v) = &oa.resolve_timeout {
                    am.resolve_timeout = Some(v.clone());
                    redirect(
                        "alertmanager.resolve_timeout".into(),
                        "alertmanager.resolve_timeout".into(),
                    );
                }
                if let Some(oh) = &oa.heartbeat {
                    match am.heartbeat.as_mut() {
                        None => {
                            errs.push(opos.error(
                                "alertmanager.heartbeat",
                                "thresholds.yaml has no heartbeat",
                            ))
                        }
                        Some(h) => {
                            for (dst, src, f) in [
                                (&mut h.group_wait, &oh.group_wait, "group_wait"),
                                (&mut h.group_interval, &oh.group_interval, "group_interval"),
                                (
                                    &mut h.repeat_interval,
                                    &oh.repeat_interval,
                                    "repeat_interval",
                                ),
                            ] {
                                if let Some(v) = src {
                                    *dst = v.clone();
                                    let k = format!("alertmanager.heartbeat.{f}");
                                    redirect(k.clone(), k);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(og) = &ov.grafana {
        match spec.grafana.as_mut() {
            None => errs.push(opos.error("grafana", "thresholds.yaml has no `grafana` section")),
            Some(g) => {
                if let Some(u) = &og.prometheus_url {
                    g.prometheus_url = u.clone();
                    redirect(
                        "grafana.prometheus_url".into(),
                        "grafana.prometheus_url".into(),
                    );
                }
                if let Some(p) = &og.dashboards_path {
                    g.dashboards_path = p.clone();
                    redirect(
                        "grafana.dashboards_path".into(),
                        "grafana.dashboards_path".into(),
                    );
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

struct Kinds<'a> {
    value: Option<&'a spec::ValueQ>,
    ratio: Option<&'a spec::RatioQ>,
    fleet_fraction: Option<&'a spec::FleetFractionQ>,
    quantile: Option<&'a spec::QuantileQ>,
    no_progress: Option<&'a spec::NoProgressQ>,
    absence: Option<&'a spec::AbsenceQ>,
    deviation: Option<&'a spec::DeviationQ>,
    lag: Option<&'a spec::LagQ>,
    trend: Option<&'a spec::TrendQ>,
    time_fraction: Option<&'a spec::TimeFractionQ>,
    raw: Option<&'a spec::RawQ>,
}

macro_rules! kinds {
    ($x:expr) => {
        Kinds {
            value: $x.value.as_ref(),
            ratio: $x.ratio.as_ref(),
            fleet_fraction: $x.fleet_fraction.as_ref(),
            quantile: $x.quantile.as_ref(),
            no_progress: $x.no_progress.as_ref(),
            absence: $x.absence.as_ref(),
            deviation: $x.deviation.as_ref(),
            lag: $x.lag.as_ref(),
            trend: $x.trend.as_ref(),
            time_fraction: $x.time_fraction.as_ref(),
            raw: $x.raw.as_ref(),
        }
    };
}

impl Kinds<'_> {
    fn set(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! chk {
            ($($f:ident),*) => { $( if self.$f.is_some() { v.push(stringify!($f)); } )* };
        }
        chk!(
            value,
            ratio,
            fleet_fraction,
            quantile,
            no_progress,
            absence,
            deviation,
            lag,
            trend,
            time_fraction,
            raw
        );
        v
    }
}

const KIND_NAMES: &str =
    "value, ratio, fleet_fraction, quantile, no_progress, absence, deviation, lag, trend, time_fraction, raw";

struct Builder<'a> {
    loc: &'a Locator,
    errs: Vec<SpecError>,
    rate_window: Duration,
    scrape: Duration,
    default_block_time: Duration,
    chains: BTreeMap<String, Duration>,
    criteria: BTreeSet<String>,
    records: Vec<Record>,
}

/// Labels a series of this name can carry: a catalog metric (or histogram series), a recording rule
/// of `records`, a rollout gate record, or `up`. `None`: no such series.
pub fn series_labels(records: &[Record], name: &str) -> Option<Labels> {
    let mut l: Labels = CONSTANT_LABELS.iter().map(|s| s.to_string()).collect();
    l.insert("job".into());
    l.insert("instance".into());
    if name == "up" {
        return Some(l);
    }
    if name == crate::testgen::GATE_PROCEED || name == crate::testgen::GATE_ROLLBACK {
        return Some(
            ["chain", "network", "region", "gate"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
    }
    if let Some(r) = records.iter().find(|r| r.name == name) {
        let mut l = r.out_labels.clone();
        l.extend(r.labels.keys().cloned());
        return Some(l);
    }
    let m = resolve_series(name)?;
    l.extend(m.all_labels().iter().map(|s| s.to_string()));
    if name.ends_with("_bucket") && name != m.name {
        l.insert("le".into());
    }
    Some(l)
}

fn is_ident(s: &str, extra: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && s.chars()
            .all(|x| x.is_ascii_alphanumeric() || x == '_' || extra.contains(x))
}

impl Builder<'_> {
    fn err(&mut self, field: &str, msg: impl Into<String>) {
        let e = self.loc.error(field, msg);
        self.errs.push(e);
    }

    fn dur(&mut self, text: &str, field: &str) -> Option<Duration> {
        match Duration::parse(text) {
            Ok(d) => Some(d),
            Err(m) => {
                self.err(field, m.to_string());
                None
            }
        }
    }

    /// A window of rate()/increase(): parses and must hold at least two scrapes.
    fn window(&mut self, text: Option<&String>, field: &str) -> Option<Duration> {
        let d = match text {
            Some(t) => self.dur(t, field)?,
            None => self.rate_window,
        };
        if d.ms() < 2 * self.scrape.ms() {
            self.err(field, format!("window {d} is shorter than two scrape intervals ({}): rate() would see one sample", self.scrape));
            return None;
        }
        Some(d)
    }

    fn check_criteria(&mut self, ids: &[String], field: &str) {
        for (i, c) in ids.iter().enumerate() {
            if !self.criteria.contains(c) {
                self.err(
                    &format!("{field}[{i}]"),
                    format!("unknown criterion `{c}` (not in the `criteria` list)"),
                );
            }
        }
    }

    fn allowed_labels(&self, name: &str) -> Option<Labels> {
        series_labels(&self.records, name)
    }

    /// Parse `metric{label="v"}` and resolve it against the catalog and recording rules.
    fn sel(&mut self, text: &str, field: &str, histogram: bool) -> Option<Sel> {
        let parsed = match promql::parse(text) {
            Ok(e) => e,
            Err(m) => {
                self.err(field, format!("`{text}` does not parse: {}", m.trim()));
                return None;
            }
        };
        let Expr::VectorSelector(vs) = parsed else {
            self.err(field, format!("`{text}` must be a metric name with optional label matchers, such as chain_peers{{chain=\"bitcell\"}}"));
            return None;
        };
        let Some(name) = vs.name.clone() else {
            self.err(field, format!("`{text}` names no metric"));
            return None;
        };
        if vs.offset.is_some() || vs.at.is_some() {
            self.err(field, "offset and @ are not allowed here");
            return None;
        }
        let mut buckets = Vec::new();
        let source = if let Some(i) = self.records.iter().position(|r| r.name == name) {
            Source::Record(i)
        } else if name == "up" {
            Source::Up
        } else if let Some(m) = resolve_series(&name) {
            let is_hist = matches!(m.kind, Kind::Histogram { .. });
            if let Kind::Histogram { buckets: b } = m.kind {
                buckets = b.to_vec();
            }
            if histogram {
                if !(is_hist && name == m.name) {
                    self.err(field, format!("`{name}` is not a histogram of the catalog"));
                    return None;
                }
            } else if is_hist && name == m.name {
                self.err(field, format!("`{name}` is a histogram: use the `quantile` kind, or its _sum/_count series"));
                return None;
            }
            Source::Catalog {
                counter: m.kind == Kind::Counter || name != m.name,
                bucket: name.ends_with("_bucket"),
            }
        } else {
            let hint = if name.contains(':') {
                " (recording rules must be defined above their first use)"
            } else {
                ""
            };
            self.err(field, format!("unknown metric `{name}`: not in the catalog, not a recording rule of this file, not `up`{hint}"));
            return None;
        };
        let allowed = self.allowed_labels(&name).unwrap_or_default();
        let mut matchers = Vec::new();
        for m in &vs.matchers.matchers {
            if m.name == "__name__" {
                continue;
            }
            if !allowed.contains(&m.name) {
                let list: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                self.err(
                    field,
                    format!(
                        "`{name}` has no label `{}` (its labels: {})",
                        m.name,
                        list.join(", ")
                    ),
                );
                return None;
            }
            let op = match &m.op {
                MatchOp::Equal => "=",
                MatchOp::NotEqual => "!=",
                MatchOp::Re(_) => "=~",
                MatchOp::NotRe(_) => "!~",
            };
            if op == "=" {
                if let Some(Kind::State { label, states }) = lookup(&name).map(|x| x.kind) {
                    if m.name == label && !states.contains(&m.value.as_str()) {
                        self.err(
                            field,
                            format!(
                                "`{name}` has no {label} `{}` (states: {})",
                                m.value,
                                states.join(", ")
                            ),
                        );
                        return None;
                    }
                }
            }
            matchers.push(Matcher {
                name: m.name.clone(),
                op,
                value: m.value.clone(),
            });
        }
        if !vs.matchers.or_matchers.is_empty() {
            self.err(field, "`or` in label matchers is not supported here");
            return None;
        }
        Some(Sel {
            name,
            matchers,
            source,
            buckets,
        })
    }

    fn op(&mut self, s: &str, field: &str) -> Option<Op> {
        let o = Op::parse(s);
        if o.is_none() {
            self.err(
                field,
                format!("unknown comparison `{s}` (use >, >=, <, <=, == or !=)"),
            );
        }
        o
    }

    fn by(&mut self, by: Option<&Vec<String>>, field: &str, default: &[&str]) -> Vec<String> {
        let v: Vec<String> = match by {
            Some(v) => v.clone(),
            None => default.iter().map(|s| s.to_string()).collect(),
        };
        for (i, l) in v.iter().enumerate() {
            if !is_ident(l, "") {
                self.err(
                    &format!("{field}[{i}]"),
                    format!("`{l}` is not a label name"),
                );
            }
        }
        v
    }

    /// The measure of an alert, recording rule or condition. `block_time` resolves
    /// `Nx block_time` windows.
    fn measure(&mut self, k: &Kinds, p: &str, block_time: Duration) -> Option<Measure> {
        let set = k.set();
        if set.len() != 1 {
            let msg = if set.is_empty() {
                format!("no measure: set exactly one of {KIND_NAMES}")
            } else {
                format!(
                    "more than one measure ({}): set exactly one",
                    set.join(", ")
                )
            };
            self.err(p, msg);
            return None;
        }
        let kind = set[0];
        let f = |x: &str| format!("{p}.{kind}.{x}");
        Some(match kind {
            "value" => {
                let q = k.value?;
                let sel = self.sel(&q.metric, &f("metric"), false)?;
                let func = match (&q.function, &q.window, sel.is_counter()) {
                    (None, None, false) => None,
                    (fun, w, counter) => {
                        let fname = fun.clone().unwrap_or_else(|| {
                            if counter {
                                "increase".into()
                            } else {
                                "delta".into()
                            }
                        });
                        let ok = [
                            "increase",
                            "rate",
                            "delta",
                            "changes",
                            "max_over_time",
                            "min_over_time",
                            "avg_over_time",
                        ];
                        if !ok.contains(&fname.as_str()) {
                            self.err(
                                &f("function"),
                                format!(
                                    "unknown function `{fname}` (use one of {})",
                                    ok.join(", ")
                                ),
                            );
                            return None;
                        }
                        if counter != matches!(fname.as_str(), "increase" | "rate") {
                            self.err(
                                &f("function"),
                                format!(
                                    "`{fname}` does not suit {} ({})",
                                    sel.name,
                                    if counter { "a counter" } else { "a gauge" }
                                ),
                            );
                            return None;
                        }
                        let w = self.window(w.as_ref(), &f("window"))?;
                        Some((fname, w))
                    }
                };
                let agg = match &q.aggregate {
                    None => {
                        if q.by.is_some() {
                            self.err(&f("by"), "`by` needs an `aggregate`");
                        }
                        None
                    }
                    Some(a) => {
                        if !["max", "min", "sum", "avg", "count"].contains(&a.as_str()) {
                            self.err(
                                &f("aggregate"),
                                format!(
                                    "unknown aggregation `{a}` (use max, min, sum, avg or count)"
                                ),
                            );
                            return None;
                        }
                        Some((a.clone(), self.by(q.by.as_ref(), &f("by"), CONSTANT_LABELS)))
                    }
                };
                Measure::Value { sel, func, agg }
            }
            "ratio" => {
                let q = k.ratio?;
                let num = self.sel(&q.numerator, &f("numerator"), false)?;
                let mut den = Vec::new();
                for (i, d) in q.denominator.to_vec().iter().enumerate() {
                    let fp = if q.denominator.is_many() {
                        format!("{}[{i}]", f("denominator"))
                    } else {
                        f("denominator")
                    };
                    den.push(self.sel(d, &fp, false)?);
                }
                let rates = num.is_counter();
                if den.iter().any(|d| d.is_counter() != rates) {
                    self.err(&f("denominator"), "numerator and denominator must both be counters (a ratio of rates) or both gauges");
                    return None;
                }
                let window = if rates {
                    self.window(q.window.as_ref(), &f("window"))?
                } else {
                    if q.window.is_some() {
                        self.err(&f("window"), "a ratio of gauges has no window");
                    }
                    Duration::ZERO
                };
                let by = self.by(q.by.as_ref(), &f("by"), CONSTANT_LABELS);
                Measure::Ratio {
                    num,
                    den,
                    window,
                    by,
                    rates,
                }
            }
            "fleet_fraction" => {
                let q = k.fleet_fraction?;
                let sel = self.sel(&q.metric, &f("metric"), false)?;
                let op = self.op(&q.op, &f("op"))?;
                let window = if sel.is_counter() {
                    Some(self.window(q.window.as_ref(), &f("window"))?)
                } else {
                    if q.window.is_some() {
                        self.err(&f("window"), format!("{} is a gauge: no window", sel.name));
                    }
                    None
                };
                let by = self.by(Some(&q.by), &f("by"), &[]);
                if by.iter().any(|l| l == "node") {
                    self.err(
                        &f("by"),
                        "a fleet fraction counts nodes: do not group by `node`",
                    );
                }
                Measure::FleetFraction {
                    sel,
                    op,
                    value: q.value,
                    window,
                    by,
                }
            }
            "quantile" => {
                let q = k.quantile?;
                let hist = self.sel(&q.histogram, &f("histogram"), true)?;
                if !(q.quantile > 0.0 && q.quantile < 1.0) {
                    self.err(
                        &f("quantile"),
                        format!("quantile {} is not between 0 and 1", q.quantile),
                    );
                }
                let versus = match &q.versus {
                    Some(v) => Some(self.sel(v, &f("versus"), true)?),
                    None => None,
                };
                let window = self.window(q.window.as_ref(), &f("window"))?;
                let by = self.by(q.by.as_ref(), &f("by"), CONSTANT_LABELS);
                Measure::Quantile {
                    hist,
                    q: q.quantile,
                    window,
                    by,
                    versus,
                }
            }
            "no_progress" => {
                let q = k.no_progress?;
                let mut sels = Vec::new();
                for (i, m) in q.metrics.to_vec().iter().enumerate() {
                    let fp = if q.metrics.is_many() {
                        format!("{}[{i}]", f("metrics"))
                    } else {
                        f("metrics")
                    };
                    sels.push(self.sel(m, &fp, false)?);
                }
                let window = match parse_block_times(&q.window) {
                    Some(Ok(k)) => Duration((block_time.ms() as f64 * k).round() as u64),
                    Some(Err(m)) => {
                        self.err(&f("window"), m);
                        return None;
                    }
                    None => self.dur(&q.window, &f("window"))?,
                };
                if window.ms() < 2 * self.scrape.ms() {
                    self.err(
                        &f("window"),
                        format!(
                            "window {window} is shorter than two scrape intervals ({})",
                            self.scrape
                        ),
                    );
                    return None;
                }
                Measure::NoProgress { sels, window }
            }
            "absence" => {
                let q = k.absence?;
                let sel = self.sel(&q.metric, &f("metric"), false)?;
                let lookback = self.dur(&q.lookback, &f("lookback"))?;
                Measure::Absence { sel, lookback }
            }
            "deviation" => {
                let q = k.deviation?;
                if q.terms.is_empty() {
                    self.err(&f("terms"), "no terms");
                    return None;
                }
                let mut terms = Vec::new();
                for (i, t) in q.terms.iter().enumerate() {
                    let s = self.sel(&t.metric, &format!("{}[{i}].metric", f("terms")), false)?;
                    if s.is_counter() {
                        self.err(
                            &format!("{}[{i}].metric", f("terms")),
                            "a deviation is measured on gauges",
                        );
                        return None;
                    }
                    terms.push((s, t.target));
                }
                Measure::Deviation { terms }
            }
            "lag" => {
                let q = k.lag?;
                let sel = self.sel(&q.metric, &f("metric"), false)?;
                let by = self.by(Some(&q.by), &f("by"), &[]);
                Measure::Lag { sel, by }
            }
            "trend" => {
                let q = k.trend?;
                let sel = self.sel(&q.metric, &f("metric"), false)?;
                if !sel.is_counter() {
                    self.err(&f("metric"), "a trend is measured on a counter's rate");
                    return None;
                }
                let window = self.window(Some(&q.window), &f("window"))?;
                if q.min_rate < 0.0 {
                    self.err(&f("min_rate"), "must not be negative");
                }
                Measure::Trend {
                    sel,
                    window,
                    min_rate: q.min_rate,
                }
            }
            "time_fraction" => {
                let q = k.time_fraction?;
                let sel = self.sel(&q.metric, &f("metric"), false)?;
                let op = self.op(&q.op, &f("op"))?;
                let window = self.dur(&q.window, &f("window"))?;
                Measure::TimeFraction {
                    inner: Box::new(Measure::Value {
                        sel,
                        func: None,
                        agg: None,
                    }),
                    op,
                    value: q.value,
                    window,
                }
            }
            "raw" => {
                let q = k.raw?;
                if let Err(m) = promql::parse(&q.expr) {
                    self.err(&f("expr"), format!("PromQL does not parse: {}", m.trim()));
                    return None;
                }
                if q.tests.is_empty() {
                    self.err(
                        &f("tests"),
                        "a raw expression must carry its own promtool tests",
                    );
                    return None;
                }
                let mut tests = Vec::new();
                for (i, t) in q.tests.iter().enumerate() {
                    let tp = format!("{}[{i}]", f("tests"));
                    let eval_time = self.dur(&t.eval_time, &format!("{tp}.eval_time"))?;
                    for (j, s) in t.input_series.iter().enumerate() {
                        if let Err(m) = promql::parse(&s.series) {
                            self.err(
                                &format!("{tp}.input_series[{j}].series"),
                                format!("not a series: {}", m.trim()),
                            );
                        }
                    }
                    tests.push(RawTestM {
                        input_series: t
                            .input_series
                            .iter()
                            .map(|s| (s.series.clone(), s.values.clone()))
                            .collect(),
                        eval_time,
                        firing: t.firing.clone(),
                        samples: t
                            .samples
                            .as_ref()
                            .map(|v| v.iter().map(|s| (s.labels.clone(), s.value)).collect()),
                    });
                }
                Measure::Raw {
                    expr: q.expr.trim().to_string(),
                    tests,
                }
            }
            _ => unreachable!(),
        })
    }

    /// Checks every selector of a generated expression and returns the labels its result can
    /// carry.
    fn check_expr(&mut self, expr: &str, field: &str) -> Option<Labels> {
        let e = match promql::parse(expr) {
            Ok(e) => e,
            Err(m) => {
                self.err(
                    field,
                    format!("generated PromQL `{expr}` does not parse: {}", m.trim()),
                );
                return None;
            }
        };
        for vs in promql::selectors(&e) {
            let name = vs.name.clone().or_else(|| {
                vs.matchers
                    .matchers
                    .iter()
                    .find(|m| m.name == "__name__")
                    .map(|m| m.value.clone())
            });
            match name {
                None => {
                    self.err(field, "every selector must name a metric");
                    return None;
                }
                Some(n) => {
                    if self.allowed_labels(&n).is_none() {
                        self.err(field, format!("unknown metric `{n}`: not in the catalog, not a recording rule defined above, not `up`"));
                        return None;
                    }
                }
            }
        }
        let leaf = |vs: &promql_parser::parser::VectorSelector| {
            vs.name.as_deref().and_then(|n| self.allowed_labels(n))
        };
        Some(promql::out_labels(&e, &leaf).unwrap_or_default())
    }

    fn check_template(&mut self, text: &str, field: &str, labels: &Labels) {
        let mut rest = text;
        while let Some(i) = rest.find("{{") {
            let after = &rest[i + 2..];
            let Some(j) = after.find("}}") else {
                self.err(field, "unclosed `{{`");
                return;
            };
            let inner = after[..j].trim();
            match inner.strip_prefix("$labels.") {
                Some(l) if is_ident(l, "") => {
                    if !labels.contains(l) {
                        let list: Vec<&str> = labels.iter().map(|s| s.as_str()).collect();
                        self.err(field, format!("label `{l}` is not on the result of the expression (its labels: {})", if list.is_empty() { "none".into() } else { list.join(", ") }));
                    }
                }
                _ => {
                    self.err(field, format!("`{{{{ {inner} }}}}`: only {{{{ $labels.NAME }}}} may be used (generated tests compare annotations exactly, so `$value` is not allowed)"));
                }
            }
            rest = &after[j + 2..];
        }
    }
}

fn parse_block_times(s: &str) -> Option<Result<f64, String>> {
    let s = s.trim();
    let rest = s.strip_suffix("block_time")?;
    let k = rest.trim().strip_suffix('x').unwrap_or(rest).trim();
    let k = if k.is_empty() { "1" } else { k };
    Some(
        k.parse::<f64>()
            .ok()
            .filter(|k| *k > 0.0)
            .ok_or_else(|| format!("`{s}`: write `N x block_time`, e.g. `2x block_time`")),
    )
}

fn uses_block_time(a: &spec::Alert) -> bool {
    a.no_progress
        .as_ref()
        .is_some_and(|q| parse_block_times(&q.window).is_some())
}

pub fn build(spec: &Spec, loc: &Locator) -> Result<Model, Vec<SpecError>> {
    let mut b = Builder {
        loc,
        errs: Vec::new(),
        rate_window: Duration::from_secs(300),
        scrape: Duration::from_secs(15),
        default_block_time: Duration::from_secs(60),
        chains: BTreeMap::new(),
        criteria: BTreeSet::new(),
        records: Vec::new(),
    };
    if spec.version != 1 {
        b.err(
            "version",
            format!(
                "unsupported version {} (this rulegen reads version 1)",
                spec.version
            ),
        );
        return Err(b.errs);
    }
    let scrape = b.dur(&spec.defaults.scrape_interval, "defaults.scrape_interval");
    let eval = b.dur(
        &spec.defaults.evaluation_interval,
        "defaults.evaluation_interval",
    );
    if let Some(s) = scrape {
        if s.is_zero() {
            b.err("defaults.scrape_interval", "must be more than 0s");
        }
        b.scrape = s;
    }
    if let Some(w) = b.dur(&spec.defaults.rate_window, "defaults.rate_window") {
        b.rate_window = w;
    }
    if let Some(d) = b.dur(&spec.defaults.block_time, "defaults.block_time") {
        b.default_block_time = d;
    }
    for (i, c) in spec.criteria.iter().enumerate() {
        if !c.chars().next().is_some_and(|x| x.is_ascii_uppercase())
            || !c.chars().all(|x| x.is_ascii_alphanumeric())
        {
            b.err(
                &format!("criteria[{i}]"),
                format!("`{c}` is not a criterion id such as E1 or N14"),
            );
        }
        if !b.criteria.insert(c.clone()) {
            b.err(
                &format!("criteria[{i}]"),
                format!("criterion `{c}` listed twice"),
            );
        }
    }
    // Severities and receivers.
    let mut severities = BTreeMap::new();
    for (name, s) in &spec.severities {
        let p = format!("severities.{name}");
        if !(name.len() == 2 && name.starts_with('P') && name.as_bytes()[1].is_ascii_digit()) {
            b.err(&p, format!("severity `{name}` is not P0..P9"));
        }
        if !["critical", "warning", "info"].contains(&s.level.as_str()) {
            b.err(
                &format!("{p}.level"),
                format!("unknown level `{}` (critical, warning or info)", s.level),
            );
        }
        for (i, r) in s.receivers.iter().enumerate() {
            if !spec.receivers.contains_key(r) {
                b.err(
                    &format!("{p}.receivers[{i}]"),
                    format!("unknown receiver `{r}`"),
                );
            }
        }
        severities.insert(
            name.clone(),
            SeverityM {
                name: name.clone(),
                level: s.level.clone(),
                response_time: s.response_time.clone(),
                description: s.description.clone(),
                receivers: s.receivers.clone(),
            },
        );
    }
    for (name, r) in &spec.receivers {
        if !["pagerduty", "slack", "webhook"].contains(&r.kind.as_str()) {
            b.err(
                &format!("receivers.{name}.type"),
                format!(
                    "unknown receiver type `{}` (pagerduty, slack or webhook)",
                    r.kind
                ),
            );
        }
        if r.kind == "slack" && r.channel.is_none() {
            b.err(
                &format!("receivers.{name}"),
                "a slack receiver needs a `channel`",
            );
        }
    }
    for (scope, rs) in &spec.scope_receivers {
        if !["node", "region", "fleet"].contains(&scope.as_str()) {
            b.err(
                &format!("scope_receivers.{scope}"),
                format!("unknown scope `{scope}` (node, region or fleet)"),
            );
        }
        for (i, r) in rs.iter().enumerate() {
            if !spec.receivers.contains_key(r) {
                b.err(
                    &format!("scope_receivers.{scope}[{i}]"),
                    format!("unknown receiver `{r}`"),
                );
            }
        }
    }
    for (name, c) in &spec.chains {
        if let Some(d) = b.dur(&c.block_time, &format!("chains.{name}.block_time")) {
            b.chains.insert(name.clone(), d);
        }
    }
    let mut names: HashMap<String, String> = HashMap::new();
    // Recording rules, in order: each may use the ones above it.
    for (i, r) in spec.recording_rules.iter().enumerate() {
        let p = format!("recording_rules[{i}]");
        if !(is_ident(&r.record, ":") && r.record.contains(':')) {
            b.err(
                &format!("{p}.record"),
                format!(
                    "`{}` is not a recording rule name (level:metric:operations)",
                    r.record
                ),
            );
            continue;
        }
        if let Some(prev) = names.insert(r.record.clone(), p.clone()) {
            b.err(
                &format!("{p}.record"),
                format!("duplicate name `{}` (also {prev})", r.record),
            );
            continue;
        }
        if !is_ident(&r.group, "-") {
            b.err(
                &format!("{p}.group"),
                format!("`{}` is not a group name", r.group),
            );
        }
        b.check_criteria(&r.criteria, &format!("{p}.criteria"));
        let Some(m) = b.measure(&kinds!(r), &p, b.default_block_time) else {
            continue;
        };
        if matches!(m, Measure::NoProgress { .. } | Measure::Absence { .. }) {
            b.err(
                &p,
                format!(
                    "`{}` is a condition; recording rules record values",
                    m.kind()
                ),
            );
            continue;
        }
        let expr = m.expr(&Scope::All);
        let field = if let Measure::Raw { .. } = m {
            format!("{p}.raw.expr")
        } else {
            p.clone()
        };
        let Some(out) = b.check_expr(&expr, &field) else {
            continue;
        };
        b.records.push(Record {
            name: r.record.clone(),
            criteria: r.criteria.clone(),
            group: r.group.clone(),
            measures: r.measures.clone(),
            labels: r.labels.clone(),
            measure: m,
            expr,
            out_labels: out,
            path: p,
        });
    }
    // Alerts.
    let mut alerts = Vec::new();
    for (i, a) in spec.alerts.iter().enumerate() {
        let p = format!("alerts[{i}]");
        if !is_ident(&a.name, "") {
            b.err(
                &format!("{p}.name"),
                format!("`{}` is not an alert name", a.name),
            );
            continue;
        }
        if let Some(prev) = names.insert(a.name.clone(), p.clone()) {
            b.err(
                &format!("{p}.name"),
                format!("duplicate name `{}` (also {prev})", a.name),
            );
            continue;
        }
        if !is_ident(&a.group, "-") {
            b.err(
                &format!("{p}.group"),
                format!("`{}` is not a group name", a.group),
            );
        }
        if a.criteria.is_empty() {
            b.err(
                &format!("{p}.criteria"),
                "an alert serves at least one criterion",
            );
        }
        b.check_criteria(&a.criteria, &format!("{p}.criteria"));
        if !severities.contains_key(&a.severity) {
            let known: Vec<&str> = severities.keys().map(|s| s.as_str()).collect();
            b.err(
                &format!("{p}.severity"),
                format!(
                    "unknown severity `{}` (known: {})",
                    a.severity,
                    known.join(", ")
                ),
            );
        }
        if !is_ident(&a.runbook.replace('-', "_"), "") {
            b.err(
                &format!("{p}.runbook"),
                format!(
                    "`{}` is not a runbook name (lowercase words joined by -)",
                    a.runbook
                ),
            );
        } else if !spec.runbooks.contains_key(&a.runbook) {
            b.err(
                &format!("{p}.runbook"),
                format!(
                    "unknown runbook `{}` (define its first checks under `runbooks`)",
                    a.runbook
                ),
            );
        }
        if let Some(g) = &a.alertgroup {
            if !is_ident(&g.replace('-', "_"), "") {
                b.err(
                    &format!("{p}.alertgroup"),
                    format!("`{g}` is not an alertgroup name (words joined by -)"),
                );
            }
        }
        for k in a.labels.keys() {
            if ["severity", "criterion", "scope", "alertname", "alertgroup"].contains(&k.as_str())
                || !is_ident(k, "")
            {
                b.err(
                    &format!("{p}.labels.{k}"),
                    format!("label `{k}` is reserved or not a label name"),
                );
            }
        }
        let for_default = match &a.for_ {
            Some(f) => match b.dur(f, &format!("{p}.for")) {
                Some(d) => d,
                None => continue,
            },
            None => Duration::ZERO,
        };
        // Chains with their own rule.
        let mut per_chain: BTreeSet<String> = BTreeSet::new();
        for c in a.chains.keys() {
            if !b.chains.contains_key(c) {
                let known: Vec<&str> = b.chains.keys().map(|s| s.as_str()).collect();
                b.err(
                    &format!("{p}.chains.{c}"),
                    format!("unknown chain `{c}` (chains: {})", known.join(", ")),
                );
            }
            per_chain.insert(c.clone());
        }
        if uses_block_time(a) {
            per_chain.extend(b.chains.keys().cloned());
        }
        let mut plan: Vec<(Scope, String, Duration, Option<f64>, Duration, String)> = Vec::new();
        let chains_snapshot = b.chains.clone();
        if per_chain.is_empty() {
            let test_chain = chains_snapshot
                .keys()
                .next()
                .cloned()
                .unwrap_or_else(|| "testchain".into());
            plan.push((
                Scope::All,
                test_chain,
                b.default_block_time,
                a.threshold,
                for_default,
                p.clone(),
            ));
        } else {
            for c in &per_chain {
                let o = a.chains.get(c).cloned().unwrap_or_default();
                let f = for_default;
                let bt = chains_snapshot
                    .get(c)
                    .copied()
                    .unwrap_or(b.default_block_time);
                plan.push((
                    Scope::Chain(c.clone()),
                    c.clone(),
                    bt,
                    o.threshold.or(a.threshold),
                    f,
                    format!("{p}.chains.{c}"),
                ));
            }
            plan.push((
                Scope::Except(per_chain.iter().cloned().collect()),
                "otherchain".into(),
                b.default_block_time,
                a.threshold,
                for_default,
                p.clone(),
            ));
        }
        let mut variants = Vec::new();
        let mut ok = true;
        for (scope, test_chain, bt, threshold, for_, _vp) in plan {
            let Some(m) = b.measure(&kinds!(a), &p, bt) else {
                ok = false;
                break;
            };
            if matches!(m, Measure::Raw { .. }) && scope != Scope::All {
                b.err(
                    &format!("{p}.chains"),
                    "per-chain overrides need a typed measure, not raw PromQL",
                );
                ok = false;
                break;
            }
            let op = match (&a.op, m.is_condition()) {
                (Some(o), false) => b.op(o, &format!("{p}.op")),
                (None, false) => {
                    b.err(
                        &p,
                        format!("a `{}` measure needs `op` and `threshold`", m.kind()),
                    );
                    None
                }
                (Some(_), true) => {
                    b.err(
                        &format!("{p}.op"),
                        format!(
                            "a `{}` measure is a condition: no `op`/`threshold`",
                            m.kind()
                        ),
                    );
                    None
                }
                (None, true) => None,
            };
            if !m.is_condition() && threshold.is_none() {
                b.err(&p, "missing `threshold`");
                ok = false;
                break;
            }
            if m.is_condition() && threshold.is_some() {
                b.err(
                    &format!("{p}.threshold"),
                    format!("a `{}` measure is a condition: no `threshold`", m.kind()),
                );
                ok = false;
                break;
            }
            if !m.is_condition() && op.is_none() {
                ok = false;
                break;
            }
            let value = m.expr(&scope);
            let expr = match (op, threshold) {
                (Some(o), Some(t)) => format!("{value} {} {}", o.as_str(), num(t)),
                _ => value.clone(),
            };
            let field = if let Measure::Raw { .. } = m {
                format!("{p}.raw.expr")
            } else {
                p.clone()
            };
            let Some(out) = b.check_expr(&expr, &field) else {
                ok = false;
                break;
            };
            let mut text = match (op, threshold) {
                (Some(o), Some(t)) => format!("{} {} {}", m.describe(), o.as_str(), num(t)),
                _ => match &m {
                    Measure::NoProgress { window, .. } => format!("no progress within {window}"),
                    Measure::Absence { lookback, .. } => {
                        format!("series gone (seen within {lookback})")
                    }
                    _ => "raw PromQL condition".to_string(),
                },
            };
            if let Scope::Chain(c) = &scope {
                text = format!("{c}: {text}");
            }
            variants.push(Variant {
                scope,
                test_chain,
                measure: m,
                op,
                threshold,
                for_,
                expr,
                threshold_text: text,
                out_labels: out,
            });
        }
        if !ok {
            continue;
        }
        for (field, text) in [("summary", &a.summary), ("description", &a.description)] {
            for v in &variants {
                let out = v.out_labels.clone();
                let before = b.errs.len();
                b.check_template(text, &format!("{p}.{field}"), &out);
                if b.errs.len() > before {
                    break;
                }
            }
        }
        let expr = if variants.len() == 1 {
            variants[0].expr.clone()
        } else {
            let parts: Vec<String> = variants.iter().map(|v| format!("({})", v.expr)).collect();
            parts.join("\nor\n")
        };
        // Default first, then the chains in order.
        let mut texts: Vec<String> = variants.iter().map(|v| v.threshold_text.clone()).collect();
        if texts.len() > 1 {
            let default = texts.pop().unwrap_or_default();
            texts.insert(0, format!("other chains: {default}"));
        }
        let mut threshold_text = texts.join("; ");
        if !for_default.is_zero() {
            threshold_text.push_str(&format!("; for {for_default}"));
        }
        alerts.push(AlertM {
            expr,
            for_: for_default,
            threshold_text,
            name: a.name.clone(),
            criteria: a.criteria.clone(),
            group: a.group.clone(),
            measures: a.measures.clone(),
            severity: a.severity.clone(),
            summary: a.summary.clone(),
            description: a.description.clone(),
            runbook_url: format!("{}#{}", spec.defaults.runbook_url, runbook_anchor(&a.name)),
            runbook: a.runbook.clone(),
            alertgroup: a.alertgroup.clone(),
            labels: a.labels.clone(),
            variants,
            path: p,
        });
    }
    // Gates.
    let mut gates = Vec::new();
    for (i, g) in spec.gates.iter().enumerate() {
        let p = format!("gates[{i}]");
        if !is_ident(&g.name.replace('-', "_"), "") {
            b.err(
                &format!("{p}.name"),
                format!("`{}` is not a gate name (words joined by -)", g.name),
            );
            continue;
        }
        if let Some(prev) = names.insert(format!("gate:{}", g.name), p.clone()) {
            b.err(
                &format!("{p}.name"),
                format!("duplicate gate `{}` (also {prev})", g.name),
            );
            continue;
        }
        b.check_criteria(&g.criteria, &format!("{p}.criteria"));
        let Some(window) = b.dur(&g.window, &format!("{p}.window")) else {
            continue;
        };
        let by = b.by(g.by.as_ref(), &format!("{p}.by"), &["chain", "network"]);
        if g.proceed.is_empty() && g.rollback.is_empty() {
            b.err(&p, "a gate needs `proceed` or `rollback` conditions");
        }
        // Inside a gate, a measure's window defaults to the gate's window.
        let saved_rate_window = b.rate_window;
        b.rate_window = window;
        let mut lists = [Vec::new(), Vec::new()];
        for (li, (list, key)) in [(&g.proceed, "proceed"), (&g.rollback, "rollback")]
            .into_iter()
            .enumerate()
        {
            for (j, c) in list.iter().enumerate() {
                let cp = format!("{p}.{key}[{j}]");
                let Some(m) = b.measure(&kinds!(c), &cp, b.default_block_time) else {
                    continue;
                };
                if m.is_condition() {
                    b.err(
                        &cp,
                        format!(
                            "`{}` cannot be a gate condition: use a measure with a value",
                            m.kind()
                        ),
                    );
                    continue;
                }
                let Some(op) = b.op(&c.op, &format!("{cp}.op")) else {
                    continue;
                };
                let throughout = match &c.throughout {
                    Some(t) => match b.dur(t, &format!("{cp}.throughout")) {
                        Some(d) => d,
                        None => continue,
                    },
                    None => {
                        if li == 0 {
                            window
                        } else {
                            Duration::ZERO
                        }
                    }
                };
                lists[li].push(CondM {
                    name: c.name.clone(),
                    measure: m,
                    op,
                    threshold: c.threshold,
                    throughout,
                });
            }
        }
        b.rate_window = saved_rate_window;
        let [proceed, rollback] = lists;
        let gm = GateM {
            name: g.name.clone(),
            criteria: g.criteria.clone(),
            group: g.group.clone(),
            source: g.source.clone(),
            stage: g.stage.clone(),
            window,
            by,
            proceed,
            rollback,
            path: p.clone(),
        };
        for e in [gate_proceed_expr(&gm), gate_rollback_expr(&gm)]
            .into_iter()
            .flatten()
        {
            b.check_expr(&e, &p);
        }
        gates.push(gm);
    }
    for c in spec.criteria_text.keys() {
        if !b.criteria.contains(c) {
            b.err(
                &format!("criteria_text.{c}"),
                format!("unknown criterion `{c}` (not in the `criteria` list)"),
            );
        }
    }
    for (i, n) in spec.not_measurable.iter().enumerate() {
        let p = format!("not_measurable[{i}]");
        b.check_criteria(&n.criteria, &format!("{p}.criteria"));
        if !n.because.starts_with("because") {
            b.err(&format!("{p}.because"), "say why, starting with `because`");
        }
    }
    if !b.errs.is_empty() {
        b.errs.sort_by_key(|x| (x.file.clone(), x.line, x.column));
        b.errs.dedup();
        return Err(b.errs);
    }
    let mut model = Model {
        scrape_interval: b.scrape,
        evaluation_interval: eval.unwrap_or(Duration::from_secs(15)),
        criteria: spec.criteria.clone(),
        criteria_text: spec.criteria_text.clone(),
        severities,
        alerts,
        records: b.records,
        gates,
        not_measurable: spec.not_measurable.clone(),
        chains: b.chains,
        runbooks: spec.runbooks.clone(),
        runbook_base: spec.defaults.runbook_url.clone(),
        alerting: None,
        grafana: None,
        dashboards: Vec::new(),
    };
    // The steps that need the built alerts and recording rules.
    let mut errs = Vec::new();
    model.alerting = crate::alerting::build(spec, &model, loc, &mut errs);
    let (grafana, dashboards) = crate::dashboards::build(spec, &model, loc, &mut errs);
    model.grafana = grafana;
    model.dashboards = dashboards;
    if !errs.is_empty() {
        errs.sort_by_key(|x| (x.file.clone(), x.line, x.column));
        errs.dedup();
        return Err(errs);
    }
    Ok(model)
}

/// The anchor a Markdown renderer (GitHub, CommonMark tools) gives the heading `## <alert name>`:
/// lowercase, punctuation other than `-` and `_` dropped, spaces as `-`.
pub fn runbook_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c)
            } else if c == ' ' {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// Per node: did the condition hold (throughout its window)?
fn condition_expr(c: &CondM) -> String {
    let inner = format!(
        "{} {} bool {}",
        c.measure.expr(&Scope::All),
        c.op.as_str(),
        num(c.threshold)
    );
    if c.throughout.is_zero() {
        inner
    } else {
        format!(
            "min_over_time(({inner})[{}:{}])",
            c.throughout,
            subquery_step(c.throughout)
        )
    }
}

/// 1 when every proceed condition held on every node of the group, else 0 (no data: no answer).
pub fn gate_proceed_expr(g: &GateM) -> Option<String> {
    if g.proceed.is_empty() {
        return None;
    }
    let by = g.by.join(", ");
    let parts: Vec<String> = g
        .proceed
        .iter()
        .map(|c| format!("min by ({by}) ({})", condition_expr(c)))
        .collect();
    Some(parts.join("\n  * "))
}

/// 1 when any rollback condition holds on any node of the group, else 0.
pub fn gate_rollback_expr(g: &GateM) -> Option<String> {
    if g.rollback.is_empty() {
        return None;
    }
    let by = g.by.join(", ");
    let parts: Vec<String> = g
        .rollback
        .iter()
        .map(|c| {
            format!(
                "label_replace({}, \"condition\", \"{}\", \"\", \"\")",
                condition_expr(c),
                escape(&c.name)
            )
        })
        .collect();
    Some(format!(
        "max by ({by}) (\n    {}\n  )",
        parts.join("\n    or ")
    ))
}
