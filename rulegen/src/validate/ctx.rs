//! The one error collector of validation, and what the checks share: the defaults, the chains,
//! the criteria and the recording rules checked so far. Every error names file, line, column and
//! field (`file:line:col: field.path: message`), through the `Locator` of the spec.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chainwatch_catalog::Catalog;
use chainwatch_duration::Duration;
use chainwatch_yaml::SpecError;

use crate::model::{Op, Record};
use crate::spec::Locator;

pub struct Ctx<'a> {
    loc: &'a Locator,
    errs: Vec<SpecError>,
    /// Window of `rate()`/`increase()` where a measure names none (a gate's window inside it).
    pub rate_window: Duration,
    pub scrape: Duration,
    pub default_block_time: Duration,
    /// Chain → expected block time.
    pub chains: BTreeMap<String, Duration>,
    pub criteria: BTreeSet<String>,
    /// Recording rules checked so far: a selector may name the ones above it.
    pub records: Vec<Record>,
    /// Names taken so far (recording rules, alerts, `gate:<name>`) → the field that took them.
    pub names: HashMap<String, String>,
    /// The catalog and the metrics declared for this file (`metrics:`, `catalogs:`).
    pub catalog: Catalog,
}

impl<'a> Ctx<'a> {
    pub fn new(loc: &'a Locator) -> Ctx<'a> {
        Ctx {
            loc,
            errs: Vec::new(),
            rate_window: Duration::from_secs(300),
            scrape: Duration::from_secs(15),
            default_block_time: Duration::from_secs(60),
            chains: BTreeMap::new(),
            criteria: BTreeSet::new(),
            records: Vec::new(),
            names: HashMap::new(),
            catalog: Catalog::builtin(),
        }
    }

    /// An error located elsewhere already (in a file of `catalogs:`).
    pub fn push(&mut self, e: SpecError) {
        self.errs.push(e);
    }

    pub fn err(&mut self, field: &str, msg: impl Into<String>) {
        let e = self.loc.error(field, msg);
        self.errs.push(e);
    }

    /// How many errors so far (a check can tell whether it added one).
    pub fn error_count(&self) -> usize {
        self.errs.len()
    }

    /// The errors as they came (for a single early one).
    pub fn into_errors(self) -> Vec<SpecError> {
        self.errs
    }

    /// Stop here if anything failed: every error, in file order.
    pub fn stop(&mut self) -> Result<(), Vec<SpecError>> {
        if self.errs.is_empty() {
            return Ok(());
        }
        let mut errs = std::mem::take(&mut self.errs);
        sort_errors(&mut errs);
        Err(errs)
    }

    pub fn dur(&mut self, text: &str, field: &str) -> Option<Duration> {
        match Duration::parse(text) {
            Ok(d) => Some(d),
            Err(m) => {
                self.err(field, m.to_string());
                None
            }
        }
    }

    /// A window of rate()/increase(): parses and must hold at least two scrapes.
    pub fn window(&mut self, text: Option<&String>, field: &str) -> Option<Duration> {
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

    pub fn op(&mut self, s: &str, field: &str) -> Option<Op> {
        let o = Op::parse(s);
        if o.is_none() {
            self.err(
                field,
                format!("unknown comparison `{s}` (use >, >=, <, <=, == or !=)"),
            );
        }
        o
    }

    /// Grouping labels (`by`), or `default` when not given.
    pub fn by(&mut self, by: Option<&Vec<String>>, field: &str, default: &[&str]) -> Vec<String> {
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

    pub fn check_criteria(&mut self, ids: &[String], field: &str) {
        for (i, c) in ids.iter().enumerate() {
            if !self.criteria.contains(c) {
                self.err(
                    &format!("{field}[{i}]"),
                    format!("unknown criterion `{c}` (not in the `criteria` list)"),
                );
            }
        }
    }
}

/// Errors in file order (stable: at one position, the first found first), each once.
pub fn sort_errors(errs: &mut Vec<SpecError>) {
    errs.sort_by_key(|x| (x.file.clone(), x.line, x.column));
    errs.dedup();
}

/// A name of letters, digits and `_` (and the characters of `extra`), not starting with a digit.
pub fn is_ident(s: &str, extra: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && s.chars()
            .all(|x| x.is_ascii_alphanumeric() || x == '_' || extra.contains(x))
}
