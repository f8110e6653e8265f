//! The generated rules stay affordable for a fleet of a thousand nodes (`bench/fleet.sh` measures
//! what they cost): read from the rule files as Prometheus loads them, with promql-parser,
//!
//! 1. no rule of a group evaluated more often than every 5 minutes reads a scraped series over a
//!    day or more (a week of one counter is 40k samples, at every evaluation, per node);
//! 2. whatever is read over a day or more is a rollup: a recording rule, evaluated at most once a
//!    minute, each sample of which summarizes the window since the last one (it reads over at
//!    least its group's interval, and at most an hour) — not a 15s recording rule of instants,
//!    whose history is as dense as a scraped series;
//! 3. a gate about one chain selects that chain's series only, in every selector (joins do not
//!    drop the other chains' samples until after they were read, and the gate's answer is
//!    published for its chain alone);
//! 4. a rule reading a day or more of a record is evaluated no more often than that record is
//!    (an SLO's week of hourly rollups re-read every minute gives the same answer twenty times);
//! 5. an alert does not compute again what a recording rule of its own group records.
//!
//! The checks first run on rules written the way they were before the rollups, so a check that
//! finds nothing fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use chainwatch_rulegen::promql::reads::reads;
use promql_parser::label::MatchOp;
use serde_norway::Value;

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);
const MINUTE: Duration = Duration::from_secs(60);
const SLOW: Duration = Duration::from_secs(300);
/// Prometheus's default `evaluation_interval` is 1m; thresholds.yaml sets 15s.
const GLOBAL_INTERVAL: Duration = Duration::from_secs(15);

struct Rule {
    group: String,
    interval: Duration,
    record: Option<String>,
    gate: Option<String>,
    expr: String,
}

fn parse_rules(files: &[(&str, &str)]) -> Vec<Rule> {
    let mut out = Vec::new();
    for (path, text) in files {
        let doc: Value = serde_norway::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"));
        for g in doc["groups"].as_sequence().unwrap() {
            let group = g["name"].as_str().unwrap().to_string();
            let interval = g
                .get("interval")
                .and_then(Value::as_str)
                .map(|i| chainwatch_duration::parse_std(i).unwrap())
                .unwrap_or(GLOBAL_INTERVAL);
            for r in g["rules"].as_sequence().unwrap() {
                out.push(Rule {
                    group: group.clone(),
                    interval,
                    record: r.get("record").and_then(Value::as_str).map(str::to_string),
                    gate: r
                        .get("labels")
                        .and_then(|l| l.get("gate"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    expr: r["expr"].as_str().unwrap().to_string(),
                });
            }
        }
    }
    out
}

fn longest_read(expr: &str) -> Duration {
    let e = promql_parser::parser::parse(expr).unwrap();
    reads(&e)
        .iter()
        .map(|r| r.lookback)
        .max()
        .unwrap_or_default()
}

/// Every way the rules break the three rules above, in words.
fn violations(rules: &[Rule], gate_chains: &BTreeMap<String, String>) -> Vec<String> {
    let recorded: BTreeSet<&str> = rules.iter().filter_map(|r| r.record.as_deref()).collect();
    // A rollup: every rule recording the name is evaluated at most once a minute and reads
    // over at least its interval and at most an hour.
    let rollup = |name: &str| {
        rules
            .iter()
            .filter(|r| r.record.as_deref() == Some(name))
            .all(|r| {
                let l = longest_read(&r.expr);
                r.interval >= MINUTE && l >= r.interval && l <= HOUR
            })
    };
    let every = |name: &str| {
        rules
            .iter()
            .filter(|r| r.record.as_deref() == Some(name))
            .map(|r| r.interval)
            .max()
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for r in rules {
        let what = r.record.clone().unwrap_or_else(|| "an alert".into());
        if r.record.is_none() {
            // An expression with a function or an operator, not a bare selector.
            for q in rules
                .iter()
                .filter(|q| q.group == r.group && q.record.is_some())
            {
                if q.expr.contains(['(', ' ']) && r.expr.contains(q.expr.as_str()) {
                    out.push(format!(
                        "an alert in {} computes {} again",
                        r.group,
                        q.record.as_deref().unwrap_or_default()
                    ));
                }
            }
        }
        let e = promql_parser::parser::parse(&r.expr).unwrap();
        for read in reads(&e) {
            let Some(name) = read.name() else { continue };
            if read.lookback < DAY {
                continue;
            }
            let scraped = !recorded.contains(name.as_str());
            if scraped && r.interval < SLOW {
                out.push(format!(
                    "{what} in {} (every {:?}) reads scraped {name} over {:?}",
                    r.group, r.interval, read.lookback
                ));
            }
            if !scraped && !rollup(&name) {
                out.push(format!(
                    "{what} in {} reads {name} over {:?}, which is no rollup",
                    r.group, read.lookback
                ));
            }
            if !scraped && r.interval < every(&name) {
                out.push(format!(
                    "{what} in {} (every {:?}) reads {name} over {:?}, recorded every {:?}",
                    r.group,
                    r.interval,
                    read.lookback,
                    every(&name)
                ));
            }
        }
        let Some(chain) = r.gate.as_ref().and_then(|g| gate_chains.get(g)) else {
            continue;
        };
        for vs in chainwatch_rulegen::promql::selectors(&e) {
            let scoped =
                vs.matchers.matchers.iter().any(|m| {
                    m.name == "chain" && matches!(m.op, MatchOp::Equal) && &m.value == chain
                });
            if !scoped {
                out.push(format!(
                    "gate {} ({chain}) selects {} of every chain",
                    r.gate.as_deref().unwrap_or_default(),
                    vs.name.clone().unwrap_or_default()
                ));
            }
        }
    }
    out
}

#[test]
fn the_checks_catch_rules_as_they_were_before_rollups() {
    let before = r#"
groups:
  - name: chainwatch-gates-consensus
    rules:
      - record: chainwatch:rollout_gate_proceed:bool
        expr: min by (chain, network) (increase(chain_consensus_fallbacks_total[4w]) == bool 0)
        labels: {gate: consensus-refactored-only}
  - name: chainwatch-slo
    rules:
      - record: node:chain_equilibrium_maintained:ratio_1w
        expr: avg_over_time((node:chain_equilibrium_deviation:max_ratio < bool 0.05)[1w:1h])
  - name: chainwatch-equilibrium
    rules:
      - record: node:chain_equilibrium_deviation:max_ratio
        expr: abs(chain_equilibrium_lambda - 0.7071) / 0.7071
  - name: chainwatch-slow
    interval: 10m
    rules:
      - record: node:chain_block_height:delta1w
        expr: delta(chain_block_height{chain="dilithion"}[1w])
  - name: chainwatch-rollups
    interval: 3m
    rules:
      - record: node:chain_cid_broadcasts:rate1h
        expr: rate(chain_cid_broadcasts_total[1h])
  - name: chainwatch-slo-after-rollups
    interval: 1m
    rules:
      - record: slo:cid_propagation:rate1w
        expr: avg_over_time(node:chain_cid_broadcasts:rate1h[6d23h])
  - name: chainwatch-consensus-migration
    rules:
      - record: node:chain_consensus_fallbacks:ratio_rate10m
        expr: sum by (node) (rate(chain_consensus_fallbacks_total[10m])) / sum by (node) (rate(chain_consensus_verifications_total[10m]))
      - alert: ConsensusFallbackRateHigh
        expr: sum by (node) (rate(chain_consensus_fallbacks_total[10m])) / sum by (node) (rate(chain_consensus_verifications_total[10m])) > 0.01
"#;
    let chains: BTreeMap<String, String> =
        [("consensus-refactored-only".into(), "coinjecture".into())].into();
    let v = violations(&parse_rules(&[("before.yml", before)]), &chains);
    let has = |s: &str| v.iter().any(|x| x.contains(s));
    assert!(
        has("reads scraped chain_consensus_fallbacks_total over"),
        "{v:#?}"
    );
    assert!(
        has("reads node:chain_equilibrium_deviation:max_ratio over 604800s, which is no rollup"),
        "{v:#?}"
    );
    assert!(has("gate consensus-refactored-only (coinjecture) selects chain_consensus_fallbacks_total of every chain"), "{v:#?}");
    assert!(
        has("slo:cid_propagation:rate1w in chainwatch-slo-after-rollups (every 60s) reads node:chain_cid_broadcasts:rate1h over 601200s, recorded every 180s"),
        "{v:#?}"
    );
    assert!(
        has("an alert in chainwatch-consensus-migration computes node:chain_consensus_fallbacks:ratio_rate10m again"),
        "{v:#?}"
    );
    // A raw week in a group slower than 5 minutes is allowed by rule 1 (and only there).
    assert!(!has("chain_block_height over"), "{v:#?}");
    assert_eq!(v.len(), 5, "{v:#?}");
}

#[test]
fn generated_rules_read_long_windows_from_rollups_and_gates_their_chain_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (model, files) =
        chainwatch_rulegen::generate(&root.join("thresholds.yaml"), None).expect("thresholds.yaml");
    let rule_files: Vec<(&str, &str)> = files
        .iter()
        .filter(|(p, _)| p.starts_with("prometheus/rules/"))
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let rules = parse_rules(&rule_files);
    let chains: BTreeMap<String, String> = model
        .gates
        .iter()
        .filter_map(|g| g.chain.clone().map(|c| (g.name.clone(), c)))
        .collect();
    // Every gate of the shipped thresholds is about one chain.
    assert_eq!(
        chains.len(),
        model.gates.len(),
        "{:?}",
        model.gates.iter().map(|g| &g.name).collect::<Vec<_>>()
    );
    let v = violations(&rules, &chains);
    assert!(v.is_empty(), "{v:#?}");
    // The windows that made the old rules expensive are all still answered: 4w, 1w, 1d.
    let longest: Vec<Duration> = rules.iter().map(|r| longest_read(&r.expr)).collect();
    assert!(
        longest.iter().any(|d| *d >= 4 * 7 * DAY - HOUR),
        "no 4w window left"
    );
}
