//! A week of history from the journal, on day one: a COINjecture node's week in SHADOW mode
//! (`journalctl -u coinjecture-node -o json`, the wording of seed 001) and its API's equilibrium
//! lines (`journalctl -u coinjecture-api -o json`, seed 000), replayed by
//! `chainwatch-exporter replay --timestamps --format openmetrics`, backfilled by
//! `promtool tsdb create-blocks-from openmetrics` into a fresh Debian `prometheus` loaded with
//! the committed rules (prometheus/rules/), then asked by `chainwatch-gate check --at <end of
//! the week>` — exactly the README's commands. Two networks, one node each:
//! - `testnet`: no divergence all week, equilibrium lost for 6 hours (96% of the week kept):
//!   001 phase 1 proceeds (exit 0), 000 stage 4 proceeds (exit 0);
//! - `devnet`: one `CONSENSUS DIVERGENCE` on day 3, equilibrium lost for 30 hours (82% kept):
//!   001 phase 1 rolls back (exit 2) although the divergence is days old, 000 stage 4 holds
//!   (exit 1).
//!
//! Then the same Prometheus behind `--web.config.file` (TLS, basic auth): `--prometheus.config`
//! with the right CA and password gets the same answer; a wrong CA or password is unknown (3).
//!
//! The long-window records (hourly rollups, the SLO's
//! `slo:equilibrium_maintained_errors:ratio_rate1w`) have no history on backfilled data:
//! Prometheus only evaluates them from its start on. The gate reads their expressions instead,
//! which is what this test proves works over a week.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

#[path = "../exporter/tests/common/certs.rs"]
#[allow(dead_code)]
mod certs;

use chainwatch_tests::gate::condition;
use chainwatch_tests::process::Proc;
use chainwatch_tests::stack::{fresh_bin, root, start_on_free_port, system_bin};
use serde_json::Value;

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;
/// A week, and 10 minutes before it: the node was reporting a whole window before the end.
const SPAN: u64 = 7 * DAY + 10 * MINUTE;

struct Week {
    network: &'static str,
    divergence_at: Option<u64>,
    /// Seconds after the start, and how long, the equilibrium is off by 15%.
    off: (u64, u64),
}

/// `journalctl -o json` entries: one a minute per unit, each at its own `__REALTIME_TIMESTAMP`.
fn journal(path: &Path, unit: &str, start: u64, lines: impl Iterator<Item = (u64, String)>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for (i, (t, msg)) in lines.enumerate() {
        let us = (start + t) * 1_000_000 + 250_000;
        let e = serde_json::json!({
            "__CURSOR": format!("s=0;i={i:x};b=1;m={us:x};t={us:x};x=0"),
            "__REALTIME_TIMESTAMP": us.to_string(),
            "_SYSTEMD_UNIT": format!("{unit}.service"),
            "SYSLOG_IDENTIFIER": unit,
            "PRIORITY": if msg.starts_with("CRITICAL") { "2" } else { "6" },
            "MESSAGE": msg,
        });
        writeln!(f, "{e}").unwrap();
    }
    f.flush().unwrap();
}

fn node_lines(w: &Week) -> impl Iterator<Item = (u64, String)> + '_ {
    let start = std::iter::once((0, "INFO Consensus initialized in shadow mode".to_string()));
    let blocks = (1..=SPAN / MINUTE).flat_map(move |i| {
        let t = i * MINUTE;
        let mut v = vec![(
            t,
            format!(
                "INFO Block {i} verified in {:.2}ms (legacy)",
                3.0 + (i % 7) as f64 * 0.4
            ),
        )];
        if w.divergence_at.is_some_and(|d| d / MINUTE == i) {
            v.push((
                t + 1,
                format!("CRITICAL 🚨 CONSENSUS DIVERGENCE DETECTED! Block: {i}"),
            ));
        }
        v
    });
    start.chain(blocks)
}

fn api_lines(w: &Week) -> impl Iterator<Item = (u64, String)> + '_ {
    (0..=SPAN / MINUTE).map(move |i| {
        let t = i * MINUTE + 30;
        let off = t >= w.off.0 && t < w.off.0 + w.off.1;
        // As the node prints them: four decimals around the seed's 0.7071.
        let (lambda, eta) = if off {
            ("0.6010", "0.7068")
        } else if i % 2 == 0 {
            ("0.7071", "0.7068")
        } else {
            ("0.7069", "0.7071")
        };
        let ratio = lambda.parse::<f64>().unwrap() / eta.parse::<f64>().unwrap();
        (
            t,
            format!("INFO ⚖️  Equilibrium: λ={lambda} η={eta} ratio={ratio:.4}"),
        )
    })
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Command 1 of the README: the journal → OpenMetrics with each line's own time.
fn replay(journal: &Path, profile: &str, network: &str, out: &Path) {
    let o = run(Command::new(fresh_bin("chainwatch-exporter"))
        .args(["replay", "--profile", profile, "--timestamps"])
        .args(["--format", "openmetrics", "--resolution", "5m"])
        .args(["--label", &format!("network={network}")])
        .args([
            "--label",
            "region=eu-central",
            "--label",
            "node=coinjecture-1",
        ])
        .arg("-")
        .stdin(std::fs::File::open(journal).unwrap()));
    std::fs::write(out, &o.stdout).unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end");
}

/// `chainwatch-gate check --at`: (exit code, report).
fn check(prom: &str, gate: &str, network: &str, at: u64) -> (i32, Value) {
    check_with(prom, &[], gate, network, at)
}

fn check_with(prom: &str, extra: &[&str], gate: &str, network: &str, at: u64) -> (i32, Value) {
    let out = Command::new(fresh_bin("chainwatch-gate"))
        .arg("--thresholds")
        .arg(root().join("thresholds.yaml"))
        .args(["check", "--prometheus", prom, "--gate", gate])
        .args(extra)
        .args(["--chain", "coinjecture", "--network", network])
        .args([
            "--at",
            &at.to_string(),
            "--output",
            "json",
            "--timeout",
            "60s",
        ])
        .output()
        .unwrap();
    chainwatch_tests::gate::report(&out)
}

fn value(c: &Value) -> f64 {
    c["nodes"][0]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("no value: {c:#}"))
}

#[test]
fn a_backfilled_week_answers_001_phase_1_and_000_stage_4() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The week ends a quarter hour ago (inside the default retention, before Prometheus starts).
    let end = now / MINUTE * MINUTE - 15 * MINUTE;
    let start = end - SPAN;
    let weeks = [
        Week {
            network: "testnet",
            divergence_at: None,
            off: (2 * DAY, 6 * HOUR),
        },
        Week {
            network: "devnet",
            divergence_at: Some(3 * DAY + 5 * HOUR),
            off: (4 * DAY, 30 * HOUR),
        },
    ];
    let promtool = system_bin("PROMTOOL", &["promtool"], "prometheus");
    let tsdb = d.join("tsdb");
    for w in &weeks {
        for (unit, profile, lines) in [
            (
                "coinjecture-node",
                "coinjecture-consensus",
                node_lines(w).collect::<Vec<_>>(),
            ),
            (
                "coinjecture-api",
                "coinjecture-network",
                api_lines(w).collect(),
            ),
        ] {
            let j = d.join(format!("{}-{unit}.json", w.network));
            journal(&j, unit, start, lines.into_iter());
            let om = j.with_extension("om");
            replay(&j, profile, w.network, &om);
            // Command 2: the history into blocks.
            run(Command::new(&promtool)
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&om)
                .arg(&tsdb));
        }
    }

    let cfg = d.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{evaluation_interval: 1m}}\nrule_files: ['{}/prometheus/rules/*.rules.yml']\n",
            root().display()
        ),
    )
    .unwrap();
    let bin = system_bin("PROMETHEUS", &["prometheus"], "prometheus");
    let (mut prometheus, prom): (Proc, String) = start_on_free_port("prometheus", d, |port| {
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        cmd
    });

    // Command 3, 001 phase 1: a quiet week proceeds …
    let (code, r) = check(&prom, "consensus-shadow", "testnet", end);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["groups"][0]["verdict"], "proceed", "{r:#}");
    let zero = condition(&r, "zero divergences for 1 week");
    assert_eq!(zero["status"], "pass", "{r:#}");
    assert_eq!(value(zero), 0.0, "{r:#}");
    assert_eq!(
        condition(&r, "divergence (stay in SHADOW / back to legacy)")["status"],
        "clear",
        "{r:#}"
    );
    assert_eq!(r["groups"][0]["nodes_not_elapsed"], Value::Array(vec![]));

    // … and a week with one divergence on day 3 rolls back, days later.
    let (code, r) = check(&prom, "consensus-shadow", "devnet", end);
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["groups"][0]["verdict"], "rollback", "{r:#}");
    let trip = condition(&r, "divergence (stay in SHADOW / back to legacy)");
    // Days old, so not tripped now: tripped within the window, which still rolls back.
    assert_eq!(trip["status"], "tripped_in_window", "{r:#}");
    let zero = condition(&r, "zero divergences for 1 week");
    assert_eq!(zero["status"], "fail", "{r:#}");
    // One divergence (increase() extrapolates a little past the first sample).
    assert!((value(zero) - 1.0).abs() < 0.05, "{r:#}");

    // 000 stage 4: equilibrium kept > 90% of the week (out of it < 10%) proceeds; 82% holds.
    let (code, r) = check(&prom, "coinjecture-stage-4", "testnet", end);
    assert_eq!(code, 0, "{r:#}");
    let kept = condition(&r, "equilibrium maintained > 90% of the time");
    assert_eq!(kept["status"], "pass", "{r:#}");
    // The gate reads the SLO's error ratio over the week (the time out of equilibrium).
    let want = 6.0 / 168.0;
    assert!(
        (value(kept) - want).abs() < 0.01,
        "{} vs {want}: {r:#}",
        value(kept)
    );

    let (code, r) = check(&prom, "coinjecture-stage-4", "devnet", end);
    assert_eq!(code, 1, "{r:#}");
    let kept = condition(&r, "equilibrium maintained > 90% of the time");
    assert_eq!(kept["status"], "fail", "{r:#}");
    let want = 30.0 / 168.0;
    assert!(
        (value(kept) - want).abs() < 0.01,
        "{} vs {want}: {r:#}",
        value(kept)
    );

    // Before the week was over (three days in), phase 1 cannot say proceed yet.
    let (code, r) = check(&prom, "consensus-shadow", "testnet", start + 3 * DAY);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(
        r["groups"][0]["nodes_not_elapsed"][0]["node"], "coinjecture-1",
        "{r:#}"
    );

    // The same data behind TLS and basic auth.
    prometheus.stop();
    let ca = certs::ca("chainwatch test CA");
    let server = certs::leaf(&ca, "prometheus", false, None);
    let w = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    w("ca.pem", &ca.pem);
    w("other-ca.pem", &certs::ca("someone else's CA").pem);
    w("server.pem", &server.pem);
    w("server-key.pem", &server.key_pem);
    w("password", "s3cret pass\n");
    w("wrong-password", "guess\n");
    let hash = bcrypt::hash("s3cret pass", 4).unwrap();
    let web = w(
        "web.yml",
        &format!(
            "tls_server_config: {{cert_file: server.pem, key_file: server-key.pem}}\n\
             basic_auth_users: {{gate: '{hash}'}}\n"
        ),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(&bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.config.file={}", web.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut tls_prometheus = Proc::spawn("prometheus-tls", cmd, d);
    let err = tls_prometheus.stderr.clone();
    tls_prometheus.wait_line(
        &err,
        "Server is ready to receive web requests",
        std::time::Duration::from_secs(60),
    );
    let https = format!("https://localhost:{port}");
    let client = |name: &str, ca: &str, password: &str| {
        w(
            name,
            &format!(
                "tls_config: {{ca_file: {ca}}}\nbasic_auth: {{username: gate, password_file: {password}}}\n"
            ),
        )
        .display()
        .to_string()
    };
    let good = client("good.yml", "ca.pem", "password");
    let (code, r) = check_with(
        &https,
        &["--prometheus.config", &good],
        "consensus-shadow",
        "devnet",
        end,
    );
    assert_eq!(code, 2, "{r:#}");
    let (code, r) = check_with(
        &https,
        &["--prometheus.config", &good],
        "coinjecture-stage-4",
        "testnet",
        end,
    );
    assert_eq!(code, 0, "{r:#}");
    // Without the options, or with another CA: the certificate is not trusted.
    for extra in [
        vec![],
        vec![
            "--prometheus.config".to_string(),
            client("other-ca.yml", "other-ca.pem", "password"),
        ],
    ] {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (code, r) = check_with(&https, &extra, "coinjecture-stage-4", "testnet", end);
        assert_eq!(code, 3, "{extra:?}: {r:#}");
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains("unreachable") && e.contains("certificate"),
            "{e}"
        );
    }
    // The right CA and a wrong password: Prometheus says 401, the gate does not know.
    let wrong = client("wrong.yml", "ca.pem", "wrong-password");
    let (code, r) = check_with(
        &https,
        &["--prometheus.config", &wrong],
        "coinjecture-stage-4",
        "testnet",
        end,
    );
    assert_eq!(code, 3, "{r:#}");
    assert!(r["error"].as_str().unwrap().contains("401"), "{r:#}");
    // A client certificate without its key is invalid input, named by file, line and field.
    let half = w(
        "half.yml",
        "tls_config:\n  ca_file: ca.pem\n  cert_file: server.pem\n",
    );
    let out = Command::new(fresh_bin("chainwatch-gate"))
        .arg("--thresholds")
        .arg(root().join("thresholds.yaml"))
        .args([
            "check",
            "--prometheus",
            &https,
            "--gate",
            "consensus-shadow",
        ])
        .arg("--prometheus.config")
        .arg(&half)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(&format!("{}:", half.display())) && e.contains("tls_config.key_file"),
        "{e}"
    );
    tls_prometheus.stop();
}
