//! Hosts fail as production hosts do (`--sidecar`): a host that dies takes its sidecar process
//! with it and its address answers nothing; a partition cuts the host off from the monitoring
//! while the node and the sidecar run on; a sidecar can die alone; recovery starts a new sidecar
//! process that the host's address reaches again.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Two regions of two nodes, each with its sidecar; bc-us leaves `region` and `node` to
/// Prometheus's target labels.
const HOSTS: &str = "
version: 1
block_interval: 200ms
line_interval: 50ms
sidecar: {poll_interval: 200ms, file_poll_interval: 50ms}
nodes:
  - {name: dil-eu, family: dilithion, region: eu}
  - {name: bc-eu, family: bitcell, region: eu}
  - {name: dil-us, family: dilithion, region: us}
  - {name: bc-us, family: bitcell, region: us, identity: target}
";

fn start() -> Sim {
    Sim::start_with(
        HOSTS,
        &["--sidecar", exporter().to_str().expect("UTF-8 path")],
    )
}

fn sidecar(sim: &Sim, name: &str) -> Value {
    sim.node(name)["sidecar"].clone()
}

/// GET the host's address (what Prometheus scrapes) with a short timeout.
fn scrape(sim: &Sim, name: &str) -> std::io::Result<(u16, String)> {
    let url = format!(
        "{}/metrics",
        sim.announced(name)["sidecar_url"].as_str().unwrap()
    );
    http("GET", &url, None, &[], Duration::from_millis(500))
}

/// The sidecar behind the host's address serves the node's metrics, node up.
fn serves(sim: &Sim, name: &str) -> bool {
    matches!(scrape(sim, name), Ok((200, body)) if body.lines().any(|l| l.starts_with("chain_node_up{") && l.ends_with(" 1")))
}

fn timed_out(r: &std::io::Result<(u16, String)>) -> bool {
    matches!(r, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

fn alive(pid: i64) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

fn pid(sim: &Sim, name: &str) -> i64 {
    sidecar(sim, name)["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("{name}: a sidecar runs"))
}

#[test]
fn every_host_runs_its_sidecar_behind_its_own_address() {
    let sim = start();
    for n in ["dil-eu", "bc-eu", "dil-us", "bc-us"] {
        let a = sim.announced(n);
        assert!(a["sidecar_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"));
        wait_until(&format!("{n}'s sidecar serves through its host"), || {
            serves(&sim, n)
        });
        let s = sidecar(&sim, n);
        assert_eq!(s["running"], true, "{s}");
        assert_eq!(s["reachable"], true, "{s}");
        assert_eq!(s["starts"], 1, "{s}");
        assert_ne!(
            s["url"], s["listening"],
            "the host's address is not the sidecar's own port"
        );
        assert!(alive(pid(&sim, n)));
    }
}

#[test]
fn identity_from_target_labels_leaves_region_and_node_to_prometheus() {
    let sim = start();
    assert_eq!(
        sim.announced("bc-us")["target_labels"],
        serde_json::json!({"node": "bc-us", "region": "us"})
    );
    assert_eq!(
        sim.announced("bc-eu")["target_labels"],
        serde_json::json!({})
    );
    wait_until("bc-us serves", || serves(&sim, "bc-us"));
    let (_, body) = scrape(&sim, "bc-us").unwrap();
    let up = body
        .lines()
        .find(|l| l.starts_with("chain_node_up{"))
        .unwrap();
    assert!(
        up.contains(r#"chain="bitcell""#) && up.contains(r#"network="testnet""#),
        "{up}"
    );
    assert!(!up.contains("node=") && !up.contains("region="), "{up}");
    let (_, body) = scrape(&sim, "bc-eu").unwrap();
    assert!(
        body.contains(r#"node="bc-eu""#),
        "the sidecar sets it: {body}"
    );
}

#[test]
fn host_down_kills_the_node_and_its_sidecar_and_recovery_starts_both() {
    let sim = start();
    wait_until("dil-eu serves", || serves(&sim, "dil-eu"));
    let old = pid(&sim, "dil-eu");
    let own = sidecar(&sim, "dil-eu")["listening"]
        .as_str()
        .unwrap()
        .to_string();
    sim.set(r#"{"scenario": "host_down", "node": "dil-eu"}"#);
    wait_until("the sidecar process is gone", || !alive(old));
    wait_until("the node refuses", || {
        refused(&sim.url("dil-eu", "/health"))
    });
    assert!(
        refused(&format!("http://{own}/metrics")),
        "nothing listens on the sidecar's port"
    );
    let r = scrape(&sim, "dil-eu");
    assert!(timed_out(&r), "a dead host answers nothing: {r:?}");
    let s = sim.node("dil-eu");
    assert_eq!(s["up"], false);
    assert_eq!(s["host_up"], false);
    assert_eq!(s["sidecar"]["running"], false, "{s}");
    assert!(serves(&sim, "dil-us"), "the other hosts run on");

    sim.set(r#"{"scenario": "host_down", "node": "dil-eu", "on": false}"#);
    wait_until("a new sidecar serves through the host", || {
        serves(&sim, "dil-eu")
    });
    let s = sidecar(&sim, "dil-eu");
    assert_eq!(s["starts"], 2, "{s}");
    assert_ne!(s["pid"].as_i64().unwrap(), old);
    assert!(
        s["last_exit"].as_str().unwrap().contains("SIGKILL"),
        "killed, not stopped: {s}"
    );
}

#[test]
fn partition_cuts_the_host_off_while_node_and_sidecar_run() {
    let sim = start();
    wait_until("bc-us serves", || serves(&sim, "bc-us"));
    let before = pid(&sim, "bc-us");
    sim.set(r#"{"scenario": "partition", "node": "bc-us"}"#);
    let r = scrape(&sim, "bc-us");
    assert!(timed_out(&r), "packets dropped: {r:?}");
    let s = sidecar(&sim, "bc-us");
    assert_eq!(s["reachable"], false);
    assert_eq!(s["running"], true);
    assert_eq!(pid(&sim, "bc-us"), before);
    // Behind the partition all is well: the sidecar reads its node, the node answers.
    let own = format!("http://{}/metrics", s["listening"].as_str().unwrap());
    wait_until(
        "the sidecar itself still sees its node up",
        || matches!(get(&own), Ok((200, b)) if b.contains("chain_node_up{")),
    );
    assert_eq!(get(&sim.url("bc-us", "/health")).unwrap().0, 200);
    sim.set(r#"{"scenario": "partition", "node": "bc-us", "on": false}"#);
    wait_until("reachable again", || serves(&sim, "bc-us"));
    assert_eq!(pid(&sim, "bc-us"), before, "the same process all along");
}

#[test]
fn sidecar_down_kills_only_the_sidecar() {
    let sim = start();
    wait_until("bc-eu serves", || serves(&sim, "bc-eu"));
    let old = pid(&sim, "bc-eu");
    sim.set(r#"{"scenario": "sidecar_down", "node": "bc-eu"}"#);
    wait_until("the sidecar process is gone", || !alive(old));
    wait_until("the host closes the connection unanswered", || {
        let r = scrape(&sim, "bc-eu");
        r.is_err() && !timed_out(&r)
    });
    assert_eq!(get(&sim.url("bc-eu", "/health")).unwrap().0, 200);
    let n = sim.node("bc-eu");
    assert_eq!(n["up"], true);
    assert_eq!(n["host_up"], true);
    sim.set(r#"{"scenario": "all_clear", "node": "bc-eu"}"#);
    wait_until("a new sidecar serves", || serves(&sim, "bc-eu"));
    assert_ne!(pid(&sim, "bc-eu"), old);
}

#[test]
fn region_down_takes_its_hosts_and_only_them() {
    let sim = start();
    for n in ["dil-eu", "bc-eu", "dil-us", "bc-us"] {
        wait_until(&format!("{n} serves"), || serves(&sim, n));
    }
    let pids: Vec<i64> = ["dil-us", "bc-us"].iter().map(|n| pid(&sim, n)).collect();
    let v = sim.set(r#"{"scenario": "region_down", "region": "us"}"#);
    assert_eq!(v["nodes"], serde_json::json!(["dil-us", "bc-us"]));
    for p in pids {
        wait_until("the region's sidecars are gone", || !alive(p));
    }
    for n in ["dil-us", "bc-us"] {
        assert!(refused(&sim.url(n, "/health")), "{n}");
        assert!(timed_out(&scrape(&sim, n)), "{n}");
    }
    for n in ["dil-eu", "bc-eu"] {
        assert!(serves(&sim, n), "{n}");
    }
    sim.set(r#"{"scenario": "region_down", "region": "us", "on": false}"#);
    for n in ["dil-us", "bc-us"] {
        wait_until(&format!("{n} back"), || serves(&sim, n));
    }
}

#[test]
fn sigterm_stops_the_sidecars_too() {
    let mut sim = start();
    let pids: Vec<i64> = ["dil-eu", "bc-eu", "dil-us", "bc-us"]
        .iter()
        .map(|n| pid(&sim, n))
        .collect();
    assert!(sim.terminate().success());
    for p in pids {
        wait_until("every sidecar stopped", || !alive(p));
    }
}

#[test]
fn scenarios_on_sidecars_need_them() {
    let sim = Sim::start();
    for s in ["sidecar_down", "partition"] {
        let (status, v) = sim.scenario(&format!(r#"{{"scenario": "{s}", "node": "dil-eu"}}"#));
        assert_eq!(status, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains("--sidecar"), "{v}");
    }
    // A host without a sidecar the simulator runs still dies: its node does.
    sim.set(r#"{"scenario": "host_down", "node": "dil-eu"}"#);
    wait_until("dil-eu refuses", || refused(&sim.url("dil-eu", "/health")));
    let (status, v) = sim.scenario(r#"{"scenario": "region_down", "region": "us", "mode": "503"}"#);
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("takes no `mode`"),
        "{v}"
    );
}
