//! Polled sources against real HTTP servers started by the tests: stats JSON, JSON-RPC with
//! credentials from files, a native Prometheus endpoint, a health URL, and every way a node's API
//! can misbehave. The sidecar keeps serving, marks the source down with the right error kind, and
//! never panics or balloons.

mod common;
use common::httpd::{Reply, Server};
use common::process::{poll_until, Sidecar};
use common::*;
use std::path::Path;
use std::time::Duration;

fn config(dir: &Path, profiles: &str, sources: &str) -> std::path::PathBuf {
    let p = dir.join("chainwatch.yaml");
    write(&p, &format!("version: 1\nprofiles: [{profiles}]\nlabels: {{node: n1, region: us-east}}\nsources:\n{sources}"));
    p
}

fn api_source(kind: &str, url: &str, extra: &str) -> String {
    format!("  - name: api\n    type: {kind}\n    url: {url}\n    interval: 200ms\n    timeout: 150ms\n{extra}")
}

const STATS: &str = r#"{"mode": "shadow", "total_verifications": 1523, "divergences": 0, "rust_errors": 2, "divergence_rate": 0.0, "rust_error_rate": 0.0013}"#;

fn scrape_ok(s: &Sidecar) -> Vec<(Series, f64)> {
    let (status, body) = s.get("/metrics");
    assert_eq!(status, 200, "the sidecar keeps serving");
    promtool_check_metrics(&body);
    let samples = parse(&body);
    for (series, _) in &samples {
        assert!(
            chainwatch_catalog::resolve_series(&series.name).is_some(),
            "{} is not in the catalog",
            series.name
        );
    }
    samples
}

#[test]
fn consensus_stats_map_onto_catalog_names() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(|r| {
        if r.path == "/v1/consensus/stats" {
            Reply::Ok(STATS.into())
        } else {
            Reply::Status(404, "{}".into())
        }
    });
    let s = Sidecar::start(
        &config(
            dir.path(),
            "coinjecture-consensus",
            &api_source("http_json", &srv.url(), ""),
        ),
        &[],
    );
    let m = poll_until("stats mapped", || {
        let m = scrape_ok(&s);
        // A scrape may land mid-poll: wait for the last value the mapping writes too, and for
        // the poll's end (`source_up` is written once every value is).
        (value(&m, "chain_consensus_verifications_total", &[]) == Some(1523.0)
            && value(&m, "chain_consensus_errors_total", &[("engine", "rust")]) == Some(2.0)
            && value(&m, "chainwatch_source_up", &[("source", "api")]) == Some(1.0))
        .then_some(m)
    });
    assert_eq!(
        value(&m, "chain_consensus_mode", &[("mode", "shadow")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "chain_consensus_mode", &[("mode", "rust")]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "chain_consensus_errors_total", &[("engine", "rust")]),
        Some(2.0)
    );
    assert_eq!(
        value(&m, "chain_consensus_divergences_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "chainwatch_source_up", &[("source", "api")]),
        Some(1.0)
    );
    // Fallbacks are absent in shadow mode: not an error; the counter stays at zero.
    assert_eq!(value(&m, "chain_consensus_fallbacks_total", &[]), Some(0.0));

    // The node moves on: counters follow its totals; the mode changes.
    srv.set(|_| Reply::Ok(r#"{"mode": "refactored_primary", "total_verifications": 1600, "divergences": 1, "rust_errors": 2, "fallback_to_legacy": 3}"#.into()));
    let m = poll_until("new totals", || {
        let m = scrape_ok(&s);
        (value(&m, "chain_consensus_verifications_total", &[]) == Some(1600.0)
            && value(&m, "chain_consensus_fallbacks_total", &[]) == Some(3.0)
            && value(&m, "chain_consensus_mode", &[("mode", "rust")]) == Some(1.0))
        .then_some(m)
    });
    assert_eq!(
        value(&m, "chain_consensus_mode", &[("mode", "rust")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "chain_consensus_divergences_total", &[]),
        Some(1.0)
    );
    assert_eq!(value(&m, "chain_consensus_fallbacks_total", &[]), Some(3.0));
}

/// Wait until the source has failed with `kind`, then check the sidecar is whole.
fn wait_error(s: &Sidecar, kind: &str) -> Vec<(Series, f64)> {
    poll_until(&format!("error kind {kind}"), || {
        let m = scrape_ok(s);
        let n = value(
            &m,
            "chainwatch_source_errors_total",
            &[("source", "api"), ("kind", kind)],
        )
        .unwrap_or(0.0);
        (n >= 1.0 && value(&m, "chainwatch_source_up", &[("source", "api")]) == Some(0.0))
            .then_some(m)
    })
}

#[test]
fn misbehaving_apis_mark_the_source_down_with_the_right_kind() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(|_| Reply::Ok(STATS.into()));
    let s = Sidecar::start(
        &config(
            dir.path(),
            "coinjecture-consensus",
            &api_source("http_json", &srv.url(), "    max_body_bytes: 1048576\n"),
        ),
        &[],
    );
    poll_until("healthy first", || {
        (value(&scrape_ok(&s), "chainwatch_source_up", &[("source", "api")]) == Some(1.0))
            .then_some(())
    });

    srv.set(|_| Reply::Slow(Duration::from_millis(600), STATS.into()));
    wait_error(&s, "timeout");
    srv.set(|_| Reply::Status(500, "{}".into()));
    wait_error(&s, "http_status");
    srv.set(|_| Reply::Ok("{\"mode\": \"shadow\", \"total_".into()));
    let m = wait_error(&s, "decode");
    let decode = |m: &[(Series, f64)]| {
        value(
            m,
            "chainwatch_source_errors_total",
            &[("source", "api"), ("kind", "decode")],
        )
        .unwrap_or(0.0)
    };
    drop(m);
    srv.set(|_| {
        Reply::Ok(r#"{"mode": 7, "total_verifications": "lots", "divergences": 5}"#.into())
    });
    // What had the right type is still applied, and the wrong types count as decode errors.
    let m = poll_until("wrong types", || {
        let m = scrape_ok(&s);
        (value(&m, "chain_consensus_divergences_total", &[]) == Some(5.0)).then_some(m)
    });
    // From here only the wrong types are served (the truncated answer counted before): each
    // poll of it counts a decode error, the right-typed value stays and the source is down.
    let before = decode(&m);
    let after = poll_until("wrong types counted", || {
        let m = scrape_ok(&s);
        (decode(&m) > before).then_some(m)
    });
    assert_eq!(
        value(&after, "chain_consensus_divergences_total", &[]),
        Some(5.0)
    );
    assert_eq!(
        value(&after, "chainwatch_source_up", &[("source", "api")]),
        Some(0.0)
    );
    srv.set(|_| Reply::Huge(100 << 20));
    wait_error(&s, "too_large");
    srv.set(|_| Reply::Hangup);
    wait_error(&s, "connect");

    // Memory stayed bounded through a 100 MiB body: the peak resident set of the whole process.
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert!(
        hwm_kb < 64 * 1024,
        "peak RSS {hwm_kb} kB after a 100 MiB body"
    );

    // And it recovers.
    srv.set(|_| Reply::Ok(STATS.into()));
    poll_until("recovered", || {
        (value(&scrape_ok(&s), "chainwatch_source_up", &[("source", "api")]) == Some(1.0))
            .then_some(())
    });
    let (_, health) = s.get("/health");
    assert!(health.contains("\"api\""), "{health}");
}

#[test]
fn nothing_listening_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Sidecar::start(
        &config(
            dir.path(),
            "coinjecture-consensus",
            &api_source("http_json", &format!("http://127.0.0.1:{port}"), ""),
        ),
        &[],
    );
    wait_error(&s, "connect");
}

#[test]
fn jsonrpc_reads_the_cookie_file_and_maps_results() {
    let dir = tempfile::tempdir().unwrap();
    let cookie = dir.path().join(".cookie");
    write(&cookie, "__cookie__:s3cret\n");
    let srv = Server::start(|r| {
        let auth = r
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str());
        if auth != Some("Basic X19jb29raWVfXzpzM2NyZXQ=") {
            return Reply::Status(401, "".into());
        }
        let req: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let result = match req["method"].as_str().unwrap() {
            "getblockcount" => serde_json::json!(1234),
            "getconnectioncount" => serde_json::json!(3),
            "getpeerinfo" => {
                serde_json::json!([{"addr": "188.166.255.63:8444", "pingtime": 0.182}, {"addr": "134.122.4.164:8444", "pingtime": 0.091}])
            }
            _ => {
                return Reply::Status(
                    500,
                    r#"{"result": null, "error": {"code": -32601, "message": "Method not found"}}"#
                        .into(),
                )
            }
        };
        Reply::Ok(
            serde_json::json!({"result": result, "error": null, "id": "chainwatch"}).to_string(),
        )
    });
    let extra = format!("    cookie_file: {}\n", cookie.display());
    let s = Sidecar::start(
        &config(
            dir.path(),
            "dilithion",
            &api_source("jsonrpc", &srv.url(), &extra),
        ),
        &[],
    );
    let m = poll_until("rpc mapped", || {
        let m = scrape_ok(&s);
        (value(&m, "chain_block_height", &[]) == Some(1234.0)
            && value(
                &m,
                "chain_peer_ping_seconds",
                &[("peer", "134.122.4.164:8444")],
            )
            .is_some())
        .then_some(m)
    });
    assert_eq!(value(&m, "chain_peers", &[]), Some(3.0));
    assert_eq!(
        value(
            &m,
            "chain_peer_ping_seconds",
            &[("peer", "188.166.255.63:8444")]
        ),
        Some(0.182)
    );
    assert_eq!(
        value(
            &m,
            "chain_peer_ping_seconds",
            &[("peer", "134.122.4.164:8444")]
        ),
        Some(0.091)
    );
    // A peer that disconnects loses its series.
    srv.set(|r| {
        let req: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let result = match req["method"].as_str().unwrap() {
            "getpeerinfo" => serde_json::json!([{"addr": "134.122.4.164:8444", "pingtime": 0.095}]),
            _ => serde_json::json!(1235),
        };
        Reply::Ok(serde_json::json!({"result": result, "error": null}).to_string())
    });
    poll_until("peer gone", || {
        let m = scrape_ok(&s);
        (value(
            &m,
            "chain_peer_ping_seconds",
            &[("peer", "188.166.255.63:8444")],
        )
        .is_none()
            && value(
                &m,
                "chain_peer_ping_seconds",
                &[("peer", "134.122.4.164:8444")],
            ) == Some(0.095))
        .then_some(())
    });
    // A wrong cookie: the node says 401.
    write(&cookie, "__cookie__:other\n");
    srv.set(|r| {
        let ok = r
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Basic X19jb29raWVfXzpvdGhlcg==");
        if ok {
            Reply::Ok(r#"{"result": 1, "error": null}"#.into())
        } else {
            Reply::Status(401, String::new())
        }
    });
    poll_until("cookie re-read", || {
        (value(&scrape_ok(&s), "chainwatch_source_up", &[("source", "api")]) == Some(1.0))
            .then_some(())
    });
}

#[test]
fn jsonrpc_password_file_and_rpc_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("rpc.pass");
    write(&pw, "hunter2\n");
    let srv = Server::start(|r| {
        let ok = r
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Basic cnBjOmh1bnRlcjI=");
        if !ok {
            return Reply::Status(401, String::new());
        }
        Reply::Status(
            500,
            r#"{"result": null, "error": {"code": -28, "message": "Loading block index"}}"#.into(),
        )
    });
    let extra = format!("    user: rpc\n    password_file: {}\n", pw.display());
    let s = Sidecar::start(
        &config(
            dir.path(),
            "dilithion",
            &api_source("jsonrpc", &srv.url(), &extra),
        ),
        &[],
    );
    wait_error(&s, "rpc");
}

#[test]
fn bitcell_native_metrics_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let native = "# HELP bitcell_chain_height h\n# TYPE bitcell_chain_height gauge\nbitcell_chain_height 812\nbitcell_sync_progress 97.5\nbitcell_peer_count 5\nbitcell_dht_peer_count 40\nbitcell_txs_processed_total 1000\nbitcell_pending_txs 12\nbitcell_proofs_generated_total 30\nbitcell_proofs_verified_total 29\nbitcell_active_miners 4\nbitcell_banned_miners 1\nbitcell_bytes_sent_total 5e6\nbitcell_bytes_received_total 7e6\nsome_other_metric 1\n";
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let h = healthy.clone();
    let srv = Server::start(move |r| match r.path.as_str() {
        "/metrics" => Reply::Ok(native.into()),
        "/health" if h.load(std::sync::atomic::Ordering::SeqCst) => Reply::Ok("OK".into()),
        "/health" => Reply::Status(503, "down".into()),
        _ => Reply::Status(404, String::new()),
    });
    let sources = format!(
        "{}  - name: health\n    type: health\n    url: {}/health\n    interval: 200ms\n    timeout: 150ms\n",
        api_source("prometheus", &srv.url(), ""),
        srv.url()
    );
    let s = Sidecar::start(&config(dir.path(), "bitcell", &sources), &[]);
    let m = poll_until("native mapped", || {
        let m = scrape_ok(&s);
        (value(&m, "chain_block_height", &[]) == Some(812.0)
            && value(&m, "chain_network_receive_bytes_total", &[]) == Some(7e6)
            && value(&m, "chain_node_up", &[]) == Some(1.0))
        .then_some(m)
    });
    for (name, want) in [
        ("chain_sync_progress_ratio", 0.975),
        ("chain_peers", 5.0),
        ("chain_dht_peers", 40.0),
        ("chain_transactions_processed_total", 1000.0),
        ("chain_transactions_pending", 12.0),
        ("chain_proofs_generated_total", 30.0),
        ("chain_proofs_verified_total", 29.0),
        ("chain_miners_active", 4.0),
        ("chain_miners_banned", 1.0),
        ("chain_network_transmit_bytes_total", 5e6),
        ("chain_network_receive_bytes_total", 7e6),
    ] {
        assert_eq!(
            value(&m, name, &[("chain", "bitcell")]),
            Some(want),
            "{name}"
        );
    }
    assert!(m
        .iter()
        .all(|(s, _)| !s.name.starts_with("bitcell_") && s.name != "some_other_metric"));
    assert!(value(&m, "chain_node_health_probe_duration_seconds", &[]).is_some());
    healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    poll_until("node down", || {
        (value(&scrape_ok(&s), "chain_node_up", &[]) == Some(0.0)).then_some(())
    });
}

#[test]
fn pop_status_leaderboard_expands_and_drops_validators() {
    let dir = tempfile::tempdir().unwrap();
    let status = |validators: &str| {
        format!(
            r#"{{"rounds_completed": 8640, "proofs_processed": 43200, "pending_proofs": 12, "active_validators": 3, "total_validators": 4, "network_health": "DEGRADED", "view_changes": 3, "validators": [{validators}]}}"#
        )
    };
    let first = status(
        r#"{"id": "node_1", "stake": 10000, "rounds": 120, "accuracy": 0.99, "rewards": 42.5}, {"id": "node_2", "stake": 9000, "rounds": 118, "accuracy": 0.97, "rewards": 40}"#,
    );
    let srv = Server::start(move |r| {
        if r.path == "/status" {
            Reply::Ok(first.clone())
        } else {
            Reply::Status(404, String::new())
        }
    });
    let s = Sidecar::start(
        &config(
            dir.path(),
            "pop-validator",
            &api_source("http_json", &srv.url(), ""),
        ),
        &[],
    );
    let m = poll_until("leaderboard", || {
        let m = scrape_ok(&s);
        (value(
            &m,
            "chain_pop_validator_rounds_total",
            &[("validator", "node_2")],
        ) == Some(118.0))
        .then_some(m)
    });
    assert_eq!(
        value(
            &m,
            "chain_pop_validator_accuracy_ratio",
            &[("validator", "node_1")]
        ),
        Some(0.99)
    );
    assert_eq!(
        value(
            &m,
            "chain_pop_validator_rewards_total",
            &[("validator", "node_1")]
        ),
        Some(42.5)
    );
    assert_eq!(
        value(&m, "chain_pop_network_health", &[("state", "degraded")]),
        Some(1.0)
    );
    assert_eq!(value(&m, "chain_pop_validators_active", &[]), Some(3.0));
    assert_eq!(value(&m, "chain_pop_rounds_total", &[]), Some(8640.0));
    let second = status(
        r#"{"id": "node_1", "stake": 10000, "rounds": 121, "accuracy": 0.99, "rewards": 43}"#,
    );
    srv.set(move |_| Reply::Ok(second.clone()));
    poll_until("node_2 gone", || {
        let m = scrape_ok(&s);
        (value(&m, "chain_pop_validator_stake", &[("validator", "node_2")]).is_none()
            && value(
                &m,
                "chain_pop_validator_rounds_total",
                &[("validator", "node_2")],
            )
            .is_none()
            && value(
                &m,
                "chain_pop_validator_rounds_total",
                &[("validator", "node_1")],
            ) == Some(121.0))
        .then_some(())
    });
}

#[test]
fn a_mapping_that_does_not_exist_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let p = config(
        dir.path(),
        "dilithion",
        &api_source("http_json", "http://127.0.0.1:1", "    mapping: nope\n"),
    );
    let out = std::process::Command::new(bin())
        .arg("--config")
        .arg(&p)
        .args(["--web.listen-address", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:", p.display()))
            && err.contains("sources[0].mapping")
            && err.contains("no mapping `nope`"),
        "{err}"
    );
}
