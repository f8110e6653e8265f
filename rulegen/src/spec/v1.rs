//! The versioned input: `thresholds.yaml`, version 1, exactly as an operator writes it.
//!
//! Plain data with `deny_unknown_fields`; every check beyond types lives in `validate`, which maps
//! this spec into the internal model (`model`). Kinds of measure are optional fields of which
//! exactly one is set (`ratio: {...}`), so a misspelt field is an error with its position; a
//! new kind is a field of `with_kinds!` and of `Kinds`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub version: u32,
    /// The ids of every row of criteria.md, so coverage works without shared/.
    pub criteria: Vec<String>,
    pub defaults: Defaults,
    pub severities: BTreeMap<String, Severity>,
    #[serde(default)]
    pub receivers: BTreeMap<String, Receiver>,
    /// Receivers for alerts by scope label (`region` → the regional channel), besides severity.
    #[serde(default)]
    pub scope_receivers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub chains: BTreeMap<String, Chain>,
    /// Profiles or catalog extension files, relative to this file, whose `metrics:` declare
    /// metrics outside the catalog (`chain_x_*`) that this file may name.
    #[serde(default)]
    pub catalogs: Vec<String>,
    /// Metrics outside the catalog declared here, in the format (and read by the same code) as a
    /// profile's `metrics:`.
    #[serde(default)]
    pub metrics: Vec<chainwatch_catalog::MetricDecl>,
    #[serde(default)]
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub recording_rules: Vec<Recording>,
    #[serde(default)]
    pub gates: Vec<Gate>,
    /// Service level objectives: SLI records over several windows, burn-rate alerts, budget.
    #[serde(default)]
    pub slos: Vec<Slo>,
    /// Rule groups evaluated at an interval of their own, each with the reason for it.
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    #[serde(default)]
    pub not_measurable: Vec<NotMeasurable>,
    /// Words and seed of each criterion (runbook); keys must be in `criteria`.
    #[serde(default)]
    pub criteria_text: BTreeMap<String, CriterionText>,
    /// First checks shared by the alerts that name them in `runbook`.
    #[serde(default)]
    pub runbooks: BTreeMap<String, Runbook>,
    /// Alertmanager: root route, heartbeat (dead man's switch), inhibitions.
    #[serde(default)]
    pub alertmanager: Option<Alertmanager>,
    /// Grafana provisioning (datasource, dashboard provider).
    #[serde(default)]
    pub grafana: Option<Grafana>,
    #[serde(default)]
    pub dashboards: Vec<Dashboard>,
    /// Outputs besides the plain files (prometheus/, alertmanager/, grafana/, docs/runbook.md),
    /// which are always written.
    #[serde(default)]
    pub outputs: Option<Outputs>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    /// prometheus-operator and Grafana-chart manifests under kubernetes/.
    #[serde(default)]
    pub kubernetes: Option<Kubernetes>,
    /// A monitoring mixin under mixin/ (`mixin.libsonnet`).
    #[serde(default)]
    pub mixin: bool,
}

/// kubernetes/monitoring/: PrometheusRules, the Alertmanager config as a Secret, the dashboards
/// as ConfigMaps; kubernetes/sidecar/: the sidecar's PodMonitor. Each with a kustomization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// Namespace of the rules, the Secret and the dashboards (the PodMonitor goes with the
    /// sidecar, in its namespace).
    pub namespace: String,
    /// Labels of every generated object: what a Prometheus's `ruleSelector` and
    /// `podMonitorSelector` select on.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub pod_monitor: PodMonitor,
    #[serde(default)]
    pub dashboards: DashboardConfigMaps,
}

/// How Prometheus scrapes the sidecar.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodMonitor {
    /// Labels of the pods that run the sidecar.
    pub selector: BTreeMap<String, String>,
    /// Name of the sidecar's container port.
    pub port: String,
    #[serde(default)]
    pub path: Option<String>,
    /// Default: `defaults.scrape_interval`.
    #[serde(default)]
    pub interval: Option<String>,
    /// Whether the sidecar's `node`, `region`, … win over the target's (README, "Node
    /// identity"); no default: a choice.
    pub honor_labels: bool,
}

/// The Grafana chart's sidecar loads ConfigMaps carrying `label: label_value`, into the folder
/// named by the `folder_annotation`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfigMaps {
    #[serde(default = "default_dashboard_label")]
    pub label: String,
    #[serde(default = "default_dashboard_label_value")]
    pub label_value: String,
    #[serde(default = "default_folder_annotation")]
    pub folder_annotation: String,
}

impl Default for DashboardConfigMaps {
    fn default() -> Self {
        DashboardConfigMaps {
            label: default_dashboard_label(),
            label_value: default_dashboard_label_value(),
            folder_annotation: default_folder_annotation(),
        }
    }
}

fn default_dashboard_label() -> String {
    "grafana_dashboard".into()
}

fn default_dashboard_label_value() -> String {
    "1".into()
}

fn default_folder_annotation() -> String {
    "grafana_folder".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionText {
    pub what: String,
    /// Seed and heading, e.g. `004 Alerting`.
    pub seed: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub title: String,
    /// Seed and heading the checks come from.
    pub source: String,
    /// First checks, in order (Markdown).
    pub checks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alertmanager {
    /// Where an alert that matches no severity goes.
    pub default_receiver: String,
    pub group_by: Vec<String>,
    #[serde(default)]
    pub resolve_timeout: Option<String>,
    /// Root timings, used by severities that set none.
    pub group_wait: String,
    pub group_interval: String,
    pub repeat_interval: String,
    #[serde(default)]
    pub heartbeat: Option<Heartbeat>,
    #[serde(default)]
    pub inhibitions: Vec<Inhibition>,
}

/// The dead man's switch: alerts with these labels go to `receiver` only, often.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub receiver: String,
    pub labels: BTreeMap<String, String>,
    pub group_wait: String,
    pub group_interval: String,
    pub repeat_interval: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inhibition {
    pub name: String,
    /// Why, with the seed it comes from.
    pub why: String,
    /// Alertmanager matchers (`alertname="RegionDown"`) of the alert that mutes.
    pub source: Vec<String>,
    /// Matchers of the alerts it mutes.
    pub target: Vec<String>,
    /// Labels that must be equal on both.
    pub equal: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grafana {
    /// URL of Prometheus for the provisioned datasource (`$ENV` is expanded by Grafana).
    pub prometheus_url: String,
    /// Where Grafana finds the dashboard files (the dashboard provider's path).
    pub dashboards_path: String,
    #[serde(default = "default_folder")]
    pub folder: String,
    #[serde(default = "default_refresh")]
    pub refresh: String,
}

fn default_folder() -> String {
    "chainwatch".into()
}

fn default_refresh() -> String {
    "30s".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// File name and uid suffix (`fleet` → grafana/dashboards/fleet.json, uid chainwatch-fleet).
    pub id: String,
    pub title: String,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Template variables besides the datasource (default: chain, network, region, node).
    #[serde(default)]
    pub variables: Option<Vec<String>>,
    #[serde(default)]
    pub time_from: Option<String>,
    pub panels: Vec<Panel>,
}

/// A dashboard panel; `<dashboard id>/<panel id>` is what coverage names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub id: String,
    /// Required, except on a `gate` panel (whose title is then the gate's stage).
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// timeseries (default), stat, table, state-timeline, bargauge, gauge.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub criteria: Vec<String>,
    /// Starts a new collapsible row with this title.
    #[serde(default)]
    pub row: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Grid width (of 24) and height.
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub queries: Vec<Query>,
    /// A rollout gate whose conditions the panel plots over time (one query per condition,
    /// generated; `queries` stays empty), with its stage text and a link to its runbook section.
    #[serde(default)]
    pub gate: Option<String>,
    /// Alerts whose thresholds are drawn on the panel.
    #[serde(default)]
    pub thresholds: Vec<String>,
    /// Dashboard variables applied to every selector (default: all of the dashboard's).
    #[serde(default)]
    pub filter: Option<Vec<String>>,
    /// Table panels: sort rows by this column, descending.
    #[serde(default)]
    pub sort_by: Option<String>,
}

/// One query: PromQL (`expr`), an alert's measured value (`alert`), or a state metric (`state`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    #[serde(default)]
    pub expr: Option<String>,
    #[serde(default)]
    pub alert: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub legend: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub scrape_interval: String,
    pub evaluation_interval: String,
    /// Window of `rate()`/`increase()` where a measure names none.
    pub rate_window: String,
    /// Expected block time of a chain not listed under `chains`.
    pub block_time: String,
    /// Where docs/runbook.md is published: each alert's `runbook_url` annotation is this, `#`,
    /// and the alert's anchor. An absolute http(s) URL, so that a page links somewhere.
    pub runbook_base_url: String,
    /// Accept relative URLs (`runbook_base_url: docs/runbook.md`), for a setup whose pages
    /// nobody clicks (tests).
    #[serde(default)]
    pub allow_relative_urls: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Severity {
    /// critical, warning or info: what the level means in words.
    pub level: String,
    /// How soon a human must respond (`15m`, or words such as `next business day`).
    pub response_time: String,
    #[serde(default)]
    pub description: String,
    /// Names under `receivers`: each alert of this severity reaches all of them.
    #[serde(default)]
    pub receivers: Vec<String>,
    /// Alertmanager timings of this severity's route (default: the root's).
    #[serde(default)]
    pub group_wait: Option<String>,
    #[serde(default)]
    pub group_interval: Option<String>,
    #[serde(default)]
    pub repeat_interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// pagerduty, slack or webhook.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub channel: Option<String>,
    /// File holding the secret (Slack webhook URL, PagerDuty routing key, a webhook's bearer
    /// credentials); never the secret itself.
    #[serde(default)]
    pub secret_file: Option<String>,
    /// webhook: where to POST (no secret in it); pagerduty: the events API endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// Send "resolved" notifications (default true; false for the heartbeat).
    #[serde(default)]
    pub send_resolved: Option<bool>,
    // Inline secrets are refused with a pointed message (not a generic "unknown field").
    #[serde(default)]
    pub api_url: Option<serde_norway::Value>,
    #[serde(default)]
    pub routing_key: Option<serde_norway::Value>,
    #[serde(default)]
    pub service_key: Option<serde_norway::Value>,
    #[serde(default)]
    pub token: Option<serde_norway::Value>,
    #[serde(default)]
    pub password: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    pub block_time: String,
    #[serde(default)]
    pub description: String,
}

/// One selector or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
    pub fn is_many(&self) -> bool {
        matches!(self, OneOrMany::Many(_))
    }
}

/// A metric's value (gauge), or `increase`/`rate`/... of it over `window`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueQ {
    pub metric: String,
    #[serde(default)]
    pub window: Option<String>,
    /// increase (counter default), rate, delta (gauge default), max_over_time, min_over_time,
    /// avg_over_time.
    #[serde(default)]
    pub function: Option<String>,
    /// max, min, sum, avg, count over `by`.
    #[serde(default)]
    pub aggregate: Option<String>,
    #[serde(default)]
    pub by: Option<Vec<String>>,
}

/// numerator / denominator, rates for counters, values for gauges, summed `by`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioQ {
    pub numerator: String,
    pub denominator: OneOrMany,
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub by: Option<Vec<String>>,
}

/// Fraction of nodes, per group `by`, whose metric satisfies `op value`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFractionQ {
    pub metric: String,
    pub op: String,
    pub value: f64,
    #[serde(default)]
    pub window: Option<String>,
    pub by: Vec<String>,
    /// A `liveness` recording rule: count every node it knows, and a node that is down as one
    /// that meets the condition (a crashed node reports nothing, and must not leave the count).
    #[serde(default)]
    pub liveness: Option<String>,
}

/// The nodes Prometheus knows: one series per node and the target (`job`, `instance`) that
/// scrapes its sidecar, for every node whose `metric` (a series every sidecar exports) was seen
/// within `window`, and for as long as its target stays down.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryQ {
    pub metric: String,
    pub window: String,
}

/// 1 while a node of the `inventory` is up, 0 when it is down: its `health` check fails, its
/// target cannot be scraped (`up` 0), or its series are gone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessQ {
    pub inventory: String,
    pub health: String,
}

/// `up` of the target that scrapes each node of the `inventory` (the node's labels, its job and
/// instance).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetUpQ {
    pub inventory: String,
}

/// `histogram_quantile` of a histogram; with `versus`, the ratio of two such quantiles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantileQ {
    pub histogram: String,
    pub quantile: f64,
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub by: Option<Vec<String>>,
    #[serde(default)]
    pub versus: Option<String>,
}

/// True when none of the metrics moved within `window` (`10m` or `2x block_time`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoProgressQ {
    pub metrics: OneOrMany,
    pub window: String,
}

/// True for a series seen within `lookback` that is gone now.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbsenceQ {
    pub metric: String,
    pub lookback: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    pub metric: String,
    pub target: f64,
}

/// Largest relative deviation |x - target| / |target| over the terms.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviationQ {
    pub terms: Vec<Term>,
}

/// How far each node is behind the largest value of its group `by`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagQ {
    pub metric: String,
    pub by: Vec<String>,
}

/// rate over the last `window` divided by the rate over the window before it, for nodes whose
/// current rate is above `min_rate` (per second).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendQ {
    pub metric: String,
    pub window: String,
    pub min_rate: f64,
}

/// Fraction of `window` during which `metric op value` held.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeFractionQ {
    pub metric: String,
    pub op: String,
    pub value: f64,
    pub window: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    pub series: String,
    pub values: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A hand-written promtool case for a raw expression.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    pub eval_time: String,
    /// Alerts: label sets of the series that must be firing then (empty: silent).
    #[serde(default)]
    pub firing: Option<Vec<BTreeMap<String, String>>>,
    /// Recording rules: expected samples.
    #[serde(default)]
    pub samples: Option<Vec<Sample>>,
}

/// PromQL as is (escape hatch); it must carry its own tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQ {
    pub expr: String,
    pub tests: Vec<RawTest>,
}

/// The measure kinds of an alert, recording rule or gate condition, as written: exactly one
/// should be set.
#[derive(Debug, Clone, Copy)]
pub struct Kinds<'a> {
    pub value: Option<&'a ValueQ>,
    pub ratio: Option<&'a RatioQ>,
    pub fleet_fraction: Option<&'a FleetFractionQ>,
    pub quantile: Option<&'a QuantileQ>,
    pub no_progress: Option<&'a NoProgressQ>,
    pub absence: Option<&'a AbsenceQ>,
    pub deviation: Option<&'a DeviationQ>,
    pub lag: Option<&'a LagQ>,
    pub trend: Option<&'a TrendQ>,
    pub time_fraction: Option<&'a TimeFractionQ>,
    pub inventory: Option<&'a InventoryQ>,
    pub liveness: Option<&'a LivenessQ>,
    pub target_up: Option<&'a TargetUpQ>,
    pub raw: Option<&'a RawQ>,
}

/// Every kind, as thresholds.yaml spells it.
pub const KIND_NAMES: &str =
    "value, ratio, fleet_fraction, quantile, no_progress, absence, deviation, lag, trend, time_fraction, inventory, liveness, target_up, raw";

impl Kinds<'_> {
    /// The kinds that are set, by name.
    pub fn set(&self) -> Vec<&'static str> {
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
            inventory,
            liveness,
            target_up,
            raw
        );
        v
    }
}

/// A struct with its own fields and one optional field per measure kind, and `kinds()`.
macro_rules! with_kinds {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            #[serde(default)] pub value: Option<ValueQ>,
            #[serde(default)] pub ratio: Option<RatioQ>,
            #[serde(default)] pub fleet_fraction: Option<FleetFractionQ>,
            #[serde(default)] pub quantile: Option<QuantileQ>,
            #[serde(default)] pub no_progress: Option<NoProgressQ>,
            #[serde(default)] pub absence: Option<AbsenceQ>,
            #[serde(default)] pub deviation: Option<DeviationQ>,
            #[serde(default)] pub lag: Option<LagQ>,
            #[serde(default)] pub trend: Option<TrendQ>,
            #[serde(default)] pub time_fraction: Option<TimeFractionQ>,
            #[serde(default)] pub inventory: Option<InventoryQ>,
            #[serde(default)] pub liveness: Option<LivenessQ>,
            #[serde(default)] pub target_up: Option<TargetUpQ>,
            #[serde(default)] pub raw: Option<RawQ>,
        }

        impl $name {
            pub fn kinds(&self) -> Kinds<'_> {
                Kinds {
                    value: self.value.as_ref(),
                    ratio: self.ratio.as_ref(),
                    fleet_fraction: self.fleet_fraction.as_ref(),
                    quantile: self.quantile.as_ref(),
                    no_progress: self.no_progress.as_ref(),
                    absence: self.absence.as_ref(),
                    deviation: self.deviation.as_ref(),
                    lag: self.lag.as_ref(),
                    trend: self.trend.as_ref(),
                    time_fraction: self.time_fraction.as_ref(),
                    inventory: self.inventory.as_ref(),
                    liveness: self.liveness.as_ref(),
                    target_up: self.target_up.as_ref(),
                    raw: self.raw.as_ref(),
                }
            }
        }
    };
}

with_kinds! {
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Alert {
        pub name: String,
        pub criteria: Vec<String>,
        /// Rule group (one file per group).
        pub group: String,
        /// What is measured, in words.
        pub measures: String,
        #[serde(default)]
        pub op: Option<String>,
        #[serde(default)]
        pub threshold: Option<f64>,
        #[serde(default, rename = "for")]
        pub for_: Option<String>,
        pub severity: String,
        pub summary: String,
        pub description: String,
        pub runbook: String,
        /// Per-chain overrides of the threshold.
        #[serde(default)]
        pub chains: BTreeMap<String, ChainOverride>,
        /// Extra labels on the alert.
        #[serde(default)]
        pub labels: BTreeMap<String, String>,
        /// Alerts of one alertgroup measure the same thing at different severities: the more
        /// urgent one firing mutes the milder ones of the same node (label `alertgroup`).
        #[serde(default)]
        pub alertgroup: Option<String>,
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainOverride {
    #[serde(default)]
    pub threshold: Option<f64>,
}

with_kinds! {
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Recording {
        pub record: String,
        #[serde(default)]
        pub criteria: Vec<String>,
        pub group: String,
        pub measures: String,
        #[serde(default)]
        pub labels: BTreeMap<String, String>,
    }
}

with_kinds! {
    /// One condition of a rollout gate: a measure compared with a threshold.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Condition {
        pub name: String,
        pub op: String,
        pub threshold: f64,
        /// The condition must have held throughout this long (default: the gate's window for
        /// `proceed`, the instant for `rollback`).
        #[serde(default)]
        pub throughout: Option<String>,
    }
}

/// A rollout stage: may we proceed (every `proceed` condition held for every node of the group),
/// must we roll back (any `rollback` condition holds on any node).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub name: String,
    #[serde(default)]
    pub criteria: Vec<String>,
    pub group: String,
    /// Seed and heading the stage comes from.
    pub source: String,
    pub stage: String,
    pub window: String,
    #[serde(default)]
    pub by: Option<Vec<String>>,
    /// The chain (a key of `chains`) the stage rolls out: its conditions read only that chain.
    #[serde(default)]
    pub chain: Option<String>,
    #[serde(default)]
    pub proceed: Vec<Condition>,
    #[serde(default)]
    pub rollback: Vec<Condition>,
}

/// A rule group's own evaluation interval, and why; `tier: global` for the groups a global
/// Prometheus evaluates over what the regional ones federate (README, "Scaling").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    #[serde(default)]
    pub interval: Option<String>,
    pub why: String,
    #[serde(default)]
    pub tier: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotMeasurable {
    #[serde(default)]
    pub criteria: Vec<String>,
    pub what: String,
    pub because: String,
}

/// A service level objective, Sloth-style: the share of bad events (or of bad time) over the
/// period must stay under `1 - objective`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Lower-case words joined by `-`: the stem of its records (`slo:<name>_errors:…`).
    pub name: String,
    /// The stem of its two alerts (`<alert>BudgetBurnFast`, `<alert>BudgetBurnSlow`).
    pub alert: String,
    pub criteria: Vec<String>,
    /// Rule group of its records and alerts (default `slo`).
    #[serde(default)]
    pub group: Option<String>,
    /// The chain whose series it reads (default: every chain).
    #[serde(default)]
    pub chain: Option<String>,
    pub objective: f64,
    pub period: String,
    /// What is measured, in words.
    pub measures: String,
    pub errors: SloErrors,
    /// Severities of the fast-burn (page) and slow-burn (ticket) alerts.
    pub page: String,
    pub ticket: String,
    pub runbook: String,
}

/// What counts as bad: events (`ratio`, bad over all) or time (`time_fraction`, the condition of
/// a bad instant). The windows are the SLO's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloErrors {
    #[serde(default)]
    pub ratio: Option<RatioQ>,
    #[serde(default)]
    pub time_fraction: Option<SloFractionQ>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloFractionQ {
    pub metric: String,
    pub op: String,
    pub value: f64,
}
