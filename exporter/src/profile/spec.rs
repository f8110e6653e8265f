//! The profile file format, as written by users: plain data, checked by `compile`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// Format version; only 1 exists.
    #[serde(default = "one")]
    pub version: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The `chain` constant label this family gets unless the config sets one.
    #[serde(default)]
    pub chain: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Stats API mappings by name.
    #[serde(default)]
    pub apis: BTreeMap<String, ApiSpec>,
    /// Metrics of this profile's own, outside the catalog (`chain_x_*`).
    #[serde(default)]
    pub metrics: Vec<chainwatch_catalog::MetricDecl>,
    /// Per metric, how rules that update the same series combine (see `CombineSpec`).
    #[serde(default)]
    pub combine: BTreeMap<String, CombineSpec>,
    /// Test cases run by `chainwatch-exporter test`.
    #[serde(default)]
    pub tests: Vec<TestCase>,
    /// Where a line's own time is (`replay --timestamps`), tried in order; none: a syslog or
    /// journal prefix, else ISO 8601, at the start of the line.
    #[serde(default)]
    pub time: Vec<TimeSpec>,
}

/// One place a line's time may be: a regex's `time` capture (default: the format's own pattern
/// at the start of the line, after an optional `[`), or a field of a JSON line; read as `format`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeSpec {
    /// syslog (`Jan  5 12:00:00`, journalctl's default output), iso8601 (`2025-01-05T12:00:00Z`,
    /// `2025-01-05 12:00:00,123`, with or without an offset), unix (seconds), unix_ms.
    pub format: String,
    #[serde(default)]
    pub regex: Option<String>,
    /// A JSON line's field (a name, or a JSON pointer such as /meta/ts).
    #[serde(default)]
    pub json: Option<String>,
}

/// How the rules writing one metric combine when a node writes the same fact twice (a line per
/// event and a JSON running total; two profiles reading the same line). Exactly one field.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CombineSpec {
    /// These rules, best first, are the source of truth: once one of them has updated a series,
    /// rules after it (and rules not listed) no longer do. Before that, they do, so a node that
    /// writes only the other form is still measured. A running total that takes over counts only
    /// what the counter does not already hold.
    #[serde(default)]
    pub prefer: Vec<String>,
    /// Only these rules update the metric; the others' actions on it are dropped at load.
    #[serde(default)]
    pub only: Vec<String>,
    /// Gauges and states only: every rule reports the same current value; the last line wins.
    #[serde(default)]
    pub latest: bool,
}

/// Lines in, series out: the `promtool test rules` of a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    #[serde(default)]
    pub name: String,
    /// Log lines, fed in order to a fresh engine.
    pub lines: Vec<String>,
    /// Every `chain_*` series afterwards, exactly (`name{label="v"}` → value; constant labels are
    /// left out, histograms are given by `_count` and `_sum`). `{}`: the lines produce nothing.
    pub expect: BTreeMap<String, f64>,
    /// When given, the rules that matched and on how many lines, exactly (`rule` of this profile,
    /// or `profile/rule`). `{}`: no rule may match any of the lines.
    #[serde(default)]
    pub matched: Option<BTreeMap<String, u64>>,
}

/// A test file beside profiles: which profiles (merged, as a config would) and their tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFileSpec {
    #[serde(default = "one")]
    pub version: u32,
    /// Built-in names or paths (relative to the test file).
    pub profiles: Vec<String>,
    /// Constant labels, as a configuration's `labels:` (the `chain` of profiles that disagree).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub tests: Vec<TestCase>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    /// A regular expression (Rust `regex` syntax) with named captures.
    #[serde(default)]
    pub regex: Option<String>,
    /// JSON-line matching: the line must be a JSON object holding these fields.
    #[serde(default)]
    pub json: Option<JsonSpec>,
    /// A line this regex matches is not matched by the rule (`Broadcasting CID x failed` is no
    /// broadcast): the negative lookahead Rust's linear-time regexes do not have.
    #[serde(default)]
    pub unless: Option<String>,
    pub actions: Vec<ActionSpec>,
    /// Sample lines this rule must match; checked when the profile is loaded, so a profile
    /// documents and tests itself.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Sample lines this rule must NOT match (near misses another rule owns); checked at load.
    #[serde(default)]
    pub not_examples: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSpec {
    /// Field names (top level) or JSON pointers (`/a/b`) that must all be present.
    pub require: Vec<String>,
}

/// One thing to do with a matched line. Exactly one of `counter`, `gauge`, `histogram`, `state`
/// names the metric and the operation.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    #[serde(default)]
    pub counter: Option<String>,
    #[serde(default)]
    pub gauge: Option<String>,
    #[serde(default)]
    pub histogram: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// counter: increment by this capture (or number) instead of 1.
    #[serde(default)]
    pub by: Option<ValueSpec>,
    /// counter: the capture holds an absolute running total; the counter follows it (a drop is a
    /// restart of the node's count).
    #[serde(default)]
    pub total: Option<String>,
    /// gauge, histogram, state: the capture (or number) to use.
    #[serde(default)]
    pub value: Option<ValueSpec>,
    /// histogram and gauge: unit of the captured value (`ns`, `us`, `ms`, `s`, `m`, `h`, `percent`),
    /// converted to the metric's base unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// Multiply the value by this (after `unit`).
    #[serde(default)]
    pub scale: Option<f64>,
    /// Variable labels: `"$capture"` or a literal, or `{from: capture, map: {raw: value}}`.
    #[serde(default)]
    pub labels: BTreeMap<String, LabelSpec>,
    /// state: raw value → state name (case-insensitive keys).
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ValueSpec {
    Number(f64),
    Capture(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LabelSpec {
    Text(String),
    Mapped(MappedLabel),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappedLabel {
    pub from: String,
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

/// How a stats API maps onto catalog metrics. A source of the same `type` in the sidecar config
/// names it with `mapping:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    #[serde(rename = "type")]
    pub kind: ApiKind,
    /// Default path appended to the source's base URL (http_json, prometheus).
    #[serde(default)]
    pub path: Option<String>,
    /// http_json: metrics read from the response body.
    #[serde(default)]
    pub metrics: Vec<JsonMetricSpec>,
    /// jsonrpc: calls made each poll, each with metrics read from its `result`.
    #[serde(default)]
    pub calls: Vec<RpcCallSpec>,
    /// prometheus: native series re-exported under catalog names.
    #[serde(default)]
    pub series: Vec<SeriesSpec>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApiKind {
    HttpJson,
    Jsonrpc,
    Prometheus,
}

impl ApiKind {
    pub fn name(&self) -> &'static str {
        match self {
            ApiKind::HttpJson => "http_json",
            ApiKind::Jsonrpc => "jsonrpc",
            ApiKind::Prometheus => "prometheus",
        }
    }
}

/// One metric read from a JSON document, or (`each`) a group of metrics read from every element
/// of an array, labeled per element.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JsonMetricSpec {
    #[serde(default)]
    pub gauge: Option<String>,
    /// A counter that follows an absolute running total in the document.
    #[serde(default)]
    pub counter: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// JSON pointer (RFC 6901) of the value, relative to the document or the array element;
    /// "" is the value itself.
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub scale: Option<f64>,
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// Label values: a literal, or `/pointer` into the array element.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Pointer of an array (or object) whose elements each produce `metrics`.
    #[serde(default)]
    pub each: Option<String>,
    #[serde(default)]
    pub metrics: Vec<JsonMetricSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcCallSpec {
    pub method: String,
    #[serde(default)]
    pub params: Vec<serde_json::Value>,
    pub metrics: Vec<JsonMetricSpec>,
}

/// A native series (by name, any labels) re-exported as a catalog metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    pub from: String,
    #[serde(default)]
    pub gauge: Option<String>,
    #[serde(default)]
    pub counter: Option<String>,
    #[serde(default)]
    pub scale: Option<f64>,
    /// Catalog label → native label whose value it takes. Native labels not named are dropped
    /// (their series are summed).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}
