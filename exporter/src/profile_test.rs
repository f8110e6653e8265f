//! `chainwatch-exporter test FILE...`: the `promtool test rules` of profiles. A test case feeds log
//! lines to a fresh engine and compares every `chain_*` series afterwards (and optionally which
//! rules matched) with what it expects; a failing case prints the difference. Cases live in a
//! profile's `tests:` or in a test file beside profiles (`profiles:` + `tests:`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use chainwatch_yaml::{Positions, SpecError};
use prometheus::proto::MetricType;

use crate::pipeline::{self, Pipeline};
use crate::profile::spec::{ProfileSpec, TestCase, TestFileSpec};
use crate::profile::{self, LoadErrors};

/// Test cases and the profiles they run against.
pub struct Suite {
    /// What the user named (a file path or a built-in profile name).
    pub name: String,
    /// Profiles as `pipeline::build` takes them: built-in names or paths.
    pub profiles: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub tests: Vec<TestCase>,
    positions: Positions,
}

/// A test file or a profile with `tests:`, or a built-in profile by name.
pub fn load(arg: &str) -> Result<Suite, LoadErrors> {
    if let Some(b) = profile::builtin(arg) {
        let l = profile::load(b.name)?;
        return Ok(Suite {
            name: arg.to_string(),
            profiles: vec![b.name.to_string()],
            labels: BTreeMap::new(),
            tests: l.spec.tests,
            positions: l.positions,
        });
    }
    let path = Path::new(arg);
    let text = std::fs::read_to_string(path).map_err(|e| SpecError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!(
            "cannot read {}: {e} (not a built-in profile either)",
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
        ),
    })?;
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap_or_default();
    if doc.get("profiles").is_some() {
        let (spec, positions): (TestFileSpec, Positions) = chainwatch_yaml::from_str(path, &text)?;
        if spec.version != 1 {
            return Err(positions
                .error(
                    "version",
                    "unsupported test file version; this reads version 1",
                )
                .into());
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        let profiles = spec
            .profiles
            .iter()
            .map(|p| match profile::builtin(p) {
                Some(_) => p.clone(),
                None => dir.join(p).to_string_lossy().into_owned(),
            })
            .collect();
        return Ok(Suite {
            name: arg.to_string(),
            profiles,
            labels: spec.labels,
            tests: spec.tests,
            positions,
        });
    }
    let (spec, positions): (ProfileSpec, Positions) = chainwatch_yaml::from_str(path, &text)?;
    Ok(Suite {
        name: arg.to_string(),
        profiles: vec![arg.to_string()],
        labels: BTreeMap::new(),
        tests: spec.tests,
        positions,
    })
}

/// The outcome of a suite: the report (promtool's layout) and whether every case passed.
pub struct Outcome {
    pub report: String,
    pub passed: bool,
}

/// Run every case of `suite`. Errors are load errors of its profiles (invalid input).
pub fn run(suite: &Suite) -> Result<Outcome> {
    let mut report = format!("Unit Testing: {}\n", suite.name);
    if suite.tests.is_empty() {
        report.push_str("  FAILED: no test cases (`tests:` is empty)\n");
        return Ok(Outcome {
            report,
            passed: false,
        });
    }
    let mut failures = String::new();
    for (i, t) in suite.tests.iter().enumerate() {
        let mut p = pipeline::build(&suite.profiles, &suite.labels, 2000)?;
        let got = feed(&mut p, &t.lines)?;
        let mut diff = String::new();
        let expected: Result<BTreeMap<String, f64>, String> = t
            .expect
            .iter()
            .map(|(k, v)| canonical(k).map(|k| (k, *v)))
            .collect();
        let expected = match expected {
            Ok(e) => e,
            Err(m) => {
                return Err(suite
                    .positions
                    .error(format!("tests[{i}].expect"), m)
                    .into())
            }
        };
        diff_maps(&expected, &got.series, "series", &mut diff, fmt_value);
        if let Some(want) = &t.matched {
            let mut w = BTreeMap::new();
            for (k, n) in want {
                let full = resolve_rule(&got.rules, k)
                    .map_err(|m| suite.positions.error(format!("tests[{i}].matched.{k}"), m))?;
                w.insert(full, *n as f64);
            }
            let g: BTreeMap<String, f64> = got
                .rules
                .iter()
                .filter(|(_, n)| **n > 0.0)
                .map(|(k, n)| (k.clone(), *n))
                .collect();
            diff_maps(&w, &g, "rules matched (lines)", &mut diff, fmt_value);
        }
        if !diff.is_empty() {
            let pos = suite.positions.pos(&format!("tests[{i}]"));
            let _ = writeln!(
                failures,
                "    {}:{}: tests[{i}]{}:",
                suite.positions.file().display(),
                pos.line,
                if t.name.is_empty() {
                    String::new()
                } else {
                    format!(" {:?}", t.name)
                }
            );
            failures.push_str(&diff);
        }
    }
    let passed = failures.is_empty();
    if passed {
        let _ = writeln!(report, "  SUCCESS ({} test cases)", suite.tests.len());
    } else {
        report.push_str("  FAILED:\n");
        report.push_str(&failures);
    }
    Ok(Outcome { report, passed })
}

struct Got {
    /// Canonical series → value.
    series: BTreeMap<String, f64>,
    /// Rule → lines matched.
    rules: BTreeMap<String, f64>,
}

fn feed(p: &mut Pipeline, lines: &[String]) -> Result<Got> {
    let stats = p.engine.source_stats(&mut p.metrics, "test")?;
    let mut scratch = p.engine.scratch();
    for l in lines {
        // A case's line is one line: an embedded newline would make it two.
        for part in l.split('\n') {
            p.engine.process_line(part.as_bytes(), &stats, &mut scratch);
        }
    }
    let rules = p
        .engine
        .rules()
        .iter()
        .zip(&stats.matches)
        .map(|(r, c)| (r.name.clone(), c.get()))
        .collect();
    Ok(Got {
        series: series(p),
        rules,
    })
}

/// Every `chain_*` series of the registry, constant labels left out; histograms as `_count` and
/// `_sum`. Counters still at 0 (registered at load, never advanced) are left out too.
fn series(p: &Pipeline) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for fam in p.metrics.registry().gather() {
        let name = fam.name();
        if !name.starts_with("chain_") {
            continue;
        }
        for m in fam.get_metric() {
            let labels: BTreeMap<String, String> = m
                .get_label()
                .iter()
                .filter(|l| !chainwatch_catalog::CONSTANT_LABELS.contains(&l.name()))
                .map(|l| (l.name().to_string(), l.value().to_string()))
                .collect();
            match fam.get_field_type() {
                MetricType::COUNTER => {
                    let v = m.get_counter().get_value();
                    if v != 0.0 {
                        out.insert(key(name, &labels), v);
                    }
                }
                MetricType::GAUGE => {
                    out.insert(key(name, &labels), m.get_gauge().get_value());
                }
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    if h.get_sample_count() > 0 {
                        out.insert(
                            key(&format!("{name}_count"), &labels),
                            h.get_sample_count() as f64,
                        );
                        out.insert(key(&format!("{name}_sum"), &labels), h.get_sample_sum());
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// `name{a="x",b="y"}` with labels sorted; `name` alone without labels.
fn key(name: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", parts.join(","))
}

/// An expected series as written (`chain_x{b="2", a="1"}`), in the canonical form of `key`.
fn canonical(s: &str) -> Result<String, String> {
    let s = s.trim();
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let bad = || format!("`{s}` is not a series (`name` or `name{{label=\"value\", …}}`)");
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(bad());
    }
    let mut labels = BTreeMap::new();
    if let Some(rest) = rest {
        let body = rest.strip_suffix('}').ok_or_else(bad)?;
        let mut chars = body.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let k: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
            if chars.next() != Some('=') || chars.next() != Some('"') {
                return Err(bad());
            }
            let mut v = String::new();
            loop {
                match chars.next() {
                    Some('\\') => v.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => v.push(c),
                    None => return Err(bad()),
                }
            }
            labels.insert(k.trim().to_string(), v);
        }
    }
    Ok(key(name, &labels))
}

fn resolve_rule(rules: &BTreeMap<String, f64>, name: &str) -> Result<String, String> {
    if rules.contains_key(name) {
        return Ok(name.to_string());
    }
    let hits: Vec<&String> = rules
        .keys()
        .filter(|k| k.rsplit_once('/').is_some_and(|(_, r)| r == name))
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("no rule `{name}` in the loaded profiles")),
        many => Err(format!(
            "`{name}` is ambiguous ({}): write `profile/rule`",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn fmt_value(v: f64) -> String {
    format!("{v}")
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// `- expected` / `+ got` lines for every difference, under a heading.
fn diff_maps(
    want: &BTreeMap<String, f64>,
    got: &BTreeMap<String, f64>,
    what: &str,
    out: &mut String,
    fmt: fn(f64) -> String,
) {
    let mut lines = String::new();
    let keys: std::collections::BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    let mut differs = false;
    for k in keys {
        match (want.get(k), got.get(k)) {
            (Some(w), Some(g)) if same(*w, *g) => {
                let _ = writeln!(lines, "        {k} {}", fmt(*w));
            }
            (w, g) => {
                differs = true;
                if let Some(w) = w {
                    let _ = writeln!(lines, "      - {k} {}", fmt(*w));
                }
                if let Some(g) = g {
                    let _ = writeln!(lines, "      + {k} {}", fmt(*g));
                }
            }
        }
    }
    if differs {
        let _ = writeln!(out, "      {what} (- expected, + got):");
        out.push_str(&lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_series_are_canonical() {
        assert_eq!(
            canonical(r#" chain_x{ b="2", a="1" } "#).unwrap(),
            r#"chain_x{a="1",b="2"}"#
        );
        assert_eq!(canonical("chain_peers").unwrap(), "chain_peers");
        assert_eq!(
            canonical(r#"chain_x{a="q\"uote"}"#).unwrap(),
            r#"chain_x{a="q\"uote"}"#
        );
        assert!(canonical("chain_x{a=1}").is_err());
        assert!(canonical("chain x").is_err());
    }
}
