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
    pub actions: Vec<ActionSpec>,
    /// Sample lines this rule must match; checked when the profile is loaded, so a profile
    /// documents and tests itself.
    #[serde(default)]
    pub examples: Vec<String>,
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
