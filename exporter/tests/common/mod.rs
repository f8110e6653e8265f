//! Helpers shared by the exporter's integration tests.
#![allow(dead_code)]

pub mod httpd;
pub mod journal;
pub mod process;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chainwatch-exporter")
}

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn replay(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("replay")
        .args(args)
        .output()
        .expect("run chainwatch-exporter replay")
}

/// One parsed sample: metric name and its labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Parse the Prometheus text format (enough of it for chainwatch's own output).
pub fn parse(text: &str) -> Vec<(Series, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        for pair in split_labels(labels) {
            let (k, v) = pair.split_once('=').expect("label has =");
            map.insert(k.to_string(), v.trim_matches('"').to_string());
        }
        out.push((
            Series {
                name: name.to_string(),
                labels: map,
            },
            value.parse().expect("numeric value"),
        ));
    }
    out
}

fn split_labels(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        parts.push(&s[start..]);
    }
    parts
}

/// The value of the one series named `name` whose labels include `want`.
pub fn value(samples: &[(Series, f64)], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let hits: Vec<f64> = samples
        .iter()
        .filter(|(s, _)| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect();
    assert!(
        hits.len() <= 1,
        "{name}{want:?} matches {} series",
        hits.len()
    );
    hits.first().copied()
}

pub fn promtool_check_metrics(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool not found: install Debian's `prometheus` package (the README's test command does)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}
