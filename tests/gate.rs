//! `chainwatch-gate check` against a live Prometheus: Debian's real `prometheus` scraping a real
//! sidecar that follows a COINjecture node's log (profile `coinjecture-consensus`), loaded with
//! the rules rulegen renders from thresholds.yaml and `tests/fixtures/gate-overlay.yaml` (001's
//! phase-1 gate waits 20 seconds instead of a week). The answers are the seed's words:
//! - a node in SHADOW mode for less than the window: hold — "zero divergences for 1 week" cannot
//!   be said of a node watched for seconds;
//! - once the window has passed without a divergence: proceed (exit 0);
//! - a `CONSENSUS DIVERGENCE` line: roll back (exit 2), naming the rollback criterion;
//! - Prometheus down: unknown (exit 3), never proceed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chainwatch_tests::gate::condition;
use chainwatch_tests::http::{self, urlencode};
use chainwatch_tests::process::Proc;
use chainwatch_tests::stack::{fresh_bin, root, start_on_free_port, system_bin};
use chainwatch_tests::wait;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(90);
const OVERLAY: &str = "tests/fixtures/gate-overlay.yaml";

/// `chainwatch-gate check … --output json`: the exit code and the report.
fn check(prom: &str, gate: &str, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(fresh_bin("chainwatch-gate"))
        .arg("--thresholds")
        .arg(root().join("thresholds.yaml"))
        .arg("--overlay")
        .arg(root().join(OVERLAY))
        .args(["check", "--prometheus", prom, "--gate", gate])
        .args(["--chain", "coinjecture", "--network", "testnet"])
        .args(["--output", "json", "--timeout", "5s"])
        .args(extra)
        .output()
        .expect("run chainwatch-gate");
    chainwatch_tests::gate::report(&out)
}

fn append(log: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    writeln!(f, "{line}").unwrap();
}

struct Live {
    _sidecar: Proc,
    rendered: PathBuf,
    prometheus: Proc,
    prometheus_url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// A sidecar following `node.log` (labels of one testnet node) and a Prometheus scraping it every
/// second with the rendered rules.
fn start() -> Live {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("node.log");
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        d.join("chainwatch.yaml"),
        "version: 1\nprofiles: [coinjecture-consensus]\n\
         labels: {network: testnet, region: eu-central, node: coinjecture-1}\n\
         sources:\n  - {name: node-log, type: file, paths: [node.log], poll_interval: 100ms}\n",
    )
    .unwrap();
    let mut cmd = Command::new(fresh_bin("chainwatch-exporter"));
    cmd.arg("--config")
        .arg(d.join("chainwatch.yaml"))
        .args(["--web.listen-address", "127.0.0.1:0"]);
    let mut sidecar = Proc::spawn("sidecar", cmd, d);
    let err = sidecar.stderr.clone();
    let line = sidecar.wait_line(&err, "msg=listening", DEADLINE);
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))
        .unwrap_or_else(|| panic!("no address= in {line:?}"))
        .to_string();
    append(&log, "INFO Consensus initialized in shadow mode");
    append(&log, "INFO Block 1 verified in 3.12ms (legacy)");

    let rendered = d.join("rendered");
    let out = Command::new(fresh_bin("chainwatch-rulegen"))
        .arg("--thresholds")
        .arg(root().join("thresholds.yaml"))
        .arg("--overlay")
        .arg(root().join(OVERLAY))
        .arg("--out")
        .arg(&rendered)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = d.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}}\n\
             rule_files: ['{}/prometheus/rules/*.rules.yml']\n\
             scrape_configs:\n  - job_name: chainwatch\n    static_configs: [{{targets: ['{addr}']}}]\n",
            rendered.display()
        ),
    )
    .unwrap();
    let bin = system_bin("PROMETHEUS", &["prometheus"], "prometheus");
    let (prometheus, prometheus_url) = start_on_free_port("prometheus", d, |port| {
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        cmd
    });
    Live {
        _sidecar: sidecar,
        rendered,
        prometheus,
        prometheus_url,
        log,
        _dir: dir,
    }
}

#[test]
fn gate_check_holds_then_proceeds_rolls_back_and_is_unknown_without_prometheus() {
    let mut live = start();
    let prom = live.prometheus_url.clone();

    // Too early: the node has been watched for less than the 20s window.
    let hold = wait::until("the gate says hold", DEADLINE, || {
        let (code, r) = check(&prom, "consensus-shadow", &[]);
        match code {
            1 => Ok(r),
            // The first seconds: a single sample has no increase yet, so no data, so unknown.
            3 => Err(format!("unknown: {}", r["error"])),
            _ => panic!("before the window elapsed, exit {code}: {r:#}"),
        }
    });
    let g = &hold["groups"][0];
    assert_eq!(g["verdict"], "hold", "{hold:#}");
    assert_eq!(
        g["nodes_not_elapsed"][0]["node"], "coinjecture-1",
        "{hold:#}"
    );
    assert!(
        g["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("window has not elapsed")),
        "{hold:#}"
    );
    assert_eq!(
        condition(&hold, "zero divergences for 1 week")["status"],
        "pass"
    );

    // --wait polls until the window has passed: proceed.
    let (code, go) = check(
        &prom,
        "consensus-shadow",
        &["--wait", "80s", "--interval", "1s"],
    );
    assert_eq!(code, 0, "{go:#}");
    let divergences = condition(&go, "zero divergences for 1 week");
    assert_eq!(divergences["status"], "pass", "{go:#}");
    assert_eq!(divergences["nodes"][0]["value"], 0.0, "{go:#}");
    assert_eq!(divergences["threshold"], 0.0);
    assert_eq!(divergences["op"], "==");
    assert_eq!(
        condition(&go, "divergence (stay in SHADOW / back to legacy)")["status"],
        "clear"
    );
    assert_eq!(go["groups"][0]["nodes_not_elapsed"], Value::Array(vec![]));

    // The canary templates rendered with the same rules ask the same Prometheus the same thing.
    let canary = canary_queries(&live.rendered, "consensus-shadow");
    for (name, value) in answers(&prom, &canary) {
        let want = if name.starts_with("rollback-") {
            0.0
        } else {
            1.0
        };
        assert_eq!(value, Some(want), "{name} before the divergence");
    }
    every_canary_query_runs(&prom, &live.rendered);
    // The CI step of deploy/ci/ lets the pipeline go on.
    let (code, out) = ci_step(&prom, &live.rendered, "true");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("gate consensus-shadow: proceed"), "{out}");

    // A divergence: roll back, and the proceed condition fails.
    append(
        &live.log,
        "CRITICAL 🚨 CONSENSUS DIVERGENCE DETECTED! Block: 1523",
    );
    let back = wait::until("the gate says roll back", DEADLINE, || {
        let (code, r) = check(&prom, "consensus-shadow", &[]);
        match code {
            2 => Ok(r),
            0 => Err("still proceed: the divergence is not scraped yet".into()),
            _ => panic!("after a divergence, exit {code}: {r:#}"),
        }
    });
    let trip = condition(&back, "divergence (stay in SHADOW / back to legacy)");
    assert_eq!(trip["status"], "tripped", "{back:#}");
    assert!(
        trip["nodes"][0]["value"].as_f64().unwrap() > 0.0,
        "{back:#}"
    );
    assert_eq!(
        condition(&back, "zero divergences for 1 week")["status"],
        "fail"
    );

    for (name, value) in answers(&prom, &canary) {
        let want = match name.as_str() {
            "rollback-divergence-stay-in-shadow-back-to-legacy" => 1.0,
            "proceed-zero-divergences-for-1-week" => 0.0,
            "proceed-zero-rust-errors" => 1.0,
            "flagger" => 0.0,
            other => panic!("unexpected canary metric {other}"),
        };
        assert_eq!(value, Some(want), "{name} after the divergence");
    }

    // … and runs the rollback command when the gate says roll back.
    let marker = live.rendered.join("rolled-back");
    let (code, out) = ci_step(
        &prom,
        &live.rendered,
        &format!("touch {}", marker.display()),
    );
    assert_eq!(code, 2, "{out}");
    assert!(marker.exists(), "the rollback command did not run: {out}");

    // Prometheus gone: unknown, whatever the last answer was.
    live.prometheus.stop();
    let (code, gone) = check(&prom, "consensus-shadow", &[]);
    assert_eq!(code, 3, "{gone:#}");
    assert!(
        gone["error"].as_str().unwrap().contains("unreachable"),
        "{gone:#}"
    );
}

/// The queries of a gate's Argo AnalysisTemplate (by metric name) and Flagger MetricTemplate
/// (`flagger`), with the template arguments a canary of this node would pass.
fn canary_queries(rendered: &Path, gate: &str) -> Vec<(String, String)> {
    let fill = |q: &str| {
        q.replace("{{args.chain}}", "coinjecture")
            .replace("{{args.network}}", "testnet")
            .replace("{{ variables.chain }}", "coinjecture")
            .replace("{{ variables.network }}", "testnet")
    };
    let read = |p: PathBuf| -> serde_norway::Value {
        serde_norway::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
    };
    let argo = read(rendered.join(format!("canary/argo-rollouts/{gate}.yaml")));
    let mut out: Vec<(String, String)> = argo["spec"]["metrics"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                fill(m["provider"]["prometheus"]["query"].as_str().unwrap()),
            )
        })
        .collect();
    let flagger = read(rendered.join(format!("canary/flagger/{gate}.yaml")));
    out.push((
        "flagger".into(),
        fill(flagger["spec"]["query"].as_str().unwrap()),
    ));
    out
}

/// Each query's single value (as Argo's `result[0]` and Flagger read it), None when empty.
fn answers(prom: &str, queries: &[(String, String)]) -> Vec<(String, Option<f64>)> {
    queries
        .iter()
        .map(|(name, q)| {
            let url = format!("{prom}/api/v1/query?query={}", urlencode(q));
            let v = http::get_json(&url);
            assert_eq!(v["status"], "success", "{name}: {q}: {v}");
            let r = v["data"]["result"].as_array().unwrap();
            assert!(r.len() <= 1, "{name}: one series per canary, got {r:?}");
            let value = r
                .first()
                .map(|s| s["value"][1].as_str().unwrap().parse::<f64>().unwrap());
            (name.clone(), value)
        })
        .collect()
}

/// Every template's every query is accepted by the real Prometheus (most find no series: only a
/// consensus node is scraped here).
fn every_canary_query_runs(prom: &str, rendered: &Path) {
    let mut n = 0;
    for tool in ["argo-rollouts", "flagger"] {
        for e in std::fs::read_dir(rendered.join("canary").join(tool)).unwrap() {
            let gate = e.unwrap().path();
            let gate = gate.file_stem().unwrap().to_str().unwrap().to_string();
            if tool == "flagger" {
                continue; // canary_queries reads both tools' files of a gate
            }
            n += answers(prom, &canary_queries(rendered, &gate)).len();
        }
    }
    assert!(n > 30, "{n} canary queries run");
}

/// `deploy/ci/gate-step.sh` for the phase-1 gate: (exit code, stdout + stderr).
fn ci_step(prom: &str, rendered: &Path, rollback: &str) -> (i32, String) {
    let out = Command::new("bash")
        .arg(root().join("deploy/ci/gate-step.sh"))
        .env("PROMETHEUS", prom)
        .env("GATE", "consensus-shadow")
        .env("CHAIN", "coinjecture")
        .env("NETWORK", "testnet")
        .env("WAIT", "10s")
        .env("INTERVAL", "1s")
        .env("ROLLBACK", rollback)
        .env("THRESHOLDS", root().join("thresholds.yaml"))
        .env("OVERLAY", root().join(OVERLAY))
        .env("CHAINWATCH_GATE", fresh_bin("chainwatch-gate"))
        .current_dir(rendered)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
