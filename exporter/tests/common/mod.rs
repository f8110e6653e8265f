//! Helpers shared by the exporter's integration tests.
#![allow(dead_code)]

pub mod certs;
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

/// Run `cmd` with `input` on its standard input; its output.
fn piped(cmd: &mut Command, input: &str, missing: &str) -> Output {
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect(missing);
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn promtool_check_metrics(text: &str) {
    let out = piped(
        Command::new("promtool").args(["check", "metrics"]),
        text,
        "promtool not found: install Debian's `prometheus` package (the README's test command does)",
    );
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

/// A Python with the `prometheus_client` package (Debian's python3-prometheus-client, which
/// scripts/test.sh installs): `CHAINWATCH_PYTHON`, else /usr/bin/python3, else python3.
pub fn python() -> String {
    if let Ok(p) = std::env::var("CHAINWATCH_PYTHON") {
        return p;
    }
    for p in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(p)
            .args(["-c", "import prometheus_client.openmetrics.parser"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return p.to_string();
        }
    }
    panic!("no python3 with prometheus_client: install Debian's python3-prometheus-client (scripts/test.sh does)")
}

/// Parse `text` with the OpenMetrics parser of the Python client library, which enforces the
/// specification (`# EOF`, `_total` counters, `# UNIT` as the name's suffix, canonical `le`).
/// Returns `{"families": [[name, type, unit]...], "samples": [[name, {labels}, value]...]}`, or
/// panics with the parser's complaint.
pub fn openmetrics_parse(text: &str) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, math, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams, samples = [], []
for f in text_string_to_metric_families(sys.stdin.read()):
    fams.append([f.name, f.type, f.unit])
    for s in f.samples:
        v = s.value
        samples.append([s.name, s.labels, None if math.isnan(v) else ("+Inf" if v == math.inf else v)])
print(json.dumps({"families": fams, "samples": samples}))
"#;
    let out = piped(
        Command::new(python()).args(["-c", SCRIPT]),
        text,
        "run python3",
    );
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the exposition:\n{}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
