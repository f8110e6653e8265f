//! A metric of a user's own, end to end, without a rebuild (issue 12): the profile
//! `tests/fixtures/custom-metric/mempool.yaml` declares `chain_x_mempool_evictions_total` and
//! feeds it from a log rule; the thresholds file beside it alerts on it, reading the same
//! declaration (`catalogs: [mempool.yaml]`).
//! - chainwatch-rulegen renders the rules; `promtool check rules` passes, and so does
//!   `promtool test rules` on the generated tests and on a test written by hand;
//! - a real sidecar follows a log with the profile, and its scrape passes `promtool check
//!   metrics`;
//! - Debian's Prometheus scrapes that sidecar and evaluates the rules rendered with an overlay
//!   (windows of seconds): the alert fires once the log says the mempool evicts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chainwatch_tests::http::{self, urlencode};
use chainwatch_tests::sidecar;
use chainwatch_tests::stack::{fresh_bin, root, start_on_free_port, system_bin};
use chainwatch_tests::wait;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/custom-metric").join(name)
}

fn shown(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The fixture's thresholds file (with `overlay`) rendered under `out`.
fn rulegen(out: &Path, overlay: Option<&str>) {
    let mut cmd = Command::new(fresh_bin("chainwatch-rulegen"));
    cmd.arg("--thresholds").arg(fixture("thresholds.yaml"));
    if let Some(o) = overlay {
        cmd.arg("--overlay").arg(fixture(o));
    }
    let o = cmd.arg("--out").arg(out).output().unwrap();
    assert!(o.status.success(), "chainwatch-rulegen:\n{}", shown(&o));
}

fn promtool() -> PathBuf {
    system_bin("PROMTOOL", &["promtool"], "prometheus")
}

/// `promtool ARGS...` in `dir`, with `stdin`; must succeed.
fn promtool_ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(promtool())
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "promtool {args:?}:\n{}", shown(&o));
    shown(&o)
}

fn query(prom: &str, expr: &str) -> Result<Vec<Value>, String> {
    let v = http::get_json(&format!("{prom}/api/v1/query?query={}", urlencode(expr)));
    if v["status"] != "success" {
        return Err(format!("{expr}: {v}"));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

fn append(log: &Path, lines: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
}

#[test]
fn a_metric_declared_by_a_users_profile_is_served_alerted_on_and_checked_by_promtool() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // The rules as an operator renders them, and promtool on them: the generated tests and the
    // one written by hand.
    let rendered = dir.join("rendered");
    rulegen(&rendered, None);
    std::fs::copy(
        fixture("MempoolEvicting.test.yml"),
        rendered.join("prometheus/tests/MempoolEvicting.test.yml"),
    )
    .unwrap();
    promtool_ok(
        &rendered,
        &["check", "rules", "prometheus/rules/mempool.rules.yml"],
        "",
    );
    let out = promtool_ok(
        &rendered,
        &[
            "test",
            "rules",
            "prometheus/tests/alerts/MempoolEvicting.test.yml",
            "prometheus/tests/MempoolEvicting.test.yml",
        ],
        "",
    );
    assert_eq!(out.matches("SUCCESS").count(), 2, "{out}");

    // The sidecar: the user's profile on a log it follows.
    let log = dir.join("node.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.join("chainwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nprofiles: ['{}']\nlabels: {{node: n1}}\nsources:\n  - name: node-log\n    type: file\n    paths: [node.log]\n",
            fixture("mempool.yaml").display()
        ),
    )
    .unwrap();
    let (_sidecar, addr) = sidecar::start("mempool", &config, dir, DEADLINE);

    // Prometheus: the sidecar and the rules every second (rendered with the overlay's windows).
    let live = dir.join("live");
    rulegen(&live, Some("overlay.yaml"));
    let prom_config = dir.join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             rule_files: ['{}/prometheus/rules/*.rules.yml']\n\
             scrape_configs:\n  - job_name: mempool\n    static_configs:\n      - targets: ['{addr}']\n",
            live.display()
        ),
    )
    .unwrap();
    let prom_bin = system_bin("PROMETHEUS", &["prometheus"], "prometheus");
    let (_prometheus, prom) = start_on_free_port("prometheus", dir, |port| {
        let mut cmd = Command::new(&prom_bin);
        cmd.arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        cmd
    });

    // A first eviction makes the series; Prometheus stores it with the sidecar's labels.
    append(
        &log,
        "mempool: evicted 1 tx (sizelimit)\nmempool: evicted 7 txs (expiry)\nmempool: 812 txs waiting\n",
    );
    let sel = r#"chain_x_mempool_evictions_total{reason="sizelimit"}"#;
    wait::until("Prometheus has the declared metric", DEADLINE, || {
        let r = query(&prom, sel)?;
        match r.as_slice() {
            [s] if s["metric"]["chain"] == "mychain"
                && s["metric"]["node"] == "n1"
                && s["value"][1] == "1" =>
            {
                Ok(())
            }
            _ => Err(format!("{r:?}")),
        }
    });
    let (status, body) = http::get(&format!("http://{addr}/metrics")).unwrap();
    assert_eq!(status, 200);
    promtool_ok(dir, &["check", "metrics"], &body);
    for line in [
        "# HELP chain_x_mempool_evictions_total Transactions evicted from the mempool, by reason.",
        "# TYPE chain_x_mempool_evictions_total counter",
        r#"chain_x_mempool_evictions_total{chain="mychain",node="n1",reason="expiry"} 7"#,
    ] {
        assert!(body.lines().any(|l| l == line), "no `{line}` in:\n{body}");
    }
    let alerts = || -> Vec<Value> {
        let v = http::get_json(&format!("{prom}/api/v1/alerts"));
        v["data"]["alerts"].as_array().cloned().unwrap_or_default()
    };
    assert_eq!(alerts(), Vec::<Value>::new(), "one eviction is no alert");

    // The mempool evicts for lack of room: 90 in a few seconds, past the threshold of 50.
    append(&log, &"mempool: evicted 30 txs (sizelimit)\n".repeat(3));
    let firing = wait::until("MempoolEvicting fires", DEADLINE, || {
        let a = alerts();
        a.iter()
            .find(|x| x["labels"]["alertname"] == "MempoolEvicting" && x["state"] == "firing")
            .cloned()
            .ok_or_else(|| format!("{a:?}"))
    });
    let l = &firing["labels"];
    for (k, v) in [
        ("chain", "mychain"),
        ("node", "n1"),
        ("reason", "sizelimit"),
        ("severity", "P2"),
        ("criterion", "MEM1"),
        ("job", "mempool"),
    ] {
        assert_eq!(l[k], v, "label {k} of {firing}");
    }
    assert_eq!(
        firing["annotations"]["summary"], "Mempool of n1 is full",
        "{firing}"
    );
}
