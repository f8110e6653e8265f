//! The history a rule set needs to run at steady state: for every series it reads, the longest
//! lookback any rule reads it over — through the recording rules it feeds too: a recording rule
//! whose output is read over a week must itself have a week of history, and its inputs a week
//! plus its own window. Recording rules that need history are backfilled by
//! `promtool tsdb create-blocks-from rules` in layers (a rule after the rules it reads).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_norway::{Mapping, Value};

use chainwatch_rulegen::promql::reads::reads;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Record {
    /// Seconds of history the record must have (margin included).
    pub history: u64,
    /// 1: reads only scraped series; n: reads records of layer n-1.
    pub layer: usize,
    /// Evaluation interval of its group in seconds, when the group sets one.
    pub interval: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Seconds of history per scraped metric name (margin included); absent: none needed.
    pub raw: BTreeMap<String, u64>,
    pub records: BTreeMap<String, Record>,
    /// Evaluation interval in seconds of the groups that set one.
    pub intervals: BTreeMap<String, u64>,
    /// Per layer and evaluation interval, a rule file holding just those recording rules, in
    /// their groups, in backfill order: promtool backfills a file at one `--eval-interval`, and a
    /// group evaluated every 3m must be backfilled every 3m, as Prometheus would have recorded it.
    #[serde(rename = "layers")]
    pub layer_files: Vec<LayerFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerFile {
    /// `layer-<n>-<interval>s.yml`.
    pub file: String,
    pub layer: usize,
    /// Seconds between evaluations: the group's `interval`, else the global one.
    pub interval: u64,
    /// Seconds of history to backfill: the longest its records need.
    pub history: u64,
    #[serde(skip)]
    pub text: String,
}

struct Rule {
    group: usize,
    record: Option<String>,
    reads: Vec<(String, u64)>,
    raw: Value,
}

/// The plan of the rule files in `dir` (`*.yml`, `*.yaml`), with `margin` seconds added to every
/// history so windows are full at the first evaluation; groups without an `interval` are
/// evaluated every `global_interval` seconds.
pub fn plan_dir(dir: &Path, margin: u64, global_interval: u64) -> Result<Plan> {
    plan(&read_dir(dir)?, margin, global_interval)
}

fn read_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Ok((p.display().to_string(), text))
        })
        .collect()
}

/// A rollout gate rule: what `bench/fleet.sh` compares between two rule sets on the same data.
#[derive(Debug, Clone, Serialize)]
pub struct GateRule {
    pub record: String,
    pub gate: String,
    pub expr: String,
}

/// The `chainwatch:rollout_gate_*` rules of the rule files in `dir`.
pub fn gates_dir(dir: &Path) -> Result<Vec<GateRule>> {
    let mut out = Vec::new();
    for (path, text) in read_dir(dir)? {
        let doc: Value = serde_norway::from_str(&text).with_context(|| path.clone())?;
        let groups = doc.get("groups").and_then(Value::as_sequence);
        for g in groups.into_iter().flatten() {
            for r in g
                .get("rules")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
                let gate = r
                    .get("labels")
                    .and_then(|l| l.get("gate"))
                    .and_then(Value::as_str);
                if let (Some(record), Some(gate), Some(expr)) = (s("record"), gate, s("expr")) {
                    if record.starts_with("chainwatch:rollout_gate_") {
                        out.push(GateRule {
                            record,
                            gate: gate.to_string(),
                            expr,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

pub fn plan(files: &[(String, String)], margin: u64, global_interval: u64) -> Result<Plan> {
    let mut groups: Vec<Mapping> = Vec::new();
    let mut intervals = BTreeMap::new();
    let mut rules: Vec<Rule> = Vec::new();
    for (path, text) in files {
        let doc: Value = serde_norway::from_str(text).with_context(|| path.clone())?;
        let Some(gs) = doc.get("groups").and_then(Value::as_sequence) else {
            continue;
        };
        for g in gs {
            let mut head = Mapping::new();
            for k in ["name", "interval"] {
                if let Some(v) = g.get(k) {
                    head.insert(Value::from(k), v.clone());
                }
            }
            if let (Some(n), Some(i)) = (
                g.get("name").and_then(Value::as_str),
                g.get("interval").and_then(Value::as_str),
            ) {
                let d = chainwatch_duration::Duration::parse(i)
                    .with_context(|| format!("{path}: group {n}: interval"))?;
                intervals.insert(n.to_string(), d.ms() / 1000);
            }
            groups.push(head);
            for r in g
                .get("rules")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let expr = r.get("expr").and_then(Value::as_str).unwrap_or_default();
                let parsed = promql_parser::parser::parse(expr)
                    .map_err(|e| anyhow::anyhow!("{path}: {expr}: {e}"))?;
                let reads = reads(&parsed)
                    .iter()
                    .filter_map(|x| x.name().map(|n| (n, x.lookback.as_secs())))
                    .collect();
                rules.push(Rule {
                    group: groups.len() - 1,
                    record: r.get("record").and_then(Value::as_str).map(str::to_string),
                    reads,
                    raw: r.clone(),
                });
            }
        }
    }
    let recorded: std::collections::BTreeSet<&str> =
        rules.iter().filter_map(|r| r.record.as_deref()).collect();

    // need(x) = max over reads of x of (need(reader) + lookback); a fixed point over the DAG.
    let mut need: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0.. {
        if round > rules.len() + 1 {
            bail!("recording rules read each other in a circle");
        }
        let mut changed = false;
        for r in &rules {
            let base = r
                .record
                .as_ref()
                .and_then(|n| need.get(n))
                .copied()
                .unwrap_or(0);
            for (name, lookback) in &r.reads {
                let want = base + lookback;
                if want > 0 && need.get(name).is_none_or(|&n| n < want) {
                    need.insert(name.clone(), want);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }

    let mut layer: BTreeMap<String, usize> = BTreeMap::new();
    let mut interval_of: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rules {
        let g = groups[r.group]
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let (Some(n), Some(&i)) = (&r.record, intervals.get(g)) {
            interval_of.insert(n.clone(), i);
        }
    }
    for _ in 0..=rules.len() {
        for r in &rules {
            let Some(name) = &r.record else { continue };
            if !need.contains_key(name) {
                continue;
            }
            // A record that reads itself (holding its last value while a target is down) is
            // one layer, not one more each round.
            let below = r
                .reads
                .iter()
                .filter(|(n, _)| n != name)
                .filter_map(|(n, _)| layer.get(n))
                .max()
                .copied()
                .unwrap_or(0);
            layer.insert(name.clone(), below + 1);
        }
    }

    let raw = need
        .iter()
        .filter(|(n, _)| !recorded.contains(n.as_str()))
        .map(|(n, s)| (n.clone(), s + margin))
        .collect();
    let records: BTreeMap<String, Record> = layer
        .iter()
        .map(|(n, &l)| {
            let history = need[n] + margin;
            let interval = interval_of.get(n).copied();
            (
                n.clone(),
                Record {
                    history,
                    layer: l,
                    interval,
                },
            )
        })
        .collect();
    let depth = records.values().map(|r| r.layer).max().unwrap_or(0);
    let group_interval = |head: &Mapping| {
        head.get("name")
            .and_then(Value::as_str)
            .and_then(|g| intervals.get(g))
            .copied()
            .unwrap_or(global_interval)
    };
    let mut every: Vec<u64> = groups.iter().map(group_interval).collect();
    every.sort_unstable();
    every.dedup();
    let mut layer_files = Vec::new();
    for (l, &interval) in (1..=depth).flat_map(|l| every.iter().map(move |i| (l, i))) {
        let mut out: Vec<Value> = Vec::new();
        let mut history = 0;
        for (gi, head) in groups.iter().enumerate() {
            if group_interval(head) != interval {
                continue;
            }
            let these: Vec<&Rule> = rules
                .iter()
                .filter(|r| r.group == gi)
                .filter(|r| {
                    r.record
                        .as_ref()
                        .and_then(|n| records.get(n))
                        .is_some_and(|x| x.layer == l)
                })
                .collect();
            if these.is_empty() {
                continue;
            }
            for r in &these {
                history = history.max(r.record.as_ref().map_or(0, |n| records[n].history));
            }
            let these: Vec<Value> = these.iter().map(|r| r.raw.clone()).collect();
            let mut g = head.clone();
            g.insert(Value::from("rules"), Value::Sequence(these));
            out.push(Value::Mapping(g));
        }
        if out.is_empty() {
            continue;
        }
        let mut doc = Mapping::new();
        doc.insert(Value::from("groups"), Value::Sequence(out));
        layer_files.push(LayerFile {
            file: format!("layer-{l}-{interval}s.yml"),
            layer: l,
            interval,
            history,
            text: serde_norway::to_string(&Value::Mapping(doc))?,
        });
    }
    Ok(Plan {
        raw,
        records,
        intervals,
        layer_files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
groups:
  - name: fast
    rules:
      - record: node:dev
        expr: abs(lambda - 0.7)
      - record: node:errors:increase5m
        expr: increase(errors_total[5m])
      - alert: Now
        expr: rate(verifications_total[10m]) > 0
  - name: slow
    interval: 5m
    rules:
      - record: node:dev:ratio_1w
        expr: avg_over_time((node:dev < bool 0.05)[1w:1h])
      - record: gate
        expr: sum_over_time(node:errors:increase5m[4w]) == bool 0
      - record: gate_by_1h
        expr: max_over_time(gate[1h])
"#;

    #[test]
    fn history_follows_reads_through_recording_rules() {
        let p = plan(&[("r.yml".into(), RULES.into())], 60, 15).unwrap();
        let w = 604_800;
        assert_eq!(
            p.raw["lambda"],
            w + 60,
            "lambda feeds node:dev, read over 1w"
        );
        // errors_total → increase5m (4w for `gate`, which itself is read over 1h) → + 5m.
        assert_eq!(p.raw["errors_total"], 4 * w + 3600 + 300 + 60);
        assert_eq!(p.raw["verifications_total"], 600 + 60);
        assert_eq!(
            p.records["node:dev"],
            Record {
                history: w + 60,
                layer: 1,
                interval: None
            }
        );
        assert_eq!(
            p.records["node:errors:increase5m"].history,
            4 * w + 3600 + 60
        );
        assert_eq!(
            p.records["gate"],
            Record {
                history: 3600 + 60,
                layer: 2,
                interval: Some(300)
            }
        );
        assert!(
            !p.records.contains_key("node:dev:ratio_1w"),
            "read by nothing"
        );
        let names: Vec<&str> = p.layer_files.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(names, ["layer-1-15s.yml", "layer-2-300s.yml"]);
        assert_eq!(
            p.layer_files[0].history,
            4 * w + 3600 + 60,
            "its longest record"
        );
        assert!(p.layer_files[0].text.contains("node:errors:increase5m"));
        assert!(!p.layer_files[0].text.contains("gate"));
        assert!(
            p.layer_files[1].text.contains("interval: 5m"),
            "{}",
            p.layer_files[1].text
        );
        assert_eq!(p.intervals["slow"], 300);
    }

    #[test]
    fn a_record_reading_itself_is_one_layer() {
        let rules = r#"
groups:
  - name: g
    rules:
      - record: target:info:max1h
        expr: max_over_time(info[1h]) or (target:info:max1h and on (job) (up == 0))
      - record: node:info:present1d
        expr: count_over_time(target:info:max1h[1d])
"#;
        let p = plan(&[("r.yml".into(), rules.into())], 0, 15).unwrap();
        assert_eq!(p.records["target:info:max1h"].layer, 1);
        assert_eq!(p.layer_files.len(), 1, "{:?}", p.layer_files);
        assert_eq!(p.layer_files[0].file, "layer-1-15s.yml");
    }
}
