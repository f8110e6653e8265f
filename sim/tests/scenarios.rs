//! Every failure scenario changes what it should in the logs and the APIs, only on its targets,
//! and clearing it restores the node. The control API refuses what cannot apply, saying why.

mod common;

use common::*;

#[test]
fn node_down_closes_the_port_and_stops_the_log_until_cleared() {
    let sim = Sim::start();
    let health = sim.url("dil-eu", "/health");
    assert_eq!(get(&health).unwrap().0, 200);
    let v = sim.set(r#"{"scenario": "node_down", "node": "dil-eu"}"#);
    assert_eq!(v["nodes"], serde_json::json!(["dil-eu"]));
    assert_eq!(v["mode"], "refuse");
    wait_until("dil-eu refuses connections", || refused(&health));
    assert!(refused(&sim.url("dil-eu", "/")), "JSON-RPC refuses too");
    assert_eq!(sim.node("dil-eu")["up"], false);
    let log = sim.log("dil-eu");
    let (s0, height) = (size(&log), sim.height("dil-eu"));
    // While dil-us makes 3 blocks, dil-eu writes nothing and stays where it was.
    sim.wait_blocks("dil-us", 3);
    assert_eq!(size(&log), s0, "no log lines while down");
    assert_eq!(sim.height("dil-eu"), height);
    assert_eq!(get(&sim.url("dil-us", "/health")).unwrap().0, 200);

    sim.set(r#"{"scenario": "node_down", "node": "dil-eu", "on": false}"#);
    wait_until("dil-eu answers again", || {
        matches!(get(&health), Ok((200, _)))
    });
    wait_until("dil-eu logs again and caught up with dil-us", || {
        size(&log) > s0 && sim.height("dil-eu") >= sim.height("dil-us")
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let after = &text[s0 as usize..];
    assert!(
        after.contains("Dilithion node starting"),
        "a restart: {after}"
    );
    assert!(after.contains("(synced "), "catch-up line: {after}");
    // The restarted node wrote a new cookie; RPC works with it.
    assert!(sim.block_count("dil-eu") >= height + 3);
}

#[test]
fn node_down_can_answer_503_or_hang() {
    let sim = Sim::start();
    let health = sim.url("bc-eu", "/health");
    sim.set(r#"{"scenario": "node_down", "node": "bc-eu", "mode": "503"}"#);
    wait_until("bc-eu answers 503", || matches!(get(&health), Ok((503, _))));
    assert_eq!(get(&sim.url("bc-eu", "/metrics")).unwrap().0, 503);
    sim.set(r#"{"scenario": "node_down", "node": "bc-eu", "mode": "hang"}"#);
    let r = http(
        "GET",
        &health,
        None,
        &[],
        std::time::Duration::from_millis(300),
    );
    assert!(
        matches!(&r, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a hanging node accepts and never answers: {r:?}"
    );
    sim.set(r#"{"scenario": "all_clear", "node": "bc-eu"}"#);
    wait_until("bc-eu answers 200", || matches!(get(&health), Ok((200, _))));
}

#[test]
fn region_down_takes_exactly_its_region() {
    let sim = Sim::start();
    let v = sim.set(r#"{"scenario": "region_down", "region": "us"}"#);
    assert_eq!(
        v["nodes"],
        serde_json::json!(["cj-us", "dil-us", "pop-us", "bc-us"])
    );
    let nodes: Vec<(String, String)> = sim.info["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["region"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    wait_until("every us node refuses", || {
        nodes
            .iter()
            .filter(|(_, r)| r == "us")
            .all(|(n, _)| refused(&sim.url(n, "/health")))
    });
    for (n, r) in &nodes {
        let up = sim.node(n)["up"].as_bool().unwrap();
        if r == "eu" {
            assert_eq!(get(&sim.url(n, "/health")).unwrap().0, 200, "{n}");
            assert!(up, "{n}");
        } else {
            assert!(!up, "{n}");
        }
    }
    sim.set(r#"{"scenario": "region_down", "region": "us", "on": false}"#);
    wait_until("every node answers", || {
        nodes
            .iter()
            .all(|(n, _)| matches!(get(&sim.url(n, "/health")), Ok((200, _))))
    });
}

#[test]
fn chain_stall_freezes_heights_then_catches_up() {
    let sim = Sim::start();
    let v = sim.set(r#"{"scenario": "chain_stall", "node": "dil-eu"}"#);
    assert_eq!(v["nodes"], serde_json::json!(["dil-eu"]));
    sim.set(r#"{"scenario": "chain_stall", "node": "bc-eu"}"#);
    sim.set(r#"{"scenario": "chain_stall", "node": "pop-us"}"#);
    // The flag is set under the node's lock; from the next block on nothing is produced.
    let h = sim.block_count("dil-eu");
    let bc = bitcell_metric(&sim, "bc-eu", "bitcell_chain_height");
    let rounds = get_json(&sim.url("pop-us", "/status"))["rounds_completed"]
        .as_u64()
        .unwrap();
    sim.wait_blocks("dil-us", 3);
    assert_eq!(sim.block_count("dil-eu"), h, "getblockcount stops");
    assert_eq!(bitcell_metric(&sim, "bc-eu", "bitcell_chain_height"), bc);
    let st = get_json(&sim.url("pop-us", "/status"));
    assert_eq!(st["rounds_completed"].as_u64().unwrap(), rounds);
    assert!(st["view_changes"].as_u64().unwrap() >= 2, "{st}");
    assert_eq!(st["network_health"], "DEGRADED");
    let pop_log = std::fs::read_to_string(sim.log("pop-us")).unwrap();
    assert!(pop_log.contains("timed out after 10s"));
    assert!(pop_log.contains("View change: leader"));
    // The other nodes go on.
    assert!(sim.block_count("dil-us") >= h + 3);

    sim.set(r#"{"scenario": "all_clear"}"#);
    wait_until("dil-eu catches up with dil-us", || {
        sim.block_count("dil-eu") >= sim.block_count("dil-us")
    });
    wait_until("bc-eu moves again", || {
        bitcell_metric(&sim, "bc-eu", "bitcell_chain_height") > bc
    });
    wait_until("pop-us completes rounds again", || {
        get_json(&sim.url("pop-us", "/status"))["rounds_completed"]
            .as_u64()
            .unwrap()
            > rounds
    });
}

#[test]
fn peers_zero_empties_peer_counts_in_logs_and_apis() {
    let sim = Sim::start();
    let v = sim.set(r#"{"scenario": "peers_zero", "region": "eu"}"#);
    // PoP reports no peer count: the scenario applies to the others.
    assert_eq!(v["nodes"], serde_json::json!(["cj-eu", "dil-eu", "bc-eu"]));
    let (_, c) = sim.rpc("dil-eu", "getconnectioncount").unwrap();
    assert_eq!(c["result"], 0);
    let (_, p) = sim.rpc("dil-eu", "getpeerinfo").unwrap();
    assert_eq!(p["result"], serde_json::json!([]));
    assert_eq!(bitcell_metric(&sim, "bc-eu", "bitcell_peer_count"), 0.0);
    assert_eq!(bitcell_metric(&sim, "bc-eu", "bitcell_dht_peer_count"), 0.0);
    let (dil, cj) = (sim.log("dil-eu"), sim.logs("cj-eu")[1].clone());
    let (d0, c0) = (size(&dil), size(&cj));
    wait_until("the logs report 0 peers", || {
        let d = std::fs::read_to_string(&dil).unwrap();
        let c = std::fs::read_to_string(&cj).unwrap();
        d[d0 as usize..].contains("Connected peers: 0")
            && c[c0 as usize..].contains("Network: peers=0")
    });
    let s = replay(&["dilithion"], &[segment(&dil, d0, sim.dir.path())]);
    assert_eq!(s.sum("chain_peers", &[]), 0.0);
    // The other region keeps its peers.
    let (_, c) = sim.rpc("dil-us", "getconnectioncount").unwrap();
    assert_eq!(c["result"], 6);
    sim.set(r#"{"scenario": "peers_zero", "region": "eu", "on": false}"#);
    let (_, c) = sim.rpc("dil-eu", "getconnectioncount").unwrap();
    assert_eq!(c["result"], 8);
}

#[test]
fn consensus_divergence_fallbacks_and_mode_changes() {
    let sim = Sim::start();
    let before = get_json(&sim.url("cj-us", "/v1/consensus/stats"));
    sim.set(r#"{"scenario": "consensus_divergence", "node": "cj-us", "rate": 1.0}"#);
    let v = sim.set(r#"{"scenario": "fallbacks", "node": "cj-us", "rate": 0.5}"#);
    assert_eq!(v["rate"], 0.5);
    // Scenarios change under the node's lock, between two ticks: what the log has from here on
    // was written with both on.
    let log = sim.log("cj-us");
    let off = size(&log);
    wait_until("divergences and fallbacks grow", || {
        let s = get_json(&sim.url("cj-us", "/v1/consensus/stats"));
        s["divergences"].as_u64().unwrap() >= before["divergences"].as_u64().unwrap() + 4
            && s["fallback_to_legacy"].as_u64().unwrap() >= 2
    });
    let s = get_json(&sim.url("cj-us", "/v1/consensus/stats"));
    assert_eq!(s["rust_errors"], s["fallback_to_legacy"]);
    assert!(s["divergence_rate"].as_f64().unwrap() > 0.0);
    assert!(s["fallback_rate"].as_f64().unwrap() > 0.0);
    let seg = segment(&log, off, sim.dir.path());
    let r = replay(&["coinjecture-consensus"], &[seg]);
    let verified = r.sum("chain_consensus_verifications_total", &[]);
    let fallbacks = r.sum("chain_consensus_fallbacks_total", &[]);
    assert!(r.sum("chain_consensus_divergences_total", &[]) >= verified - 1.0);
    assert!(
        (fallbacks / verified - 0.5).abs() <= 1.0 / verified,
        "fallback rate {fallbacks}/{verified}"
    );
    assert_eq!(
        r.sum("chain_consensus_errors_total", &["engine=\"rust\""]),
        fallbacks
    );
    assert!(r.sum("chain_log_errors_total", &[]) > 0.0);

    // Consensus mode changes: logged, and in the stats.
    let (status, body) = post(
        &format!("{}/mode", sim.control),
        r#"{"node": "cj-eu", "mode": "REFACTORED_PRIMARY"}"#,
        &[],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        get_json(&sim.url("cj-eu", "/v1/consensus/stats"))["mode"],
        "rust"
    );
    let text = std::fs::read_to_string(sim.log("cj-eu")).unwrap();
    assert!(text.contains("Consensus mode changed to REFACTORED_PRIMARY"));
    let eu = sim.log("cj-eu");
    let off = size(&eu);
    sim.wait_blocks("cj-eu", 2);
    let r = replay(
        &["coinjecture-consensus"],
        &[segment(&eu, off, sim.dir.path())],
    );
    assert!(r.sum("chain_consensus_verifications_total", &["engine=\"rust\""]) >= 1.0);
    assert_eq!(
        r.sum(
            "chain_consensus_verifications_total",
            &["engine=\"legacy\""]
        ),
        0.0
    );

    sim.set(r#"{"scenario": "all_clear", "node": "cj-us"}"#);
    let d = get_json(&sim.url("cj-us", "/v1/consensus/stats"))["divergences"].clone();
    sim.wait_blocks("cj-us", 2);
    assert_eq!(
        get_json(&sim.url("cj-us", "/v1/consensus/stats"))["divergences"],
        d
    );
}

#[test]
fn gossip_and_propagation_failure_rates() {
    let sim = Sim::start();
    let api_log = sim.logs("cj-eu")[1].clone();
    let dil = sim.log("dil-us");
    sim.set(r#"{"scenario": "cid_failures", "node": "cj-eu"}"#);
    sim.set(r#"{"scenario": "equilibrium_drift", "node": "cj-eu"}"#);
    sim.set(r#"{"scenario": "propagation_failures", "node": "dil-us"}"#);
    sim.set(r#"{"scenario": "send_timeouts", "node": "dil-us", "rate": 0.5}"#);
    let (a0, d0) = (size(&api_log), size(&dil));
    sim.wait_blocks("dil-us", 8);
    // Lines written after the scenarios were on.
    let r = replay(
        &["coinjecture-network"],
        &[segment(&api_log, a0, sim.dir.path())],
    );
    let ok = r.sum("chain_cid_broadcasts_total", &[]);
    let failed = r.sum("chain_cid_broadcast_failures_total", &[]);
    assert!(ok + failed >= 5.0);
    let success = ok / (ok + failed);
    assert!(success < 0.8, "CID success {success} below 80%");
    let lambda = r.sum("chain_equilibrium_lambda", &[]);
    assert!(
        (lambda / std::f64::consts::FRAC_1_SQRT_2 - 1.25).abs() < 0.01,
        "λ {lambda} off by 25%"
    );
    assert!(r.sum("chain_equilibrium_lambda_eta_ratio", &[]) > 1.2);

    let r = replay(&["dilithion"], &[segment(&dil, d0, sim.dir.path())]);
    let (b, f) = (
        r.sum("chain_block_broadcasts_total", &[]),
        r.sum("chain_block_broadcast_failures_total", &[]),
    );
    assert!(f / (b + f) > 0.05, "broadcast failures {f}/{}", b + f);
    let (t, s) = (
        r.sum("chain_send_timeouts_total", &[]),
        r.sum("chain_peer_sends_total", &[]),
    );
    assert!(s > 0.0);
    assert!((t / s - 0.5).abs() <= 1.0 / s, "send timeouts {t}/{s}");
    assert!(r.sum("chain_log_errors_total", &[]) >= f);
    // The other Dilithion node is untouched.
    let st = sim.node("dil-eu");
    assert_eq!(st["stats"]["send_timeouts"], 0);
    assert_eq!(st["stats"]["broadcast_failures"], 0);
}

#[test]
fn bitcell_miners_sync_mempool_and_proofs() {
    let sim = Sim::start();
    let v = sim.set(r#"{"scenario": "no_active_miners", "family": "bitcell"}"#);
    assert_eq!(v["nodes"], serde_json::json!(["bc-eu", "bc-us"]));
    let h = bitcell_metric(&sim, "bc-us", "bitcell_chain_height");
    assert_eq!(bitcell_metric(&sim, "bc-us", "bitcell_active_miners"), 0.0);
    sim.wait_blocks("dil-us", 3);
    assert_eq!(
        bitcell_metric(&sim, "bc-us", "bitcell_chain_height"),
        h,
        "no miner, no block"
    );
    sim.set(r#"{"scenario": "no_active_miners", "family": "bitcell", "on": false}"#);
    wait_until("bc-us mines again", || {
        bitcell_metric(&sim, "bc-us", "bitcell_chain_height") > h
    });
    assert_eq!(bitcell_metric(&sim, "bc-us", "bitcell_active_miners"), 5.0);

    sim.set(r#"{"scenario": "out_of_sync", "node": "bc-eu"}"#);
    sim.set(r#"{"scenario": "banned_miners", "node": "bc-eu"}"#);
    sim.set(r#"{"scenario": "high_pending_txs", "node": "bc-eu"}"#);
    sim.set(r#"{"scenario": "slow_proofs", "node": "bc-eu"}"#);
    let log = sim.log("bc-eu");
    let off = size(&log);
    assert_eq!(bitcell_metric(&sim, "bc-eu", "bitcell_sync_progress"), 82.5);
    let banned = bitcell_metric(&sim, "bc-eu", "bitcell_banned_miners");
    let active = bitcell_metric(&sim, "bc-eu", "bitcell_active_miners");
    assert!(banned / (banned + active) > 0.2, "{banned}/{active}");
    wait_until("pending transactions above 1000", || {
        bitcell_metric(&sim, "bc-eu", "bitcell_pending_txs") > 1000.0
    });
    sim.wait_blocks("bc-eu", 3);
    let r = replay(&["bitcell"], &[segment(&log, off, sim.dir.path())]);
    let n = r.sum("chain_proof_generation_seconds_count", &[]);
    assert!(n >= 2.0);
    assert!(r.sum("chain_proof_generation_seconds_sum", &[]) / n > 30.0);
}

#[test]
fn pop_validators_down_and_dilithion_latency() {
    let sim = Sim::start();
    sim.set(r#"{"scenario": "validators_down", "node": "pop-eu"}"#);
    let s = get_json(&sim.url("pop-eu", "/status"));
    assert_eq!(s["network_health"], "CRITICAL");
    let (a, t) = (
        s["active_validators"].as_f64().unwrap(),
        s["total_validators"].as_f64().unwrap(),
    );
    assert!(a / t < 2.0 / 3.0, "{a}/{t}");
    let log = sim.log("pop-eu");
    let off = size(&log);
    sim.wait_blocks("dil-eu", 3);
    let r = replay(&["pop-validator"], &[segment(&log, off, sim.dir.path())]);
    assert!(r.sum("chain_pop_view_changes_total", &[]) >= 2.0);
    assert!(r.sum("chain_pop_round_failures_total", &[]) >= 2.0);
    assert_eq!(r.sum("chain_pop_rounds_total", &[]), 0.0);
    assert_eq!(
        r.sum("chain_pop_network_health", &["state=\"critical\""]),
        1.0
    );

    sim.set(r#"{"scenario": "high_latency", "node": "dil-eu"}"#);
    let (_, p) = sim.rpc("dil-eu", "getpeerinfo").unwrap();
    let worst = p["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["pingtime"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(worst > 0.2, "{worst}");
}

#[test]
fn control_api_refuses_what_cannot_apply() {
    let sim = Sim::start();
    let cases: &[(&str, &str)] = &[
        (
            r#"{"scenario": "chain_stall", "node": "nope"}"#,
            "unknown node `nope`",
        ),
        (
            r#"{"scenario": "meteor", "node": "dil-eu"}"#,
            "unknown scenario `meteor`",
        ),
        (
            r#"{"scenario": "chain_stall", "region": "mars"}"#,
            "unknown region `mars`",
        ),
        (
            r#"{"scenario": "chain_stall", "family": "eth"}"#,
            "unknown family `eth`",
        ),
        (r#"{"scenario": "chain_stall"}"#, "name a target"),
        (
            r#"{"scenario": "chain_stall", "node": "dil-eu", "region": "eu"}"#,
            "name one target",
        ),
        (
            r#"{"scenario": "no_active_miners", "node": "dil-eu"}"#,
            "no_active_miners applies to bitcell nodes; `dil-eu` is a dilithion node",
        ),
        (
            r#"{"scenario": "consensus_divergence", "family": "pop"}"#,
            "applies to coinjecture nodes; family pop has none",
        ),
        (
            r#"{"scenario": "region_down", "node": "dil-eu"}"#,
            "region_down takes a `region`",
        ),
        (
            r#"{"scenario": "fallbacks", "node": "cj-eu", "rate": 2}"#,
            "`rate` is a fraction",
        ),
        (
            r#"{"scenario": "peers_zero", "node": "cj-eu", "rate": 0.5}"#,
            "takes no `rate`",
        ),
        (
            r#"{"scenario": "node_down", "node": "cj-eu", "mode": "explode"}"#,
            "unknown mode `explode`",
        ),
        (
            r#"{"scenario": "chain_stall", "node": "cj-eu", "mode": "503"}"#,
            "takes no `mode`",
        ),
        (
            r#"{"scenario": "host_down", "node": "cj-eu", "mode": "hang"}"#,
            "host_down takes no `mode`",
        ),
        (
            r#"{"scenario": "all_clear", "on": false}"#,
            "all_clear takes only a target",
        ),
        (
            r#"{"scenario": "chain_stall", "nodes": "cj-eu"}"#,
            "unknown field `nodes`",
        ),
        ("not json", "request body"),
    ];
    for (body, want) in cases {
        let (status, v) = sim.scenario(body);
        assert_eq!(status, 400, "{body}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{body}: `{msg}` should say `{want}`");
    }
    // Nothing was applied by the refused requests.
    for n in sim.state()["nodes"].as_array().unwrap() {
        assert_eq!(n["scenarios"], serde_json::json!({}), "{}", n["name"]);
    }
    let (status, body) = post(
        &format!("{}/mode", sim.control),
        r#"{"node": "dil-eu", "mode": "rust"}"#,
        &[],
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("coinjecture"), "{body}");
    let (status, _) = get(&format!("{}/nope", sim.control)).unwrap();
    assert_eq!(status, 404);
    let (status, _) = get(&format!("{}/scenario", sim.control)).unwrap();
    assert_eq!(status, 405);
}

#[test]
fn all_clear_restores_everything() {
    let sim = Sim::start();
    sim.set(r#"{"scenario": "node_down", "node": "cj-eu"}"#);
    sim.set(r#"{"scenario": "peers_zero", "family": "dilithion"}"#);
    sim.set(r#"{"scenario": "validators_down", "family": "pop"}"#);
    let active: usize = sim.state()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["scenarios"].as_object().unwrap().len())
        .sum();
    assert_eq!(active, 5);
    let v = sim.set(r#"{"scenario": "all_clear"}"#);
    assert_eq!(v["nodes"].as_array().unwrap().len(), 8);
    let s = sim.state();
    for n in s["nodes"].as_array().unwrap() {
        assert_eq!(n["scenarios"], serde_json::json!({}));
        assert_eq!(n["up"], true);
    }
    wait_until("cj-eu answers", || {
        matches!(get(&sim.url("cj-eu", "/health")), Ok((200, _)))
    });
    assert_eq!(
        get_json(&sim.url("pop-us", "/status"))["network_health"],
        "HEALTHY"
    );
    let (_, c) = sim.rpc("dil-us", "getconnectioncount").unwrap();
    assert_eq!(c["result"], 6);
}

fn bitcell_metric(sim: &Sim, node: &str, name: &str) -> f64 {
    let (status, text) = get(&sim.url(node, "/metrics")).unwrap();
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in {text}"))
        .parse()
        .unwrap()
}
