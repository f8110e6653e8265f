//! The demo behind `scripts/demo.sh`: the same stack the end-to-end suite runs (tests/e2e.rs),
//! left running for a person to look at. The simulated fleet, one sidecar per node on its host
//! (the simulator runs them, so hosts die with their sidecars), the rules,
//! Alertmanager configuration and dashboards rendered by `chainwatch-rulegen` with the e2e
//! overlay (alerts fire within seconds), the real Prometheus and Alertmanager, all on loopback;
//! Alertmanager's receivers are redirected to this program, which prints every notification.
//! Ctrl-C (or SIGTERM) stops everything.
//!
//! ```sh
//! cargo run --example demo [-- --fleet FILE] [--overlay FILE]   # paths relative to the repository
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chainwatch_tests::stack::Stack;
use chainwatch_tests::webhook::Received;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() {
    let mut fleet = "tests/fixtures/e2e-fleet.yaml".to_string();
    let mut overlay = "tests/fixtures/e2e-overlay.yaml".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fleet" => fleet = args.next().expect("--fleet FILE"),
            "--overlay" => overlay = args.next().expect("--overlay FILE"),
            _ => {
                eprintln!("usage: demo [--fleet FILE] [--overlay FILE]");
                std::process::exit(2);
            }
        }
    }
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }

    eprintln!(
        "chainwatch demo: starting the simulated fleet, sidecars, Prometheus and Alertmanager…"
    );
    let heartbeats = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hb = heartbeats.clone();
    let stack = Stack::start_with(
        &fleet,
        &overlay,
        Arc::new(move |r: &Received| print_delivery(r, &hb)),
    );

    let control = &stack.control_url;
    println!();
    println!(
        "chainwatch demo is up ({} simulated nodes, one sidecar each); Ctrl-C stops everything.",
        stack.nodes.len()
    );
    println!();
    println!(
        "  Prometheus    {}        alerts: {0}/alerts   rules: {0}/rules   targets: {0}/targets",
        stack.prometheus_url
    );
    println!(
        "  Alertmanager  {}        (tick \"Inhibited\" to see the muted alerts)",
        stack.alertmanager_url
    );
    println!("  Simulator     {control}        GET /state   GET /scenarios");
    println!("  Sidecars:");
    for n in &stack.nodes {
        println!(
            "    {:<10} {:<12} {:<11} {}/metrics",
            n.name, n.family, n.region, n.sidecar_url
        );
    }
    println!(
        "  Generated rules, alertmanager.yml, Grafana dashboards, runbook: {}",
        stack.rendered.display()
    );
    println!("  Logs: {}", stack.dir_path.join("logs").display());
    println!();
    println!("Inject a failure (the same call with \"on\": false clears it; {{\"scenario\": \"all_clear\"}} clears all).");
    println!("A host or region that goes down takes its sidecars with it; a partition cuts a running host off Prometheus:");
    for body in [
        r#"{"scenario": "consensus_divergence", "node": "cj-eu-1"}"#,
        r#"{"scenario": "region_down", "region": "us-east"}"#,
        r#"{"scenario": "no_active_miners", "family": "bitcell"}"#,
        r#"{"scenario": "equilibrium_drift", "node": "cj-ap-1"}"#,
        r#"{"scenario": "host_down", "node": "dil-ap-1"}"#,
        r#"{"scenario": "partition", "node": "bc-ap-1"}"#,
        r#"{"scenario": "sidecar_down", "node": "dil-eu-1"}"#,
        r#"{"scenario": "node_down", "node": "pop-eu-1"}"#,
    ] {
        println!("  curl -X POST {control}/scenario -d '{body}'");
    }
    println!("  curl -X POST {control}/mode -d '{{\"node\": \"cj-eu-2\", \"mode\": \"rust\"}}'");
    println!();
    println!("Notifications Alertmanager delivers (its Slack, PagerDuty and heartbeat receivers point here):");

    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("\nchainwatch demo: stopping…");
    drop(stack);
    eprintln!("chainwatch demo: stopped");
}

/// One line per notification: receiver, status, what.
fn print_delivery(r: &Received, heartbeats: &std::sync::atomic::AtomicUsize) {
    let j = &r.json;
    let receiver = r.path.rsplit('/').next().unwrap_or("");
    let time = chrono_less_time();
    if r.path.starts_with("/slack/") {
        let a = &j["attachments"][0];
        let first = a["text"]
            .as_str()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        println!(
            "{time}  slack {:<18} {}  {first}",
            j["channel"].as_str().unwrap_or(receiver),
            a["title"].as_str().unwrap_or("")
        );
    } else if r.path.starts_with("/pagerduty/") {
        println!(
            "{time}  pagerduty {:<14} {} {}",
            j["event_action"].as_str().unwrap_or(""),
            j["payload"]["severity"].as_str().unwrap_or(""),
            j["payload"]["summary"].as_str().unwrap_or("")
        );
    } else {
        let n = heartbeats.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            println!(
                "{time}  webhook {receiver}: {} {} (the dead man's switch; repeats are not printed)",
                j["status"].as_str().unwrap_or(""),
                j["alerts"][0]["labels"]["alertname"].as_str().unwrap_or("")
            );
        }
    }
}

/// HH:MM:SS (UTC) without a date-time dependency.
fn chrono_less_time() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}
