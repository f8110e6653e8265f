//! The overlay (`--overlay`): a second YAML merged over thresholds.yaml before validation. It
//! changes numbers, durations, receiver URLs and secret files, Alertmanager timings and the
//! Grafana datasource only, and every field it sets is redirected in the `Locator`, so an error
//! about that field points at the overlay.

use std::collections::BTreeMap;

use chainwatch_yaml::{Positions, SpecError};
use serde::Deserialize;

use super::locate::Locator;
use super::v1::{Alert, ChainOverride, Recording, Spec};

/// A second file merged over thresholds.yaml (`--overlay`): it changes numbers and durations
/// only, e.g. to shorten `for` and windows for an end-to-end test.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub defaults: Option<OverlayDefaults>,
    #[serde(default)]
    pub chains: BTreeMap<String, OverlayChain>,
    #[serde(default)]
    pub alerts: Vec<OverlayItem>,
    #[serde(default)]
    pub recording_rules: Vec<OverlayItem>,
    #[serde(default)]
    pub gates: Vec<OverlayGate>,
    /// Another evaluation interval of a group thresholds.yaml gives one.
    #[serde(default)]
    pub groups: BTreeMap<String, OverlayGroup>,
    /// Receivers: another URL or secret file (an end-to-end test's webhook).
    #[serde(default)]
    pub receivers: BTreeMap<String, OverlayReceiver>,
    /// Alertmanager timings per severity.
    #[serde(default)]
    pub severities: BTreeMap<String, OverlayTimings>,
    #[serde(default)]
    pub alertmanager: Option<OverlayAlertmanager>,
    #[serde(default)]
    pub grafana: Option<OverlayGrafana>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayReceiver {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub secret_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayTimings {
    #[serde(default)]
    pub group_wait: Option<String>,
    #[serde(default)]
    pub group_interval: Option<String>,
    #[serde(default)]
    pub repeat_interval: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayAlertmanager {
    #[serde(default)]
    pub group_wait: Option<String>,
    #[serde(default)]
    pub group_interval: Option<String>,
    #[serde(default)]
    pub repeat_interval: Option<String>,
    #[serde(default)]
    pub resolve_timeout: Option<String>,
    #[serde(default)]
    pub heartbeat: Option<OverlayTimings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayGrafana {
    #[serde(default)]
    pub prometheus_url: Option<String>,
    #[serde(default)]
    pub dashboards_path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayDefaults {
    pub scrape_interval: Option<String>,
    pub evaluation_interval: Option<String>,
    pub rate_window: Option<String>,
    pub block_time: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayChain {
    pub block_time: Option<String>,
}

/// Changes to one alert (by `name`) or recording rule (by `record`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub record: Option<String>,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    /// Replaces the measure's `window` (or `lookback`).
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub chains: BTreeMap<String, ChainOverride>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayGate {
    pub name: String,
    #[serde(default)]
    pub window: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayGroup {
    #[serde(default)]
    pub interval: Option<String>,
}

/// Merges the overlay's values into `spec`. Returns the overlay's own errors (a name that matches
/// nothing, a field that cannot change); validation reports them with the spec's.
pub fn apply(spec: &mut Spec, ov: &Overlay, opos: &Positions, loc: &mut Locator) -> Vec<SpecError> {
    let mut m = Merge {
        opos,
        loc,
        errs: Vec::new(),
    };
    if let Some(v) = ov.version {
        if v != spec.version {
            m.err(
                "version",
                format!(
                    "overlay version {v} does not match thresholds version {}",
                    spec.version
                ),
            );
        }
    }
    if let Some(d) = &ov.defaults {
        m.defaults(spec, d);
    }
    m.chains(spec, &ov.chains);
    for (j, item) in ov.alerts.iter().enumerate() {
        m.alert(spec, j, item);
    }
    for (j, item) in ov.recording_rules.iter().enumerate() {
        m.recording_rule(spec, j, item);
    }
    m.gates(spec, &ov.gates);
    m.groups(spec, &ov.groups);
    m.receivers(spec, &ov.receivers);
    m.severities(spec, &ov.severities);
    if let Some(oa) = &ov.alertmanager {
        m.alertmanager(spec, oa);
    }
    if let Some(og) = &ov.grafana {
        m.grafana(spec, og);
    }
    m.errs
}

struct Merge<'a> {
    opos: &'a Positions,
    loc: &'a mut Locator,
    errs: Vec<SpecError>,
}

impl Merge<'_> {
    fn err(&mut self, field: impl Into<String>, msg: impl Into<String>) {
        self.errs.push(self.opos.error(field, msg));
    }

    fn redirect(&mut self, base: String, overlay: String) {
        self.loc.redirect(base, overlay);
    }

    /// `dst = src` when the overlay sets it; `field` is the same path in both files.
    fn set<T: Clone>(&mut self, dst: &mut T, src: &Option<T>, field: String) {
        if let Some(v) = src {
            *dst = v.clone();
            self.redirect(field.clone(), field);
        }
    }

    fn defaults(&mut self, spec: &mut Spec, d: &OverlayDefaults) {
        let s = &mut spec.defaults;
        self.set(
            &mut s.scrape_interval,
            &d.scrape_interval,
            "defaults.scrape_interval".into(),
        );
        self.set(
            &mut s.evaluation_interval,
            &d.evaluation_interval,
            "defaults.evaluation_interval".into(),
        );
        self.set(
            &mut s.rate_window,
            &d.rate_window,
            "defaults.rate_window".into(),
        );
        self.set(
            &mut s.block_time,
            &d.block_time,
            "defaults.block_time".into(),
        );
    }

    fn chains(&mut self, spec: &mut Spec, chains: &BTreeMap<String, OverlayChain>) {
        for (c, oc) in chains {
            match spec.chains.get_mut(c) {
                None => self.err(
                    format!("chains.{c}"),
                    format!("no chain `{c}` in thresholds.yaml"),
                ),
                Some(ch) => self.set(
                    &mut ch.block_time,
                    &oc.block_time,
                    format!("chains.{c}.block_time"),
                ),
            }
        }
    }

    fn alert(&mut self, spec: &mut Spec, j: usize, item: &OverlayItem) {
        let op = format!("alerts[{j}]");
        let Some(name) = &item.name else {
            self.err(
                format!("{op}.name"),
                "an overlay alert needs the `name` of the alert it changes",
            );
            return;
        };
        let Some(i) = spec.alerts.iter().position(|a| &a.name == name) else {
            self.err(
                format!("{op}.name"),
                format!("no alert named `{name}` in thresholds.yaml"),
            );
            return;
        };
        let a = &mut spec.alerts[i];
        let bp = format!("alerts[{i}]");
        if let Some(t) = item.threshold {
            a.threshold = Some(t);
            self.redirect(format!("{bp}.threshold"), format!("{op}.threshold"));
        }
        if let Some(f) = &item.for_ {
            a.for_ = Some(f.clone());
            self.redirect(format!("{bp}.for"), format!("{op}.for"));
        }
        if let Some(w) = &item.window {
            match alert_window(a) {
                Some((field, name)) => {
                    *field = w.clone();
                    self.redirect(format!("{bp}.{name}"), format!("{op}.window"));
                }
                None => self.err(
                    format!("{op}.window"),
                    format!("alert `{name}` has no window to change"),
                ),
            }
        }
        for (c, o) in &item.chains {
            let e = a.chains.entry(c.clone()).or_default();
            if o.threshold.is_some() {
                e.threshold = o.threshold;
            }
            self.redirect(format!("{bp}.chains.{c}"), format!("{op}.chains.{c}"));
        }
    }

    fn recording_rule(&mut self, spec: &mut Spec, j: usize, item: &OverlayItem) {
        let op = format!("recording_rules[{j}]");
        let Some(name) = &item.record else {
            self.err(
                format!("{op}.record"),
                "an overlay recording rule needs the `record` it changes",
            );
            return;
        };
        let Some(i) = spec.recording_rules.iter().position(|r| &r.record == name) else {
            self.err(
                format!("{op}.record"),
                format!("no recording rule `{name}` in thresholds.yaml"),
            );
            return;
        };
        let r = &mut spec.recording_rules[i];
        if let Some(w) = &item.window {
            match record_window(r) {
                Some((field, f)) => {
                    *field = w.clone();
                    self.redirect(format!("recording_rules[{i}].{f}"), format!("{op}.window"));
                }
                None => self.err(
                    format!("{op}.window"),
                    format!("recording rule `{name}` has no window to change"),
                ),
            }
        }
        if item.threshold.is_some()
            || item.for_.is_some()
            || !item.chains.is_empty()
            || item.name.is_some()
        {
            self.err(op, "a recording rule has only a `window` to change");
        }
    }

    fn gates(&mut self, spec: &mut Spec, gates: &[OverlayGate]) {
        for (j, g) in gates.iter().enumerate() {
            let op = format!("gates[{j}]");
            let Some(i) = spec.gates.iter().position(|x| x.name == g.name) else {
                self.err(
                    format!("{op}.name"),
                    format!("no gate named `{}` in thresholds.yaml", g.name),
                );
                continue;
            };
            if let Some(w) = &g.window {
                spec.gates[i].window = w.clone();
                self.redirect(format!("gates[{i}].window"), format!("{op}.window"));
            }
        }
    }

    fn groups(&mut self, spec: &mut Spec, groups: &BTreeMap<String, OverlayGroup>) {
        for (g, og) in groups {
            match spec.groups.get_mut(g) {
                None => self.err(
                    format!("groups.{g}"),
                    format!("thresholds.yaml gives group `{g}` no interval of its own"),
                ),
                Some(x) if x.interval.is_none() => self.err(
                    format!("groups.{g}.interval"),
                    format!("thresholds.yaml gives group `{g}` no interval of its own"),
                ),
                Some(x) => {
                    if let Some(i) = &og.interval {
                        x.interval = Some(i.clone());
                        let f = format!("groups.{g}.interval");
                        self.redirect(f.clone(), f);
                    }
                }
            }
        }
    }

    fn receivers(&mut self, spec: &mut Spec, receivers: &BTreeMap<String, OverlayReceiver>) {
        for (name, r) in receivers {
            let op = format!("receivers.{name}");
            let Some(base) = spec.receivers.get_mut(name) else {
                self.err(op, format!("no receiver `{name}` in thresholds.yaml"));
                continue;
            };
            if let Some(u) = &r.url {
                base.url = Some(u.clone());
                self.redirect(format!("{op}.url"), format!("{op}.url"));
            }
            if let Some(f) = &r.secret_file {
                base.secret_file = Some(f.clone());
                self.redirect(format!("{op}.secret_file"), format!("{op}.secret_file"));
            }
        }
    }

    fn severities(&mut self, spec: &mut Spec, severities: &BTreeMap<String, OverlayTimings>) {
        for (name, t) in severities {
            let op = format!("severities.{name}");
            let Some(base) = spec.severities.get_mut(name) else {
                self.err(op, format!("no severity `{name}` in thresholds.yaml"));
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
                    self.redirect(format!("{op}.{f}"), format!("{op}.{f}"));
                }
            }
        }
    }

    fn alertmanager(&mut self, spec: &mut Spec, oa: &OverlayAlertmanager) {
        let Some(am) = spec.alertmanager.as_mut() else {
            self.err(
                "alertmanager",
                "thresholds.yaml has no `alertmanager` section",
            );
            return;
        };
        self.set(
            &mut am.group_wait,
            &oa.group_wait,
            "alertmanager.group_wait".into(),
        );
        self.set(
            &mut am.group_interval,
            &oa.group_interval,
            "alertmanager.group_interval".into(),
        );
        self.set(
            &mut am.repeat_interval,
            &oa.repeat_interval,
            "alertmanager.repeat_interval".into(),
        );
        if let Some(v) = &oa.resolve_timeout {
            am.resolve_timeout = Some(v.clone());
            self.redirect(
                "alertmanager.resolve_timeout".into(),
                "alertmanager.resolve_timeout".into(),
            );
        }
        let Some(oh) = &oa.heartbeat else {
            return;
        };
        let Some(h) = am.heartbeat.as_mut() else {
            self.err("alertmanager.heartbeat", "thresholds.yaml has no heartbeat");
            return;
        };
        let p = "alertmanager.heartbeat";
        self.set(&mut h.group_wait, &oh.group_wait, format!("{p}.group_wait"));
        self.set(
            &mut h.group_interval,
            &oh.group_interval,
            format!("{p}.group_interval"),
        );
        self.set(
            &mut h.repeat_interval,
            &oh.repeat_interval,
            format!("{p}.repeat_interval"),
        );
    }

    fn grafana(&mut self, spec: &mut Spec, og: &OverlayGrafana) {
        let Some(g) = spec.grafana.as_mut() else {
            self.err("grafana", "thresholds.yaml has no `grafana` section");
            return;
        };
        self.set(
            &mut g.prometheus_url,
            &og.prometheus_url,
            "grafana.prometheus_url".into(),
        );
        self.set(
            &mut g.dashboards_path,
            &og.dashboards_path,
            "grafana.dashboards_path".into(),
        );
    }
}

/// The window an overlay's `window` replaces in an alert, and its field path under the alert.
fn alert_window(a: &mut Alert) -> Option<(&mut String, &'static str)> {
    // Kinds with an optional window get one; the others replace theirs.
    if let Some(q) = a.value.as_mut() {
        return Some((q.window.get_or_insert_with(String::new), "value.window"));
    }
    if let Some(q) = a.ratio.as_mut() {
        return Some((q.window.get_or_insert_with(String::new), "ratio.window"));
    }
    if let Some(q) = a.fleet_fraction.as_mut() {
        return Some((
            q.window.get_or_insert_with(String::new),
            "fleet_fraction.window",
        ));
    }
    if let Some(q) = a.quantile.as_mut() {
        return Some((q.window.get_or_insert_with(String::new), "quantile.window"));
    }
    if let Some(q) = a.no_progress.as_mut() {
        return Some((&mut q.window, "no_progress.window"));
    }
    if let Some(q) = a.absence.as_mut() {
        return Some((&mut q.lookback, "absence.lookback"));
    }
    if let Some(q) = a.trend.as_mut() {
        return Some((&mut q.window, "trend.window"));
    }
    None
}

/// The window an overlay's `window` replaces in a recording rule.
fn record_window(r: &mut Recording) -> Option<(&mut String, &'static str)> {
    if let Some(q) = r.ratio.as_mut() {
        return Some((q.window.get_or_insert_with(String::new), "ratio.window"));
    }
    if let Some(q) = r.quantile.as_mut() {
        return Some((q.window.get_or_insert_with(String::new), "quantile.window"));
    }
    if let Some(q) = r.value.as_mut() {
        return Some((q.window.get_or_insert_with(String::new), "value.window"));
    }
    if let Some(q) = r.time_fraction.as_mut() {
        return Some((&mut q.window, "time_fraction.window"));
    }
    None
}
