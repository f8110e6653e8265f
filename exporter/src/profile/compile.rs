//! Validation and compilation of profiles into rules bound to registered metrics. Everything a
//! profile can get wrong is found here, at load, with file, line and field — every error of every
//! loaded profile at once; the engine that runs the result has no error paths of its own.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use chainwatch_catalog::{Catalog, Kind};
use chainwatch_yaml::SpecError;
use prometheus::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec};
use regex::bytes::{CaptureLocations, Regex};

use super::errors::LoadErrors;
use super::rule::{compile_rule, PendingRule};
use super::Loaded;
use crate::arbiter::Arbiter;
use crate::registry::{Family, Guard, Metrics};
use crate::total::Totals;

/// A compiled rule: how to recognise a line, and what to do with it.
pub struct Rule {
    /// `profile/rule`, the `rule` label of the sidecar's own metrics.
    pub name: String,
    pub matcher: Matcher,
    /// Lines this matches are not the rule's, even when `matcher` matches them.
    pub unless: Option<Regex>,
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
    /// `combine: prefer`: the series' arbiter and this action's rank (lower is better).
    pub arbiter: Option<(Arc<Arbiter>, usize)>,
}

impl Action {
    /// Order of application among the actions of one line: better-ranked sources of truth first,
    /// so that a fallback matched by the same line is already turned away.
    pub fn rank(&self) -> usize {
        self.arbiter
            .as_ref()
            .map_or(crate::arbiter::UNRANKED, |(_, r)| *r)
    }
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

/// The catalog extended by the `metrics:` of every profile: what their log rules and API mappings
/// may name. A declaration with an error is left out, and the error returned, so that loading
/// goes on and reports the other errors of the profiles too.
pub fn declared(profiles: &[Loaded]) -> (Catalog, Vec<SpecError>) {
    let mut catalog = Catalog::builtin();
    let mut errs = Vec::new();
    for p in profiles {
        if let Err(e) = catalog.declare(&p.spec.metrics, &p.positions, "metrics") {
            errs.extend(e);
        }
    }
    (catalog, errs)
}

/// Compile the rules of all `profiles` (merged) against `catalog` (the one [`declared`] made of
/// them), and register their metrics.
pub fn compile(
    profiles: &[Loaded],
    catalog: &Catalog,
    demands: &BTreeMap<&'static str, BTreeSet<String>>,
    metrics: &mut Metrics,
) -> Result<Vec<Rule>, LoadErrors> {
    let mut errs: Vec<SpecError> = Vec::new();
    for p in profiles {
        if p.spec.version != 1 {
            errs.push(p.positions.error(
                "version",
                format!(
                    "unsupported profile version {}; this sidecar reads version 1",
                    p.spec.version
                ),
            ));
        }
        if p.spec.name.is_empty() {
            errs.push(p.positions.error("name", "profile name must not be empty"));
        }
    }
    let mut pending: Vec<PendingRule> = Vec::new();
    let mut seen = HashSet::new();
    // Identity of a rule → its name; a rule dropped as a copy → the name of the copy that runs.
    let mut identities: HashMap<String, String> = HashMap::new();
    let mut aliases: HashMap<String, String> = HashMap::new();
    for (pi, p) in profiles.iter().enumerate() {
        for (i, r) in p.spec.rules.iter().enumerate() {
            // Merged profiles may carry the very same rule (both COINjecture profiles count
            // error lines): it runs once, or every such line would be counted twice.
            let identity = format!(
                "{:?}|{:?}|{:?}|{:?}",
                r.regex,
                r.json.as_ref().map(|j| &j.require),
                r.unless,
                r.actions
            );
            let name = format!("{}/{}", p.spec.name, r.name);
            if let Some(kept) = identities.get(&identity) {
                aliases.insert(name, kept.clone());
                continue;
            }
            identities.insert(identity, name);
            match compile_rule(catalog, p, pi, i, r) {
                Ok(rule) => {
                    if !seen.insert(rule.name.clone()) {
                        errs.push(p.positions.error(
                            format!("rules[{i}].name"),
                            format!("duplicate rule name `{}`", r.name),
                        ));
                    }
                    pending.push(rule);
                }
                Err(e) => errs.extend(e),
            }
        }
    }
    super::combine::resolve(profiles, &mut pending, &aliases, catalog, &mut errs);
    if !errs.is_empty() {
        return Err(LoadErrors::new(errs));
    }
    metrics.set_catalog(catalog.clone());

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
            let arbiter = a.arbiter.map(|arb| (arb, a.rank));
            actions.push(Action {
                op,
                labels,
                guard,
                arbiter,
            });
        }
        rules.push(Rule {
            value_errors: value_errors.with_label_values(&[r.name.as_str()]),
            name: r.name,
            matcher: r.matcher,
            unless: r.unless,
            literals: r.literals,
            actions,
        });
    }
    Ok(rules)
}

fn internal(profiles: &[Loaded], e: impl std::fmt::Display) -> LoadErrors {
    let pos = profiles
        .first()
        .map(|p| p.positions.clone())
        .unwrap_or_default();
    pos.error("", format!("registering metrics: {e}")).into()
}
